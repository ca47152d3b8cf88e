package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

func createWebhook(t *testing.T, s *Store, name string) Webhook {
	t.Helper()
	w, err := s.CreateWebhook(pgtest.Context(t), WebhookInput{Name: name, URL: "https://example.com/" + name, Enabled: true}, "whsec_"+name)
	if err != nil {
		t.Fatalf("CreateWebhook(%s): %v", name, err)
	}
	return w
}

func ruleInput(name string, hooks ...uuid.UUID) RuleInput {
	return RuleInput{Name: name, Condition: "true", WebhookIDs: hooks, Enabled: true}
}

func detectorInput(name string, hooks ...uuid.UUID) DetectorInput {
	return DetectorInput{Name: name, Kind: "rate", Config: json.RawMessage(`{"max_per_minute": 10}`),
		CooldownSeconds: 300, WebhookIDs: hooks, Enabled: true}
}

func createRule(t *testing.T, s *Store, in RuleInput) Rule {
	t.Helper()
	r, err := s.CreateRule(pgtest.Context(t), in)
	if err != nil {
		t.Fatalf("CreateRule(%s): %v", in.Name, err)
	}
	return r
}

func createDetector(t *testing.T, s *Store, in DetectorInput) Detector {
	t.Helper()
	d, err := s.CreateDetector(pgtest.Context(t), in)
	if err != nil {
		t.Fatalf("CreateDetector(%s): %v", in.Name, err)
	}
	return d
}

func checkNotFound(t *testing.T, what string, err error, id uuid.UUID) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%s = %v, want ErrNotFound", what, err)
	} else if !strings.Contains(err.Error(), id.String()) {
		t.Errorf("%s: error %q does not name the id", what, err)
	}
}

func checkMissingWebhooks(t *testing.T, what string, err error, want ...uuid.UUID) {
	t.Helper()
	var mw *MissingWebhooksError
	if !errors.As(err, &mw) {
		t.Fatalf("%s = %v, want a MissingWebhooksError", what, err)
	}
	if !slices.Equal(mw.IDs, want) {
		t.Errorf("%s: missing %v, want %v", what, mw.IDs, want)
	}
}

// sameJSON compares two JSON documents by value (jsonb reorders keys and drops spaces).
func sameJSON(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("unmarshal %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("unmarshal %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestRuleRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	w1, w2 := createWebhook(t, s, "one"), createWebhook(t, s, "two")

	in := RuleInput{
		Name: "big purchase", Description: "more than 100", AppID: ptr("shop"), EventCategory: ptr("commerce"),
		EventType: ptr("purchase_complete"), Condition: "event.purchase_complete.total_cents > 10000",
		WebhookIDs: []uuid.UUID{w2.ID, w1.ID}, PublishSubject: ptr("shop.big"), Priority: 7, Enabled: true,
	}
	r := createRule(t, s, in)
	if r.ID.Version() != 7 {
		t.Errorf("id %s is version %d, want 7", r.ID, r.ID.Version())
	}
	want := Rule{ID: r.ID, Name: in.Name, Description: in.Description, AppID: in.AppID, EventCategory: in.EventCategory,
		EventType: in.EventType, Condition: in.Condition, WebhookIDs: in.WebhookIDs, PublishSubject: in.PublishSubject,
		Priority: 7, Enabled: true, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("CreateRule = %+v, want %+v", r, want)
	}
	got, err := s.GetRule(ctx, r.ID)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("GetRule = %+v, %v; want %+v", got, err, r)
	}

	// An update replaces every field; nil filters become NULL, no webhooks an empty list.
	up := RuleInput{Name: "any event", Enabled: false, Priority: -3}
	u, err := s.UpdateRule(ctx, r.ID, up)
	if err != nil {
		t.Fatalf("UpdateRule: %v", err)
	}
	if u.Name != up.Name || u.Description != "" || u.AppID != nil || u.EventCategory != nil || u.EventType != nil ||
		u.Condition != "" || u.WebhookIDs == nil || len(u.WebhookIDs) != 0 || u.PublishSubject != nil ||
		u.Priority != -3 || u.Enabled {
		t.Errorf("UpdateRule = %+v, want the fields of %+v", u, up)
	}
	if !u.CreatedAt.Equal(r.CreatedAt) || u.UpdatedAt.Before(r.UpdatedAt) {
		t.Errorf("times after update: created %v (was %v), updated %v (was %v)", u.CreatedAt, r.CreatedAt, u.UpdatedAt, r.UpdatedAt)
	}
	rules, err := s.ListRules(ctx)
	if err != nil || len(rules) != 1 || !reflect.DeepEqual(rules[0], u) {
		t.Fatalf("ListRules = %+v, %v; want [%+v]", rules, err, u)
	}

	unknown := uuid.Must(uuid.NewV7())
	_, err = s.CreateRule(ctx, ruleInput("dangling", w1.ID, unknown))
	checkMissingWebhooks(t, "CreateRule with an unknown webhook", err, unknown)
	_, err = s.UpdateRule(ctx, r.ID, ruleInput("dangling", unknown))
	checkMissingWebhooks(t, "UpdateRule with an unknown webhook", err, unknown)

	if err := s.DeleteRule(ctx, r.ID); err != nil {
		t.Fatalf("DeleteRule: %v", err)
	}
	_, err = s.GetRule(ctx, r.ID)
	checkNotFound(t, "GetRule after delete", err, r.ID)
	_, err = s.UpdateRule(ctx, r.ID, up)
	checkNotFound(t, "UpdateRule after delete", err, r.ID)
	checkNotFound(t, "DeleteRule twice", s.DeleteRule(ctx, r.ID), r.ID)
}

func TestDetectorRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	w := createWebhook(t, s, "one")

	in := DetectorInput{
		Name: "spike", Description: "checkout spikes", AppID: ptr("shop"), EventCategory: ptr("commerce"),
		EventType: ptr("checkout_start"), Condition: `category == "commerce"`, Kind: "baseline",
		Config:          json.RawMessage(`{"interval_seconds":60,"sensitivity":3,"direction":"both"}`),
		CooldownSeconds: 60, WebhookIDs: []uuid.UUID{w.ID}, PublishSubject: ptr("ops.spikes"), Enabled: true,
	}
	d := createDetector(t, s, in)
	if d.ID.Version() != 7 || d.Name != in.Name || d.Description != in.Description || *d.AppID != "shop" ||
		*d.EventCategory != "commerce" || *d.EventType != "checkout_start" || d.Condition != in.Condition ||
		d.Kind != in.Kind || d.CooldownSeconds != 60 || !slices.Equal(d.WebhookIDs, in.WebhookIDs) ||
		*d.PublishSubject != "ops.spikes" || !d.Enabled {
		t.Fatalf("CreateDetector = %+v, want the fields of %+v", d, in)
	}
	if !sameJSON(t, d.Config, in.Config) {
		t.Errorf("Config = %s, want %s", d.Config, in.Config)
	}
	got, err := s.GetDetector(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("GetDetector = %+v, %v; want %+v", got, err, d)
	}

	up := DetectorInput{Name: "rate", Kind: "rate", Config: json.RawMessage(`{"max_per_minute":5}`)}
	u, err := s.UpdateDetector(ctx, d.ID, up)
	if err != nil {
		t.Fatalf("UpdateDetector: %v", err)
	}
	if u.Name != "rate" || u.Kind != "rate" || u.AppID != nil || u.EventCategory != nil || u.EventType != nil ||
		u.Condition != "" || u.CooldownSeconds != 0 || len(u.WebhookIDs) != 0 || u.PublishSubject != nil || u.Enabled ||
		!sameJSON(t, u.Config, up.Config) || u.UpdatedAt.Before(d.UpdatedAt) || !u.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("UpdateDetector = %+v, want the fields of %+v", u, up)
	}
	ds, err := s.ListDetectors(ctx)
	if err != nil || len(ds) != 1 || !reflect.DeepEqual(ds[0], u) {
		t.Fatalf("ListDetectors = %+v, %v; want [%+v]", ds, err, u)
	}

	unknown := uuid.Must(uuid.NewV7())
	_, err = s.CreateDetector(ctx, detectorInput("dangling", unknown))
	checkMissingWebhooks(t, "CreateDetector with an unknown webhook", err, unknown)
	if _, err := s.CreateDetector(ctx, DetectorInput{Name: "bad kind", Kind: "magic"}); err == nil {
		t.Error("CreateDetector with kind magic succeeded; the table's check should refuse it")
	}

	if err := s.DeleteDetector(ctx, d.ID); err != nil {
		t.Fatalf("DeleteDetector: %v", err)
	}
	_, err = s.GetDetector(ctx, d.ID)
	checkNotFound(t, "GetDetector after delete", err, d.ID)
	_, err = s.UpdateDetector(ctx, d.ID, up)
	checkNotFound(t, "UpdateDetector after delete", err, d.ID)
	checkNotFound(t, "DeleteDetector twice", s.DeleteDetector(ctx, d.ID), d.ID)
}

