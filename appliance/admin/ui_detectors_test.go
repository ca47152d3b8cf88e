package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/store"
)

// detectorFormValues is a create form for a detector of kind with the session's token and
// the given fields (name=value pairs) over blank defaults.
func detectorFormValues(csrf, kind string, kv ...string) url.Values {
	f := url.Values{"csrf_token": {csrf}, "kind": {kind}, "name": {"watch " + kind}, "enabled": {"on"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// createdDetector reads the id of the detector a create redirected to.
func createdDetector(t *testing.T, c *uiClient, resp *http.Response) store.Detector {
	t.Helper()
	loc := uiWantRedirect(t, "create detector", resp, "/admin/detectors/")
	id, err := uuid.Parse(strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], "/admin/detectors/"))
	if err != nil {
		t.Fatalf("create redirected to %q", loc)
	}
	d, err := c.api.store.GetDetector(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	return reflect.DeepEqual(a, b)
}

func TestUIDetectorsNeedSessionAndToken(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	id := uuid.NewString()
	for _, path := range []string{"/admin/detectors", "/admin/detectors/new", "/admin/detectors/new?kind=rate",
		"/admin/detectors/" + id, "/admin/detectors/" + id + "/edit"} {
		resp, _ := c.get(path)
		uiWantRedirect(t, "GET "+path+" without a session", resp, "/admin/signin?next=")
	}
	for _, path := range []string{"/admin/detectors", "/admin/detectors/" + id, "/admin/detectors/" + id + "/enable",
		"/admin/detectors/" + id + "/disable", "/admin/detectors/" + id + "/delete"} {
		resp, _ := c.post(path, url.Values{})
		uiWantStatus(t, "POST "+path+" without a session", resp, http.StatusUnauthorized)
	}
	csrf := c.signIn()
	form := detectorFormValues("", "rate", "config.max_per_minute", "10")
	form.Del("csrf_token")
	resp, _ := c.post("/admin/detectors", form)
	uiWantStatus(t, "create without the CSRF token", resp, http.StatusForbidden)
	if ds, err := c.api.store.ListDetectors(context.Background()); err != nil || len(ds) != 0 {
		t.Fatalf("detectors after a refused post: %v %v", ds, err)
	}
	d := createdDetector(t, c, answerOnly(c.post("/admin/detectors", detectorFormValues(csrf, "rate", "config.max_per_minute", "10"))))
	for _, path := range []string{"/disable", "/delete", ""} {
		resp, _ := c.post("/admin/detectors/"+d.ID.String()+path, detectorFormValues("", "rate", "config.max_per_minute", "1"))
		uiWantStatus(t, "POST "+path+" without the CSRF token", resp, http.StatusForbidden)
	}
	if got, err := c.api.store.GetDetector(context.Background(), d.ID); err != nil || !got.Enabled || !sameJSON(t, got.Config, `{"max_per_minute":10}`) {
		t.Errorf("after CSRF-less posts: %+v %v", got, err)
	}
}

// answerOnly drops the body of a post, for calls that only need the answer.
func answerOnly(resp *http.Response, _ string) *http.Response { return resp }

func TestUIDetectorFormsPerKind(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	ctx := context.Background()
	hook, _ := createWebhookThroughUI(t, c, webhookFormValues(csrf, "ops", "https://hooks.example.com/causality"))

	resp, page := c.get("/admin/detectors")
	uiWantStatus(t, "empty list", resp, http.StatusOK)
	if !strings.Contains(page, "No detectors yet") {
		t.Error("the empty list does not say so")
	}
	resp, page = c.get("/admin/detectors/new")
	uiWantStatus(t, "kind chooser", resp, http.StatusOK)
	for _, kind := range detect.Kinds {
		if !strings.Contains(page, `href="/admin/detectors/new?kind=`+kind+`"`) {
			t.Errorf("the chooser does not offer %s", kind)
		}
	}
	resp, _ = c.get("/admin/detectors/new?kind=magic")
	uiWantStatus(t, "unknown kind", resp, http.StatusBadRequest)

	cases := []struct {
		kind   string
		fields []string // name=value pairs of its settings
		want   string   // the stored config
		help   string   // a phrase of the help of its settings
	}{
		{"threshold", []string{"config.value", "event.purchase_complete.total_cents", "config.min", "", "config.max", "100000"},
			`{"value":"event.purchase_complete.total_cents","max":100000}`, "Empty: no lower bound"},
		{"rate", []string{"config.max_per_minute", "120.5"}, `{"max_per_minute":120.5}`, "in the last 60 seconds"},
		{"count", []string{"config.window_seconds", "3600", "config.max_count", "10"}, `{"window_seconds":3600,"max_count":10}`,
			"604800 seconds (a week)"},
		{"baseline", []string{"config.interval_seconds", "300", "config.sensitivity", "4", "config.direction", "drop",
			"config.history_intervals", "", "config.warmup_intervals", "5", "config.min_expected", ""},
			`{"interval_seconds":300,"sensitivity":4,"direction":"drop","history_intervals":30,"warmup_intervals":5,"min_expected":1}`,
			"a drop to zero fires"},
	}
	for _, tc := range cases {
		resp, page := c.get("/admin/detectors/new?kind=" + tc.kind)
		uiWantStatus(t, "form of "+tc.kind, resp, http.StatusOK)
		if !strings.Contains(page, tc.help) || !strings.Contains(page, `name="kind" value="`+tc.kind+`"`) ||
			!strings.Contains(page, `name="webhook_ids" type="checkbox" value="`+hook.String()+`"`) {
			t.Errorf("the %s form lacks its help, its kind or the webhooks to choose", tc.kind)
		}
		for i := 0; i < len(tc.fields); i += 2 {
			if !strings.Contains(page, `<label for="f-`+tc.fields[i]+`">`) {
				t.Errorf("the %s form has no labelled %s", tc.kind, tc.fields[i])
			}
		}
		form := detectorFormValues(csrf, tc.kind, append([]string{"app_id", "shop", "event_category", "commerce",
			"event_type", "checkout_start", "condition", `event.purchase_complete.currency == "EUR"`, "cooldown_seconds", "1800",
			"webhook_ids", hook.String(), "publish_subject", "alerts.shop.watch", "description", "checkout watch"}, tc.fields...)...)
		d := createdDetector(t, c, answerOnly(c.post("/admin/detectors", form)))
		if d.Kind != tc.kind || !sameJSON(t, d.Config, tc.want) {
			t.Errorf("%s: stored %s %s, want %s", tc.kind, d.Kind, d.Config, tc.want)
		}
		if d.Name != "watch "+tc.kind || d.Description != "checkout watch" || *d.AppID != "shop" || *d.EventCategory != "commerce" ||
			*d.EventType != "checkout_start" || d.Condition != `event.purchase_complete.currency == "EUR"` || d.CooldownSeconds != 1800 ||
			len(d.WebhookIDs) != 1 || d.WebhookIDs[0] != hook || *d.PublishSubject != "alerts.shop.watch" || !d.Enabled {
			t.Errorf("%s: stored %+v", tc.kind, d)
		}
	}

	// The baseline form starts from the kind's defaults.
	_, page = c.get("/admin/detectors/new?kind=baseline")
	for _, want := range []string{`name="config.interval_seconds" type="number" value="60"`, `name="config.sensitivity" type="number" value="3"`,
		`<option value="both" selected>`, `name="cooldown_seconds" type="number" value="300"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the new baseline form lacks %s", want)
		}
	}
	// Blank settings and no webhook: the defaults, every app.
	d := createdDetector(t, c, answerOnly(c.post("/admin/detectors", detectorFormValues(csrf, "baseline", "cooldown_seconds", ""))))
	if !sameJSON(t, d.Config, `{"interval_seconds":60,"sensitivity":3,"direction":"both","history_intervals":30,"warmup_intervals":10,"min_expected":1}`) ||
		d.CooldownSeconds != 300 || d.AppID != nil || len(d.WebhookIDs) != 0 || d.PublishSubject != nil {
		t.Errorf("a baseline with blank settings: %+v %s", d, d.Config)
	}

	// The list shows them all, with what they watch.
	_, page = c.get("/admin/detectors")
	for _, want := range []string{"watch threshold", "watch rate", "watch count", "watch baseline", "app shop · category commerce · type checkout_start", "every app · every event"} {
		if !strings.Contains(page, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if ds, _ := c.api.store.ListDetectors(ctx); len(ds) != 5 {
		t.Errorf("%d detectors, want 5", len(ds))
	}
}

func TestUIDetectorFormErrors(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	missing := uuid.NewString()

	cases := []struct {
		name, field string // the field that must show the error
		form        url.Values
		want        []string
		notWant     string
	}{
		{"rate of 0", "config.max_per_minute", detectorFormValues(csrf, "rate", "config.max_per_minute", "0"),
			[]string{"more than 0", `name="config.max_per_minute" type="number" value="0"`}, ""},
		{"rate not a number", "config.max_per_minute", detectorFormValues(csrf, "rate", "config.max_per_minute", "lots"),
			[]string{"a number, such as", `value="lots"`}, "required:"},
		{"count window in hours", "config.window_seconds", detectorFormValues(csrf, "count", "config.window_seconds", "1.5", "config.max_count", "3"),
			[]string{"a whole number"}, ""},
		{"count window too long", "config.window_seconds", detectorFormValues(csrf, "count", "config.window_seconds", "999999"),
			[]string{"1 to 604800"}, ""},
		{"threshold without bounds", "config.min", detectorFormValues(csrf, "threshold", "config.value", "event.purchase_complete.total_cents"),
			[]string{"set min, max or both"}, ""},
		{"threshold min above max", "config.max", detectorFormValues(csrf, "threshold", "config.value", "1", "config.min", "5", "config.max", "2"),
			[]string{"must not be below min (5)"}, ""},
		{"threshold value broken", "config.value", detectorFormValues(csrf, "threshold", "config.value", "event.purchase_complete.total_cent", "config.max", "1"),
			[]string{"total_cent"}, ""},
		{"baseline direction", "config.direction", detectorFormValues(csrf, "baseline", "config.direction", "sideways"),
			[]string{"spike"}, ""},
		{"baseline sensitivity", "config.sensitivity", detectorFormValues(csrf, "baseline", "config.sensitivity", "-1"),
			[]string{"more than 0"}, ""},
		{"condition broken", "condition", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "condition", "event.nope > 1"),
			[]string{"nope", `event.nope &gt; 1</textarea>`}, ""},
		{"cooldown negative", "cooldown_seconds", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "cooldown_seconds", "-5"),
			[]string{"from 0 to 2592000"}, ""},
		{"cooldown not a number", "cooldown_seconds", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "cooldown_seconds", "5m"),
			[]string{"a whole number of seconds"}, ""},
		{"no name", "name", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "name", ""),
			[]string{"required"}, ""},
		{"bad app", "app_id", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "app_id", "a/b"),
			[]string{"letters, digits"}, ""},
		{"events subject", "publish_subject", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "publish_subject", "events.x"),
			[]string{"feed the event stream"}, ""},
	}
	for _, tc := range cases {
		resp, page := c.post("/admin/detectors", tc.form)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, resp.StatusCode)
			continue
		}
		if !strings.Contains(page, `id="f-`+tc.field+`-error"`) {
			t.Errorf("%s: no error next to %s", tc.name, tc.field)
		}
		for _, want := range tc.want {
			if !strings.Contains(page, want) {
				t.Errorf("%s: the page lacks %q", tc.name, want)
			}
		}
		if tc.notWant != "" && strings.Contains(page, tc.notWant) {
			t.Errorf("%s: the page says %q too", tc.name, tc.notWant)
		}
		if !strings.Contains(page, `class="form-errors"`) || !strings.Contains(page, `name="kind" value="`+tc.form.Get("kind")+`"`) {
			t.Errorf("%s: no summary, or the form lost its kind", tc.name)
		}
	}
	// A webhook that does not exist is named where the webhooks are chosen.
	resp, page := c.post("/admin/detectors", detectorFormValues(csrf, "rate", "config.max_per_minute", "5", "webhook_ids", missing))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "no webhook "+missing) {
		t.Errorf("a missing webhook: %d", resp.StatusCode)
	}
	// An unknown kind goes back to the chooser.
	resp, _ = c.post("/admin/detectors", detectorFormValues(csrf, "magic"))
	uiWantStatus(t, "unknown kind", resp, http.StatusBadRequest)

	if ds, err := c.api.store.ListDetectors(context.Background()); err != nil || len(ds) != 0 {
		t.Fatalf("refused forms created detectors: %v %v", ds, err)
	}
}

func TestUIDetectorPage(t *testing.T) {
	t.Parallel()
	set := detect.NewSet()
	engine := &liveSet{set: set}
	c := newUIClient(t, func(o *Options) { o.Engine = engine })
	csrf := c.signIn()
	ctx := context.Background()
	hook, _ := createWebhookThroughUI(t, c, webhookFormValues(csrf, "ops", "https://hooks.example.com/causality"))
	d := createdDetector(t, c, answerOnly(c.post("/admin/detectors", detectorFormValues(csrf, "rate", "config.max_per_minute", "100",
		"app_id", "shop", "webhook_ids", hook.String()))))
	path := "/admin/detectors/" + d.ID.String()

	resp, page := c.get(path)
	uiWantStatus(t, "detector page", resp, http.StatusOK)
	for _, want := range []string{"Detector watch rate", "Most events per minute", "100", "5m after a firing, per app", "ops",
		"anomalies.&lt;app&gt;." + d.ID.String(), "evaluated by another process", "It has not fired yet."} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	// This process runs the engine: the state per app is live.
	cfg, err := detect.ParseConfig("rate", d.Config)
	if err != nil {
		t.Fatal(err)
	}
	set.Configure([]detect.Detector{{ID: d.ID.String(), Config: cfg, Version: "1"}})
	now := time.Now()
	for i := range 7 {
		set.Observe(d.ID.String(), "shop", now.Add(time.Duration(i)*time.Second), "e", 0)
	}
	engine.running = true
	_, page = c.get(path)
	if !strings.Contains(page, "Events in the last minute") || !strings.Contains(page, "<td>shop</td><td class=\"num\">7</td>") {
		t.Error("the page does not show the live count of shop")
	}

	// Its firings, newest first.
	fired := time.Date(2026, 11, 7, 3, 4, 5, 0, time.UTC)
	for i, msg := range []string{"older firing", "123 events in a minute, more than 100"} {
		if _, err := c.api.store.Pool().Exec(ctx, `INSERT INTO anomalies (id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected)
			VALUES ($1, $2, 'shop', 'rate', $3, $4, $5, 123, 100)`, uuid.Must(uuid.NewV7()), d.ID, msg, fired.Add(time.Duration(i)*time.Minute), msg); err != nil {
			t.Fatal(err)
		}
	}
	_, page = c.get(path)
	newest, older := strings.Index(page, "123 events in a minute"), strings.Index(page, "older firing")
	if newest < 0 || older < newest || !strings.Contains(page, ">123<") || !strings.Contains(page, "2026-11-07 03:05:05 UTC") {
		t.Error("the recent firings are missing or not newest first")
	}
	_, page = c.get("/admin/detectors")
	if !strings.Contains(page, "2026-11-07 03:05:05 UTC") {
		t.Error("the list does not show the last firing")
	}

	// Edit: the form holds the stored settings; a bad one is refused inline, a good one saved.
	resp, page = c.get(path + "/edit")
	uiWantStatus(t, "edit form", resp, http.StatusOK)
	if !strings.Contains(page, `name="config.max_per_minute" type="number" value="100"`) || !strings.Contains(page, `value="`+hook.String()+`" checked`) ||
		!strings.Contains(page, `action="`+path+`"`) {
		t.Error("the edit form does not hold the stored detector")
	}
	edit := detectorFormValues(csrf, "rate", "name", "renamed", "config.max_per_minute", "0", "app_id", "shop")
	resp, page = c.post(path, edit)
	uiWantStatus(t, "bad edit", resp, http.StatusBadRequest)
	if !strings.Contains(page, `id="f-config.max_per_minute-error"`) || !strings.Contains(page, `value="renamed"`) {
		t.Error("a bad edit does not show its error inline with the input kept")
	}
	edit.Set("config.max_per_minute", "50")
	edit.Set("kind", "count") // the kind stays the detector's
	resp, _ = c.post(path, edit)
	uiWantRedirect(t, "edit", resp, path+"?flash=")
	got, _ := c.api.store.GetDetector(ctx, d.ID)
	if got.Name != "renamed" || got.Kind != "rate" || !sameJSON(t, got.Config, `{"max_per_minute":50}`) || len(got.WebhookIDs) != 0 {
		t.Errorf("after the edit: %+v %s", got, got.Config)
	}

	// Disable and enable keep everything else.
	resp, _ = c.post(path+"/disable", url.Values{"csrf_token": {csrf}})
	uiWantRedirect(t, "disable", resp, path+"?flash=")
	if got, _ := c.api.store.GetDetector(ctx, d.ID); got.Enabled || got.Name != "renamed" || !sameJSON(t, got.Config, `{"max_per_minute":50}`) {
		t.Errorf("after disable: %+v", got)
	}
	_, page = c.get(path)
	if !strings.Contains(page, `action="`+path+`/enable"`) || !strings.Contains(page, `<span class="badge bad">disabled</span>`) {
		t.Error("a disabled detector's page does not offer to enable it")
	}
	resp, _ = c.post(path+"/enable", url.Values{"csrf_token": {csrf}})
	uiWantRedirect(t, "enable", resp, path+"?flash=")
	if got, _ := c.api.store.GetDetector(ctx, d.ID); !got.Enabled {
		t.Error("enable did not")
	}

	// Unknown ids are 404.
	unknown := uuid.NewString()
	for _, p := range []string{"/admin/detectors/" + unknown, "/admin/detectors/zzz", "/admin/detectors/" + unknown + "/edit"} {
		resp, _ := c.get(p)
		uiWantStatus(t, "GET "+p, resp, http.StatusNotFound)
	}
	for _, p := range []string{"/admin/detectors/" + unknown, "/admin/detectors/" + unknown + "/enable", "/admin/detectors/" + unknown + "/delete"} {
		resp, _ := c.post(p, detectorFormValues(csrf, "rate", "config.max_per_minute", "5"))
		uiWantStatus(t, "POST "+p, resp, http.StatusNotFound)
	}

	// Delete asks first.
	_, page = c.get(path)
	if !strings.Contains(page, `action="`+path+`/delete" data-confirm="Delete the detector renamed?`) {
		t.Error("the delete form does not ask for confirmation")
	}
	resp, _ = c.post(path+"/delete", url.Values{"csrf_token": {csrf}})
	uiWantRedirect(t, "delete", resp, "/admin/detectors?flash=")
	if _, err := c.api.store.GetDetector(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func TestUIDetectorStateWithoutEngine(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	d := createdDetector(t, c, answerOnly(c.post("/admin/detectors", detectorFormValues(csrf, "baseline"))))
	_, page := c.get("/admin/detectors/" + d.ID.String())
	if !strings.Contains(page, "not available here") || !strings.Contains(page, "Spikes and drops") {
		t.Error("the page of a detector without an engine in the process")
	}
}
