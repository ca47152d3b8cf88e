package admin

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// fixedEvents is the stream's newest events for the rule tests: a fixed slice, newest
// first (the appliance's JetStream implementation has its own test in appliance/).
type fixedEvents struct {
	mu     sync.Mutex
	events []*causalityv1.EventEnvelope
	asked  []int
}

func (f *fixedEvents) Recent(_ context.Context, n int) ([]*causalityv1.EventEnvelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, n)
	return f.events[:min(n, len(f.events))], nil
}

func (f *fixedEvents) lastAsked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[len(f.asked)-1]
}

// newRulesClient is newUIClient with a UI whose Test reads events (nil: none).
func newRulesClient(t *testing.T, events RecentEvents) *uiClient {
	t.Helper()
	c := newUIClient(t)
	if events == nil {
		return c
	}
	r := chi.NewRouter()
	c.api.Routes(r)
	NewUI(c.api, UIOptions{Version: "test", Events: events}).Routes(r)
	c.srv = httptest.NewServer(r)
	t.Cleanup(c.srv.Close)
	return c
}

// htmx posts a form as htmx does: with its headers, the CSRF token in one of them.
func (c *uiClient) htmx(path, csrf string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// fieldError is the inline error shown under a field of a page, unescaped.
func fieldError(page, field string) string {
	m := regexp.MustCompile(`(?s)<p class="error" id="f-` + field + `-error">(.*?)</p>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func ruleForm(csrf string, kv ...string) url.Values {
	f := url.Values{"csrf_token": {csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

func onlyRule(t *testing.T, c *uiClient) store.Rule {
	t.Helper()
	rules, err := c.api.store.ListRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 {
		t.Fatalf("%d rules stored, want 1", len(rules))
	}
	return rules[0]
}

func TestUIRulesAccess(t *testing.T) {
	t.Parallel()
	c := newRulesClient(t, nil)
	for _, path := range []string{"/admin/rules", "/admin/rules/new", "/admin/rules/" + uuid.NewString()} {
		resp, _ := c.get(path)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin?next=") {
			t.Errorf("GET %s without a session: %d to %q, want a redirect to sign in", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := c.post("/admin/rules/new", url.Values{"name": {"x"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d, want 401", resp.StatusCode)
	}

	csrf := c.signIn()
	resp, page := c.get("/admin/rules")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Rules</h1>") || !strings.Contains(page, "No rules yet") {
		t.Fatalf("rules page: %d", resp.StatusCode)
	}
	if !strings.Contains(page, `href="/admin/rules" aria-current="page"`) {
		t.Error("the navigation does not mark Rules")
	}
	if resp, page := c.get("/admin/rules/new"); resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="condition"`) {
		t.Fatalf("new rule form: %d", resp.StatusCode)
	}

	// A rule to aim the CSRF-less posts at.
	resp, _ = c.post("/admin/rules/new", ruleForm(csrf, "name", "r", "enabled", "on"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	id := onlyRule(t, c).ID.String()
	for _, path := range []string{"/admin/rules/new", "/admin/rules/test", "/admin/rules/" + id, "/admin/rules/" + id + "/enabled", "/admin/rules/" + id + "/delete"} {
		if resp, _ := c.post(path, url.Values{"name": {"changed"}, "enabled": {"false"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, resp.StatusCode)
		}
	}
	if r := onlyRule(t, c); r.Name != "r" || !r.Enabled {
		t.Errorf("a CSRF-less post changed the rule: %+v", r)
	}

	// Unknown ids, and ids that are no ids.
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if resp, page := c.get("/admin/rules/" + id); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "No such rule") {
			t.Errorf("GET rule %s: %d, want 404", id, resp.StatusCode)
		}
		for _, action := range []string{"", "/enabled", "/delete"} {
			if resp, _ := c.post("/admin/rules/"+id+action, ruleForm(csrf, "name", "x", "enabled", "true")); resp.StatusCode != http.StatusNotFound {
				t.Errorf("POST rule %s%s: %d, want 404", id, action, resp.StatusCode)
			}
		}
	}
}

func TestUIRulesCreateEditToggleDelete(t *testing.T) {
	t.Parallel()
	c := newRulesClient(t, nil)
	csrf := c.signIn()
	ctx := context.Background()
	hook, err := c.api.store.CreateWebhook(ctx, store.WebhookInput{Name: "ops-hook", URL: "https://hooks.example.com/c", Headers: map[string]string{}, Enabled: true}, "whsec_dGVzdHRlc3R0ZXN0dGVzdA==")
	if err != nil {
		t.Fatal(err)
	}
	if _, page := c.get("/admin/rules/new"); !strings.Contains(page, "ops-hook") || !strings.Contains(page, `value="`+hook.ID.String()+`"`) {
		t.Error("the form does not offer the webhook")
	}

	// A condition that does not compile: 400, CEL's message with its caret under the
	// condition, and everything typed kept.
	broken := "event.purchase_complete.total_cent > 100000"
	resp, page := c.post("/admin/rules/new", ruleForm(csrf, "name", "big <purchase>", "description", "for ops",
		"app_id", "shop", "event_category", "commerce", "event_type", "purchase_complete", "condition", broken,
		"webhook_ids", hook.ID.String(), "publish_subject", "alerts.shop.big", "priority", "10", "enabled", "on"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken condition: %d, want 400", resp.StatusCode)
	}
	msg := fieldError(page, "condition")
	for _, want := range []string{"Line 1, column 24: ", "undefined field 'total_cent'", " | event.purchase_complete.total_cent > 100000", " | .......................^"} {
		if !strings.Contains(msg, want) {
			t.Errorf("condition error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(page, "<purchase>") {
		t.Error("the name is not escaped")
	}
	for _, kept := range []string{`value="big &lt;purchase&gt;"`, `>for ops</textarea>`, `value="shop"`, `<option value="commerce" selected>`,
		`value="purchase_complete"`, `>event.purchase_complete.total_cent &gt; 100000</textarea>`, `value="alerts.shop.big"`, `value="10"`,
		`value="` + hook.ID.String() + `" checked`} {
		if !strings.Contains(page, kept) {
			t.Errorf("the form lost %s", kept)
		}
	}
	if !strings.Contains(page, `class="form-errors"`) || !strings.Contains(page, "Condition: Line 1, column 24") {
		t.Error("no summary of the errors above the form")
	}

	// Other fields: each error next to its field.
	resp, page = c.post("/admin/rules/new", ruleForm(csrf, "name", " ", "priority", "lots", "publish_subject", "events.x",
		"event_category", "nonsense", "webhook_ids", uuid.NewString()))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad fields: %d, want 400", resp.StatusCode)
	}
	for field, want := range map[string]string{"name": "required", "priority": "whole number", "publish_subject": "events.",
		"event_category": "is not one of", "webhook_ids": "no webhook"} {
		if got := fieldError(page, field); !strings.Contains(got, want) {
			t.Errorf("%s error %q, want it to say %q", field, got, want)
		}
	}
	if rules, _ := c.api.store.ListRules(ctx); len(rules) != 0 {
		t.Fatalf("invalid rules were saved: %d", len(rules))
	}

	// Valid: saved, back to the list with a confirmation, listed.
	cond := `event.purchase_complete.total_cents > 100000 && event.purchase_complete.currency == "EUR"`
	resp, _ = c.post("/admin/rules/new", ruleForm(csrf, "name", "big purchase", "app_id", "shop", "event_category", "commerce",
		"condition", cond, "webhook_ids", hook.ID.String(), "priority", "10", "enabled", "on"))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/rules?flash=") {
		t.Fatalf("create: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	rule := onlyRule(t, c)
	if rule.Name != "big purchase" || *rule.AppID != "shop" || rule.EventType != nil || rule.Condition != cond || rule.Priority != 10 || !rule.Enabled ||
		len(rule.WebhookIDs) != 1 || rule.WebhookIDs[0] != hook.ID || rule.PublishSubject != nil {
		t.Errorf("stored rule: %+v", rule)
	}
	_, page = c.get(resp.Header.Get("Location"))
	for _, want := range []string{"Rule “big purchase” created.", "big purchase", "ops-hook", "event.purchase_complete.total_cents &gt; 100000",
		`<span class="badge good">enabled</span>`, "/admin/rules/" + rule.ID.String() + "/delete", `data-confirm="Delete the rule “big purchase”?`} {
		if !strings.Contains(page, want) {
			t.Errorf("the list lacks %q", want)
		}
	}

	// Edit: the form shows the rule; saving changes it.
	path := "/admin/rules/" + rule.ID.String()
	resp, page = c.get(path)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="big purchase"`) || !strings.Contains(page, `action="`+path+`"`) ||
		!strings.Contains(page, `value="`+hook.ID.String()+`" checked`) || !strings.Contains(page, "&amp;&amp; event.purchase_complete.currency") {
		t.Fatalf("edit form: %d", resp.StatusCode)
	}
	resp, page = c.post(path, ruleForm(csrf, "name", "bigger purchase", "condition", "event.purchase_complete.total_cents >", "priority", "20"))
	if resp.StatusCode != http.StatusBadRequest || fieldError(page, "condition") == "" || !strings.Contains(page, `value="bigger purchase"`) {
		t.Fatalf("edit with a broken condition: %d", resp.StatusCode)
	}
	resp, _ = c.post(path, ruleForm(csrf, "name", "bigger purchase", "condition", "event.purchase_complete.total_cents > 500000", "priority", "20"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", resp.StatusCode)
	}
	rule = onlyRule(t, c)
	if rule.Name != "bigger purchase" || rule.Priority != 20 || rule.AppID != nil || len(rule.WebhookIDs) != 0 || rule.Enabled {
		t.Errorf("edited rule: %+v (an unticked box means disabled, no webhooks)", rule)
	}

	// Enable without JavaScript: back to the list; with htmx: the row alone.
	resp, _ = c.post(path+"/enabled", ruleForm(csrf, "enabled", "true"))
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "flash=") || !onlyRule(t, c).Enabled {
		t.Fatalf("enable: %d, enabled %v", resp.StatusCode, onlyRule(t, c).Enabled)
	}
	resp, page = c.htmx(path+"/enabled", csrf, url.Values{"enabled": {"false"}})
	if resp.StatusCode != http.StatusOK || onlyRule(t, c).Enabled {
		t.Fatalf("disable with htmx: %d, enabled %v", resp.StatusCode, onlyRule(t, c).Enabled)
	}
	if !strings.HasPrefix(strings.TrimSpace(page), `<tr id="rule-`+rule.ID.String()+`"`) || strings.Contains(page, "<html") ||
		!strings.Contains(page, `<span class="badge">disabled</span>`) || !strings.Contains(page, ">Enable</button>") ||
		!strings.Contains(page, `name="csrf_token" value="`+csrf+`"`) {
		t.Errorf("htmx row: %s", page)
	}
	// The same post again leaves it as it is.
	if resp, _ := c.post(path+"/enabled", ruleForm(csrf, "enabled", "false")); resp.StatusCode != http.StatusSeeOther || onlyRule(t, c).Enabled {
		t.Error("a repeated disable enabled the rule")
	}

	// Delete.
	resp, _ = c.post(path+"/delete", ruleForm(csrf))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/rules?flash=") {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if rules, _ := c.api.store.ListRules(ctx); len(rules) != 0 {
		t.Fatalf("%d rules after delete", len(rules))
	}
	if resp, _ := c.get(path); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted rule: %d, want 404", resp.StatusCode)
	}
}

func TestUIRuleTestAgainstRecentEvents(t *testing.T) {
	t.Parallel()
	purchase := func(id, app string, cents int64) *causalityv1.EventEnvelope {
		return &causalityv1.EventEnvelope{Id: id, AppId: app, DeviceId: "d-1", TimestampMs: 1795000000000,
			Payload: &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{TotalCents: cents, Currency: "EUR"}}}
	}
	levelUp := func(id string, params map[string]int64) *causalityv1.EventEnvelope {
		return &causalityv1.EventEnvelope{Id: id, AppId: "game", DeviceId: "d-2", TimestampMs: 1795000000000,
			Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{EventName: "level_up", IntParams: params}}}
	}
	events := &fixedEvents{events: []*causalityv1.EventEnvelope{
		purchase("ev-big", "shop", 250000),
		levelUp("ev-level-12", map[string]int64{"level": 12}),
		purchase("ev-small", "shop", 500),
		levelUp("ev-no-level", nil),
		{Id: "ev-view", AppId: "shop", Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Home"}}},
		purchase("ev-big-other-app", "kiosk", 990000),
	}}
	c := newRulesClient(t, events)
	csrf := c.signIn()

	// With htmx: the result alone.
	resp, page := c.htmx("/admin/rules/test", csrf, url.Values{"condition": {"event.purchase_complete.total_cents > 100000"},
		"app_id": {"shop"}, "test_n": {"200"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "<html") {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	if !strings.Contains(page, "1 of 6 events match") || !strings.Contains(page, "ev-big</code>") ||
		strings.Contains(page, "ev-small") || strings.Contains(page, "ev-big-other-app") {
		t.Errorf("test result: %s", page)
	}
	if !strings.Contains(page, "<details>") || !regexp.MustCompile(`"totalCents":\s+"250000"`).MatchString(html.UnescapeString(page)) || !strings.Contains(page, "2026-11-18 11:06:40.000 UTC") {
		t.Errorf("the match does not show the event as JSON with its time: %s", page)
	}
	if events.lastAsked() != 200 {
		t.Errorf("asked for %d events, want 200", events.lastAsked())
	}

	// A missing map key is counted, the first one shown; filters narrow as in the engine.
	_, page = c.htmx("/admin/rules/test", csrf, url.Values{"condition": {`event.custom_event.int_params["level"] >= 10`},
		"event_category": {"custom"}, "event_type": {"level_up"}, "test_n": {"50"}})
	if !strings.Contains(page, "1 of 6 events match") || !strings.Contains(page, "ev-level-12") || strings.Contains(page, "ev-no-level</code>") {
		t.Errorf("level test: %s", page)
	}
	if !strings.Contains(page, "1 event could not be evaluated") || !strings.Contains(page, "event ev-no-level: no such key: level") {
		t.Errorf("the evaluation error is not shown: %s", page)
	}
	if events.lastAsked() != 50 {
		t.Errorf("asked for %d events, want 50", events.lastAsked())
	}

	// No condition: the filters alone.
	if _, page = c.htmx("/admin/rules/test", csrf, url.Values{"event_category": {"commerce"}}); !strings.Contains(page, "3 of 6 events match") {
		t.Errorf("filters only: %s", page)
	}

	// A condition that does not compile: said in the result (200, so that htmx shows it).
	resp, page = c.htmx("/admin/rules/test", csrf, url.Values{"condition": {"event.purchase_complete.total_cent > 1"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Fix the rule") || !strings.Contains(html.UnescapeString(page), "Line 1, column 24: undefined field 'total_cent'") {
		t.Errorf("broken condition test: %d %s", resp.StatusCode, page)
	}

	// Without JavaScript: the form again, as typed, with the result; nothing saved.
	resp, page = c.post("/admin/rules/new", ruleForm(csrf, "action", "test", "name", "", "condition", "event.purchase_complete.total_cents > 100000",
		"test_n", "1000"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>New rule</h1>") || !strings.Contains(page, "2 of 6 events match") ||
		!strings.Contains(page, `<option value="1000" selected>`) || !strings.Contains(page, ">event.purchase_complete.total_cents &gt; 100000</textarea>") {
		t.Errorf("test without JavaScript: %d", resp.StatusCode)
	}
	if fieldError(page, "name") != "" {
		t.Error("a test complains about the missing name")
	}
	resp, page = c.post("/admin/rules/new", ruleForm(csrf, "action", "test", "name", "x", "condition", "event.purchase_complete.total_cent > 1"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fieldError(page, "condition"), "^") {
		t.Errorf("broken condition test without JavaScript: %d", resp.StatusCode)
	}
	if rules, _ := c.api.store.ListRules(context.Background()); len(rules) != 0 {
		t.Errorf("a test saved %d rules", len(rules))
	}

	// Without an event source, Test says so.
	plain := newRulesClient(t, nil)
	plainCSRF := plain.signIn()
	if _, page := plain.htmx("/admin/rules/test", plainCSRF, url.Values{"condition": {"true"}}); !strings.Contains(page, "cannot be read here") {
		t.Errorf("without events: %s", page)
	}
}
