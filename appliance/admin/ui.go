package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/web"
)

// UIOptions are the server settings the admin UI depends on.
type UIOptions struct {
	// SecureCookies marks cookies Secure: set when the appliance serves TLS.
	SecureCookies bool
	// Version is shown in the footer.
	Version string
	// SessionTTL is how long a sign-in lasts; default 12 hours.
	SessionTTL time.Duration
	// Overview gives the numbers of the overview page; nil shows none.
	Overview OverviewSource
	// Config is the effective configuration the settings page shows, secrets masked.
	Config config.Effective
	// PasswordFromFlag says the admin password was given at start (--admin-password or
	// its variable): the next start sets it again, undoing a change made in the UI.
	PasswordFromFlag bool
	// Events are the newest events of the stream, for the rule editor's Test; nil: Test
	// says there is nothing to test against.
	Events RecentEvents
	// Live tails new events for the live events page; nil: the page lists recent ones only.
	Live LiveSource
	// Warehouse is the lake the data page lists, and its query snippets.
	Warehouse Warehouse
}

// UI is the server-rendered admin console under /admin/. It manages what the JSON API
// manages, through the same store, checks and engine, with a session cookie and CSRF
// tokens instead of Basic auth.
type UI struct {
	api  *API
	opts UIOptions
	log  *slog.Logger
}

// NewUI builds the admin UI on the API's services.
func NewUI(api *API, opts UIOptions) *UI {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	return &UI{api: api, opts: opts, log: api.log.With("part", "ui")}
}

// Routes mounts the UI under /admin. Every page but sign-in needs a session, and every
// request that changes something needs the session's CSRF token.
func (u *UI) Routes(r chi.Router) {
	r.Get("/admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	})
	r.Route("/admin", func(r chi.Router) {
		r.Use(securityHeaders)
		r.Handle("/static/*", http.StripPrefix("/admin/static/", web.Static()))
		r.Get("/signin", u.signInForm)
		r.Post("/signin", u.signIn)
		r.Group(func(r chi.Router) {
			r.Use(u.requireSession, u.checkCSRF)
			r.Post("/signout", u.signOut)
			r.Get("/", u.overview)
			r.Get("/overview/stats", u.overviewStats)
			u.keysRoutes(r)
			u.settingsRoutes(r)
			u.rulesRoutes(r)
			u.webhooksRoutes(r)
			u.detectorsRoutes(r)
			u.eventsRoutes(r)
			u.dataRoutes(r)
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "404 page not found", http.StatusNotFound)
		})
	})
}

// securityHeaders keeps the UI's pages from being framed, from loading anything but their
// own assets, and from leaking their URLs to other sites.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.HasPrefix(r.URL.Path, "/admin/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

// session returns the signed-in session of a request inside the authenticated group.
func session(ctx context.Context) *uiSession {
	s, _ := ctx.Value(sessionKey{}).(*uiSession)
	return s
}

// page is the layout's view of a request.
func (u *UI) page(r *http.Request, title, nav string) web.Page {
	p := web.Page{Title: title, Nav: nav, Version: u.opts.Version, Flash: r.URL.Query().Get("flash")}
	if s := session(r.Context()); s != nil {
		p.CSRF = s.csrf
	}
	return p
}

// render writes a component with a status code.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil && !errors.Is(err, context.Canceled) {
		u.log.Warn("render admin page", "path", r.URL.Path, "err", err)
	}
}

// redirectFlash sends the browser to path after a successful change, with a one-line
// confirmation (post/redirect/get, so a reload does not post again).
func redirectFlash(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "flash=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// internal answers a failure of the system (not of the user's input) without details.
func (u *UI) internal(w http.ResponseWriter, r *http.Request, err error) {
	u.log.Error("admin ui", "path", r.URL.Path, "err", err)
	http.Error(w, "Something went wrong on the server; the log has the details.", http.StatusInternalServerError)
}
