package warehouse

import (
	"bytes"
	"testing"
)

// BenchmarkEncode measures the Parquet encode rate of the sink alone: rows
// already mapped, written as one file per iteration the size of a typical
// flush. The bar is >= 250,000 rows/s on the 2-core CI machine.
//
// 2026-11-27, 2 vCPU "Oxide Virtual Turin-like Processor", go1.26.8,
// parquet-go v0.32.0, zstd default, 100,000-row file (sampleRows' mix):
// ~565,000-585,000 rows/s, 23.4 bytes/row on disk. FromEnvelope alone:
// ~2.3 us/row (~440,000 rows/s, single core), mostly protojson.
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
	env := benchEnvelope()
	b.ResetTimer()
	for b.Loop() {
		_ = FromEnvelope(env, recvMs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
