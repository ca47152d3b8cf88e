package admin

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/config"
)

// Values the settings page must never show.
const (
	testS3Secret   = "s3-SECRET-wJalrXUtnFEMI"
	testFlagPass   = "flag-PASSWORD-correct-horse"
	testDBPassword = "pg-DB-PASSWORD-s3cret"
)

// newSettingsClient is newUIClient with a UI showing the configuration that args and env
// make (args nil: none),
// and passwords that can be changed (stored in the test's database).
func newSettingsClient(t *testing.T, args []string, env map[string]string) *uiClient {
	t.Helper()
	c := newUIClient(t)
	c.api.auth.passwords.store = c.api.store
	opts := UIOptions{Version: "test"}
	if args != nil {
		cfg, err := config.Parse(args, func(name string) (string, bool) { v, ok := env[name]; return v, ok }, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Config, opts.PasswordFromFlag = cfg.Effective(), cfg.AdminPassword != ""
	}
	// The same services behind a UI with these options.
	r := chi.NewRouter()
	c.api.Routes(r)
	NewUI(c.api, opts).Routes(r)
	c.srv = httptest.NewServer(r)
	t.Cleanup(c.srv.Close)
	return c
}

// browser is another browser (its own cookies) on the same server.
func (c *uiClient) browser() *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: c.t, srv: c.srv, api: c.api, client: &http.Client{Jar: jar, CheckRedirect: c.client.CheckRedirect}}
}

// signInWith tries to sign in with password and returns the answer's status.
func (c *uiClient) signInWith(password string) int {
	c.t.Helper()
	_, page := c.get("/admin/signin")
	resp, _ := c.post("/admin/signin", url.Values{"signin_csrf": {token(c.t, page, "signin_csrf")}, "password": {password}, "next": {"/admin/"}})
	return resp.StatusCode
}

