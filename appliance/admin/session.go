package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/web"
)

// Cookie names. The session cookie is sent only to /admin; the sign-in cookie only to the
// sign-in form, for its CSRF check.
const (
	sessionCookie = "causality_session"
	signInCookie  = "causality_signin"
)

// uiSession is a signed-in session as a request sees it.
type uiSession struct {
	tokenHash []byte
	csrf      string
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

func (u *UI) cookie(name, value, path string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: u.opts.SecureCookies, SameSite: sameSite}
}

// requireSession lets a request through with its session, or sends a browser to sign in
// (an htmx or other non-GET request gets 401: there is no page to come back to).
func (u *UI) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			s, err := u.api.store.GetSession(r.Context(), hashToken(c.Value))
			switch {
			case err == nil:
				ctx := context.WithValue(r.Context(), sessionKey{}, &uiSession{tokenHash: s.TokenHash, csrf: s.CSRFToken})
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			case !errors.Is(err, store.ErrNotFound):
				u.internal(w, r, err)
				return
			}
		}
		if r.Method != http.MethodGet || r.Header.Get("HX-Request") != "" {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/admin/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// checkCSRF refuses a request that changes something unless it carries the session's
// token, in the form (csrf_token) or, from htmx, in the X-CSRF-Token header.
func (u *UI) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		s := session(r.Context())
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			token = r.PostFormValue("csrf_token")
		}
		if s == nil || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) != 1 {
			u.log.Warn("admin ui request without a valid CSRF token refused", "method", r.Method, "path", r.URL.Path)
			http.Error(w, "This form has expired or did not come from this site. Reload the page and try again.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeNext keeps a post-sign-in redirect on the admin UI.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/admin/"
	}
	return next
}

func (u *UI) signInForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if _, err := u.api.store.GetSession(r.Context(), hashToken(c.Value)); err == nil {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
	}
	u.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn shows the form with a fresh sign-in CSRF token (double-submit: the same
// random value in a cookie and in the form).
func (u *UI) renderSignIn(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	token := randomToken()
	http.SetCookie(w, u.cookie(signInCookie, token, "/admin/signin", 3600, http.SameSiteStrictMode))
	next := r.FormValue("next")
	u.render(w, r, status, web.SignInPage(u.opts.Version, token, errMsg, safeNext(next)))
}

func (u *UI) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.renderSignIn(w, r, http.StatusBadRequest, "The form could not be read; try again.")
		return
	}
	c, err := r.Cookie(signInCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("signin_csrf"))) != 1 {
		u.log.Warn("sign-in without a valid form token refused")
		u.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this site. Try again.")
		return
	}
	// Failed guesses share the budget of the JSON API's Basic auth: a token is taken
	// before the slow check and given back by a right password.
	res := u.api.auth.failures.Reserve()
	if res.Delay() > 0 {
		res.Cancel()
		w.Header().Set("Retry-After", "1")
		u.renderSignIn(w, r, http.StatusTooManyRequests, "Too many failed attempts. Wait a moment, then try again.")
		return
	}
	if !u.api.auth.passwords.Check(r.PostFormValue("password")) {
		u.log.Warn("admin sign-in failed", "remote", r.RemoteAddr)
		u.renderSignIn(w, r, http.StatusUnauthorized, "Wrong password.")
		return
	}
	res.Cancel()
	token := randomToken()
	if err := u.api.store.CreateSession(r.Context(), hashToken(token), randomToken(), time.Now().Add(u.opts.SessionTTL)); err != nil {
		u.internal(w, r, err)
		return
	}
	http.SetCookie(w, u.cookie(sessionCookie, token, "/admin", int(u.opts.SessionTTL.Seconds()), http.SameSiteLaxMode))
	http.SetCookie(w, u.cookie(signInCookie, "", "/admin/signin", -1, http.SameSiteStrictMode))
	u.log.Info("admin signed in", "remote", r.RemoteAddr)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	if s := session(r.Context()); s != nil {
		if err := u.api.store.DeleteSession(r.Context(), s.tokenHash); err != nil {
			u.internal(w, r, err)
			return
		}
	}
	http.SetCookie(w, u.cookie(sessionCookie, "", "/admin", -1, http.SameSiteLaxMode))
	http.Redirect(w, r, "/admin/signin", http.StatusSeeOther)
}
