package detect

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Set holds the state of every configured detector, per detector and per app. One
// goroutine calls Configure, Observe, Tick, Dirty and Restore; Status may be called
// from others at the same time.
type Set struct {
	mu   sync.Mutex
	dets map[string]*detector
	now  int64 // the latest Tick, Unix ns: Status slides the windows to it
}

type detector struct {
	id       string
	version  string
	spec     spec
	cooldown int64 // ns
	apps     map[string]*appState
	gone     map[string]struct{} // apps forgotten since the last Dirty, reported as null
}

// appState is one app's state in one detector; exactly the part of its kind is set.
type appState struct {
	lastSeen  int64 // Unix ns of the newest event
	lastFired int64 // Unix ns of the latest firing, when fired
	fired     bool
	dirty     bool // changed since the last Dirty

	lastValue float64 // threshold: the last finite value
	hasValue  bool
	win       *window   // rate and count
	base      *baseline // baseline
}

// NewSet returns a set with no detectors.
func NewSet() *Set {
	return &Set{dets: map[string]*detector{}}
}

// Configure replaces the set of detectors: new ones start empty, removed ones are
// dropped, ones with the same ID and Version keep their state, and a changed Version
// resets that detector's state. A detector whose Config fails ParseConfig's checks is
// left out, as if unknown: it cannot be evaluated.
func (s *Set) Configure(ds []Detector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*detector, len(ds))
	for _, d := range ds {
		sp, err := compile(d.Config)
		if err != nil {
			continue
		}
		cooldown := max(int64(d.Cooldown), 0)
		if old := s.dets[d.ID]; old != nil && old.version == d.Version && old.spec == sp {
			old.cooldown = cooldown
			next[d.ID] = old
			continue
		}
		next[d.ID] = &detector{
			id: d.ID, version: d.Version, spec: sp, cooldown: cooldown,
			apps: map[string]*appState{}, gone: map[string]struct{}{},
		}
	}
	s.dets = next
}

// Observe records one matching event of app at time at (the server receive time of the
// event). value is used by threshold detectors only. It returns the firing when one
// happens and the cooldown does not suppress it; an unknown detector returns false.
func (s *Set) Observe(detectorID, app string, at time.Time, eventID string, value float64) (Firing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dets[detectorID]
	if d == nil {
		return Firing{}, false
	}
	t := unixNano(at)
	st := d.apps[app]
	if st == nil {
		st = d.newApp(t)
		// The key outlives the call: do not pin the caller's buffer.
		app = strings.Clone(app)
		d.apps[app] = st
		delete(d.gone, app)
	}
	st.dirty = true
	st.lastSeen = max(st.lastSeen, t)
	switch d.spec.kind {
	case KindThreshold:
		return d.observeThreshold(st, app, t, eventID, value)
	case KindRate, KindCount:
		return d.observeWindow(st, app, t, eventID)
	case KindBaseline:
		return d.observeBaseline(st, app, t)
	}
	return Firing{}, false
}

func (d *detector) newApp(t int64) *appState {
	st := &appState{lastSeen: t}
	switch d.spec.kind {
	case KindRate, KindCount:
		st.win = &window{head: d.spec.bucket(t)}
	case KindBaseline:
		k := d.spec.interval(t)
		st.base = &baseline{open: k, lastEvent: k, partial: true}
	}
	return st
}

// Tick advances time to now for every detector and app: baseline intervals that ended at
// or before now are closed, counting zero for an app without events in them, which is
// how a drop to zero is found without any event. Windows of rate and count detectors
// slide by themselves and never fire here. Apps that went quiet are forgotten (see the
// package doc). It returns the firings in time order.
func (s *Set) Tick(now time.Time) []Firing {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := unixNano(now)
	s.now = max(s.now, t)
	var out []Firing
	for _, d := range s.dets {
		for app, st := range d.apps {
			if st.base != nil {
				if f, ok := d.advance(st, app, d.spec.interval(t)); ok {
					out = append(out, f)
				}
			}
			if d.idle(st, t) {
				delete(d.apps, app)
				d.gone[app] = struct{}{}
			}
		}
	}
	slices.SortFunc(out, func(a, b Firing) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.DetectorID, b.DetectorID), cmp.Compare(a.AppID, b.AppID))
	})
	return out
}

// idle tells whether app state may be forgotten at now: see the package doc.
func (d *detector) idle(st *appState, now int64) bool {
	if st.fired && now-st.lastFired < d.cooldown {
		return false
	}
	switch d.spec.kind {
	case KindThreshold:
		return now-st.lastSeen > thresholdIdle
	case KindRate, KindCount:
		return now-st.lastSeen > 2*d.spec.windowMs*int64(time.Millisecond)
	case KindBaseline:
		b := st.base
		return b.count == 0 && b.mean < 0.01 && b.open-b.lastEvent > int64(d.spec.history)
	}
	return false
}

// allow applies the cooldown to a firing at t and, when it passes, records it.
func (d *detector) allow(st *appState, t int64) bool {
	if st.fired && t-st.lastFired < d.cooldown {
		return false
	}
	if !st.fired || t > st.lastFired {
		st.lastFired = t
	}
	st.fired = true
	return true
}

// AppStatus is what the admin UI shows per detector and app.
type AppStatus struct {
	AppID string
	// WindowCount is, for rate and count, the events in the sliding window as of the
	// latest event or Tick; for baseline, the events in the open interval.
	WindowCount float64
	Mean        float64   // baseline: the EWMA mean per interval
	Deviation   float64   // baseline: the deviation a count is measured in, floors included
	Intervals   int       // baseline: closed intervals learned (warm when >= warmup)
	LastFiredAt time.Time // zero if never
	LastValue   float64   // threshold: the last finite value observed
}

// Status returns the state of every app of a detector, sorted by AppID; nil for an
// unknown detector.
func (s *Set) Status(detectorID string) []AppStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dets[detectorID]
	if d == nil {
		return nil
	}
	out := make([]AppStatus, 0, len(d.apps))
	for app, st := range d.apps {
		a := AppStatus{AppID: app, LastValue: st.lastValue}
		if st.fired {
			a.LastFiredAt = fromNano(st.lastFired)
		}
		switch {
		case st.win != nil:
			a.WindowCount = float64(st.win.countAt(d.spec.bucket(s.now)))
		case st.base != nil:
			b := st.base
			a.WindowCount = float64(b.count)
			a.Mean = b.mean
			a.Deviation = b.deviation()
			a.Intervals = b.seen
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b AppStatus) int { return cmp.Compare(a.AppID, b.AppID) })
	return out
}
