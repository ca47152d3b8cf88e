package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
)

const testPassword = "right"

// syncBuffer collects the API's log lines, which handlers write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// apiClient calls the routes of an API on a real database, in process.
type apiClient struct {
	t       *testing.T
	store   *store.Store
	handler http.Handler
	logs    *syncBuffer
}

func newAPIClient(t *testing.T, s *store.Store, opts Options) *apiClient {
	t.Helper()
	env, err := expr.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	api := NewAPI(s, apikey.NewKeyring(s, 100, log), &Passwords{hash: cheapHash(testPassword)}, env, opts, log)
	r := chi.NewRouter()
	api.Routes(r)
	return &apiClient{t: t, store: s, handler: r, logs: logs}
}

// send makes a request with c's credentials (nil: none) and body (JSON text, or none).
func (a *apiClient) send(c *creds, method, path, body string) *httptest.ResponseRecorder {
	a.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	r := httptest.NewRequest(method, path, rd)
	if c != nil {
		r.SetBasicAuth(c.user, c.password)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, r)
	return rec
}

// do makes a request as the admin and checks its status.
func (a *apiClient) do(method, path, body string, want int) *httptest.ResponseRecorder {
	a.t.Helper()
	rec := a.send(&creds{"admin", testPassword}, method, path, body)
	if rec.Code != want {
		a.t.Fatalf("%s %s %s: status %d (%s), want %d", method, path, body, rec.Code, strings.TrimSpace(rec.Body.String()), want)
	}
	if want != http.StatusNoContent {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			a.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
	}
	return rec
}

func decodeAs[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %s: %v", rec.Body, err)
	}
	return v
}

// js is v as JSON text.
func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// errorAnswer is a 400, 404 or 401 body.
type errorAnswer struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields"`
}

// wantError checks an error answer's message.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, contains string) errorAnswer {
	t.Helper()
	e := decodeAs[errorAnswer](t, rec)
	if !strings.Contains(e.Error, contains) {
		t.Errorf("error %q does not contain %q", e.Error, contains)
	}
	return e
}

// wantField checks that a 400 answer names field with a message containing contains,
// and that its "error" lists the field too.
func wantField(t *testing.T, rec *httptest.ResponseRecorder, field, contains string) FieldError {
	t.Helper()
	e := decodeAs[errorAnswer](t, rec)
	for _, f := range e.Fields {
		if f.Field == field && strings.Contains(f.Message, contains) {
			if !strings.Contains(e.Error, field+": "+f.Message) {
				t.Errorf("error %q does not contain %q", e.Error, field+": "+f.Message)
			}
			return f
		}
	}
	t.Fatalf("fields %+v: none is %s with a message containing %q", e.Fields, field, contains)
	return FieldError{}
}

func (a *apiClient) exec(sql string, args ...any) {
	a.t.Helper()
	if _, err := a.store.Pool().Exec(pgtest.Context(a.t), sql, args...); err != nil {
		a.t.Fatalf("%s: %v", sql, err)
	}
}

func (a *apiClient) createWebhook(name string) webhookView {
	a.t.Helper()
	rec := a.do("POST", "/api/v1/admin/webhooks", js(a.t, map[string]any{"name": name, "url": "https://example.com/" + name}), http.StatusCreated)
	return decodeAs[webhookView](a.t, rec)
}

