package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Kinds of detector.
const (
	KindThreshold = "threshold" // a number computed from each event leaves [min, max]
	KindRate      = "rate"      // more matching events in the last minute than allowed
	KindCount     = "count"     // more matching events in a sliding window than allowed
	KindBaseline  = "baseline"  // the rate per interval departs from its own recent history
)

// Kinds lists every kind, for messages and forms.
var Kinds = []string{KindThreshold, KindRate, KindCount, KindBaseline}

// Config is a detector's kind and its settings; exactly the field of its kind is set.
type Config struct {
	Kind      string
	Threshold *ThresholdConfig
	Rate      *RateConfig
	Count     *CountConfig
	Baseline  *BaselineConfig
}

// ThresholdConfig fires when Value, evaluated on a matching event, is below Min or above
// Max. At least one bound is set.
type ThresholdConfig struct {
	// Value is a CEL expression of a number over event, category and type, e.g.
	// "event.purchase_complete.total_cents". The caller type-checks it.
	Value string   `json:"value"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// RateConfig fires when more than MaxPerMinute matching events arrived in the last 60
// seconds (a sliding window, per app).
type RateConfig struct {
	MaxPerMinute float64 `json:"max_per_minute"`
}

// CountConfig fires when more than MaxCount matching events arrived in the last
// WindowSeconds (a sliding window, per app).
type CountConfig struct {
	WindowSeconds int   `json:"window_seconds"`
	MaxCount      int64 `json:"max_count"`
}

// BaselineConfig compares the number of matching events in each closed interval with an
// exponentially weighted mean and deviation of the intervals before it, per app. It fires
// when the count is more than Sensitivity deviations above (a spike) or below (a drop) the
// mean. Intervals are closed on a timer, so a drop to zero fires although no event says so.
type BaselineConfig struct {
	IntervalSeconds  int     `json:"interval_seconds"`  // length of one interval; default 60
	Sensitivity      float64 `json:"sensitivity"`       // deviations from the mean that fire; default 3
	Direction        string  `json:"direction"`         // "both" (default), "spike" or "drop"
	HistoryIntervals int     `json:"history_intervals"` // how many intervals the mean mostly remembers; default 30
	WarmupIntervals  int     `json:"warmup_intervals"`  // intervals seen before it may fire; default 10
	MinExpected      float64 `json:"min_expected"`      // no firing while the mean is below this; default 1
}

// Directions of a baseline detector.
const (
	DirectionBoth  = "both"
	DirectionSpike = "spike"
	DirectionDrop  = "drop"
)

// ParseConfig reads the JSON settings of a detector of kind, fills defaults and checks
// them. Errors name the field ("config.max_per_minute: ...") so that a form can show
// them next to it.
func ParseConfig(kind string, raw json.RawMessage) (Config, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage(`{}`)
	}
	c := Config{Kind: kind}
	var target any
	switch kind {
	case KindThreshold:
		c.Threshold = &ThresholdConfig{}
		target = c.Threshold
	case KindRate:
		c.Rate = &RateConfig{}
		target = c.Rate
	case KindCount:
		c.Count = &CountConfig{}
		target = c.Count
	case KindBaseline:
		c.Baseline = &BaselineConfig{}
		target = c.Baseline
	case "":
		return Config{}, errors.New("kind: required (threshold, rate, count or baseline)")
	default:
		return Config{}, fmt.Errorf("kind: %q is not one of threshold, rate, count, baseline", kind)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return Config{}, fmt.Errorf("config: %s", describeJSONError(err))
	}
	if dec.More() {
		return Config{}, errors.New("config: one JSON object expected")
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: must be a %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func (c *Config) check() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("config.%s: %s", field, msg)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Threshold != nil:
		t := c.Threshold
		if t.Value == "" {
			bad("value", "required: a CEL expression of a number, e.g. event.purchase_complete.total_cents")
		}
		if t.Min == nil && t.Max == nil {
			bad("min", "set min, max or both")
		}
		if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
			bad("max", fmt.Sprintf("must not be below min (%g)", *t.Min))
		}
	case c.Rate != nil:
		if !(c.Rate.MaxPerMinute > 0) || !finite(c.Rate.MaxPerMinute) {
			bad("max_per_minute", "required: events per minute above which it fires, more than 0")
		}
	case c.Count != nil:
		if c.Count.WindowSeconds <= 0 || c.Count.WindowSeconds > 7*24*3600 {
			bad("window_seconds", "required: 1 to 604800 (a week)")
		}
		if c.Count.MaxCount < 0 {
			bad("max_count", "must be 0 or more (it fires above it)")
		}
	case c.Baseline != nil:
		b := c.Baseline
		if b.IntervalSeconds == 0 {
			b.IntervalSeconds = 60
		}
		if b.Sensitivity == 0 {
			b.Sensitivity = 3
		}
		if b.Direction == "" {
			b.Direction = DirectionBoth
		}
		if b.HistoryIntervals == 0 {
			b.HistoryIntervals = 30
		}
		if b.WarmupIntervals == 0 {
			b.WarmupIntervals = 10
		}
		if b.MinExpected == 0 {
			b.MinExpected = 1
		}
		if b.IntervalSeconds < 1 || b.IntervalSeconds > 24*3600 {
			bad("interval_seconds", "1 to 86400")
		}
		if !(b.Sensitivity > 0) || !finite(b.Sensitivity) {
			bad("sensitivity", "more than 0 (deviations from the mean; 3 is a common choice)")
		}
		if b.Direction != DirectionBoth && b.Direction != DirectionSpike && b.Direction != DirectionDrop {
			bad("direction", `"both", "spike" or "drop"`)
		}
		if b.HistoryIntervals < 2 || b.HistoryIntervals > 10000 {
			bad("history_intervals", "2 to 10000")
		}
		if b.WarmupIntervals < 1 || b.WarmupIntervals > 10000 {
			bad("warmup_intervals", "1 to 10000")
		}
		if b.MinExpected < 0 || !finite(b.MinExpected) {
			bad("min_expected", "0 or more")
		}
	}
	return errors.Join(errs...)
}

// JSON is the configuration with its defaults filled in, as stored and shown.
func (c Config) JSON() json.RawMessage {
	var v any
	switch {
	case c.Threshold != nil:
		v = c.Threshold
	case c.Rate != nil:
		v = c.Rate
	case c.Count != nil:
		v = c.Count
	case c.Baseline != nil:
		v = c.Baseline
	default:
		return json.RawMessage(`{}`)
	}
	b, err := json.Marshal(v)
	if err != nil { // plain structs of numbers and strings
		panic(fmt.Sprintf("detect: marshal config: %v", err))
	}
	return b
}
