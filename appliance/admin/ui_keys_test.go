package admin

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

var (
	createdKey = regexp.MustCompile(`cz_[A-Za-z0-9_-]{43}`)
	revokeURL  = regexp.MustCompile(`/admin/keys/([0-9a-f-]{36})/revoke`)
)

func TestUIKeysAccess(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	resp, _ := c.get("/admin/keys")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin?next=") {
		t.Fatalf("keys without a session: %d to %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.post("/admin/keys", url.Values{"app_id": {"shop"}, "name": {"web"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("create without a session: %d, want 401", resp.StatusCode)
	}
	csrf := c.signIn()
	resp, page := c.get("/admin/keys")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Apps &amp; API keys</h1>") || !strings.Contains(page, "No keys yet") {
		t.Fatalf("keys page: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `aria-current="page">Apps &amp; keys</a>`) {
		t.Error("the navigation does not mark the keys page")
	}

	// Without the CSRF token nothing is created or revoked.
	if resp, _ := c.post("/admin/keys", url.Values{"app_id": {"shop"}, "name": {"web"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("create without the CSRF token: %d, want 403", resp.StatusCode)
	}
	keys, err := c.api.store.ListKeys(pgtest.Context(t), true)
	if err != nil || len(keys) != 0 {
		t.Fatalf("a CSRF-less post created keys: %v %v", keys, err)
	}
	if resp, _ := c.post("/admin/keys/0190a0f0-0000-7000-8000-000000000000/revoke", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without the CSRF token: %d, want 403", resp.StatusCode)
	}
	// Unknown ids: 404.
	for _, id := range []string{"0190a0f0-0000-7000-8000-000000000000", "not-a-uuid"} {
		if resp, _ := c.post("/admin/keys/"+id+"/revoke", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("revoke %s: %d, want 404", id, resp.StatusCode)
		}
	}
}

func TestUIKeysCreateInvalid(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()
	tests := []struct {
		name string
		form url.Values
		want map[string]string // field: error shown next to it
	}{
		{"everything missing", url.Values{}, map[string]string{"app_id": "required", "name": "required"}},
		{"bad app id, name too long, rate not a number",
			url.Values{"app_id": {"my shop!"}, "name": {strings.Repeat("n", 201)}, "rate_limit": {"fast"}},
			map[string]string{"app_id": "1 to 64 letters, digits", "name": "at most 200 characters", "rate_limit": "a number of events per second"}},
		{"negative rate", url.Values{"app_id": {"shop"}, "name": {"web"}, "rate_limit": {"-1"}},
			map[string]string{"rate_limit": "0 (unlimited) or more"}},
		{"rate not finite", url.Values{"app_id": {"shop"}, "name": {"web"}, "rate_limit": {"NaN"}},
			map[string]string{"rate_limit": "a number of events per second"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"csrf_token": {csrf}}
			for k, v := range tt.form {
				form[k] = v
			}
			resp, page := c.post("/admin/keys", form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			page = html.UnescapeString(page)
			for field, msg := range tt.want {
				re := regexp.MustCompile(`<p class="error" id="f-` + field + `-error">([^<]*)</p>`)
				m := re.FindStringSubmatch(page)
				if m == nil || !strings.Contains(m[1], msg) {
					t.Errorf("%s: inline error %q, want one with %q", field, m, msg)
				}
			}
			// The input is kept.
			for field, v := range tt.form {
				if !strings.Contains(page, `name="`+field+`" type="text" value="`+v[0]+`"`) {
					t.Errorf("%s: the input %q is not kept", field, v[0])
				}
			}
			if createdKey.MatchString(page) {
				t.Error("a refused form shows a key")
			}
		})
	}
	keys, err := c.api.store.ListKeys(pgtest.Context(t), true)
	if err != nil || len(keys) != 0 {
		t.Fatalf("refused forms created keys: %v %v", keys, err)
	}
}

func TestUIKeysCreateListRevoke(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	csrf := c.signIn()

	// Created: 201 with the key, once, and a curl command that sends an event with it.
	resp, page := c.post("/admin/keys", url.Values{"csrf_token": {csrf}, "app_id": {" shop "}, "name": {"web"}, "rate_limit": {"50"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d, want 201\n%s", resp.StatusCode, page)
	}
	if resp.Header.Get("Location") != "" {
		t.Errorf("the creation answer redirects to %q: the key must not go into a URL", resp.Header.Get("Location"))
	}
	page = html.UnescapeString(page)
	key := createdKey.FindString(page)
	if key == "" {
		t.Fatalf("no key in the creation answer:\n%s", page)
	}
	if !strings.Contains(page, `<code id="secret-value">`+key+`</code>`) || !strings.Contains(page, `data-copy="secret-value"`) {
		t.Error("the key is not shown with a copy button")
	}
	host := strings.TrimPrefix(c.srv.URL, "http://")
	for _, want := range []string{
		"X-API-Key: " + key,
		"POST http://" + host + "/v1/events/batch",
		`{"events":[{"appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}}]}`,
		`data-copy="curl-example"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the creation answer lacks %q", want)
		}
	}
	if _, ok := c.api.keys.Lookup(key); !ok {
		t.Error("the new key does not work at once: the keyring was not reloaded")
	}

	// A second key of the same app, with the server's rate, and one of another app.
	if resp, _ := c.post("/admin/keys", url.Values{"csrf_token": {csrf}, "app_id": {"shop"}, "name": {"ios"}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a second key: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/admin/keys", url.Values{"csrf_token": {csrf}, "app_id": {"blog"}, "name": {"server"}, "rate_limit": {"0"}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a key of another app: %d", resp.StatusCode)
	}

	// The list: grouped by app, with prefix, rate and "never" used; the key itself never.
	resp, page = c.get("/admin/keys")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	if strings.Contains(page, key) {
		t.Fatal("the list shows a key in full")
	}
	if createdKey.MatchString(page) {
		t.Fatal("the list shows a key")
	}
	for _, want := range []string{"<h3>blog <span", "<h3>shop <span", "2 keys", "50 events/s", "server default", "unlimited", "never", key[:9]} {
		if !strings.Contains(page, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if strings.Index(page, "<h3>blog") > strings.Index(page, "<h3>shop") {
		t.Error("apps are not in order")
	}
	if !strings.Contains(page, `data-confirm="Revoke key web of app shop?`) {
		t.Error("revoking does not ask for confirmation")
	}

	// Revoke the first key: a redirect with a flash, the key refused, listed as revoked
	// only when asked.
	keys, err := c.api.store.ListKeys(pgtest.Context(t), false)
	if err != nil {
		t.Fatal(err)
	}
	var webID string
	for _, k := range keys {
		if k.Name == "web" {
			webID = k.ID.String()
		}
	}
	if !strings.Contains(page, "/admin/keys/"+webID+"/revoke") {
		t.Fatalf("no revoke form for key %s", webID)
	}
	resp, _ = c.post("/admin/keys/"+webID+"/revoke", url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/keys?flash=") {
		t.Fatalf("revoke: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, ok := c.api.keys.Lookup(key); ok {
		t.Error("a revoked key still works: the keyring was not reloaded")
	}
	resp, page = c.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<p class="flash" role="status">Key revoked`) {
		t.Errorf("after revoking: %d, no flash", resp.StatusCode)
	}
	for _, m := range revokeURL.FindAllStringSubmatch(page, -1) {
		if m[1] == webID {
			t.Error("the revoked key is still listed as in use")
		}
	}
	if strings.Contains(page, "Revoked keys") || !strings.Contains(page, `href="/admin/keys?include_revoked=1"`) {
		t.Error("revoked keys are not hidden behind a link")
	}
	_, page = c.get("/admin/keys?include_revoked=1")
	revoked := page[strings.Index(page, "<h2>Revoked keys</h2>"):]
	if !strings.Contains(revoked, "<td>web</td>") || !strings.Contains(revoked, `<span class="badge bad">revoked</span>`) {
		t.Errorf("the revoked key is not marked revoked:\n%s", revoked)
	}
	if strings.Contains(revoked, "<td>ios</td>") {
		t.Error("a key in use is listed as revoked")
	}
	// Revoking again changes nothing and is no error.
	if resp, _ := c.post("/admin/keys/"+webID+"/revoke", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("revoke again: %d", resp.StatusCode)
	}
}