// Every route is behind Basic auth: without credentials, or with a wrong password, the
// answer is 401 and nothing is done.
func TestReactionAPIRequiresAuth(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	id := uuid.NewString()
	routes := []struct{ method, path string }{
		{"POST", "/rules"}, {"GET", "/rules"}, {"GET", "/rules/" + id}, {"PUT", "/rules/" + id}, {"DELETE", "/rules/" + id},
		{"POST", "/detectors"}, {"GET", "/detectors"}, {"GET", "/detectors/" + id}, {"PUT", "/detectors/" + id}, {"DELETE", "/detectors/" + id},
		{"POST", "/webhooks"}, {"GET", "/webhooks"}, {"GET", "/webhooks/" + id}, {"PUT", "/webhooks/" + id}, {"DELETE", "/webhooks/" + id},
		{"POST", "/webhooks/" + id + "/test"},
		{"GET", "/deliveries"}, {"GET", "/deliveries/" + id}, {"POST", "/deliveries/" + id + "/replay"},
		{"GET", "/anomalies"},
	}
	body := `{"name":"x","url":"https://example.com","kind":"rate","config":{"max_per_minute":1}}`
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// A fresh API each time: wrong passwords spend a shared budget of ten.
			a := newAPIClient(t, s, Options{})
			for _, c := range []*creds{nil, {"admin", "wrong"}} {
				checkRefused(t, a.send(c, rt.method, "/api/v1/admin"+rt.path, body), http.StatusUnauthorized)
			}
		})
	}
	for _, table := range []string{"rules", "detectors", "webhooks", "deliveries"} {
		var n int
		if err := s.Pool().QueryRow(pgtest.Context(t), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d %s were written by unauthenticated requests", n, table)
		}
	}
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	w1, w2 := a.createWebhook("one"), a.createWebhook("two")

	body := map[string]any{
		"name": "big purchase", "description": "over 100", "app_id": "shop", "event_category": "commerce",
		"event_type": "purchase_complete", "condition": "event.purchase_complete.total_cents > 10000",
		"webhook_ids": []uuid.UUID{w1.ID, w2.ID}, "publish_subject": "alerts.shop.big", "priority": 5,
	}
	rec := a.do("POST", "/api/v1/admin/rules", js(t, body), http.StatusCreated)
	created := decodeAs[ruleView](t, rec)
	if created.ID == uuid.Nil || created.Name != "big purchase" || created.Description != "over 100" ||
		created.AppID == nil || *created.AppID != "shop" || created.EventCategory == nil || *created.EventCategory != "commerce" ||
		created.EventType == nil || *created.EventType != "purchase_complete" || created.Condition != body["condition"] ||
		!slices.Equal(created.WebhookIDs, []uuid.UUID{w1.ID, w2.ID}) || created.PublishSubject == nil ||
		*created.PublishSubject != "alerts.shop.big" || created.Priority != 5 || !created.Enabled ||
		created.CreatedAt.IsZero() || created.UpdatedAt.IsZero() {
		t.Fatalf("created rule = %+v, want the fields sent, enabled by default", created)
	}
	raw := decodeAs[map[string]any](t, rec)
	for _, k := range []string{"id", "name", "description", "app_id", "event_category", "event_type", "condition",
		"webhook_ids", "publish_subject", "priority", "enabled", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("answer %s has no %q", rec.Body, k)
		}
	}
	if !strings.Contains(a.logs.String(), "rule created") || !strings.Contains(a.logs.String(), created.ID.String()) {
		t.Errorf("log %q does not record the creation with the rule id", a.logs.String())
	}

	path := "/api/v1/admin/rules/" + created.ID.String()
	if got := decodeAs[ruleView](t, a.do("GET", path, "", http.StatusOK)); !got.CreatedAt.Equal(created.CreatedAt) || got.Name != created.Name {
		t.Errorf("GET = %+v, want %+v", got, created)
	}
	other := decodeAs[ruleView](t, a.do("POST", "/api/v1/admin/rules", `{"name":"all","enabled":false,"app_id":""}`, http.StatusCreated))
	if other.Enabled || other.AppID != nil || other.Condition != "" || other.WebhookIDs == nil || len(other.WebhookIDs) != 0 {
		t.Errorf("minimal rule = %+v, want disabled, no filters, webhook_ids []", other)
	}
	list := decodeAs[struct{ Rules []ruleView }](t, a.do("GET", "/api/v1/admin/rules", "", http.StatusOK))
	if len(list.Rules) != 2 || list.Rules[0].ID != created.ID || list.Rules[1].ID != other.ID {
		t.Errorf("list = %+v, want the priority 5 rule, then the other", list.Rules)
	}

	// PUT replaces every field: what is left out returns to its default.
	updated := decodeAs[ruleView](t, a.do("PUT", path, `{"name":"renamed","condition":"type == \"login\""}`, http.StatusOK))
	if updated.ID != created.ID || updated.Name != "renamed" || updated.Description != "" || updated.AppID != nil ||
		updated.EventCategory != nil || updated.EventType != nil || updated.Condition != `type == "login"` ||
		len(updated.WebhookIDs) != 0 || updated.PublishSubject != nil || updated.Priority != 0 || !updated.Enabled ||
		!updated.CreatedAt.Equal(created.CreatedAt) || updated.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("PUT = %+v, want only the name and condition set, the rest defaults", updated)
	}

	a.do("DELETE", path, "", http.StatusNoContent)
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		rec := a.do(method, path, `{"name":"x"}`, http.StatusNotFound)
		wantError(t, rec, "no rule with id "+created.ID.String())
	}
	rec = a.do("GET", "/api/v1/admin/rules/nope", "", http.StatusBadRequest)
	wantError(t, rec, `id: "nope" is not a rule id`)
	a.do("PUT", "/api/v1/admin/rules/nope", `{"name":"x"}`, http.StatusBadRequest)
	a.do("DELETE", "/api/v1/admin/rules/nope", "", http.StatusBadRequest)
}

