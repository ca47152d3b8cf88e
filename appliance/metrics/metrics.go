// Package metrics holds the appliance's Prometheus registry and the metrics the components
// share. It is passed to components, never reached through a global.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Event outcomes, the values of the "result" label of EventsTotal.
const (
	Accepted  = "accepted"
	Rejected  = "rejected"
	Duplicate = "duplicate"
)

// Metrics is the registry plus the metrics written from more than one place.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	// EventsTotal counts events by result; rejected ones also by reason.
	EventsTotal *prometheus.CounterVec
	// DedupWindow is the duplicate window in force (shorter than configured under load).
	DedupWindow prometheus.Gauge
}

// New makes a registry with the process and Go runtime collectors and the shared metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causality_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		EventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_events_total",
			Help: "Events received, by result: accepted (stored), duplicate (stored before, dropped), rejected (invalid or refused).",
		}, []string{"result"}),
		DedupWindow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_dedup_window_seconds",
			Help: "Duplicate window in force: a repeated event id inside it is stored once. Shortened under load to bound memory (--dedup-max-ids).",
		}),
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.EventsTotal, m.DedupWindow)
	// Pre-create the series so dashboards see zeros instead of nothing.
	for _, r := range []string{Accepted, Rejected, Duplicate} {
		m.EventsTotal.WithLabelValues(r)
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware records every request by its chi route pattern (never the raw path, which
// would let clients create unbounded series).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
