// Package admin serves the admin JSON API (and, later, the admin UI) over the services of
// the other components.
package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
)

// API is the admin JSON API under /api/v1/admin.
type API struct {
	store *store.Store
	keys  *apikey.Keyring
	auth  *basicAuth
	env   *expr.Env
	opts  Options
	log   *slog.Logger
}

// Options are the server settings the API's checks depend on.
type Options struct {
	// WebhookAllowPrivate accepts webhook URLs on loopback and private addresses
	// (--webhook-allow-private).
	WebhookAllowPrivate bool
	// Engine shows the live state of detectors; nil leaves it out.
	Engine EngineStatus
}

// EngineStatus is what the API asks the reaction engine of this process.
type EngineStatus interface {
	// Running reports whether this process evaluates the stream (one process does at a
	// time); only then is its detector state live.
	Running() bool
	// DetectorStatus is a detector's state per app.
	DetectorStatus(id string) []detect.AppStatus
}

// NewAPI builds the admin API. env compiles the CEL expressions of rules and detectors
// when they are saved, so that a broken one is refused then.
func NewAPI(s *store.Store, keys *apikey.Keyring, p *Passwords, env *expr.Env, opts Options, log *slog.Logger) *API {
	return &API{store: s, keys: keys, auth: newBasicAuth(p), env: env, opts: opts, log: log}
}

// Routes mounts the API under /api/v1/admin, every route behind Basic auth.
func (a *API) Routes(r chi.Router) {
	r.Route("/api/v1/admin", func(r chi.Router) {
		r.Use(a.auth.middleware)
		r.Post("/keys", a.createKey)
		r.Get("/keys", a.listKeys)
		r.Delete("/keys/{id}", a.revokeKey)

		r.Post("/rules", a.createRule)
		r.Get("/rules", a.listRules)
		r.Get("/rules/{id}", a.getRule)
		r.Put("/rules/{id}", a.updateRule)
		r.Delete("/rules/{id}", a.deleteRule)

		r.Post("/detectors", a.createDetector)
		r.Get("/detectors", a.listDetectors)
		r.Get("/detectors/{id}", a.getDetector)
		r.Put("/detectors/{id}", a.updateDetector)
		r.Delete("/detectors/{id}", a.deleteDetector)

		r.Post("/webhooks", a.createWebhook)
		r.Get("/webhooks", a.listWebhooks)
		r.Get("/webhooks/{id}", a.getWebhook)
		r.Put("/webhooks/{id}", a.updateWebhook)
		r.Delete("/webhooks/{id}", a.deleteWebhook)
		r.Post("/webhooks/{id}/test", a.testWebhook)

		r.Get("/deliveries", a.listDeliveries)
		r.Get("/deliveries/{id}", a.getDelivery)
		r.Post("/deliveries/{id}/replay", a.replayDelivery)

		r.Get("/anomalies", a.listAnomalies)

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

// maxBody bounds the JSON bodies of the admin API.
const maxBody = 64 << 10

// decode reads the request body into v, answering 400 when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpjson.Decode(r, maxBody, v); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// invalid answers 400 with every field that is wrong:
// {"error":"name: required; ...","fields":[{"field":"name","message":"required"}]}.
func invalid(w http.ResponseWriter, verr *ValidationError) {
	httpjson.Write(w, http.StatusBadRequest, map[string]any{"error": verr.Error(), "fields": verr.Fields})
}

// pathID reads the {id} of the path, answering 400 when it is no UUID; what names the
// kind of thing ("rule").
func pathID(w http.ResponseWriter, r *http.Request, what string) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a %s id (a UUID)", chi.URLParam(r, "id"), what))
		return uuid.UUID{}, false
	}
	return id, true
}

// storeFailed answers a failed store call about the what with id: 404 when it does not
// exist, 400 when it names webhooks that do not (deleted since they were checked), else 500.
func (a *API) storeFailed(w http.ResponseWriter, err error, what string, id uuid.UUID) {
	var mw *store.MissingWebhooksError
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no %s with id %s", what, id))
	case errors.As(err, &mw):
		invalid(w, (*ValidationError)(nil).with(missingWebhookErrors(mw.IDs)...))
	default:
		a.internal(w, err)
	}
}

// checkWebhooks adds to verr the webhook ids that do not exist. It answers 500 itself and
// returns false when the database fails.
func (a *API) checkWebhooks(w http.ResponseWriter, r *http.Request, ids []uuid.UUID, verr *ValidationError) (*ValidationError, bool) {
	missing, err := checkWebhooksExist(r.Context(), a.store, ids)
	if err != nil {
		a.internal(w, err)
		return nil, false
	}
	return verr.with(missing...), true
}