func TestRuleValidation(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	hook := a.createWebhook("one")
	unknown := uuid.New()
	long := func(n int) string { return strings.Repeat("a", n) }

	tests := []struct {
		name        string
		body        string
		field, want string // want: part of the field's message
		line, col   int    // of a CEL error
	}{
		{name: "no name", body: `{}`, field: "name", want: "required"},
		{name: "blank name", body: `{"name":"  "}`, field: "name", want: "required"},
		{name: "long name", body: js(t, map[string]any{"name": long(201)}), field: "name", want: "at most 200"},
		{name: "long description", body: js(t, map[string]any{"name": "x", "description": long(2001)}), field: "description", want: "at most 2000"},
		{name: "bad app id", body: `{"name":"x","app_id":"shop/eu"}`, field: "app_id", want: "letters, digits"},
		{name: "bad category", body: `{"name":"x","event_category":"purchase"}`, field: "event_category", want: `"purchase" is not one of user, screen`},
		{name: "long type", body: js(t, map[string]any{"name": "x", "event_type": long(201)}), field: "event_type", want: "at most 200"},
		{name: "condition syntax", body: `{"name":"x","condition":"event.purchase_complete.total_cents >"}`, field: "condition", want: "^", line: 1, col: 38},
		{name: "condition unknown field, second line", body: js(t, map[string]any{"name": "x", "condition": "true &&\n  event.nope == 1"}),
			field: "condition", want: "nope", line: 2, col: 8},
		{name: "condition not a bool", body: `{"name":"x","condition":"1 + 2"}`, field: "condition", want: "must be a bool", line: 1, col: 1},
		{name: "unknown webhook", body: js(t, map[string]any{"name": "x", "webhook_ids": []uuid.UUID{hook.ID, unknown}}),
			field: "webhook_ids", want: "no webhook " + unknown.String()},
		{name: "webhook id not a uuid", body: `{"name":"x","webhook_ids":["abc"]}`, field: "webhook_ids", want: `"abc" is not a webhook id`},
		{name: "webhook listed twice", body: js(t, map[string]any{"name": "x", "webhook_ids": []uuid.UUID{hook.ID, hook.ID}}),
			field: "webhook_ids", want: "listed twice"},
		{name: "subject under events.", body: `{"name":"x","publish_subject":"events.shop.custom.x"}`, field: "publish_subject", want: "stored as incoming events"},
		{name: "system subject", body: `{"name":"x","publish_subject":"$SYS.x"}`, field: "publish_subject", want: "NATS system subjects"},
		{name: "wildcard subject", body: `{"name":"x","publish_subject":"alerts.*"}`, field: "publish_subject", want: "no wildcards"},
		{name: "subject with a space", body: `{"name":"x","publish_subject":"alerts.big order"}`, field: "publish_subject", want: "joined by dots"},
		{name: "subject with an empty token", body: `{"name":"x","publish_subject":"alerts..x"}`, field: "publish_subject", want: "joined by dots"},
		{name: "long subject", body: js(t, map[string]any{"name": "x", "publish_subject": long(201)}), field: "publish_subject", want: "at most 200"},
		{name: "priority too high", body: `{"name":"x","priority":1001}`, field: "priority", want: "from -1000 to 1000"},
		{name: "priority too low", body: `{"name":"x","priority":-1001}`, field: "priority", want: "from -1000 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"POST", "PUT"} {
				path := "/api/v1/admin/rules"
				if method == "PUT" {
					path += "/" + uuid.NewString() // validation comes before the lookup
				}
				f := wantField(t, a.do(method, path, tt.body, http.StatusBadRequest), tt.field, tt.want)
				if f.Line != tt.line || f.Column != tt.col {
					t.Errorf("%s: line %d column %d, want %d and %d", method, f.Line, f.Column, tt.line, tt.col)
				}
			}
		})
	}

	// Several mistakes are reported together, in the order of the form.
	e := decodeAs[errorAnswer](t, a.do("POST", "/api/v1/admin/rules", `{"event_category":"x","priority":5000}`, http.StatusBadRequest))
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if !slices.Equal(fields, []string{"name", "event_category", "priority"}) {
		t.Errorf("fields %v, want name, event_category, priority", fields)
	}
	if !strings.HasPrefix(e.Error, "name: required; event_category: ") {
		t.Errorf("error %q, want the fields joined with '; '", e.Error)
	}

	bodies := []struct{ name, body, want string }{
		{"not JSON", `{"name":`, "not valid JSON"},
		{"unknown field", `{"name":"x","colour":"red"}`, `unknown field "colour"`},
		{"wrong type", `{"name":"x","priority":"high"}`, `field "priority" must be an integer`},
		{"too large", js(t, map[string]any{"name": "x", "description": long(70 << 10)}), "larger than 65536 bytes"},
	}
	for _, b := range bodies {
		wantError(t, a.do("POST", "/api/v1/admin/rules", b.body, http.StatusBadRequest), b.want)
	}
	if list := decodeAs[struct{ Rules []ruleView }](t, a.do("GET", "/api/v1/admin/rules", "", http.StatusOK)); len(list.Rules) != 0 {
		t.Errorf("refused requests stored %d rules", len(list.Rules))
	}
	// A subject elsewhere is fine.
	a.do("POST", "/api/v1/admin/rules", `{"name":"x","publish_subject":"ops.shop-alerts.big_orders"}`, http.StatusCreated)
}