func TestWebhookRoundTrip(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)

	in := WebhookInput{Name: "ops", URL: "https://example.com/hook", Headers: map[string]string{"Authorization": "Bearer x"}, Enabled: true}
	w, err := s.CreateWebhook(ctx, in, "whsec_abc")
	if err != nil {
		t.Fatal(err)
	}
	if w.ID.Version() != 7 || w.Name != "ops" || w.URL != in.URL || !reflect.DeepEqual(w.Headers, in.Headers) ||
		w.Secret != "whsec_abc" || !w.Enabled || w.DisabledReason != nil || w.FailingSince != nil {
		t.Fatalf("CreateWebhook = %+v, want the fields of %+v", w, in)
	}
	got, err := s.GetWebhook(ctx, w.ID)
	if err != nil || !reflect.DeepEqual(got, w) {
		t.Fatalf("GetWebhook = %+v, %v; want %+v", got, err, w)
	}

	// What the dispatcher records when it gives up on an endpoint.
	conn := pgtest.Connect(t, dbURL)
	disable := func() {
		t.Helper()
		if _, err := conn.Exec(ctx, `UPDATE webhooks SET enabled = false, disabled_reason = 'failing for 3 days',
			failing_since = now() - interval '3 days' WHERE id = $1`, w.ID); err != nil {
			t.Fatal(err)
		}
	}
	disable()

	steps := []struct {
		name        string
		in          WebhookInput
		keepFailure bool
	}{
		{name: "edited while disabled keeps the reason", in: WebhookInput{Name: "renamed", URL: "https://example.com/v2"}, keepFailure: true},
		{name: "enabled clears the reason", in: WebhookInput{Name: "renamed", URL: "https://example.com/v2", Enabled: true}},
	}
	for _, step := range steps {
		u, err := s.UpdateWebhook(ctx, w.ID, step.in)
		if err != nil {
			t.Fatalf("%s: UpdateWebhook: %v", step.name, err)
		}
		if u.Name != step.in.Name || u.URL != step.in.URL || u.Enabled != step.in.Enabled || u.Secret != w.Secret {
			t.Errorf("%s: UpdateWebhook = %+v, want the fields of %+v and the old secret", step.name, u, step.in)
		}
		if u.Headers == nil || len(u.Headers) != 0 {
			t.Errorf("%s: headers %v, want none (an empty map)", step.name, u.Headers)
		}
		if kept := u.DisabledReason != nil && u.FailingSince != nil; kept != step.keepFailure {
			t.Errorf("%s: disabled_reason %v, failing_since %v; want kept = %v", step.name, u.DisabledReason, u.FailingSince, step.keepFailure)
		}
	}

	unknown := uuid.Must(uuid.NewV7())
	_, err = s.GetWebhook(ctx, unknown)
	checkNotFound(t, "GetWebhook(unknown)", err, unknown)
	_, err = s.UpdateWebhook(ctx, unknown, in)
	checkNotFound(t, "UpdateWebhook(unknown)", err, unknown)
	checkNotFound(t, "DeleteWebhook(unknown)", s.DeleteWebhook(ctx, unknown), unknown)
}

func TestDeleteWebhookRemovesItEverywhere(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	w1, w2 := createWebhook(t, s, "one"), createWebhook(t, s, "two")
	r := createRule(t, s, ruleInput("both", w1.ID, w2.ID))
	other := createRule(t, s, ruleInput("other", w2.ID))
	d := createDetector(t, s, detectorInput("one", w1.ID))
	if _, err := s.EnqueueTestDelivery(ctx, w1.ID, `{}`); err != nil {
		t.Fatal(err)
	}
	kept, err := s.EnqueueTestDelivery(ctx, w2.ID, `{}`)
	if err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteWebhook(ctx, w1.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if got, err := s.GetRule(ctx, r.ID); err != nil || !slices.Equal(got.WebhookIDs, []uuid.UUID{w2.ID}) {
		t.Errorf("rule webhooks after delete = %v, %v; want [%s]", got.WebhookIDs, err, w2.ID)
	} else if !got.UpdatedAt.After(r.UpdatedAt) {
		t.Errorf("rule updated_at %v not after %v", got.UpdatedAt, r.UpdatedAt)
	}
	if got, err := s.GetRule(ctx, other.ID); err != nil || !reflect.DeepEqual(got, other) {
		t.Errorf("untouched rule = %+v, %v; want %+v unchanged", got, err, other)
	}
	if got, err := s.GetDetector(ctx, d.ID); err != nil || got.WebhookIDs == nil || len(got.WebhookIDs) != 0 {
		t.Errorf("detector webhooks after delete = %v, %v; want []", got.WebhookIDs, err)
	}
	_, err = s.GetWebhook(ctx, w1.ID)
	checkNotFound(t, "GetWebhook after delete", err, w1.ID)

	var deliveries int
	if err := pgtest.Connect(t, dbURL).QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, w1.ID).Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if deliveries != 0 {
		t.Errorf("%d deliveries of the deleted webhook remain", deliveries)
	}
	if _, err := s.GetDelivery(ctx, kept.ID); err != nil {
		t.Errorf("delivery of the other webhook: %v", err)
	}
}

