package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causality-io/causality/appliance/bus"
)

// StreamStater reads the EVENTS stream's size; *bus.Bus is one.
type StreamStater interface {
	State(ctx context.Context) (bus.StreamState, error)
}

// RegisterStream exports the stream's messages and bytes, read at scrape time.
func (m *Metrics) RegisterStream(s StreamStater) {
	m.Registry.MustRegister(&streamCollector{s: s})
}

var (
	streamMsgs = prometheus.NewDesc("causality_stream_messages", "Messages held by the EVENTS stream.", nil, nil)
	streamByte = prometheus.NewDesc("causality_stream_bytes", "Bytes held by the EVENTS stream.", nil, nil)
	streamMax  = prometheus.NewDesc("causality_stream_max_bytes", "Size limit of the EVENTS stream; ingest answers 503 when it is reached.", nil, nil)
)

type streamCollector struct{ s StreamStater }

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamMsgs
	ch <- streamByte
	ch <- streamMax
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.s.State(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(streamMsgs, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(streamMsgs, prometheus.GaugeValue, float64(st.Messages))
	ch <- prometheus.MustNewConstMetric(streamByte, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(streamMax, prometheus.GaugeValue, float64(st.MaxBytes))
}