func TestDetectorsAPI(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	hook := a.createWebhook("one")

	body := map[string]any{
		"name": "checkout spikes", "app_id": "shop", "event_category": "commerce", "event_type": "checkout_start",
		"kind": "baseline", "config": map[string]any{"sensitivity": 4}, "webhook_ids": []uuid.UUID{hook.ID},
	}
	rec := a.do("POST", "/api/v1/admin/detectors", js(t, body), http.StatusCreated)
	d := decodeAs[detectorView](t, rec)
	if d.ID == uuid.Nil || d.Name != "checkout spikes" || d.Kind != "baseline" || d.CooldownSeconds != 300 || !d.Enabled ||
		*d.AppID != "shop" || *d.EventCategory != "commerce" || *d.EventType != "checkout_start" ||
		!slices.Equal(d.WebhookIDs, []uuid.UUID{hook.ID}) || d.PublishSubject != nil {
		t.Fatalf("created detector = %+v", d)
	}
	// The stored config is normalised: the defaults show.
	var cfg map[string]any
	if err := json.Unmarshal(d.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"interval_seconds": 60.0, "sensitivity": 4.0, "direction": "both", "history_intervals": 30.0,
		"warmup_intervals": 10.0, "min_expected": 1.0}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("config = %v, want %v", cfg, want)
	}

	path := "/api/v1/admin/detectors/" + d.ID.String()
	if got := decodeAs[detectorView](t, a.do("GET", path, "", http.StatusOK)); got.ID != d.ID || string(got.Config) != string(d.Config) {
		t.Errorf("GET = %+v, want %+v", got, d)
	}
	list := decodeAs[struct{ Detectors []detectorView }](t, a.do("GET", "/api/v1/admin/detectors", "", http.StatusOK))
	if len(list.Detectors) != 1 || list.Detectors[0].ID != d.ID {
		t.Errorf("list = %+v", list.Detectors)
	}

	put := `{"name":"big","kind":"threshold","config":{"value":"event.purchase_complete.total_cents","max":100000},
		"cooldown_seconds":0,"enabled":false,"condition":"category == \"commerce\""}`
	u := decodeAs[detectorView](t, a.do("PUT", path, put, http.StatusOK))
	if u.Name != "big" || u.Kind != "threshold" || u.CooldownSeconds != 0 || u.Enabled || u.AppID != nil ||
		len(u.WebhookIDs) != 0 || u.Condition != `category == "commerce"` {
		t.Errorf("PUT = %+v", u)
	}
	if err := json.Unmarshal(u.Config, &cfg); err != nil || cfg["value"] != "event.purchase_complete.total_cents" || cfg["max"] != 100000.0 {
		t.Errorf("config after PUT = %s", u.Config)
	}

	a.do("DELETE", path, "", http.StatusNoContent)
	for _, method := range []string{"GET", "DELETE"} {
		wantError(t, a.do(method, path, "", http.StatusNotFound), "no detector with id "+d.ID.String())
	}
	wantError(t, a.do("PUT", path, put, http.StatusNotFound), "no detector with id "+d.ID.String())
	wantError(t, a.do("GET", "/api/v1/admin/detectors/x", "", http.StatusBadRequest), "not a detector id")
}

func TestDetectorValidation(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	tests := []struct {
		name        string
		body        string
		field, want string
		line, col   int
	}{
		{name: "no kind", body: `{"name":"x"}`, field: "kind", want: "required"},
		{name: "unknown kind", body: `{"name":"x","kind":"magic"}`, field: "kind", want: `"magic" is not one of`},
		{name: "rate without its limit", body: `{"name":"x","kind":"rate","config":{}}`, field: "config.max_per_minute", want: "required"},
		{name: "count window too long", body: `{"name":"x","kind":"count","config":{"window_seconds":9999999,"max_count":1}}`,
			field: "config.window_seconds", want: "604800"},
		{name: "unknown setting", body: `{"name":"x","kind":"rate","config":{"max_per_minute":1,"burst":2}}`, field: "config", want: `unknown field "burst"`},
		{name: "setting of the wrong type", body: `{"name":"x","kind":"rate","config":{"max_per_minute":"many"}}`,
			field: "config.max_per_minute", want: "must be"},
		{name: "config not an object", body: `{"name":"x","kind":"rate","config":[1]}`, field: "config", want: "must be a JSON object"},
		{name: "threshold value broken", body: `{"name":"x","kind":"threshold","config":{"value":"event.nope","max":1}}`,
			field: "config.value", want: "nope", line: 1, col: 6},
		{name: "threshold value not a number", body: `{"name":"x","kind":"threshold","config":{"value":"\"abc\"","max":1}}`,
			field: "config.value", want: "must be a number", line: 1, col: 1},
		{name: "threshold without bounds", body: `{"name":"x","kind":"threshold","config":{"value":"1"}}`, field: "config.min", want: "set min, max or both"},
		{name: "negative cooldown", body: `{"name":"x","kind":"rate","config":{"max_per_minute":1},"cooldown_seconds":-1}`,
			field: "cooldown_seconds", want: "from 0"},
		{name: "broken condition", body: `{"name":"x","kind":"rate","config":{"max_per_minute":1},"condition":"category =="}`,
			field: "condition", want: "^", line: 1, col: 12},
		{name: "subject under events.", body: `{"name":"x","kind":"rate","config":{"max_per_minute":1},"publish_subject":"events.x"}`,
			field: "publish_subject", want: "events."},
		{name: "unknown webhook", body: js(t, map[string]any{"name": "x", "kind": "rate", "config": map[string]any{"max_per_minute": 1},
			"webhook_ids": []string{uuid.Nil.String()}}), field: "webhook_ids", want: "no webhook " + uuid.Nil.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := wantField(t, a.do("POST", "/api/v1/admin/detectors", tt.body, http.StatusBadRequest), tt.field, tt.want)
			if f.Line != tt.line || f.Column != tt.col {
				t.Errorf("line %d column %d, want %d and %d", f.Line, f.Column, tt.line, tt.col)
			}
		})
	}
}

