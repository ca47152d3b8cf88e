package appliance

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/causality-io/causality/appliance/admin"
	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/ingest"
)

func (a *Appliance) routes(ing *ingest.Handler, api *admin.API, ui *admin.UI) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(a.metrics.Middleware)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", a.readyz)
	r.Handle("/metrics", a.metrics.Handler())
	ing.Routes(r)
	api.Routes(r)
	ui.Routes(r)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "not found")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return r
}

// readyz answers 200 when the bus takes writes and the database answers, else 503 naming
// what is down. A failing warehouse makes it "degraded" but still 200: ingest is safe
// (events wait in the stream), so a load balancer should keep sending them here.
func (a *Appliance) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"nats": "ok", "postgres": "ok", "warehouse": "ok"}
	code := http.StatusOK
	status := "ok"
	if err := a.bus.Check(ctx); err != nil {
		checks["nats"], code = err.Error(), http.StatusServiceUnavailable
	}
	if err := a.store.Check(ctx); err != nil {
		checks["postgres"], code = err.Error(), http.StatusServiceUnavailable
	}
	if a.sink != nil {
		if st := a.sink.Status(); st.Err != "" {
			checks["warehouse"] = fmt.Sprintf("failing since %s: %s (events are kept in the stream and written when it recovers)",
				st.FailingSince.UTC().Format(time.RFC3339), st.Err)
			status = "degraded"
		}
	}
	if code != http.StatusOK {
		status = "unavailable"
		w.Header().Set("Retry-After", "5")
	}
	httpjson.Write(w, code, map[string]any{"status": status, "checks": checks})
}
