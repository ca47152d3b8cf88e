package reaction

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reaction engine's and dispatcher's Prometheus series.
type Metrics struct {
	Events             prometheus.Counter
	RuleMatches        prometheus.Counter
	EvalErrors         *prometheus.CounterVec
	Anomalies          prometheus.Counter
	AlertsPublished    prometheus.Counter
	Poison             prometheus.Counter
	Rules              prometheus.Gauge
	Detectors          prometheus.Gauge
	CommitDuration     prometheus.Histogram
	CommitErrors       prometheus.Counter
	DeliveriesRecorded prometheus.Counter

	Attempts        *prometheus.CounterVec
	AttemptDuration prometheus.Histogram
	Dead            prometheus.Counter
	Disabled        prometheus.Counter
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_events_total", Help: "Events the reaction engine evaluated.",
		}),
		RuleMatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_rule_matches_total", Help: "Rule matches (one per rule and event).",
		}),
		EvalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_reaction_eval_errors_total", Help: "Evaluations that failed (a missing map key, a division by zero); they count as no match.",
		}, []string{"what"}),
		Anomalies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_anomalies_total", Help: "Detector firings.",
		}),
		AlertsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_alerts_published_total", Help: "Alerts and anomalies published on NATS.",
		}),
		Poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_poison_events_total", Help: "Stored events the engine could not decode and dropped.",
		}),
		Rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_reaction_rules", Help: "Enabled rules the engine evaluates.",
		}),
		Detectors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_reaction_detectors", Help: "Enabled detectors the engine runs.",
		}),
		CommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causality_reaction_commit_duration_seconds", Help: "Time to record a batch of matches in Postgres.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_reaction_commit_errors_total", Help: "Batches whose recording failed at first (they are retried).",
		}),
		DeliveriesRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_webhook_deliveries_recorded_total", Help: "Webhook deliveries written to the outbox.",
		}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_webhook_attempts_total", Help: "Webhook delivery attempts by result (succeeded, failed).",
		}, []string{"result"}),
		AttemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causality_webhook_attempt_duration_seconds", Help: "Time of one webhook request, to the response or the error.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		Dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_webhook_dead_total", Help: "Deliveries that ran out of attempts.",
		}),
		Disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_webhook_endpoints_disabled_total", Help: "Webhooks disabled for failing too long.",
		}),
	}
	reg.MustRegister(m.Events, m.RuleMatches, m.EvalErrors, m.Anomalies, m.AlertsPublished, m.Poison, m.Rules, m.Detectors,
		m.CommitDuration, m.CommitErrors, m.DeliveriesRecorded, m.Attempts, m.AttemptDuration, m.Dead, m.Disabled)
	return m
}

// RegisterLag reports the engine's consumer lag: events not yet evaluated and recorded.
func (e *Engine) RegisterLag(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causality_reaction_consumer_lag",
		Help: "Events in the stream the reaction engine has not evaluated and recorded yet: waiting for delivery plus delivered and unacknowledged.",
	}, func() float64 {
		lag, _ := e.Lag(context.Background())
		return float64(lag)
	}))
}

// RegisterOutbox reports the deliveries waiting to be sent or retried, and the dead ones.
func (d *Dispatcher) RegisterOutbox(reg prometheus.Registerer) {
	for status, pick := range map[string]func(OutboxCounts) int64{
		"pending":  func(c OutboxCounts) int64 { return c.Pending },
		"retrying": func(c OutboxCounts) int64 { return c.Retrying },
		"dead":     func(c OutboxCounts) int64 { return c.Dead },
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "causality_webhook_outbox",
			Help:        "Deliveries in the outbox by status: pending (not tried yet), retrying, dead (out of attempts; replay them from the admin API).",
			ConstLabels: prometheus.Labels{"status": status},
		}, func() float64 {
			c, _ := d.Outbox(context.Background())
			return float64(pick(c))
		}))
	}
}

// cached keeps a value read from elsewhere (the stream, the database) for a second, so
// that scrapes cost at most one read a second.
type cached[T any] struct {
	mu   sync.Mutex
	at   time.Time
	val  T
	last error
}

func (c *cached[T]) get(read func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < time.Second {
		return c.val, c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := read(ctx)
	c.at, c.last = time.Now(), err
	if err == nil {
		c.val = v
	}
	return c.val, err
}