func TestWebhooksAPI(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})

	body := `{"name":"ops","url":"https://hooks.example.com/in","headers":{"Authorization":"Bearer t0ken"}}`
	rec := a.do("POST", "/api/v1/admin/webhooks", body, http.StatusCreated)
	created := decodeAs[webhookView](t, rec)
	if !strings.HasPrefix(created.Secret, "whsec_") || len(created.Secret) < 40 {
		t.Fatalf("secret %q, want whsec_ and 32 bytes of base64", created.Secret)
	}
	if created.Name != "ops" || created.URL != "https://hooks.example.com/in" || created.Headers["Authorization"] != "Bearer t0ken" ||
		!created.Enabled || created.DisabledReason != nil || created.FailingSince != nil {
		t.Errorf("created webhook = %+v", created)
	}
	raw := decodeAs[map[string]any](t, rec)
	for _, k := range []string{"disabled_reason", "failing_since", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("answer %s has no %q", rec.Body, k)
		}
	}

	// The secret is shown at creation only: not by GET, the list, PUT, nor in the log.
	path := "/api/v1/admin/webhooks/" + created.ID.String()
	for _, rec := range []*httptest.ResponseRecorder{
		a.do("GET", path, "", http.StatusOK),
		a.do("GET", "/api/v1/admin/webhooks", "", http.StatusOK),
		a.do("PUT", path, `{"name":"ops","url":"https://hooks.example.com/v2","enabled":false}`, http.StatusOK),
	} {
		if strings.Contains(rec.Body.String(), created.Secret) || strings.Contains(rec.Body.String(), `"secret"`) {
			t.Errorf("answer %s shows the secret", rec.Body)
		}
	}
	if strings.Contains(a.logs.String(), created.Secret) || strings.Contains(a.logs.String(), "t0ken") {
		t.Errorf("the log shows the secret or a header value: %s", a.logs.String())
	}

	got := decodeAs[webhookView](t, a.do("GET", path, "", http.StatusOK))
	if got.URL != "https://hooks.example.com/v2" || got.Enabled || len(got.Headers) != 0 {
		t.Errorf("after PUT = %+v, want the new URL, disabled, no headers", got)
	}

	// What the dispatcher records when it disables an endpoint shows, and enabling it
	// again clears it.
	a.exec(`UPDATE webhooks SET disabled_reason = 'failing since Monday', failing_since = now() WHERE id = $1`, created.ID)
	got = decodeAs[webhookView](t, a.do("GET", path, "", http.StatusOK))
	if got.DisabledReason == nil || *got.DisabledReason != "failing since Monday" || got.FailingSince == nil {
		t.Errorf("GET after the dispatcher disabled it = %+v", got)
	}
	got = decodeAs[webhookView](t, a.do("PUT", path, `{"name":"ops","url":"https://hooks.example.com/v2"}`, http.StatusOK))
	if !got.Enabled || got.DisabledReason != nil || got.FailingSince != nil {
		t.Errorf("PUT enabled = %+v, want the failure record cleared", got)
	}

	list := decodeAs[struct{ Webhooks []webhookView }](t, a.do("GET", "/api/v1/admin/webhooks", "", http.StatusOK))
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != created.ID {
		t.Errorf("list = %+v", list.Webhooks)
	}

	a.do("DELETE", path, "", http.StatusNoContent)
	for _, method := range []string{"GET", "DELETE"} {
		wantError(t, a.do(method, path, "", http.StatusNotFound), "no webhook with id "+created.ID.String())
	}
	wantError(t, a.do("PUT", path, body, http.StatusNotFound), "no webhook with id "+created.ID.String())
	wantError(t, a.do("POST", path+"/test", "", http.StatusNotFound), "no webhook with id "+created.ID.String())
	wantError(t, a.do("GET", "/api/v1/admin/webhooks/1", "", http.StatusBadRequest), "not a webhook id")
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	strict, open := newAPIClient(t, s, Options{}), newAPIClient(t, s, Options{WebhookAllowPrivate: true})

	many := map[string]string{}
	for i := range 21 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	hook := func(url string, headers map[string]string) string {
		return js(t, map[string]any{"name": "x", "url": url, "headers": headers})
	}
	tests := []struct {
		name        string
		body        string
		field, want string
	}{
		{name: "no name", body: `{"url":"https://example.com"}`, field: "name", want: "required"},
		{name: "no url", body: `{"name":"x"}`, field: "url", want: "required"},
		{name: "not http", body: hook("ftp://example.com/x", nil), field: "url", want: "http or https"},
		{name: "relative", body: hook("/hook", nil), field: "url", want: "absolute"},
		{name: "credentials in the url", body: hook("https://u:p@example.com/", nil), field: "url", want: "user name or password"},
		{name: "loopback", body: hook("http://127.0.0.1:9000/hook", nil), field: "url", want: "--webhook-allow-private"},
		{name: "private", body: hook("http://10.1.2.3/hook", nil), field: "url", want: "private address"},
		{name: "localhost", body: hook("http://localhost/hook", nil), field: "url", want: "loopback"},
		{name: "header name", body: hook("https://example.com", map[string]string{"X Bad": "v"}), field: "headers", want: `"X Bad" is not a valid header name`},
		{name: "content type", body: hook("https://example.com", map[string]string{"content-type": "text/plain"}), field: "headers", want: "content-type is set by Causality"},
		{name: "signature", body: hook("https://example.com", map[string]string{"Webhook-Signature": "v1,x"}), field: "headers", want: "cannot be overridden"},
		{name: "host", body: hook("https://example.com", map[string]string{"HOST": "x"}), field: "headers", want: "HOST is set by Causality"},
		{name: "user agent", body: hook("https://example.com", map[string]string{"User-Agent": "me"}), field: "headers", want: "cannot be overridden"},
		{name: "content length", body: hook("https://example.com", map[string]string{"Content-Length": "1"}), field: "headers", want: "cannot be overridden"},
		{name: "line break in a value", body: hook("https://example.com", map[string]string{"X-A": "a\r\nX-Evil: 1"}), field: "headers", want: "line breaks"},
		{name: "same name twice", body: hook("https://example.com", map[string]string{"X-A": "1", "x-a": "2"}), field: "headers", want: "same header"},
		{name: "too many", body: hook("https://example.com", many), field: "headers", want: "at most 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantField(t, strict.do("POST", "/api/v1/admin/webhooks", tt.body, http.StatusBadRequest), tt.field, tt.want)
		})
	}

	// --webhook-allow-private lets local endpoints in; the other checks stay.
	for _, url := range []string{"http://127.0.0.1:9000/hook", "http://10.1.2.3/hook", "http://localhost/hook"} {
		got := decodeAs[webhookView](t, open.do("POST", "/api/v1/admin/webhooks", hook(url, nil), http.StatusCreated))
		if got.URL != url {
			t.Errorf("URL = %q, want %q", got.URL, url)
		}
	}
	wantField(t, open.do("POST", "/api/v1/admin/webhooks", hook("ftp://127.0.0.1/", nil), http.StatusBadRequest), "url", "http or https")
	// So does a PUT.
	created := strict.createWebhook("public")
	wantField(t, strict.do("PUT", "/api/v1/admin/webhooks/"+created.ID.String(), hook("http://127.0.0.1/", nil), http.StatusBadRequest),
		"url", "loopback")
	ok := decodeAs[webhookView](t, strict.do("POST", "/api/v1/admin/webhooks",
		hook("https://example.com", map[string]string{"Authorization": "Bearer x", "X-Tab": "a\tb"}), http.StatusCreated))
	if len(ok.Headers) != 2 {
		t.Errorf("headers = %v, want both", ok.Headers)
	}
}

