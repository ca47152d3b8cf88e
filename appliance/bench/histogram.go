package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, the HDR histogram layout in its
// simplest form: values below 256 ns each have their own bucket, and every power-of-two
// range above that is cut into 128 equal buckets. A bucket is therefore never wider than
// 1/128 of its lower bound, so a reported percentile is within 0.8% of the true one (it is
// the upper bound of its bucket, capped at the exact maximum). Recording is two shifts and
// an increment with no allocation; each worker owns one and they are merged at the end.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds; float so hours of samples cannot overflow
	min    int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histLinear  = 2 * histSub      // values below this are exact
	// Shifts run from 1 (values 256..511) to 63-histSubBits (the top of int64).
	histBuckets = histLinear + (63-histSubBits)*histSub
)

// HistogramPrecision is the largest relative error of a reported percentile.
const HistogramPrecision = 1.0 / histSub

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v int64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1) // v>>shift is in [128, 256)
	return histLinear + (shift-1)*histSub + int(v>>shift) - histSub
}

// bucketUpper is the largest value that falls in bucket i.
func bucketUpper(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	i -= histLinear
	shift := i/histSub + 1
	mant := int64(i%histSub + histSub)
	return (mant+1)<<shift - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the exact largest sample.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the exact smallest sample.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the exact mean of the samples.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the q-quantile (0 < q <= 1): the smallest recorded value v such that at
// least ceil(q*n) samples are <= v, reported as the upper bound of v's bucket and never
// above the maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.max))
		}
	}
	return time.Duration(h.max)
}
