package appliance_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIngestBatch measures the whole ingest path in one process: HTTP, decoding,
// validation, JetStream publish with dedup ids and acks, with 100-event JSON batches from
// parallel clients. Compare with BenchmarkPublish in appliance/bus (the bare JetStream
// publish of similar messages):
//
//	go test -run '^$' -bench 'IngestBatch' -benchtime 20000x ./appliance/
func BenchmarkIngestBatch(b *testing.B) {
	cfg := testConfig(b, dataDir(b))
	s := start(b, cfg)
	key := s.createKey("bench", "")
	var batchNo atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const perBatch = 100
	b.SetParallelism(4) // 4 × GOMAXPROCS clients keep the server busy
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := minimalBatch("bench", fmt.Sprintf("b%d", batchNo.Add(1)), perBatch)
			req, _ := http.NewRequest("POST", s.base+"/v1/events/batch", bytes.NewReader(body))
			req.Header.Set("X-API-Key", key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/time.Since(start).Seconds(), "events/s")
}
