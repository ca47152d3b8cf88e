package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// guarded wraps a handler that counts its calls in the Basic auth middleware.
type guarded struct {
	auth    *basicAuth
	handler http.Handler
	mu      sync.Mutex
	reached int
}

func newGuarded(auth *basicAuth) *guarded {
	g := &guarded{auth: auth}
	g.handler = auth.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.reached++
		g.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	return g
}

// creds is how a request authenticates: nil sends no Authorization header.
type creds struct{ user, password string }

func (g *guarded) do(c *creds, header string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/admin/keys", nil)
	if c != nil {
		r.SetBasicAuth(c.user, c.password)
	}
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, r)
	return rec
}

func (g *guarded) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reached
}

// checkRefused checks an answer that did not reach the handler.
func checkRefused(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body, code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("body %q: want {\"error\": ...} (%v)", rec.Body, err)
	}
	switch code {
	case http.StatusUnauthorized:
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="causality admin"`) {
			t.Errorf("WWW-Authenticate = %q, want a Basic challenge so browsers ask", got)
		}
	case http.StatusTooManyRequests:
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	passwords := &Passwords{hash: cheapHash("right")}
	tests := []struct {
		name   string
		creds  *creds
		header string
		want   int
	}{
		{name: "no credentials", want: http.StatusUnauthorized},
		{name: "Bearer instead of Basic", header: "Bearer right", want: http.StatusUnauthorized},
		{name: "Basic garbage", header: "Basic !!!", want: http.StatusUnauthorized},
		{name: "wrong password", creds: &creds{"admin", "wrong"}, want: http.StatusUnauthorized},
		{name: "empty password", creds: &creds{"admin", ""}, want: http.StatusUnauthorized},
		{name: "wrong user", creds: &creds{"root", "right"}, want: http.StatusUnauthorized},
		{name: "user is case-sensitive", creds: &creds{"Admin", "right"}, want: http.StatusUnauthorized},
		{name: "right", creds: &creds{"admin", "right"}, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuarded(newBasicAuth(passwords))
			rec := g.do(tt.creds, tt.header)
			if tt.want == http.StatusOK {
				if rec.Code != http.StatusOK || g.calls() != 1 {
					t.Fatalf("status %d, handler reached %d times; want 200 and once", rec.Code, g.calls())
				}
				return
			}
			checkRefused(t, rec, tt.want)
			if g.calls() != 0 {
				t.Fatal("the handler was reached")
			}
		})
	}
}

// What someone guessing passwords sees: ten failures, then 429 for every attempt, the right
// password included, while a browser without credentials still gets its login prompt.
func TestBasicAuthFailureBudget(t *testing.T) {
	g := newGuarded(newBasicAuth(&Passwords{hash: HashPassword("right")}))
	for i := range 10 {
		c := &creds{"root", "guess"} // fails without hashing: fast, so the budget barely refills
		if i == 0 {
			c = &creds{"admin", "guess"} // wrong passwords count too
		}
		checkRefused(t, g.do(c, ""), http.StatusUnauthorized)
	}
	checkRefused(t, g.do(&creds{"admin", "right"}, ""), http.StatusTooManyRequests)
	checkRefused(t, g.do(&creds{"admin", "guess"}, ""), http.StatusTooManyRequests)
	checkRefused(t, g.do(nil, ""), http.StatusUnauthorized)
	if g.calls() != 0 {
		t.Fatalf("the handler was reached %d times", g.calls())
	}
}

// Requests without credentials (a browser's first request) do not spend the budget, and
// neither do successful ones.
func TestBasicAuthBudgetSpentOnlyByFailures(t *testing.T) {
	g := newGuarded(newBasicAuth(&Passwords{hash: cheapHash("right")}))
	for range 20 {
		checkRefused(t, g.do(nil, ""), http.StatusUnauthorized)
	}
	for range 20 {
		if rec := g.do(&creds{"admin", "right"}, ""); rec.Code != http.StatusOK {
			t.Fatalf("status %d after requests without credentials, want 200", rec.Code)
		}
	}
}

// Once the budget refills, the admin gets in again.
func TestBasicAuthBudgetRefills(t *testing.T) {
	// Slow enough that no token comes back while the ten guesses run on a loaded machine
	// with the race detector (at 20 ms one did, and the right password got through early).
	const every = 250 * time.Millisecond
	a := &basicAuth{passwords: &Passwords{hash: cheapHash("right")}, failures: rate.NewLimiter(rate.Every(every), 10)}
	g := newGuarded(a)
	for range 10 {
		g.do(&creds{"root", "guess"}, "")
	}
	checkRefused(t, g.do(&creds{"admin", "right"}, ""), http.StatusTooManyRequests)
	time.Sleep(3 * every)
	if rec := g.do(&creds{"admin", "right"}, ""); rec.Code != http.StatusOK {
		t.Fatalf("status %d after the budget refilled, want 200", rec.Code)
	}
}

// Guesses sent in parallel must not get past the budget: at most the burst of 10 (and what
// refills meanwhile) may be checked, the rest must get 429.
func TestBasicAuthFailureBudgetConcurrent(t *testing.T) {
	// A check takes milliseconds, as the real one does, but with 1 MiB instead of 19.
	g := newGuarded(newBasicAuth(&Passwords{hash: argonHash("right", 1024, 8)}))
	const n = 40
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = g.do(&creds{"admin", "guess"}, "").Code
		})
	}
	close(start)
	wg.Wait()
	checked := 0
	for _, c := range codes {
		if c == http.StatusUnauthorized {
			checked++
		}
	}
	if checked > 11 {
		t.Fatalf("%d of %d parallel guesses were checked (401), want at most 11; the rest 429", checked, n)
	}
}
