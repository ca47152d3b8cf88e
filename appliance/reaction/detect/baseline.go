package detect

import (
	"math"
	"strconv"
	"time"
)

// baseline is one app's history in a baseline detector: the count of the open interval
// and an exponentially weighted mean and variance of the closed ones.
type baseline struct {
	open      int64 // index of the open interval: Unix ns / interval, floored
	count     int64 // events in the open interval
	mean      float64
	variance  float64
	seen      int   // closed intervals learned
	lastEvent int64 // index of the interval of the newest event
	partial   bool  // the open interval is the app's first: it will not be learned
}

// interval is the index of the interval that contains t (Unix ns); intervals are aligned
// to the Unix epoch.
func (sp *spec) interval(t int64) int64 { return floorDiv(t, sp.intervalNs) }

// deviation is what a count's distance from the mean is measured in: the EWMA standard
// deviation, but at least sqrt(mean), the spread of a Poisson count, and at least 1, so
// that a very steady series does not fire on a change of a few events.
func (b *baseline) deviation() float64 {
	return max(math.Sqrt(b.variance), math.Sqrt(b.mean), 1)
}

// observeBaseline counts an event. An event in a later interval first closes the open
// one (and any empty ones between), which may fire; a late event counts in the open one.
func (d *detector) observeBaseline(st *appState, app string, t int64) (Firing, bool) {
	f, fired := d.advance(st, app, d.spec.interval(t))
	b := st.base
	b.count++
	b.lastEvent = b.open
	return f, fired
}

// advance closes the intervals before interval k, learning each, and returns the first
// anomaly among them that the cooldown lets through. After a jump of more than
// history+1 intervals only that many are closed (see the package doc).
func (d *detector) advance(st *appState, app string, k int64) (Firing, bool) {
	b := st.base
	if k <= b.open {
		return Firing{}, false
	}
	sp := &d.spec
	n := min(k-b.open, int64(sp.history)+1)
	var f Firing
	fired := false
	for i := range n {
		c := int64(0)
		if i == 0 {
			c = b.count
		}
		start := b.open + i
		z, dev, mean, dir := b.close(sp, float64(c))
		end := (start + 1) * sp.intervalNs
		if dir != "" && !fired && d.allow(st, end) {
			f, fired = d.baselineFiring(app, start, end, c, mean, dev, z, dir), true
		}
	}
	b.open, b.count = k, 0
	st.dirty = true
	return f, fired
}

// close learns one closed interval with count c. Before that, when the history is warm
// and the mean large enough, it measures c against it: dir is "spike" or "drop" when c
// is Sensitivity deviations or more away in a direction the detector watches.
func (b *baseline) close(sp *spec, c float64) (z, dev, mean float64, dir string) {
	if b.partial {
		b.partial = false
		return 0, 0, 0, ""
	}
	if b.seen >= sp.warmup && b.mean >= sp.minExpected {
		mean, dev = b.mean, b.deviation()
		z = (c - mean) / dev
		switch {
		case z >= sp.sensitivity && sp.direction != DirectionDrop:
			dir = DirectionSpike
		case z <= -sp.sensitivity && sp.direction != DirectionSpike:
			dir = DirectionDrop
		}
	}
	if b.seen == 0 {
		b.mean, b.variance = c, 0
	} else {
		diff := c - b.mean
		b.mean += sp.alpha * diff
		b.variance = (1 - sp.alpha) * (b.variance + sp.alpha*diff*diff)
	}
	if b.seen < math.MaxInt32 {
		b.seen++
	}
	return z, dev, mean, dir
}

func (d *detector) baselineFiring(app string, start, end, c int64, mean, dev, z float64, dir string) Firing {
	sp := &d.spec
	seconds := sp.intervalNs / int64(time.Second)
	word := "above"
	if dir == DirectionDrop {
		word = "below"
	}
	return Firing{
		DetectorID: d.id,
		AppID:      app,
		Kind:       KindBaseline,
		At:         fromNano(end),
		DedupKey:   "interval:" + strconv.FormatInt(start*seconds, 10),
		Message: events(c) + " in " + intervalSpan(start*seconds, seconds) + ", " +
			decimal1(math.Abs(z)) + " deviations " + word + " the usual " + decimal1(mean),
		Observed: float64(c),
		Expected: mean,
		Details: map[string]any{
			"direction":        dir,
			"z":                z,
			"deviation":        dev,
			"mean":             mean,
			"sensitivity":      sp.sensitivity,
			"interval_seconds": seconds,
		},
	}
}
