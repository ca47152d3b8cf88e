package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/store"
)

var (
	webhookIDInPage = regexp.MustCompile(`action="/admin/webhooks/([0-9a-f-]{36})"`)
	secretInPage    = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)
)

// uiWantStatus fails the test unless resp has the status code.
func uiWantStatus(t *testing.T, what string, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: %d, want %d", what, resp.StatusCode, want)
	}
}

// uiWantRedirect fails the test unless resp is a 303 to a location starting with prefix.
func uiWantRedirect(t *testing.T, what string, resp *http.Response, prefix string) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("%s: %d to %q, want a redirect to %s", what, resp.StatusCode, loc, prefix)
	}
	return loc
}

// webhookFormValues is a valid create form with the session's token.
func webhookFormValues(csrf, name, rawURL string) url.Values {
	return url.Values{"csrf_token": {csrf}, "name": {name}, "url": {rawURL}, "headers": {""}, "enabled": {"on"}}
}

// createWebhookThroughUI creates a webhook with the form and returns its id and secret.
func createWebhookThroughUI(t *testing.T, c *uiClient, form url.Values) (uuid.UUID, string) {
	t.Helper()
	resp, page := c.post("/admin/webhooks", form)
	uiWantStatus(t, "create webhook", resp, http.StatusCreated)
	m := webhookIDInPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the created webhook's page has no form for it")
	}
	return uuid.MustParse(m[1]), secretInPage.FindString(page)
}

func TestUIWebhooksNeedSessionAndToken(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	id := uuid.NewString()
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/new", "/admin/webhooks/" + id, "/admin/webhooks/" + id + "/deliveries"} {
		resp, _ := c.get(path)
		uiWantRedirect(t, "GET "+path+" without a session", resp, "/admin/signin?next=")
	}
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/" + id, "/admin/webhooks/" + id + "/test",
		"/admin/webhooks/" + id + "/delete", "/admin/deliveries/" + id + "/replay"} {
		resp, _ := c.post(path, url.Values{})
		uiWantStatus(t, "POST "+path+" without a session", resp, http.StatusUnauthorized)
	}

	csrf := c.signIn()
	form := webhookFormValues("", "ops", "https://hooks.example.com/causality")
	form.Del("csrf_token")
	resp, _ := c.post("/admin/webhooks", form)
	uiWantStatus(t, "create without the CSRF token", resp, http.StatusForbidden)
	form.Set("csrf_token", "not-the-token")
	resp, _ = c.post("/admin/webhooks", form)
	uiWantStatus(t, "create with a wrong CSRF token", resp, http.StatusForbidden)
	if hooks, err := c.api.store.ListWebhooks(context.Background()); err != nil || len(hooks) != 0 {
		t.Fatalf("webhooks after refused posts: %v %v", hooks, err)
	}

	whID, _ := createWebhookThroughUI(t, c, webhookFormValues(csrf, "ops", "https://hooks.example.com/causality"))
	for _, path := range []string{"/admin/webhooks/" + whID.String(), "/admin/webhooks/" + whID.String() + "/test",
		"/admin/webhooks/" + whID.String() + "/delete"} {
		resp, _ := c.post(path, url.Values{"name": {"x"}, "url": {"https://example.com/"}})
		uiWantStatus(t, "POST "+path+" without the CSRF token", resp, http.StatusForbidden)
	}
	if _, err := c.api.store.GetWebhook(context.Background(), whID); err != nil {
		t.Fatalf("the webhook after a CSRF-less delete: %v", err)
	}
}

