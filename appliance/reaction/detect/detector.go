package detect

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Detector is one configured detector.
type Detector struct {
	ID       string        // the detector's id (a UUID string)
	Config   Config        // from ParseConfig
	Cooldown time.Duration // after a firing for an app, further firings for that app are suppressed this long
	// Version changes whenever the detector's settings change (the engine passes
	// updated_at); state of another version is discarded.
	Version string
}

// Firing is one anomaly found.
type Firing struct {
	DetectorID string
	AppID      string
	Kind       string
	At         time.Time // the tipping event's time, or the end of the baseline interval; UTC
	// DedupKey is the same for the same firing, so that recording it twice is a no-op:
	// threshold "event:<event id>"; rate and count "window:<Unix ms of the end of the
	// sub-bucket in which it fired>"; baseline "interval:<Unix seconds of the interval start>".
	DedupKey string
	EventID  string         // the event that tipped it (threshold, rate, count); "" for baseline
	Message  string         // one plain sentence for people
	Observed float64        // the value, count or rate observed
	Expected float64        // the bound crossed, or the baseline mean
	Details  map[string]any // kind-specific numbers, keyed as the config and Status name them
}

// thresholdIdle is how long a threshold detector keeps an app without events: its state
// is only the last value and the cooldown, so a day keeps the admin page useful.
const thresholdIdle = int64(24 * time.Hour)

// labelMax bounds the CEL expression quoted in a threshold message; a longer one would
// drown the sentence, so it says "value" instead.
const labelMax = 60

// spec is a detector's settings checked and reduced to what the arithmetic needs. It is
// comparable, so Configure can tell whether state built under the old settings still
// fits even when the engine keeps the Version.
type spec struct {
	kind string

	// threshold
	label          string
	min, max       float64
	hasMin, hasMax bool

	// rate and count
	windowMs int64
	limit    float64

	// baseline
	intervalNs  int64
	sensitivity float64
	direction   string
	history     int
	warmup      int
	minExpected float64
	alpha       float64
}

// compile checks c as ParseConfig does, with its defaults, and keeps what Observe needs.
// The engine builds configs with ParseConfig, but a hand-made one must not make the
// arithmetic divide by zero.
func compile(c Config) (spec, error) {
	// check fills defaults in place: work on copies, the caller's Config stays as it is.
	cp := Config{Kind: c.Kind}
	switch c.Kind {
	case KindThreshold:
		if c.Threshold != nil {
			t := *c.Threshold
			cp.Threshold = &t
		}
	case KindRate:
		if c.Rate != nil {
			r := *c.Rate
			cp.Rate = &r
		}
	case KindCount:
		if c.Count != nil {
			n := *c.Count
			cp.Count = &n
		}
	case KindBaseline:
		if c.Baseline != nil {
			b := *c.Baseline
			cp.Baseline = &b
		}
	default:
		return spec{}, fmt.Errorf("kind: %q is not one of threshold, rate, count, baseline", c.Kind)
	}
	if cp.Threshold == nil && cp.Rate == nil && cp.Count == nil && cp.Baseline == nil {
		return spec{}, errors.New("config: no settings for kind " + c.Kind)
	}
	if err := cp.check(); err != nil {
		return spec{}, err
	}

	sp := spec{kind: c.Kind}
	switch {
	case cp.Threshold != nil:
		t := cp.Threshold
		sp.label = "value"
		if utf8.RuneCountInString(t.Value) <= labelMax {
			sp.label = t.Value
		}
		if t.Min != nil {
			sp.min, sp.hasMin = *t.Min, true
		}
		if t.Max != nil {
			sp.max, sp.hasMax = *t.Max, true
		}
	case cp.Rate != nil:
		sp.windowMs = 60_000
		sp.limit = cp.Rate.MaxPerMinute
	case cp.Count != nil:
		sp.windowMs = int64(cp.Count.WindowSeconds) * 1000
		sp.limit = float64(cp.Count.MaxCount)
	case cp.Baseline != nil:
		b := cp.Baseline
		sp.intervalNs = int64(b.IntervalSeconds) * int64(time.Second)
		sp.sensitivity = b.Sensitivity
		sp.direction = b.Direction
		sp.history = b.HistoryIntervals
		sp.warmup = b.WarmupIntervals
		sp.minExpected = b.MinExpected
		sp.alpha = 2 / float64(b.HistoryIntervals+1)
	}
	return sp, nil
}

// Internal times are Unix nanoseconds clamped to about 1824..2116, which leaves room to
// add a window or a cooldown, or to multiply milliseconds by 60, without overflow.
const (
	minNs = -(1 << 62)
	maxNs = 1 << 62
)

// unixNano is t in clamped Unix nanoseconds. It also drops the monotonic reading, so a
// restored state and a live one compare times the same way.
func unixNano(t time.Time) int64 {
	switch s := t.Unix(); {
	case s <= minNs/int64(time.Second):
		return minNs
	case s >= maxNs/int64(time.Second):
		return maxNs
	}
	return min(max(t.UnixNano(), minNs), maxNs)
}

func fromNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// floorDiv divides rounding toward minus infinity, so that times before 1970 fall into
// the bucket that contains them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
