package detect_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

// The benchmarks feed 1,000 apps round-robin, one millisecond apart, below every limit:
// the steady path of Observe, where the target is well under 200 ns and no allocation.
//
//	go test -run '^$' -bench Observe -benchmem ./appliance/reaction/detect/
//
// 2026-11-27, 2 vCPU "Oxide Virtual Turin-like Processor", go1.26.8: ObserveRate 51-64 ns/op,
// ObserveBaseline 55-59 ns/op, both 0 B/op and 0 allocs/op.

func benchObserve(b *testing.B, kind, settings string) {
	s := detect.NewSet()
	s.Configure([]detect.Detector{{ID: "d", Config: config(b, kind, settings), Cooldown: time.Minute, Version: "v1"}})
	apps := make([]string, 1000)
	for i := range apps {
		apps[i] = "app-" + strconv.Itoa(i)
	}
	// Warm every app's state so the loop measures the steady path, not map growth.
	when := t0
	for _, app := range apps {
		s.Observe("d", app, when, "e", 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		when = when.Add(time.Millisecond)
		if _, ok := s.Observe("d", apps[i], when, "e", 0); ok {
			b.Fatal("fired")
		}
		i++
		if i == len(apps) {
			i = 0
		}
	}
}

func BenchmarkObserveRate(b *testing.B) { benchObserve(b, "rate", `{"max_per_minute":1000000}`) }

func BenchmarkObserveBaseline(b *testing.B) { benchObserve(b, "baseline", `{}`) }
