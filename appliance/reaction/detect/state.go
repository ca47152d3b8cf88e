package detect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
)

// SavedState is one detector and app state as JSON, which carries the detector's
// Version. State is null for an app that was forgotten (see the package doc): the engine
// may delete what it saved for it, and Restore ignores null.
type SavedState struct {
	DetectorID string
	AppID      string
	State      json.RawMessage
}

// savedApp is the JSON of one app's state. Times are Unix nanoseconds, so that a restored
// state compares exactly as the live one did; floats round-trip exactly in JSON.
type savedApp struct {
	Version   string         `json:"version"`
	Kind      string         `json:"kind"`
	LastSeen  int64          `json:"last_seen_ns"`
	LastFired *int64         `json:"last_fired_ns,omitempty"`
	LastValue *float64       `json:"last_value,omitempty"` // threshold
	Window    *savedWindow   `json:"window,omitempty"`     // rate and count
	Baseline  *savedBaseline `json:"baseline,omitempty"`   // baseline
}

type savedWindow struct {
	Head   int64   `json:"head"`             // index of the newest sub-bucket
	Counts []int64 `json:"counts,omitempty"` // Counts[i] is sub-bucket Head-i; trailing zeros left out
}

type savedBaseline struct {
	Open      int64   `json:"open"` // index of the open interval
	Count     int64   `json:"count"`
	Mean      float64 `json:"mean"`
	Variance  float64 `json:"variance"`
	Seen      int     `json:"seen"`
	LastEvent int64   `json:"last_event"`
	Partial   bool    `json:"partial,omitempty"`
}

// maxCount bounds restored counts, so that sums and squares stay exact and finite.
const maxCount = 1 << 53

// Dirty returns the states that changed since the previous call, and those forgotten
// (State null), sorted by detector and app; they are clean afterwards. The engine saves
// them every few seconds and at stop.
func (s *Set) Dirty() []SavedState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SavedState
	for id, d := range s.dets {
		for app := range d.gone {
			out = append(out, SavedState{DetectorID: id, AppID: app, State: json.RawMessage("null")})
		}
		clear(d.gone)
		for app, st := range d.apps {
			if !st.dirty {
				continue
			}
			raw, err := json.Marshal(d.save(st))
			if err != nil { // only a non-finite float fails, and none is ever stored
				continue
			}
			st.dirty = false
			out = append(out, SavedState{DetectorID: id, AppID: app, State: raw})
		}
	}
	slices.SortFunc(out, func(a, b SavedState) int {
		return cmp.Or(cmp.Compare(a.DetectorID, b.DetectorID), cmp.Compare(a.AppID, b.AppID))
	})
	return out
}

func (d *detector) save(st *appState) savedApp {
	sa := savedApp{Version: d.version, Kind: d.spec.kind, LastSeen: st.lastSeen}
	if st.fired {
		sa.LastFired = &st.lastFired
	}
	if st.hasValue {
		sa.LastValue = &st.lastValue
	}
	if w := st.win; w != nil {
		sw := &savedWindow{Head: w.head}
		n := ringSize
		for n > 0 && w.buckets[slot(w.head-int64(n-1))] == 0 {
			n--
		}
		if n > 0 {
			sw.Counts = make([]int64, n)
			for i := range sw.Counts {
				sw.Counts[i] = w.buckets[slot(w.head-int64(i))]
			}
		}
		sa.Window = sw
	}
	if b := st.base; b != nil {
		sa.Baseline = &savedBaseline{
			Open: b.open, Count: b.count, Mean: b.mean, Variance: b.variance,
			Seen: b.seen, LastEvent: b.lastEvent, Partial: b.partial,
		}
	}
	return sa
}

// Restore loads saved states; call it after Configure. States of unknown detectors, of
// another version or kind, and those that do not decode or hold impossible numbers are
// ignored. It returns how many were restored.
func (s *Set) Restore(states []SavedState) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ss := range states {
		d := s.dets[ss.DetectorID]
		if d == nil {
			continue
		}
		st, ok := d.load(ss.State)
		if !ok {
			continue
		}
		d.apps[strings.Clone(ss.AppID)] = st
		delete(d.gone, ss.AppID)
		n++
	}
	return n
}

// load decodes and checks one saved state of d; a state that would not arise from
// Observe and Tick is refused whole, so no later arithmetic sees it.
func (d *detector) load(raw json.RawMessage) (*appState, bool) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, false
	}
	var sa savedApp
	if err := json.Unmarshal(raw, &sa); err != nil {
		return nil, false
	}
	if sa.Version != d.version || sa.Kind != d.spec.kind || !inTime(sa.LastSeen) {
		return nil, false
	}
	st := &appState{lastSeen: sa.LastSeen}
	if sa.LastFired != nil {
		if !inTime(*sa.LastFired) {
			return nil, false
		}
		st.lastFired, st.fired = *sa.LastFired, true
	}
	sp := &d.spec
	switch sp.kind {
	case KindThreshold:
		if sa.Window != nil || sa.Baseline != nil {
			return nil, false
		}
		if v := sa.LastValue; v != nil {
			if math.IsNaN(*v) || math.IsInf(*v, 0) {
				return nil, false
			}
			st.lastValue, st.hasValue = *v, true
		}
	case KindRate, KindCount:
		sw := sa.Window
		if sw == nil || sa.Baseline != nil || sa.LastValue != nil || len(sw.Counts) > ringSize ||
			sw.Head < sp.bucket(minNs) || sw.Head > sp.bucket(maxNs) {
			return nil, false
		}
		w := &window{head: sw.Head}
		for i, c := range sw.Counts {
			if c < 0 || c > maxCount {
				return nil, false
			}
			w.buckets[slot(sw.Head-int64(i))] = c
			w.total += c
		}
		st.win = w
	case KindBaseline:
		sb := sa.Baseline
		if sb == nil || sa.Window != nil || sa.LastValue != nil ||
			sb.Open < sp.interval(minNs) || sb.Open > sp.interval(maxNs) ||
			sb.LastEvent < sp.interval(minNs) || sb.LastEvent > sb.Open ||
			sb.Count < 0 || sb.Count > maxCount || sb.Seen < 0 ||
			!finiteIn(sb.Mean, maxCount) || !finiteIn(sb.Variance, maxCount*maxCount) {
			return nil, false
		}
		st.base = &baseline{
			open: sb.Open, count: sb.Count, mean: sb.Mean, variance: sb.Variance,
			seen: sb.Seen, lastEvent: sb.LastEvent, partial: sb.Partial,
		}
	}
	return st, true
}

func inTime(ns int64) bool { return ns >= minNs && ns <= maxNs }

// finiteIn tells whether v is a number in [0, limit].
func finiteIn(v, limit float64) bool { return v >= 0 && v <= limit }
