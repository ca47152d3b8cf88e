// Package admin serves the admin JSON API (and, later, the admin UI) over the services of
// the other components.
package admin

import (
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// API is the admin JSON API under /api/v1/admin.
type API struct {
	store *store.Store
	keys  *apikey.Keyring
	auth  *basicAuth
	log   *slog.Logger
}

// NewAPI builds the admin API.
func NewAPI(s *store.Store, keys *apikey.Keyring, p *Passwords, log *slog.Logger) *API {
	return &API{store: s, keys: keys, auth: newBasicAuth(p), log: log}
}

// Routes mounts the API under /api/v1/admin, every route behind Basic auth.
func (a *API) Routes(r chi.Router) {
	r.Route("/api/v1/admin", func(r chi.Router) {
		r.Use(a.auth.middleware)
		r.Post("/keys", a.createKey)
		r.Get("/keys", a.listKeys)
		r.Delete("/keys/{id}", a.revokeKey)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Error(w, http.StatusNotFound, "no such admin endpoint")
		})
	})
	// Go's profiler, for the admin only: `go tool pprof -http : http://admin:PW@host/debug/pprof/profile`.
	r.Route("/debug/pprof", func(r chi.Router) {
		r.Use(a.auth.middleware)
		r.Get("/", pprof.Index)
		r.Get("/cmdline", pprof.Cmdline)
		r.Get("/profile", pprof.Profile)
		r.Get("/symbol", pprof.Symbol)
		r.Get("/trace", pprof.Trace)
		r.Get("/{profile}", func(w http.ResponseWriter, r *http.Request) {
			pprof.Handler(chi.URLParam(r, "profile")).ServeHTTP(w, r)
		})
	})
}

func (a *API) internal(w http.ResponseWriter, err error) {
	a.log.Error("admin api", "err", err)
	httpjson.Error(w, http.StatusInternalServerError, "internal error")
}