func TestUIWebhookSecretShownOnce(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	ctx := context.Background()

	resp, page := c.get("/admin/webhooks")
	uiWantStatus(t, "empty list", resp, http.StatusOK)
	if !strings.Contains(page, "No webhooks yet") || !strings.Contains(page, `href="/admin/webhooks/new"`) {
		t.Error("the empty list does not say so or offers no way to create one")
	}
	resp, page = c.get("/admin/webhooks/new")
	uiWantStatus(t, "new webhook form", resp, http.StatusOK)
	for _, want := range []string{`name="name"`, `name="url"`, `name="headers"`, `name="enabled"`, `<label for="f-url">`} {
		if !strings.Contains(page, want) {
			t.Errorf("the form lacks %s", want)
		}
	}

	form := webhookFormValues(csrf, "ops team", "https://hooks.example.com/causality")
	form.Set("headers", "X-Team: ops\r\n\r\nAuthorization: Bearer a:b\r\n")
	resp, page = c.post("/admin/webhooks", form)
	uiWantStatus(t, "create", resp, http.StatusCreated)
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Errorf("create answered with a Location %q: the secret must be shown in this answer, never in a URL", loc)
	}
	secret := secretInPage.FindString(page)
	m := webhookIDInPage.FindStringSubmatch(page)
	if secret == "" || m == nil || !strings.Contains(page, "Webhook created.") || !strings.Contains(page, `data-copy="secret-value"`) {
		t.Fatalf("the answer to create lacks the secret, its copy button, the flash or the webhook's form")
	}
	wh, err := c.api.store.GetWebhook(ctx, uuid.MustParse(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if wh.Secret != secret || wh.Name != "ops team" || !wh.Enabled || len(wh.Headers) != 2 ||
		wh.Headers["X-Team"] != "ops" || wh.Headers["Authorization"] != "Bearer a:b" {
		t.Errorf("stored webhook: %+v (page secret %q)", wh, secret)
	}

	// Later pages never show it again.
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/" + wh.ID.String(), "/admin/webhooks/" + wh.ID.String() + "/deliveries"} {
		resp, page := c.get(path)
		uiWantStatus(t, path, resp, http.StatusOK)
		if strings.Contains(page, "whsec_") || strings.Contains(page, secret[len("whsec_"):]) {
			t.Errorf("%s shows the secret again", path)
		}
		if !strings.Contains(page, "ops team") {
			t.Errorf("%s does not name the webhook", path)
		}
	}
	_, page = c.get("/admin/webhooks/" + wh.ID.String())
	if !strings.Contains(page, "Authorization: Bearer a:b\nX-Team: ops\n") {
		t.Error("the edit form does not show the headers as sorted Name: value lines")
	}
}

func TestUIWebhookFormErrors(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()

	cases := []struct {
		name, field string
		form        func(url.Values)
		want        []string
	}{
		{"private URL", "url", func(f url.Values) { f.Set("url", "http://127.0.0.1:9/hook") },
			[]string{"loopback", "--webhook-allow-private", `value="http://127.0.0.1:9/hook"`}},
		{"no scheme", "url", func(f url.Values) { f.Set("url", "hooks.example.com") },
			[]string{"must be absolute"}},
		{"no name", "name", func(f url.Values) { f.Set("name", "  ") },
			[]string{"required"}},
		{"header without colon", "headers", func(f url.Values) { f.Set("headers", "X-Ok: 1\nnot a header") },
			[]string{"line 2: ", "is not a header: write Name: value", "X-Ok: 1\nnot a header"}},
		{"header twice", "headers", func(f url.Values) { f.Set("headers", "X-A: 1\nX-A: 2") },
			[]string{"line 2: X-A is given twice"}},
		{"reserved header", "headers", func(f url.Values) { f.Set("headers", "Content-Type: text/plain") },
			[]string{"Content-Type is set by Causality"}},
		{"bad header name", "headers", func(f url.Values) { f.Set("headers", "X Team: ops") },
			[]string{"is not a valid header name"}},
	}
	for _, tc := range cases {
		form := webhookFormValues(csrf, "ops", "https://hooks.example.com/causality")
		tc.form(form)
		resp, page := c.post("/admin/webhooks", form)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, resp.StatusCode)
			continue
		}
		if !strings.Contains(page, `id="f-`+tc.field+`-error"`) || !strings.Contains(page, `aria-invalid="true"`) {
			t.Errorf("%s: no inline error on %s", tc.name, tc.field)
		}
		if !strings.Contains(page, `class="form-errors"`) {
			t.Errorf("%s: no summary above the form", tc.name)
		}
		for _, want := range tc.want {
			if !strings.Contains(page, want) {
				t.Errorf("%s: the page lacks %q", tc.name, want)
			}
		}
		if strings.Contains(page, "whsec_") {
			t.Errorf("%s: a refused form shows a secret", tc.name)
		}
	}
	if hooks, err := c.api.store.ListWebhooks(context.Background()); err != nil || len(hooks) != 0 {
		t.Fatalf("refused forms created webhooks: %v %v", hooks, err)
	}

	// With --webhook-allow-private a receiver on the local network is fine.
	priv := newUIClient(t, func(o *Options) { o.WebhookAllowPrivate = true })
	createWebhookThroughUI(t, priv, webhookFormValues(priv.signIn(), "local", "http://127.0.0.1:9/hook"))
}