func inlineError(page, field string) string {
	m := regexp.MustCompile(`<p class="error" id="f-` + field + `-error">([^<]*)</p>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestUISettingsAccess(t *testing.T) {
	t.Parallel()
	c := newSettingsClient(t, nil, nil)
	resp, _ := c.get("/admin/settings")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin?next=") {
		t.Fatalf("settings without a session: %d to %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	form := url.Values{"current_password": {testPassword}, "new_password": {"another password"}, "confirm_password": {"another password"}}
	if resp, _ := c.post("/admin/settings/password", form); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("change without a session: %d, want 401", resp.StatusCode)
	}
	c.signIn()
	resp, page := c.get("/admin/settings")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Settings</h1>") || !strings.Contains(page, `aria-current="page">Settings</a>`) {
		t.Fatalf("settings page: %d", resp.StatusCode)
	}
	if !strings.Contains(page, "Not available in this process") {
		t.Error("without a configuration the page should say so")
	}
	if strings.Contains(page, "that value replaces") {
		t.Error("warns about --admin-password although none was given")
	}
	// Without the CSRF token the password stays.
	if resp, _ := c.post("/admin/settings/password", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("change without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if !c.api.auth.passwords.Check(testPassword) {
		t.Fatal("a CSRF-less post changed the password")
	}
}

func TestUISettingsPasswordInvalid(t *testing.T) {
	t.Parallel()
	c := newSettingsClient(t, nil, nil)
	csrf := c.signIn()
	tests := []struct {
		name                  string
		current, next, repeat string
		want                  map[string]string // field: inline error
	}{
		{"wrong current password", "not the password", "another password", "another password",
			map[string]string{"current_password": "wrong password"}},
		{"confirmation does not match", testPassword, "another password", "another passwort",
			map[string]string{"confirm_password": "does not match"}},
		{"too short", testPassword, "short", "short", map[string]string{"new_password": "at least 8 characters"}},
		{"all empty", "", "", "", map[string]string{"current_password": "required", "new_password": "required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := c.post("/admin/settings/password", url.Values{"csrf_token": {csrf},
				"current_password": {tt.current}, "new_password": {tt.next}, "confirm_password": {tt.repeat}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			for _, field := range []string{"current_password", "new_password", "confirm_password"} {
				got := inlineError(page, field)
				if want := tt.want[field]; !strings.Contains(got, want) || (want == "" && got != "") {
					t.Errorf("%s: inline error %q, want %q", field, got, want)
				}
			}
			for _, pw := range []string{tt.current, tt.next, tt.repeat} {
				if pw != "" && strings.Contains(page, `value="`+pw+`"`) {
					t.Errorf("the page sends a password back: %q", pw)
				}
			}
		})
	}
	if !c.api.auth.passwords.Check(testPassword) {
		t.Fatal("a refused form changed the password")
	}
	if resp, _ := c.get("/admin/settings"); resp.StatusCode != http.StatusOK {
		t.Errorf("still signed in after refused changes: %d", resp.StatusCode)
	}
}

func TestUISettingsPasswordChange(t *testing.T) {
	t.Parallel()
	c := newSettingsClient(t, nil, nil)
	other := c.browser()
	other.signIn()
	csrf := c.signIn()

	const next = "a much better password"
	resp, _ := c.post("/admin/settings/password", url.Values{"csrf_token": {csrf},
		"current_password": {testPassword}, "new_password": {next}, "confirm_password": {next}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/settings?flash=") {
		t.Fatalf("change: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// This session stays, with a flash that says what happened.
	resp, page := c.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Every other session was signed out") {
		t.Fatalf("after the change: %d, no flash", resp.StatusCode)
	}
	// The other browser is signed out.
	resp, _ = other.get("/admin/settings")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin") {
		t.Errorf("the other session still works after a password change: %d", resp.StatusCode)
	}
	// The old password no longer signs in, the new one does, here and in the API.
	third := c.browser()
	if status := third.signInWith(testPassword); status != http.StatusUnauthorized {
		t.Errorf("sign in with the old password: %d, want 401", status)
	}
	if status := third.signInWith(next); status != http.StatusSeeOther {
		t.Errorf("sign in with the new password: %d, want 303", status)
	}
	if resp, _ := third.get("/admin/settings"); resp.StatusCode != http.StatusOK {
		t.Errorf("signed in with the new password, settings: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", c.srv.URL+"/api/v1/admin/keys", nil)
	req.SetBasicAuth("admin", next)
	if resp, err := c.client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("admin API with the new password: %v %v", resp, err)
	}
}

// A wrong current password counts against the budget of failed sign-ins.
func TestUISettingsPasswordSharesTheSignInBudget(t *testing.T) {
	t.Parallel()
	c := newSettingsClient(t, nil, nil)
	csrf := c.signIn()
	wrong := url.Values{"csrf_token": {csrf}, "current_password": {"guess"}, "new_password": {"another password"}, "confirm_password": {"another password"}}
	limited := false
	for range 20 {
		resp, page := c.post("/admin/settings/password", wrong)
		if resp.StatusCode == http.StatusTooManyRequests {
			if !strings.Contains(inlineError(page, "current_password"), "too many failed attempts") {
				t.Errorf("rate limited without saying so: %q", inlineError(page, "current_password"))
			}
			limited = true
			break
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong current password: %d", resp.StatusCode)
		}
	}
	if !limited {
		t.Fatal("20 wrong current passwords in a row were all checked")
	}
	if status := c.browser().signInWith(testPassword); status != http.StatusTooManyRequests {
		t.Errorf("sign in right after the guesses: %d, want 429 (one budget)", status)
	}
}

func TestUISettingsConfiguration(t *testing.T) {
	t.Parallel()
	args := []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--admin-password", testFlagPass,
		"--warehouse-url", "s3://lake/events", "--s3-endpoint", "127.0.0.1:9000", "--s3-access-key", "AKIAEXAMPLEACCESS",
		"--database-url", "postgres://causality:" + testDBPassword + "@db:5432/causality?sslmode=disable&password=" + testDBPassword}
	env := map[string]string{"CAUSALITY_S3_SECRET_KEY": testS3Secret, "CAUSALITY_NATS_SYNC": "always"}
	c := newSettingsClient(t, args, env)
	c.signIn()
	resp, page := c.get("/admin/settings")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("settings: %d", resp.StatusCode)
	}
	for _, secret := range []string{testS3Secret, testFlagPass, testDBPassword, testPassword, "AKIAEXAMPLEACCESS"} {
		if strings.Contains(page, secret) || strings.Contains(page, html.EscapeString(secret)) {
			t.Errorf("the settings page shows %q", secret)
		}
	}
	text := html.UnescapeString(page)
	for _, want := range []string{
		// The summary, as --check-config prints it.
		"s3://lake/events at 127.0.0.1:9000", "external postgres://causality:xxxxx@db:5432/causality",
		// Every setting, with where it came from.
		"--s3-secret-key", "(set, hidden)", "<span class=\"badge\">CAUSALITY_S3_SECRET_KEY</span>",
		"--nats-sync", "--flush-interval", "--webhook-retry-schedule",
		"<span class=\"badge\">command line</span>", "<span class=\"muted\">default</span>",
		// The password given at start comes back at the next start.
		"that value replaces the password set here",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the settings page lacks %q", want)
		}
	}
	if strings.Contains(text, "--check-config</code><div") {
		t.Error("--check-config is listed as a setting")
	}
}
