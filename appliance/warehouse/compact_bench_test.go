package warehouse_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	. "github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
)

// BenchmarkCompact measures one compaction pass over a closed hour of 20
// sink files of 50,000 rows each (1M rows, ~45 MB, so one pass at the
// default 64 MiB target): read from local disk, k-way merge by id, encode,
// swap. Two id layouts:
//
//   - interleaved: random ids, every file spans the whole id range (the
//     worst case: every input stays open to the end);
//   - sequential: time-ordered ids (UUIDv7-like), so files cover successive
//     ranges, as the sink's files of one hour do.
//
// It reports rows/s (events of the hour per second of compaction),
// merged-rows/s (rows read by all passes: the interleaved layout needs
// several passes, as the readers of all 20 files do not fit the reader
// budget at once) and the peak heap sampled during the run under the
// appliance's runtime settings (soft limit 384 MiB, GOGC=400, so garbage
// is left to grow towards the limit; the benchmark itself holds the 43 MiB
// of input files). The live heap of a pass is measured in compact.go's
// Memory notes.
//
// 2026-11-27, 2 vCPU "Oxide Virtual Turin-like Processor", go1.26.8,
// parquet-go v0.32.0, ext4:
//
//	sequential   1 pass   ~260,000-280,000 rows/s   peak heap ~354 MiB
//	interleaved  4 passes ~105,000-120,000 rows/s (~210,000-240,000 merged rows/s)
//
//	go test -run '^$' -bench Compact -benchtime 3x ./appliance/warehouse/
func BenchmarkCompact(b *testing.B) {
	const files, perFile = 20, 50_000
	for _, layout := range []string{"interleaved", "sequential"} {
		b.Run(layout, func(b *testing.B) {
			dir := cxHour(3)
			data := make([][]byte, files)
			var inBytes int
			for i := range files {
				rows := cxRows(uint64(i), fmt.Sprintf("f%02d", i), perFile)
				if layout == "sequential" {
					for j := range rows {
						rows[j].ID = fmt.Sprintf("%03d", i) + rows[j].ID
					}
				}
				data[i] = cxEncode(b, cxSortByID(rows))
				inBytes += len(data[i])
			}
			var peak uint64
			var passes int
			var rowsMerged int64
			// The appliance's runtime settings (--memory-limit 384MiB runs
			// the collector at GOGC=400 under that soft limit).
			defer debug.SetGCPercent(debug.SetGCPercent(400))
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(384 << 20))
			for b.Loop() {
				b.StopTimer()
				root := b.TempDir()
				full := filepath.Join(root, filepath.FromSlash(dir))
				if err := os.MkdirAll(full, 0o750); err != nil {
					b.Fatal(err)
				}
				for i, d := range data {
					if err := os.WriteFile(filepath.Join(full, fmt.Sprintf("%02d.parquet", i)), d, 0o640); err != nil {
						b.Fatal(err)
					}
				}
				dest, err := localdest.New(root)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				stop := sampleHeap(&peak)
				b.StartTimer()
				rep, err := (&Compactor{Dest: dest, Now: func() time.Time { return cxNow }}).RunOnce(context.Background())
				b.StopTimer()
				stop()
				if err != nil {
					b.Fatal(err)
				}
				passes, rowsMerged = rep.Passes, rep.RowsIn
				if rep.Passes == 1 && rep.RowsOut != files*perFile {
					b.Fatalf("report %+v", rep)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(files*perFile)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(rowsMerged)*float64(b.N)/b.Elapsed().Seconds(), "merged-rows/s")
			b.ReportMetric(float64(passes), "passes")
			b.ReportMetric(float64(inBytes)/(1<<20), "input-MiB")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeap records, every 2 ms until stop is called, the largest heap
// (bytes in heap objects, live or not yet collected) into peak.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