// Deleting a webhook takes it out of the rules and detectors that named it.
func TestDeleteWebhookUpdatesRules(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	w1, w2 := a.createWebhook("one"), a.createWebhook("two")
	rule := decodeAs[ruleView](t, a.do("POST", "/api/v1/admin/rules",
		js(t, map[string]any{"name": "r", "webhook_ids": []uuid.UUID{w1.ID, w2.ID}}), http.StatusCreated))
	det := decodeAs[detectorView](t, a.do("POST", "/api/v1/admin/detectors",
		js(t, map[string]any{"name": "d", "kind": "rate", "config": map[string]any{"max_per_minute": 5}, "webhook_ids": []uuid.UUID{w1.ID}}),
		http.StatusCreated))

	a.do("DELETE", "/api/v1/admin/webhooks/"+w1.ID.String(), "", http.StatusNoContent)
	got := decodeAs[ruleView](t, a.do("GET", "/api/v1/admin/rules/"+rule.ID.String(), "", http.StatusOK))
	if !slices.Equal(got.WebhookIDs, []uuid.UUID{w2.ID}) {
		t.Errorf("rule webhook_ids = %v, want [%s]", got.WebhookIDs, w2.ID)
	}
	gotD := decodeAs[detectorView](t, a.do("GET", "/api/v1/admin/detectors/"+det.ID.String(), "", http.StatusOK))
	if gotD.WebhookIDs == nil || len(gotD.WebhookIDs) != 0 {
		t.Errorf("detector webhook_ids = %v, want []", gotD.WebhookIDs)
	}
	if !strings.Contains(a.do("GET", "/api/v1/admin/rules/"+rule.ID.String(), "", http.StatusOK).Body.String(), `"webhook_ids":["`+w2.ID.String()+`"]`) {
		t.Error("webhook_ids is not shown as a JSON array of ids")
	}
}

