package warehouse

import (
	"bytes"
	"testing"
)

// BenchmarkEncode measures the Parquet encode rate of the sink alone: rows
// already mapped, written as one file per iteration the size of a typical
// flush. The bar is >= 250,000 rows/s on the 2-core CI machine.
//
//	go test -run '^$' -bench 'Encode|FromEnvelope' -benchtime 3x ./appliance/warehouse/
func BenchmarkEncode(b *testing.B) {
	const n = 100_000
	rows := sampleRows(n)
	var buf bytes.Buffer
	buf.Grow(16 << 20)
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := WriteParquet(&buf, rows, EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(buf.Len())/n, "bytes/row")
}

// BenchmarkFromEnvelope measures the envelope-to-row mapping, dominated by
// the protojson rendering of payload_json.
func BenchmarkFromEnvelope(b *testing.B) {
	rows := sampleRows(1) // warms the generators; envelopes built below
	_ = rows
	env := benchEnvelope()
	b.ResetTimer()
	for b.Loop() {
		_ = FromEnvelope(env, recvMs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
