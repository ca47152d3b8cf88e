package warehouse

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sink's Prometheus series. Every series carries the
// destination (file:///..., s3://bucket/prefix) so a dashboard can tell
// lakes apart when several appliances scrape into one Prometheus.
type Metrics struct {
	FilesWritten   prometheus.Counter
	RowsWritten    prometheus.Counter
	BytesWritten   prometheus.Counter
	FlushDuration  prometheus.Histogram
	FlushErrors    *prometheus.CounterVec
	LastWrite      prometheus.Gauge
	Buffered       prometheus.Gauge
	BufferedBytes  prometheus.Gauge
	Redelivered    prometheus.Counter
	Poison         prometheus.Counter
	Compacted      *prometheus.CounterVec
	RetentionDrops prometheus.Counter
}

// NewMetrics registers the sink's series for destination on reg.
func NewMetrics(reg prometheus.Registerer, destination string) *Metrics {
	l := prometheus.Labels{"destination": destination}
	m := &Metrics{
		FilesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_files_written_total", ConstLabels: l,
			Help: "Parquet files the sink made visible in the lake.",
		}),
		RowsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_rows_written_total", ConstLabels: l,
			Help: "Events written to the lake (each exactly once).",
		}),
		BytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_bytes_written_total", ConstLabels: l,
			Help: "Bytes of Parquet written by the sink.",
		}),
		FlushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causality_warehouse_flush_duration_seconds", ConstLabels: l,
			Help:    "Time from starting a flush to acknowledging its events: encode, write, fsync or upload, ack.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		FlushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_warehouse_flush_errors_total", ConstLabels: l,
			Help: "Failed write attempts by failure mode (disk_full, permission, unreachable, other); the sink retries them.",
		}, []string{"mode"}),
		LastWrite: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_warehouse_last_write_timestamp_seconds", ConstLabels: l,
			Help: "Unix time of the last successful flush.",
		}),
		Buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_warehouse_buffered_events", ConstLabels: l,
			Help: "Events held in open batches, waiting for their file to be cut.",
		}),
		BufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causality_warehouse_buffered_bytes", ConstLabels: l,
			Help: "Estimated memory of the open batches; bounded by --flush-max-bytes.",
		}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_redelivered_skipped_total", ConstLabels: l,
			Help: "Redelivered events found already written (after a crash) and acknowledged without writing them again.",
		}),
		Poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_undecodable_events_total", ConstLabels: l,
			Help: "Stream messages that are not event envelopes; logged and terminated.",
		}),
		Compacted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causality_warehouse_compaction_files_total", ConstLabels: l,
			Help: "Files read (in) and written (out) by compaction.",
		}, []string{"direction"}),
		RetentionDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causality_warehouse_retention_dropped_partitions_total", ConstLabels: l,
			Help: "Hour partitions deleted by --retention.",
		}),
	}
	reg.MustRegister(m.FilesWritten, m.RowsWritten, m.BytesWritten, m.FlushDuration, m.FlushErrors,
		m.LastWrite, m.Buffered, m.BufferedBytes, m.Redelivered, m.Poison, m.Compacted, m.RetentionDrops)
	for _, mode := range []string{modeDiskFull, modePermission, modeUnreachable, modeOther} {
		m.FlushErrors.WithLabelValues(mode)
	}
	return m
}