func TestWebhookTestAndDeliveries(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	w1, w2 := a.createWebhook("one"), a.createWebhook("two")

	before := time.Now().UTC()
	rec := a.do("POST", "/api/v1/admin/webhooks/"+w1.ID.String()+"/test", "", http.StatusAccepted)
	ans := decodeAs[struct {
		DeliveryID uuid.UUID `json:"delivery_id"`
	}](t, rec)
	if ans.DeliveryID == uuid.Nil {
		t.Fatalf("answer %s has no delivery_id", rec.Body)
	}
	d := decodeAs[deliveryView](t, a.do("GET", "/api/v1/admin/deliveries/"+ans.DeliveryID.String(), "", http.StatusOK))
	if d.ID != ans.DeliveryID || d.WebhookID != w1.ID || d.Type != "webhook.test" || d.Status != "pending" || d.Attempts != 0 ||
		!strings.HasPrefix(d.SourceKey, "test:") || d.Body == nil {
		t.Fatalf("test delivery = %+v", d)
	}
	var body struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			WebhookID uuid.UUID `json:"webhook_id"`
			Message   string    `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(*d.Body), &body); err != nil {
		t.Fatalf("body %q: %v", *d.Body, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, body.Timestamp)
	if body.Type != "webhook.test" || err != nil || ts.Before(before.Add(-time.Second)) || !strings.HasSuffix(body.Timestamp, "Z") ||
		body.Data.WebhookID != w1.ID || body.Data.Message != "Test event from Causality" {
		t.Errorf("body = %s (timestamp: %v)", *d.Body, err)
	}

	second := decodeAs[struct {
		DeliveryID uuid.UUID `json:"delivery_id"`
	}](t, a.do("POST", "/api/v1/admin/webhooks/"+w2.ID.String()+"/test", "", http.StatusAccepted)).DeliveryID
	third := decodeAs[struct {
		DeliveryID uuid.UUID `json:"delivery_id"`
	}](t, a.do("POST", "/api/v1/admin/webhooks/"+w1.ID.String()+"/test", "", http.StatusAccepted)).DeliveryID
	// Spread their times, and let the second die.
	base := time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)
	for i, id := range []uuid.UUID{ans.DeliveryID, second, third} {
		a.exec(`UPDATE deliveries SET created_at = $2 WHERE id = $1`, id, base.Add(time.Duration(i)*time.Minute))
	}
	a.exec(`UPDATE deliveries SET status = 'dead', attempts = 8, last_status_code = 503, last_error = 'unavailable',
		next_attempt_at = now() + interval '1 day' WHERE id = $1`, second)

	list := func(query string) []uuid.UUID {
		t.Helper()
		rec := a.do("GET", "/api/v1/admin/deliveries"+query, "", http.StatusOK)
		if strings.Contains(rec.Body.String(), `"body"`) {
			t.Errorf("the list shows bodies: %s", rec.Body)
		}
		ds := decodeAs[struct{ Deliveries []deliveryView }](t, rec).Deliveries
		ids := make([]uuid.UUID, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		return ids
	}
	queries := []struct {
		query string
		want  []uuid.UUID
	}{
		{"", []uuid.UUID{third, second, ans.DeliveryID}},
		{"?status=pending", []uuid.UUID{third, ans.DeliveryID}},
		{"?status=dead", []uuid.UUID{second}},
		{"?webhook_id=" + w2.ID.String(), []uuid.UUID{second}},
		{"?limit=1", []uuid.UUID{third}},
		{"?before=" + base.Add(time.Minute).Format(time.RFC3339), []uuid.UUID{ans.DeliveryID}},
		{"?status=pending&webhook_id=" + w1.ID.String() + "&limit=1", []uuid.UUID{third}},
	}
	for _, q := range queries {
		if got := list(q.query); !slices.Equal(got, q.want) {
			t.Errorf("GET /deliveries%s = %v, want %v", q.query, got, q.want)
		}
	}
	bad := []struct{ query, want string }{
		{"?status=failed", `status: "failed" is not one of pending, retrying, succeeded, dead`},
		{"?webhook_id=x", `webhook_id: "x" is not a webhook id`},
		{"?limit=0", `limit: "0" is not a whole number from 1 to 1000`},
		{"?limit=1001", "from 1 to 1000"},
		{"?limit=ten", "from 1 to 1000"},
		{"?before=yesterday", `before: "yesterday": want the RFC 3339 time of the last item seen`},
		{"?before=2026-11-07T03:00:00Z,x", "optionally followed by a comma and its id"},
	}
	for _, b := range bad {
		wantError(t, a.do("GET", "/api/v1/admin/deliveries"+b.query, "", http.StatusBadRequest), b.want)
	}

	// A full page says where the next one starts; following "next" walks the whole list once.
	var walked []uuid.UUID
	query := "?limit=2"
	for range 3 {
		page := decodeAs[struct {
			Deliveries []deliveryView
			Next       string
		}](t, a.do("GET", "/api/v1/admin/deliveries"+query, "", http.StatusOK))
		for _, d := range page.Deliveries {
			walked = append(walked, d.ID)
		}
		if page.Next == "" {
			break
		}
		query = "?limit=2&before=" + url.QueryEscape(page.Next)
	}
	if want := []uuid.UUID{third, second, ans.DeliveryID}; !slices.Equal(walked, want) {
		t.Errorf("walking the pages by next gave %v, want %v", walked, want)
	}

	// Replaying the dead delivery makes it pending and due again, its history kept.
	rec = a.do("POST", "/api/v1/admin/deliveries/"+second.String()+"/replay", "", http.StatusAccepted)
	r := decodeAs[deliveryView](t, rec)
	if r.ID != second || r.Status != "pending" || r.Attempts != 8 || r.LastStatusCode == nil || *r.LastStatusCode != 503 ||
		r.NextAttemptAt.After(time.Now().Add(time.Minute)) || r.Body == nil {
		t.Errorf("replayed = %+v, want pending, due now, attempts kept, with its body", r)
	}
	if got := list("?status=dead"); len(got) != 0 {
		t.Errorf("dead deliveries after the replay: %v", got)
	}
	if !strings.Contains(a.logs.String(), "delivery replayed") {
		t.Error("the replay was not logged")
	}

	unknown := uuid.NewString()
	wantError(t, a.do("GET", "/api/v1/admin/deliveries/"+unknown, "", http.StatusNotFound), "no delivery with id "+unknown)
	wantError(t, a.do("POST", "/api/v1/admin/deliveries/"+unknown+"/replay", "", http.StatusNotFound), "no delivery with id "+unknown)
	wantError(t, a.do("GET", "/api/v1/admin/deliveries/zzz", "", http.StatusBadRequest), "not a delivery id")
	wantError(t, a.do("POST", "/api/v1/admin/webhooks/zzz/test", "", http.StatusBadRequest), "not a webhook id")
}

func TestAnomaliesAPI(t *testing.T) {
	t.Parallel()
	a := newAPIClient(t, openStore(t), Options{})
	mk := func(name string) uuid.UUID {
		return decodeAs[detectorView](t, a.do("POST", "/api/v1/admin/detectors",
			js(t, map[string]any{"name": name, "kind": "rate", "config": map[string]any{"max_per_minute": 5}}), http.StatusCreated)).ID
	}
	d1, d2 := mk("one"), mk("two")
	base := time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)
	insert := func(det uuid.UUID, app string, minute int) uuid.UUID {
		id := uuid.Must(uuid.NewV7())
		a.exec(`INSERT INTO anomalies (id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected, details)
			VALUES ($1, $2, $3, 'rate', $4, $5, '12 events in a minute, more than 5', 12, 5, '{"window_seconds":60}')`,
			id, det, app, id.String(), base.Add(time.Duration(minute)*time.Minute))
		return id
	}
	x, y, z := insert(d1, "shop", 0), insert(d2, "shop", 1), insert(d1, "blog", 2)

	rec := a.do("GET", "/api/v1/admin/anomalies", "", http.StatusOK)
	all := decodeAs[struct{ Anomalies []anomalyView }](t, rec).Anomalies
	if len(all) != 3 {
		t.Fatalf("anomalies = %s, want 3", rec.Body)
	}
	first := all[2]
	if first.ID != x || first.DetectorID != d1 || first.AppID != "shop" || first.Kind != "rate" || !first.FiredAt.Equal(base) ||
		first.Observed == nil || *first.Observed != 12 || first.Expected == nil || *first.Expected != 5 ||
		string(first.Details) != `{"window_seconds":60}` || first.EventID != nil || first.Message == "" {
		t.Errorf("anomaly = %+v", first)
	}
	queries := []struct {
		query string
		want  []uuid.UUID
	}{
		{"", []uuid.UUID{z, y, x}},
		{"?detector_id=" + d1.String(), []uuid.UUID{z, x}},
		{"?app_id=shop", []uuid.UUID{y, x}},
		{"?limit=2", []uuid.UUID{z, y}},
		{"?before=" + base.Add(90*time.Second).Format(time.RFC3339Nano), []uuid.UUID{y, x}},
	}
	for _, q := range queries {
		as := decodeAs[struct{ Anomalies []anomalyView }](t, a.do("GET", "/api/v1/admin/anomalies"+q.query, "", http.StatusOK)).Anomalies
		ids := make([]uuid.UUID, len(as))
		for i, an := range as {
			ids[i] = an.ID
		}
		if !slices.Equal(ids, q.want) {
			t.Errorf("GET /anomalies%s = %v, want %v", q.query, ids, q.want)
		}
	}
	bad := []struct{ query, want string }{
		{"?detector_id=1", `detector_id: "1" is not a detector id`},
		{"?app_id=a/b", "app_id: 1 to 64 letters"},
		{"?limit=-1", "limit:"},
		{"?before=2026-13-01", "before:"},
	}
	for _, b := range bad {
		wantError(t, a.do("GET", "/api/v1/admin/anomalies"+b.query, "", http.StatusBadRequest), b.want)
	}
	// An empty list is [], not null.
	if body := a.do("GET", "/api/v1/admin/anomalies?app_id=none", "", http.StatusOK).Body.String(); !strings.Contains(body, `"anomalies":[]`) {
		t.Errorf("empty list = %s, want []", body)
	}
}

// liveSet is the engine of this process as the API sees it: a real detector set.
type liveSet struct {
	running bool
	set     *detect.Set
}

func (l liveSet) Running() bool                               { return l.running }
func (l liveSet) DetectorStatus(id string) []detect.AppStatus { return l.set.Status(id) }

func TestDetectorShowsLiveState(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	set := detect.NewSet()
	engine := &liveSet{set: set}
	c := newAPIClient(t, s, Options{Engine: engine})
	created := decodeAs[map[string]any](t, c.do("POST", "/api/v1/admin/detectors",
		`{"name":"busy","kind":"rate","config":{"max_per_minute":100}}`, http.StatusCreated))
	id := created["id"].(string)
	cfg, err := detect.ParseConfig("rate", json.RawMessage(`{"max_per_minute":100}`))
	if err != nil {
		t.Fatal(err)
	}
	set.Configure([]detect.Detector{{ID: id, Config: cfg, Version: "1"}})
	now := time.Now()
	for i := range 7 {
		set.Observe(id, "shop", now.Add(time.Duration(i)*time.Second), "e", 0)
	}

	type state struct {
		State *struct {
			Live bool `json:"live"`
			Apps []struct {
				AppID       string  `json:"app_id"`
				WindowCount float64 `json:"window_count"`
			} `json:"apps"`
		} `json:"state"`
	}
	// Another process runs the engine: the state is not live here.
	got := decodeAs[state](t, c.do("GET", "/api/v1/admin/detectors/"+id, "", http.StatusOK))
	if got.State == nil || got.State.Live || len(got.State.Apps) != 0 {
		t.Fatalf("state while not running here: %+v", got.State)
	}
	engine.running = true
	got = decodeAs[state](t, c.do("GET", "/api/v1/admin/detectors/"+id, "", http.StatusOK))
	if got.State == nil || !got.State.Live || len(got.State.Apps) != 1 || got.State.Apps[0].AppID != "shop" || got.State.Apps[0].WindowCount != 7 {
		t.Fatalf("live state: %+v", got.State)
	}
}