func TestUIWebhookEditTestReplayDelete(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	ctx := context.Background()
	id, _ := createWebhookThroughUI(t, c, webhookFormValues(csrf, "ops", "https://hooks.example.com/causality"))
	path := "/admin/webhooks/" + id.String()

	// Edit: disable it and rename it.
	form := webhookFormValues(csrf, "ops renamed", "https://hooks.example.com/v2")
	form.Del("enabled")
	resp, _ := c.post(path, form)
	uiWantRedirect(t, "save", resp, path+"?flash=")
	wh, err := c.api.store.GetWebhook(ctx, id)
	if err != nil || wh.Name != "ops renamed" || wh.URL != "https://hooks.example.com/v2" || wh.Enabled {
		t.Fatalf("after the edit: %+v %v", wh, err)
	}
	// A bad edit: 400 with the input kept, nothing saved.
	form.Set("url", "ftp://hooks.example.com/")
	resp, page := c.post(path, form)
	uiWantStatus(t, "bad edit", resp, http.StatusBadRequest)
	if !strings.Contains(page, `id="f-url-error"`) || !strings.Contains(page, `value="ftp://hooks.example.com/"`) {
		t.Error("a bad edit does not show its error inline with the input kept")
	}
	if wh, _ := c.api.store.GetWebhook(ctx, id); wh.URL != "https://hooks.example.com/v2" {
		t.Errorf("a refused edit was saved: %s", wh.URL)
	}

	// The dispatcher disabled it for failing; the list says why, enabling clears it.
	if _, err := c.api.store.Pool().Exec(ctx, `UPDATE webhooks SET disabled_reason = 'failing since 5 days: HTTP 502',
		failing_since = now() - interval '5 days' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	_, page = c.get("/admin/webhooks")
	if !strings.Contains(page, "failing since 5 days: HTTP 502") || !strings.Contains(page, "Failing since") || !strings.Contains(page, "disabled") {
		t.Error("the list does not show the disabled reason and since when it fails")
	}
	form = webhookFormValues(csrf, "ops renamed", "https://hooks.example.com/v2")
	resp, _ = c.post(path, form)
	loc := uiWantRedirect(t, "enable", resp, path+"?flash=")
	if !strings.Contains(loc, "enabled") {
		t.Errorf("enabling flashes %q", loc)
	}
	if wh, _ := c.api.store.GetWebhook(ctx, id); !wh.Enabled || wh.DisabledReason != nil || wh.FailingSince != nil {
		t.Errorf("enabled again: %+v, want the failure record cleared", wh)
	}

	// Send test event: a pending webhook.test delivery with the JSON API's body.
	resp, _ = c.post(path+"/test", url.Values{"csrf_token": {csrf}})
	loc = uiWantRedirect(t, "test event", resp, path+"?flash=")
	if !strings.Contains(loc, url.QueryEscape("Test event queued")) {
		t.Errorf("test event flashes %q", loc)
	}
	ds, err := c.api.store.ListDeliveries(ctx, store.DeliveryFilter{WebhookID: &id})
	if err != nil || len(ds) != 1 || ds[0].Status != store.DeliveryPending || ds[0].Type != store.DeliveryTypeTest {
		t.Fatalf("deliveries after the test: %+v %v", ds, err)
	}
	var body testEvent
	if err := json.Unmarshal([]byte(ds[0].Body), &body); err != nil || body.Type != store.DeliveryTypeTest ||
		body.Data.WebhookID != id || body.Data.Message == "" || body.Timestamp == "" {
		t.Errorf("test body %s: %v", ds[0].Body, err)
	}
	d := ds[0]
	_, page = c.get(path)
	if !strings.Contains(page, "webhook.test") || !strings.Contains(page, `<span class="badge">pending</span>`) ||
		!strings.Contains(page, `action="/admin/deliveries/`+d.ID.String()+`/replay"`) {
		t.Error("the delivery log does not show the test delivery with its replay button")
	}

	// It died; the log shows how, filtered by status; Replay makes it pending again.
	if _, err := c.api.store.Pool().Exec(ctx, `UPDATE deliveries SET status = 'dead', attempts = 7, last_status_code = 503,
		last_error = 'HTTP 503 from the receiver', last_latency_ms = 42, last_attempt_at = now() WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	resp, page = c.get(path + "?status=dead")
	uiWantStatus(t, "log of dead deliveries", resp, http.StatusOK)
	for _, want := range []string{`<span class="badge bad">dead</span>`, "HTTP 503 from the receiver", ">503<", "42 ms", ">7<"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dead delivery's row lacks %q", want)
		}
	}
	_, page = c.get(path + "?status=succeeded")
	if strings.Contains(page, d.ID.String()) || !strings.Contains(page, "No succeeded deliveries yet.") {
		t.Error("the succeeded filter shows the dead delivery")
	}
	resp, _ = c.get(path + "?status=lost")
	uiWantStatus(t, "unknown status filter", resp, http.StatusBadRequest)
	resp, _ = c.get(path + "?before=yesterday")
	uiWantStatus(t, "bad cursor", resp, http.StatusBadRequest)

	resp, _ = c.post("/admin/deliveries/"+d.ID.String()+"/replay", url.Values{"csrf_token": {csrf}, "status": {"dead"}})
	uiWantRedirect(t, "replay", resp, path+"?status=dead&flash=")
	got, err := c.api.store.GetDelivery(ctx, d.ID)
	if err != nil || got.Status != store.DeliveryPending || got.Attempts != 7 {
		t.Fatalf("after replay: %+v %v, want pending with its attempts kept", got, err)
	}

	// htmx refreshes the log alone.
	req, _ := http.NewRequest("GET", c.srv.URL+path+"/deliveries", nil)
	req.Header.Set("HX-Request", "true")
	hx, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hx.Body)
	hx.Body.Close()
	if hx.StatusCode != http.StatusOK || strings.Contains(string(b), "<html") || !strings.Contains(string(b), `id="deliveries"`) ||
		!strings.Contains(string(b), d.ID.String()) || !strings.Contains(string(b), `name="csrf_token"`) {
		t.Errorf("the htmx fragment: %d %s", hx.StatusCode, b)
	}

	// Unknown ids are 404.
	unknown := uuid.NewString()
	for _, p := range []string{"/admin/webhooks/" + unknown, "/admin/webhooks/zzz", "/admin/webhooks/" + unknown + "/deliveries"} {
		resp, _ := c.get(p)
		uiWantStatus(t, "GET "+p, resp, http.StatusNotFound)
	}
	for _, p := range []string{"/admin/webhooks/" + unknown, "/admin/webhooks/" + unknown + "/test", "/admin/webhooks/" + unknown + "/delete",
		"/admin/deliveries/" + unknown + "/replay", "/admin/deliveries/zzz/replay"} {
		resp, _ := c.post(p, webhookFormValues(csrf, "x", "https://hooks.example.com/"))
		uiWantStatus(t, "POST "+p, resp, http.StatusNotFound)
	}

	// Delete asks first, then goes with its log.
	_, page = c.get(path)
	if !strings.Contains(page, `action="`+path+`/delete" data-confirm="Delete the webhook ops renamed?`) {
		t.Error("the delete form does not ask for confirmation")
	}
	resp, _ = c.post(path+"/delete", url.Values{"csrf_token": {csrf}})
	uiWantRedirect(t, "delete", resp, "/admin/webhooks?flash=")
	if _, err := c.api.store.GetWebhook(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := c.api.store.GetDelivery(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("its delivery after delete: %v", err)
	}
	resp, _ = c.post(path+"/delete", url.Values{"csrf_token": {csrf}})
	uiWantStatus(t, "delete again", resp, http.StatusNotFound)
}

