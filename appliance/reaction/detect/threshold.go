package detect

import "math"

// observeThreshold fires when value leaves [min, max]. NaN and infinities are no
// numbers to compare: they never fire and are not kept as the last value.
func (d *detector) observeThreshold(st *appState, app string, t int64, eventID string, value float64) (Firing, bool) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return Firing{}, false
	}
	st.lastValue, st.hasValue = value, true
	sp := &d.spec
	var bound float64
	var side string
	switch {
	case sp.hasMin && value < sp.min:
		bound, side = sp.min, "below min"
	case sp.hasMax && value > sp.max:
		bound, side = sp.max, "above max"
	default:
		return Firing{}, false
	}
	if !d.allow(st, t) {
		return Firing{}, false
	}
	details := map[string]any{"value": value}
	if sp.hasMin {
		details["min"] = sp.min
	}
	if sp.hasMax {
		details["max"] = sp.max
	}
	return Firing{
		DetectorID: d.id,
		AppID:      app,
		Kind:       KindThreshold,
		At:         fromNano(t),
		DedupKey:   "event:" + eventID,
		EventID:    eventID,
		Message:    sp.label + " " + number(value) + " " + side + " " + number(bound),
		Observed:   value,
		Expected:   bound,
		Details:    details,
	}, true
}
