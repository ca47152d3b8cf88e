package warehouse_test

import (
	"fmt"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	. "github.com/causality-io/causality/appliance/warehouse"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// BenchmarkSinkDrain measures the sink alone: b.N events wait in a real
// embedded JetStream, then a sink writes them all to a local lake (decode,
// Parquet, fsync, rename, ledger, acks). Reported as events/s of draining
// and the CPU cores the whole process (embedded NATS included) used.
//
//	go test -run '^$' -bench SinkDrain -benchtime 500000x ./appliance/warehouse/
func BenchmarkSinkDrain(b *testing.B) {
	// The appliance's runtime settings (see appliance.tuneGC): the
	// collector's pace decides much of this number.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(384 << 20))
	bs := testStream(b)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	const chunk = 1000
	for i := 0; i < b.N; i += chunk {
		n := min(chunk, b.N-i)
		envs := make([]*causalityv1.EventEnvelope, n)
		for j := range envs {
			envs[j] = benchEvent(i+j, ts)
		}
		publish(b, bs, envs, ts)
	}
	root := b.TempDir()
	cpu0 := cpuTime()
	b.ResetTimer()
	s := startSink(b, bs, root, SinkOptions{FlushInterval: 2 * time.Second})
	deadline := time.Now().Add(10 * time.Minute)
	for testutil.ToFloat64(s.metrics.RowsWritten) < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("drained %v of %d", testutil.ToFloat64(s.metrics.RowsWritten), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/b.Elapsed().Seconds(), "cores")
}

// benchEvent is a realistic screen view: full device context, a few params.
func benchEvent(i int, ts int64) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{
		Id: fmt.Sprintf("0193a1b2-%04x-7000-8000-%012x", i>>16, i), AppId: "shop", DeviceId: fmt.Sprintf("device-%06d", i%5000),
		TimestampMs: ts + int64(i%1000),
		DeviceContext: &causalityv1.DeviceContext{
			Platform: causalityv1.Platform_PLATFORM_IOS, OsVersion: "18.1", AppVersion: "4.2.0", BuildNumber: "420",
			DeviceModel: "iPhone16,2", Manufacturer: "Apple", ScreenWidth: 1290, ScreenHeight: 2796, Locale: "en_US",
			Timezone: "America/New_York", NetworkType: causalityv1.NetworkType_NETWORK_TYPE_WIFI, Carrier: "Verizon", SdkVersion: "1.8.0",
		},
		Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{
			ScreenName: "Product", PreviousScreen: "Home", Params: map[string]string{"ref": "tab_bar", "sku": fmt.Sprint(i % 300)},
		}},
	}
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