func TestMissingWebhooks(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	w1, w2 := createWebhook(t, s, "one"), createWebhook(t, s, "two")
	u1, u2 := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	tests := []struct {
		name string
		ids  []uuid.UUID
		want []uuid.UUID
	}{
		{name: "none asked"},
		{name: "all exist", ids: []uuid.UUID{w2.ID, w1.ID}},
		{name: "some missing, in order", ids: []uuid.UUID{u2, w1.ID, u1}, want: []uuid.UUID{u2, u1}},
		{name: "a repeat is reported once", ids: []uuid.UUID{u1, u1, w2.ID}, want: []uuid.UUID{u1}},
	}
	for _, tt := range tests {
		got, err := s.MissingWebhooks(ctx, tt.ids)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: MissingWebhooks(%v) = %v, want %v", tt.name, tt.ids, got, tt.want)
		}
	}
}

func TestDetectorStates(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	d1, d2 := createDetector(t, s, detectorInput("one")), createDetector(t, s, detectorInput("two"))
	gone := uuid.Must(uuid.NewV7())

	list := func() map[string]string {
		t.Helper()
		states, err := s.ListDetectorStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, st := range states {
			if st.UpdatedAt.IsZero() {
				t.Errorf("state %s/%s has no UpdatedAt", st.DetectorID, st.AppID)
			}
			var v any
			if err := json.Unmarshal(st.State, &v); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(v)
			m[st.DetectorID.String()+"/"+st.AppID] = string(b)
		}
		return m
	}
	k := func(d Detector, app string) string { return d.ID.String() + "/" + app }

	steps := []struct {
		name   string
		states []DetectorState
		want   map[string]string
	}{
		{name: "nothing", want: map[string]string{}},
		{
			name: "first save; a deleted detector's state is dropped",
			states: []DetectorState{
				{DetectorID: d1.ID, AppID: "shop", State: json.RawMessage(`{"n": 1}`)},
				{DetectorID: d1.ID, AppID: "blog", State: json.RawMessage(`{"n": 2}`)},
				{DetectorID: gone, AppID: "shop", State: json.RawMessage(`{"n": 9}`)},
			},
			want: map[string]string{k(d1, "shop"): `{"n":1}`, k(d1, "blog"): `{"n":2}`},
		},
		{
			name: "upsert; the last of a repeat wins",
			states: []DetectorState{
				{DetectorID: d1.ID, AppID: "shop", State: json.RawMessage(`{"n": 3}`)},
				{DetectorID: d2.ID, AppID: "shop", State: json.RawMessage(`{"n": 4}`)},
				{DetectorID: d2.ID, AppID: "shop", State: json.RawMessage(`{"n": 5}`)},
			},
			want: map[string]string{k(d1, "shop"): `{"n":3}`, k(d1, "blog"): `{"n":2}`, k(d2, "shop"): `{"n":5}`},
		},
		{
			name:   "a null state (an app the detector forgot) deletes its row",
			states: []DetectorState{{DetectorID: d1.ID, AppID: "blog", State: json.RawMessage(`null`)}},
			want:   map[string]string{k(d1, "shop"): `{"n":3}`, k(d2, "shop"): `{"n":5}`},
		},
	}
	for _, step := range steps {
		if err := s.SaveDetectorStates(ctx, step.states); err != nil {
			t.Fatalf("%s: SaveDetectorStates: %v", step.name, err)
		}
		if got := list(); !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s: states = %v, want %v", step.name, got, step.want)
		}
	}

	if err := s.DeleteDetector(ctx, d1.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := list(), map[string]string{k(d2, "shop"): `{"n":5}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("states after deleting a detector = %v, want %v", got, want)
	}
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	conn := pgtest.Connect(t, dbURL)
	w1, w2 := createWebhook(t, s, "one"), createWebhook(t, s, "two")

	enqueue := func(w Webhook) Delivery {
		t.Helper()
		d, err := s.EnqueueTestDelivery(ctx, w.ID, `{"type":"webhook.test"}`)
		if err != nil {
			t.Fatalf("EnqueueTestDelivery: %v", err)
		}
		return d
	}
	a, b, c := enqueue(w1), enqueue(w2), enqueue(w1)
	if a.ID.Version() != 7 || a.WebhookID != w1.ID || a.Type != "webhook.test" || !strings.HasPrefix(a.SourceKey, "test:") ||
		a.Body != `{"type":"webhook.test"}` || a.Status != DeliveryPending || a.Priority != 0 || a.Attempts != 0 ||
		a.RuleID != nil || a.DetectorID != nil || a.AppID != nil || a.EventID != nil || a.DeliveredAt != nil {
		t.Fatalf("EnqueueTestDelivery = %+v", a)
	}
	if a.SourceKey == c.SourceKey {
		t.Errorf("two tests share source key %s", a.SourceKey)
	}
	unknown := uuid.Must(uuid.NewV7())
	_, err := s.EnqueueTestDelivery(ctx, unknown, `{}`)
	checkNotFound(t, "EnqueueTestDelivery(unknown webhook)", err, unknown)

	// Spread the creation times so that the order and the cursor are plain to see, and
	// let b die after three attempts.
	base := time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)
	for i, d := range []Delivery{a, b, c} {
		if _, err := conn.Exec(ctx, `UPDATE deliveries SET created_at = $2 WHERE id = $1`, d.ID, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE deliveries SET status = 'dead', attempts = 3, last_status_code = 500,
		last_error = 'server error', last_attempt_at = now(), next_attempt_at = now() + interval '1 hour' WHERE id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}

	ids := func(ds []Delivery) []uuid.UUID {
		out := make([]uuid.UUID, len(ds))
		for i, d := range ds {
			out[i] = d.ID
		}
		return out
	}
	before := &Cursor{At: base.Add(2 * time.Minute)}
	tests := []struct {
		name   string
		filter DeliveryFilter
		want   []uuid.UUID
	}{
		{name: "all, newest first", want: []uuid.UUID{c.ID, b.ID, a.ID}},
		{name: "pending", filter: DeliveryFilter{Status: DeliveryPending}, want: []uuid.UUID{c.ID, a.ID}},
		{name: "dead", filter: DeliveryFilter{Status: DeliveryDead}, want: []uuid.UUID{b.ID}},
		{name: "succeeded", filter: DeliveryFilter{Status: DeliverySucceeded}, want: []uuid.UUID{}},
		{name: "by webhook", filter: DeliveryFilter{WebhookID: &w1.ID}, want: []uuid.UUID{c.ID, a.ID}},
		{name: "limit", filter: DeliveryFilter{Limit: 2}, want: []uuid.UUID{c.ID, b.ID}},
		{name: "before", filter: DeliveryFilter{Before: before}, want: []uuid.UUID{b.ID, a.ID}},
		{name: "before and limit", filter: DeliveryFilter{Before: before, Limit: 1}, want: []uuid.UUID{b.ID}},
		{name: "after an item", filter: DeliveryFilter{Before: &Cursor{At: base.Add(2 * time.Minute), ID: c.ID}}, want: []uuid.UUID{b.ID, a.ID}},
	}
	for _, tt := range tests {
		got, err := s.ListDeliveries(ctx, tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("%s: ListDeliveries = %v, want %v", tt.name, ids(got), tt.want)
		}
	}

	dead, err := s.GetDelivery(ctx, b.ID)
	if err != nil || dead.Status != DeliveryDead || dead.Attempts != 3 || dead.LastStatusCode == nil || *dead.LastStatusCode != 500 {
		t.Fatalf("GetDelivery = %+v, %v; want the dead delivery", dead, err)
	}
	replayed, err := s.ReplayDelivery(ctx, b.ID)
	if err != nil {
		t.Fatalf("ReplayDelivery: %v", err)
	}
	if replayed.Status != DeliveryPending || replayed.Attempts != 3 || replayed.LastError == nil ||
		*replayed.LastError != "server error" || !replayed.NextAttemptAt.Before(dead.NextAttemptAt) {
		t.Errorf("ReplayDelivery = %+v; want pending, due now, attempts and last error kept", replayed)
	}
	_, err = s.GetDelivery(ctx, unknown)
	checkNotFound(t, "GetDelivery(unknown)", err, unknown)
	_, err = s.ReplayDelivery(ctx, unknown)
	checkNotFound(t, "ReplayDelivery(unknown)", err, unknown)
}

func TestListAnomalies(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	conn := pgtest.Connect(t, dbURL)
	d1, d2 := createDetector(t, s, detectorInput("one")), createDetector(t, s, detectorInput("two"))
	base := time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)

	insert := func(d Detector, app string, minute int) uuid.UUID {
		t.Helper()
		id := uuid.Must(uuid.NewV7())
		_, err := conn.Exec(ctx, `INSERT INTO anomalies (id, detector_id, app_id, kind, dedup_key, fired_at, message,
			observed, expected, details, event_id) VALUES ($1, $2, $3, 'rate', $4, $5, 'too many', 12, 10, '{"window":60}', 'e-1')`,
			id, d.ID, app, id.String(), base.Add(time.Duration(minute)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := insert(d1, "shop", 0)
	b := insert(d2, "shop", 1)
	c := insert(d1, "blog", 2)

	all, err := s.ListAnomalies(ctx, AnomalyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("ListAnomalies = %d anomalies, want 3", len(all))
	}
	first := all[2]
	if first.ID != a || first.DetectorID != d1.ID || first.AppID != "shop" || first.Kind != "rate" || first.DedupKey != a.String() ||
		!first.FiredAt.Equal(base) || first.Message != "too many" || first.Observed == nil || *first.Observed != 12 ||
		first.Expected == nil || *first.Expected != 10 || !sameJSON(t, first.Details, json.RawMessage(`{"window":60}`)) ||
		first.EventID == nil || *first.EventID != "e-1" {
		t.Errorf("anomaly = %+v", first)
	}

	before := Cursor{At: base.Add(2 * time.Minute)}
	tests := []struct {
		name   string
		filter AnomalyFilter
		want   []uuid.UUID
	}{
		{name: "all, newest first", want: []uuid.UUID{c, b, a}},
		{name: "by detector", filter: AnomalyFilter{DetectorID: &d1.ID}, want: []uuid.UUID{c, a}},
		{name: "by app", filter: AnomalyFilter{AppID: "shop"}, want: []uuid.UUID{b, a}},
		{name: "by detector and app", filter: AnomalyFilter{DetectorID: &d1.ID, AppID: "shop"}, want: []uuid.UUID{a}},
		{name: "before", filter: AnomalyFilter{Before: &before}, want: []uuid.UUID{b, a}},
		{name: "limit", filter: AnomalyFilter{Limit: 1}, want: []uuid.UUID{c}},
	}
	for _, tt := range tests {
		got, err := s.ListAnomalies(ctx, tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ids := make([]uuid.UUID, len(got))
		for i, an := range got {
			ids[i] = an.ID
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s: ListAnomalies = %v, want %v", tt.name, ids, tt.want)
		}
	}
}

// listener collects the notifications of channels on a connection of its own.
type listener struct {
	t    *testing.T
	conn *pgx.Conn
}

func listen(t *testing.T, dbURL string, channels ...string) *listener {
	t.Helper()
	conn := pgtest.Connect(t, dbURL)
	for _, ch := range channels {
		if _, err := conn.Exec(pgtest.Context(t), "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	return &listener{t: t, conn: conn}
}

// expect waits for the next notifications, which must be want ("channel payload"), in
// any order.
func (l *listener) expect(what string, want ...string) {
	l.t.Helper()
	var got []string
	for range want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := l.conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			l.t.Fatalf("%s: got %q, then no notification within 5s: %v", what, got, err)
		}
		got = append(got, n.Channel+" "+n.Payload)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		l.t.Errorf("%s: notifications %q, want %q", what, got, want)
	}
}

// Every change of a rule, detector or webhook is announced on ReactionChannel, naming
// what changed, so that the engines of every appliance reload; deliveries made due now
// wake the dispatchers.
func TestReactionNotifications(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	l := listen(t, dbURL, ReactionChannel, DeliveriesChannel)
	rc := func(kind string, id uuid.UUID) string { return ReactionChannel + " " + kind + ":" + id.String() }

	w := createWebhook(t, s, "one")
	l.expect("CreateWebhook", rc("webhook", w.ID))
	if _, err := s.UpdateWebhook(ctx, w.ID, WebhookInput{Name: "x", URL: w.URL}); err != nil {
		t.Fatal(err)
	}
	l.expect("UpdateWebhook", rc("webhook", w.ID))

	r := createRule(t, s, ruleInput("r", w.ID))
	l.expect("CreateRule", rc("rule", r.ID))
	if _, err := s.UpdateRule(ctx, r.ID, ruleInput("r2", w.ID)); err != nil {
		t.Fatal(err)
	}
	l.expect("UpdateRule", rc("rule", r.ID))

	d := createDetector(t, s, detectorInput("d", w.ID))
	l.expect("CreateDetector", rc("detector", d.ID))
	if _, err := s.UpdateDetector(ctx, d.ID, detectorInput("d2", w.ID)); err != nil {
		t.Fatal(err)
	}
	l.expect("UpdateDetector", rc("detector", d.ID))

	del, err := s.EnqueueTestDelivery(ctx, w.ID, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	l.expect("EnqueueTestDelivery", DeliveriesChannel+" ")
	if _, err := s.ReplayDelivery(ctx, del.ID); err != nil {
		t.Fatal(err)
	}
	l.expect("ReplayDelivery", DeliveriesChannel+" ")

	// Deleting the webhook changes the rule and the detector that named it too.
	if err := s.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	l.expect("DeleteWebhook", rc("webhook", w.ID), rc("rule", r.ID), rc("detector", d.ID))
	if err := s.DeleteRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	l.expect("DeleteRule", rc("rule", r.ID))
	if err := s.DeleteDetector(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	l.expect("DeleteDetector", rc("detector", d.ID))

	// A refused change announces nothing: the next notification is the create after it.
	if _, err := s.CreateRule(ctx, ruleInput("dangling", w.ID)); err == nil {
		t.Fatal("CreateRule with a deleted webhook succeeded")
	}
	r2 := createRule(t, s, ruleInput("after"))
	l.expect("a refused CreateRule, then a good one", rc("rule", r2.ID))
}

// Store.Listen, as the engine uses it, hears rule changes.
func TestListenHearsReactionChanges(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx, cancel := context.WithCancel(pgtest.Context(t))
	defer cancel()
	heard := make(chan struct{}, 10)
	go func() { _ = s.Listen(ctx, ReactionChannel, nil, func() { heard <- struct{}{} }) }()
	waitListening(t, dbURL, ReactionChannel)
	createRule(t, s, ruleInput("r"))
	select {
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s after CreateRule")
	}
}

// ready comes once the LISTEN is in place: a change made right after it is heard, with no
// need to poll for the listener.
func TestListenReadyMeansListening(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	heard := listening(t, s, ReactionChannel)
	createRule(t, s, ruleInput("r"))
	expectHeard(t, heard, "a rule created after ready")
}

// listening starts Listen on channel and returns once the LISTEN is in place, with the
// channel its notifications arrive on. It stops with the test.
func listening(t *testing.T, s *Store, channel string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(pgtest.Context(t))
	t.Cleanup(cancel)
	ready := make(chan struct{}, 1)
	heard := make(chan struct{}, 10)
	go func() {
		_ = s.Listen(ctx, channel, func() { ready <- struct{}{} }, func() { heard <- struct{}{} })
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen never said it was ready")
	}
	return heard
}

func expectHeard(t *testing.T, heard <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s was not announced", what)
	}
}

// A rule saved while its webhook is being deleted either waits for the delete and is
// refused, or wins and is then cleaned by it: it never ends up naming a deleted webhook.
func TestCreateRuleWaitsForWebhookDelete(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	w := createWebhook(t, s, "one")

	// Another session deletes the webhook and has not committed yet.
	conn := pgtest.Connect(t, dbURL)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CreateRule(ctx, ruleInput("racing", w.ID))
		done <- err
	}()
	// Wait until CreateRule is blocked on the deleted row's lock, then commit the delete.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CreateRule did not wait for the uncommitted delete of its webhook")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		checkMissingWebhooks(t, "CreateRule racing a delete", err, w.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("CreateRule still blocked after the delete committed")
	}
	if rules, err := s.ListRules(ctx); err != nil || len(rules) != 0 {
		t.Errorf("rules = %+v, %v; want none", rules, err)
	}
}

// Turning a rule or detector on or off changes only that, announces it, and so cannot undo
// an edit saved since the page that holds the toggle was loaded.
func TestSetEnabledKeepsConcurrentEdits(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	heard := listening(t, s, ReactionChannel)

	r := createRule(t, s, ruleInput("before"))
	expectHeard(t, heard, "CreateRule")
	edited := ruleInput("after")
	edited.Condition = `type == "view"`
	if _, err := s.UpdateRule(ctx, r.ID, edited); err != nil {
		t.Fatal(err)
	}
	expectHeard(t, heard, "UpdateRule")
	got, err := s.SetRuleEnabled(ctx, r.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	expectHeard(t, heard, "SetRuleEnabled")
	if got.Enabled || got.Name != "after" || got.Condition != `type == "view"` || !got.UpdatedAt.After(r.UpdatedAt) {
		t.Errorf("after SetRuleEnabled(false): %+v", got)
	}
	if again, err := s.GetRule(ctx, r.ID); err != nil || again.Enabled || again.Name != "after" {
		t.Errorf("stored rule %+v, %v", again, err)
	}

	d := createDetector(t, s, detectorInput("det"))
	expectHeard(t, heard, "CreateDetector")
	gotD, err := s.SetDetectorEnabled(ctx, d.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	expectHeard(t, heard, "SetDetectorEnabled")
	if gotD.Enabled || gotD.Name != "det" || gotD.Kind != "rate" || string(gotD.Config) != string(d.Config) {
		t.Errorf("after SetDetectorEnabled(false): %+v", gotD)
	}
	if gotD, err = s.SetDetectorEnabled(ctx, d.ID, true); err != nil || !gotD.Enabled {
		t.Errorf("SetDetectorEnabled(true): %+v, %v", gotD, err)
	}

	missing := uuid.New()
	_, err = s.SetRuleEnabled(ctx, missing, true)
	checkNotFound(t, "SetRuleEnabled(missing)", err, missing)
	_, err = s.SetDetectorEnabled(ctx, missing, true)
	checkNotFound(t, "SetDetectorEnabled(missing)", err, missing)
}

// Deliveries recorded by one transaction share their created_at (the engine records up to
// 500 events at once): paging with each page's cursor still visits every one exactly once.
func TestDeliveryPagesCoverATransactionsGroup(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	w := createWebhook(t, s, "one")
	if _, err := s.Pool().Exec(ctx, `INSERT INTO deliveries (id, webhook_id, type, source_key, body, created_at)
		SELECT gen_random_uuid(), $1, 'rule.matched', 'k' || g, '{}', $2 FROM generate_series(1, 250) g`,
		w.ID, time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]int{}
	var before *Cursor
	for page := 0; ; page++ {
		ds, err := s.ListDeliveries(ctx, DeliveryFilter{Limit: 100, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			seen[d.ID]++
		}
		if len(ds) < 100 {
			break
		}
		last := ds[len(ds)-1]
		c, err := ParseCursor(Cursor{At: last.CreatedAt, ID: last.ID}.String())
		if err != nil {
			t.Fatal(err)
		}
		before = &c
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 250 {
		t.Errorf("pages held %d distinct deliveries of 250", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s on %d pages", id, n)
		}
	}
}

func TestParseCursor(t *testing.T) {
	id := uuid.MustParse("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	at := time.Date(2026, 11, 7, 3, 0, 0, 123456000, time.UTC)
	for _, tt := range []struct {
		in   string
		want Cursor
	}{
		{"2026-11-07T03:00:00.123456Z", Cursor{At: at}},
		{"2026-11-07T03:00:00.123456Z," + id.String(), Cursor{At: at, ID: id}},
		{"2026-11-07T04:00:00.123456+01:00", Cursor{At: at}},
	} {
		got, err := ParseCursor(tt.in)
		if err != nil || !got.At.Equal(tt.want.At) || got.ID != tt.want.ID {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if s := (Cursor{At: at, ID: id}).String(); s != "2026-11-07T03:00:00.123456Z,"+id.String() {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []string{"", "yesterday", "2026-11-07T03:00:00Z,", "2026-11-07T03:00:00Z,not-an-id", ",0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"} {
		if _, err := ParseCursor(bad); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseCursor(%q): err %v, want one that shows the form", bad, err)
		}
	}
}
