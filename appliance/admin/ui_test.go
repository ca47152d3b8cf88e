package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/reaction/expr"
)

// uiClient is a browser without JavaScript against the UI on a real database: it keeps
// cookies and does not follow redirects, so tests see every answer.
type uiClient struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
	api    *API // the services behind the UI, for tests that set up or read back state
}

// newUIClient starts the UI on a fresh database; opts change the API's options
// (WebhookAllowPrivate, Engine) for the tests that need them.
func newUIClient(t *testing.T, opts ...func(*Options)) *uiClient {
	t.Helper()
	s := openStore(t)
	env, err := expr.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var o Options
	for _, f := range opts {
		f(&o)
	}
	api := NewAPI(s, apikey.NewKeyring(s, 100, log), &Passwords{hash: cheapHash(testPassword)}, env, o, log)
	r := chi.NewRouter()
	api.Routes(r)
	NewUI(api, UIOptions{Version: "test"}).Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, srv: srv, api: api, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *uiClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.client.Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *uiClient) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.client.PostForm(c.srv.URL+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenInput = regexp.MustCompile(`name="(signin_csrf|csrf_token)" value="([^"]+)"`)

// token finds a hidden CSRF token in a page.
func token(t *testing.T, page, name string) string {
	t.Helper()
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no %s in the page", name)
	return ""
}

// signIn signs in and returns the session's CSRF token.
func (c *uiClient) signIn() string {
	c.t.Helper()
	_, page := c.get("/admin/signin")
	resp, _ := c.post("/admin/signin", url.Values{"signin_csrf": {token(c.t, page, "signin_csrf")}, "password": {testPassword}, "next": {"/admin/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		c.t.Fatalf("sign in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = c.get("/admin/")
	return token(c.t, page, "csrf_token")
}

func TestUIAccessNeedsASession(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	resp, _ := c.get("/admin/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin?next=") {
		t.Fatalf("overview without a session: %d to %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.post("/admin/signout", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d, want 401", resp.StatusCode)
	}
	// A forged session cookie is no session.
	u, _ := url.Parse(c.srv.URL)
	c.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "forged", Path: "/admin"}})
	if resp, _ := c.get("/admin/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("forged session: %d, want a redirect to sign in", resp.StatusCode)
	}
	// The API's Basic credentials do not open the UI.
	req, _ := http.NewRequest("GET", c.srv.URL+"/admin/", nil)
	req.SetBasicAuth("admin", testPassword)
	if resp, err := c.client.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("Basic auth on the UI: %v %v, want a redirect to sign in", resp.StatusCode, err)
	}
}

func TestUISignIn(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	resp, page := c.get("/admin/signin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `type="password"`) {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	signinToken := token(t, page, "signin_csrf")

	// Wrong password: 401, the form again with the error, no session.
	resp, page = c.post("/admin/signin", url.Values{"signin_csrf": {signinToken}, "password": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong password.") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if strings.Contains(page, "wrong\"") {
		t.Error("the page echoes the password")
	}
	// Without the form's token (a cross-site post): refused.
	resp, _ = c.post("/admin/signin", url.Values{"signin_csrf": {"made-up"}, "password": {testPassword}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form token: %d, want 403", resp.StatusCode)
	}
	// Right password: a session cookie, HttpOnly and SameSite, and the overview.
	_, page = c.get("/admin/signin?next=/admin/")
	resp, _ = c.post("/admin/signin", url.Values{"signin_csrf": {token(t, page, "signin_csrf")}, "password": {testPassword}, "next": {"https://evil.example/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("sign in: %d to %q (a next outside the UI must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/admin" {
		t.Fatalf("session cookie: %+v", cookie)
	}
	resp, page = c.get("/admin/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Overview</h1>") {
		t.Fatalf("overview after sign-in: %d", resp.StatusCode)
	}

	// Sign out without the CSRF token: refused, still signed in.
	if resp, _ := c.post("/admin/signout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.get("/admin/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed out by a CSRF-less post: %d", resp.StatusCode)
	}
	// With it: signed out, and the old cookie no longer works.
	resp, _ = c.post("/admin/signout", url.Values{"csrf_token": {token(t, page, "csrf_token")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	u, _ := url.Parse(c.srv.URL)
	c.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie.Value, Path: "/admin"}})
	if resp, _ := c.get("/admin/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a signed-out session still opens the UI: %d", resp.StatusCode)
	}
}

func TestUIStaticAssetsAreEmbedded(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	for _, path := range []string{"/admin/static/style.css", "/admin/static/htmx.min.js", "/admin/static/htmx-sse.min.js", "/admin/static/app.js"} {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK || len(body) < 100 {
			t.Errorf("%s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
}
