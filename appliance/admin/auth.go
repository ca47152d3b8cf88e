package admin

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/causality-io/causality/appliance/httpjson"
)

// basicAuth guards the admin JSON API with HTTP Basic admin:<password>. Failed attempts
// share one budget (a burst of 10, then one a second), so guessing is slow and cannot keep
// the CPU busy with password hashing.
type basicAuth struct {
	passwords *Passwords
	failures  *rate.Limiter
}

func newBasicAuth(p *Passwords) *basicAuth {
	return &basicAuth{passwords: p, failures: rate.NewLimiter(rate.Every(time.Second), 10)}
}

func (a *basicAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if ok && user == "admin" && a.passwords.Cached(pass) {
			next.ServeHTTP(w, r)
			return
		}
		if !ok {
			a.unauthorized(w)
			return
		}
		// Every attempt that needs the slow check takes a token first, so that parallel
		// guesses cannot all pass before the budget notices; a right password gives it back.
		res := a.failures.Reserve()
		if res.Delay() > 0 {
			res.Cancel()
			w.Header().Set("Retry-After", "1")
			httpjson.Error(w, http.StatusTooManyRequests, "too many failed sign-in attempts; retry later")
			return
		}
		if user != "admin" || !a.passwords.Check(pass) {
			a.unauthorized(w)
			return
		}
		res.Cancel()
		next.ServeHTTP(w, r)
	})
}

func (a *basicAuth) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="causality admin", charset="UTF-8"`)
	httpjson.Error(w, http.StatusUnauthorized, "admin credentials required: HTTP Basic with user admin and the admin password")
}