func TestUIDeliveryLogPages(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	ctx := context.Background()
	id, _ := createWebhookThroughUI(t, c, webhookFormValues(csrf, "ops", "https://hooks.example.com/causality"))
	const n = deliveryLogPage + 5
	for range n {
		if _, err := c.api.store.EnqueueTestDelivery(ctx, id, `{"type":"webhook.test"}`); err != nil {
			t.Fatal(err)
		}
	}
	path := "/admin/webhooks/" + id.String()
	replays := func(page string) int { return strings.Count(page, `/replay"`) }
	_, page := c.get(path)
	if got := replays(page); got != deliveryLogPage {
		t.Fatalf("first page: %d deliveries, want %d", got, deliveryLogPage)
	}
	if !strings.Contains(page, `hx-trigger="every 5s"`) {
		t.Error("the first page of the log does not refresh itself")
	}
	m := regexp.MustCompile(`href="(/admin/webhooks/[^"]+before=[^"]+)">Older`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the first page has no link to older deliveries")
	}
	older := strings.ReplaceAll(m[1], "&amp;", "&")
	resp, page := c.get(older)
	uiWantStatus(t, "older page", resp, http.StatusOK)
	if got := replays(page); got != n-deliveryLogPage {
		t.Errorf("second page: %d deliveries, want %d", got, n-deliveryLogPage)
	}
	if strings.Contains(page, ">Older") || !strings.Contains(page, ">Newest<") || strings.Contains(page, `hx-trigger="every 5s"`) {
		t.Error("the last page links further back, not to the newest, or refreshes itself")
	}
}
