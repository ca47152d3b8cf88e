package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramExactBelow256ns(t *testing.T) {
	var h Histogram
	for v := range 200 {
		h.Record(time.Duration(v + 1)) // 1..200 ns
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 100}, {0.9, 180}, {0.99, 198}, {0.999, 200}, {1, 200}} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%g) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if h.Min() != 1 || h.Max() != 200 || h.Count() != 200 {
		t.Errorf("min %d max %d count %d", h.Min(), h.Max(), h.Count())
	}
}

func TestHistogramPercentilesWithinPrecision(t *testing.T) {
	// 1..100000 µs: the q-quantile is q*100000 µs exactly.
	var h Histogram
	for v := 1; v <= 100000; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := time.Duration(q*100000) * time.Microsecond
		got := h.Quantile(q)
		if got < want || float64(got-want) > HistogramPrecision*float64(want) {
			t.Errorf("Quantile(%g) = %s, want %s to +%.1f%%", q, got, want, 100*HistogramPrecision)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Quantile(1) != h.Max() {
		t.Errorf("max %s, Quantile(1) %s", h.Max(), h.Quantile(1))
	}
	if m := h.Mean(); m != 50000500*time.Nanosecond {
		t.Errorf("mean %s, want 50.0005ms", m)
	}
}

func TestHistogramMatchesSortedSamples(t *testing.T) {
	// Long-tailed random latencies from 50 µs to minutes, split over workers and merged.
	r := rand.New(rand.NewPCG(7, 7))
	var parts [4]Histogram
	var all []time.Duration
	for i := range 50000 {
		d := time.Duration(50e3 * math.Exp(min(r.ExpFloat64()*1.5, 14))) // up to ~1 min
		parts[i%4].Record(d)
		all = append(all, d)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.Quantile(q)
		if got < want || float64(got-want) > HistogramPrecision*float64(want) {
			t.Errorf("Quantile(%g) = %s, exact %s", q, got, want)
		}
	}
	if h.Count() != uint64(len(all)) || h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("count/min/max %d %s %s, want %d %s %s", h.Count(), h.Min(), h.Max(), len(all), all[0], all[len(all)-1])
	}
}

func TestHistogramBucketsAreContiguous(t *testing.T) {
	// Every bucket's upper bound + 1 starts the next bucket, up to the top of int64.
	for i := range histBuckets - 1 {
		u := bucketUpper(i)
		if u == math.MaxInt64 {
			break
		}
		if bucketOf(u) != i || bucketOf(u+1) != i+1 {
			t.Fatalf("bucket %d ends at %d: bucketOf(%d)=%d, bucketOf(%d)=%d", i, u, u, bucketOf(u), u+1, bucketOf(u+1))
		}
	}
	if b := bucketOf(math.MaxInt64); b >= histBuckets {
		t.Fatalf("bucketOf(MaxInt64) = %d, out of %d", b, histBuckets)
	}
}

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("an empty histogram reports zeros")
	}
}
