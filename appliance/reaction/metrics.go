package reaction

import "github.com/prometheus/client_golang/prometheus"

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
