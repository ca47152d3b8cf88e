package detect_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

// scenarioDetectors has one detector of each kind; every event goes to all of them.
func scenarioDetectors(t testing.TB) []detect.Detector {
	return []detect.Detector{
		{ID: "th", Config: config(t, "threshold", `{"value":"v","max":100}`), Cooldown: time.Minute, Version: "v1"},
		{ID: "ra", Config: config(t, "rate", `{"max_per_minute":50}`), Cooldown: 30 * time.Second, Version: "v1"},
		{ID: "co", Config: config(t, "count", `{"window_seconds":10,"max_count":12}`), Version: "v1"},
		{ID: "ba", Config: config(t, "baseline", `{"warmup_intervals":5,"history_intervals":10}`), Cooldown: 2 * time.Minute, Version: "v1"},
	}
}

func scenarioSet(t testing.TB) *detect.Set {
	s := detect.NewSet()
	s.Configure(scenarioDetectors(t))
	return s
}

// step is one event (to every detector) or, when tick, one Tick.
type step struct {
	tick  bool
	app   string
	at    time.Time
	id    string
	value float64
}

// script is two hours of three apps: "a" steady with a burst, "b" steady with 20 silent
// minutes, "c" starting late; events slightly out of order within each second, and a
// Tick every 5 seconds. It is fixed by its seed.
func script() []step {
	r := rand.New(rand.NewPCG(7, 11))
	perMinute := func(app string, minute int) float64 {
		switch {
		case app == "a" && minute >= 50 && minute < 52:
			return 200
		case app == "a":
			return 40
		case app == "b" && minute >= 70 && minute < 90:
			return 0
		case app == "b":
			return 20
		case minute >= 30:
			return 30
		}
		return 0
	}
	var steps []step
	n := 0
	for sec := range 2 * 3600 {
		var batch []step
		for _, app := range []string{"a", "b", "c"} {
			lambda := perMinute(app, sec/60) / 60
			k := int(lambda)
			if r.Float64() < lambda-float64(k) {
				k++
			}
			for range k {
				n++
				batch = append(batch, step{
					app:   app,
					at:    at(time.Duration(sec)*time.Second + time.Duration(r.IntN(1000))*time.Millisecond),
					id:    fmt.Sprintf("e%d", n),
					value: float64(r.IntN(103)),
				})
			}
		}
		r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		steps = append(steps, batch...)
		if sec%5 == 4 {
			steps = append(steps, step{tick: true, at: at(time.Duration(sec+1) * time.Second)})
		}
	}
	return steps
}

func run(t testing.TB, s *detect.Set, steps []step) []detect.Firing {
	var fs []detect.Firing
	for _, st := range steps {
		if st.tick {
			fs = append(fs, s.Tick(st.at)...)
			continue
		}
		for _, d := range scenarioDetectors(t) {
			if f, ok := s.Observe(d.ID, st.app, st.at, st.id, st.value); ok {
				fs = append(fs, f)
			}
		}
	}
	return fs
}

// store keeps saved states as the engine's table would.
type store map[[2]string]json.RawMessage

func (db store) save(s *detect.Set) {
	for _, st := range s.Dirty() {
		k := [2]string{st.DetectorID, st.AppID}
		if string(st.State) == "null" {
			delete(db, k)
			continue
		}
		db[k] = st.State
	}
}

func (db store) states() []detect.SavedState {
	var out []detect.SavedState
	for k, v := range db {
		out = append(out, detect.SavedState{DetectorID: k[0], AppID: k[1], State: v})
	}
	return out
}

func (db store) clone() store {
	c := store{}
	for k, v := range db {
		c[k] = v
	}
	return c
}

func (db store) restore(t testing.TB) *detect.Set {
	t.Helper()
	s := scenarioSet(t)
	if n := s.Restore(db.states()); n != len(db) {
		t.Fatalf("restored %d of %d states", n, len(db))
	}
	return s
}

// indexAt is the index of the first step at or after offset d.
func indexAt(steps []step, d time.Duration) int {
	for i, st := range steps {
		if !st.at.Before(at(d)) {
			return i
		}
	}
	return len(steps)
}

func kinds(fs []detect.Firing) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.Kind]++
	}
	return m
}

func TestDirtyRestoreRoundTrip(t *testing.T) {
	steps := script()
	want := run(t, scenarioSet(t), steps)
	if k := kinds(want); len(k) != 4 {
		t.Fatalf("the scenario fires only %v; it should exercise every kind", k)
	}
	for _, split := range []int{len(steps) / 3, len(steps) / 2, 2 * len(steps) / 3} {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			s := scenarioSet(t)
			db := store{}
			var got []detect.Firing
			// Save every 1,000 steps as the engine does every few seconds, then stop.
			for i := 0; i < split; i += 1000 {
				got = append(got, run(t, s, steps[i:min(i+1000, split)])...)
				db.save(s)
			}
			after := run(t, db.restore(t), steps[split:])
			if len(after) == 0 {
				t.Fatal("nothing fired after the restore; the comparison would prove nothing")
			}
			got = append(got, after...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with a restore at step %d: %d firings, without: %d", split, len(got), len(want))
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("first difference at %d:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestDedupKeysDeterministic replays events after a crash: the engine recorded firings
// the saved state does not know of yet, restores the older state and sees the same
// events again. The firings come back with the same keys, so recording them is a no-op.
func TestDedupKeysDeterministic(t *testing.T) {
	steps := script()
	// From before a's burst to after b's silence.
	from, to := indexAt(steps, 45*time.Minute), indexAt(steps, 95*time.Minute)
	s := scenarioSet(t)
	run(t, s, steps[:from])
	db := store{}
	db.save(s)
	first := run(t, s, steps[from:to])
	if k := kinds(first); len(k) != 4 {
		t.Fatalf("the replayed part fires only %v", k)
	}
	for replay := range 2 {
		again := run(t, db.clone().restore(t), steps[from:to])
		if len(again) != len(first) {
			t.Fatalf("replay %d: %d firings, first time %d", replay, len(again), len(first))
		}
		for i := range first {
			if again[i].DedupKey != first[i].DedupKey || again[i].DetectorID != first[i].DetectorID || again[i].AppID != first[i].AppID {
				t.Fatalf("replay %d, firing %d: key %s %s %s, first time %s %s %s", replay, i,
					again[i].DetectorID, again[i].AppID, again[i].DedupKey, first[i].DetectorID, first[i].AppID, first[i].DedupKey)
			}
		}
	}
	prefixes := map[string]string{"threshold": "event:e", "rate": "window:", "count": "window:", "baseline": "interval:"}
	for _, f := range first {
		if !strings.HasPrefix(f.DedupKey, prefixes[f.Kind]) {
			t.Errorf("%s firing has DedupKey %q", f.Kind, f.DedupKey)
		}
	}
}

func TestDirtyReturnsOnlyChanges(t *testing.T) {
	s := scenarioSet(t)
	s.Observe("ra", "a", t0, "e1", 0)
	s.Observe("th", "b", t0, "e2", 5)
	if got := s.Dirty(); len(got) != 2 || got[0].DetectorID != "ra" || got[1].DetectorID != "th" {
		t.Fatalf("first Dirty = %v", got)
	}
	if got := s.Dirty(); len(got) != 0 {
		t.Fatalf("second Dirty = %v, want nothing", got)
	}
	s.Observe("th", "b", at(time.Second), "e3", 6)
	got := s.Dirty()
	if len(got) != 1 || got[0].AppID != "b" || !strings.Contains(string(got[0].State), `"version":"v1"`) {
		t.Fatalf("Dirty after one event = %v", got)
	}
}

func TestRestoreIgnores(t *testing.T) {
	valid := func(id string) json.RawMessage {
		s := scenarioSet(t)
		s.Observe(id, "a", t0, "e", 5)
		s.Tick(at(2 * time.Minute))
		return s.Dirty()[0].State
	}
	tests := []struct {
		name  string
		id    string
		state string
		ok    bool
	}{
		{"valid rate", "ra", string(valid("ra")), true},
		{"valid baseline", "ba", string(valid("ba")), true},
		{"valid threshold", "th", string(valid("th")), true},
		{"unknown detector", "nope", string(valid("ra")), false},
		{"other version", "ra", strings.Replace(string(valid("ra")), `"v1"`, `"v0"`, 1), false},
		{"other kind", "co", string(valid("ra")), false},
		{"undecodable", "ra", `{"version":`, false},
		{"null", "ra", `null`, false},
		{"empty", "ra", ``, false},
		{"negative count", "ra", `{"version":"v1","kind":"rate","last_seen_ns":0,"window":{"head":0,"counts":[1,-1]}}`, false},
		{"too many buckets", "ra", `{"version":"v1","kind":"rate","last_seen_ns":0,"window":{"head":0,"counts":[` + strings.Repeat("1,", 60) + `1]}}`, false},
		{"head out of time", "ra", `{"version":"v1","kind":"rate","last_seen_ns":0,"window":{"head":9223372036854775807}}`, false},
		{"no window", "ra", `{"version":"v1","kind":"rate","last_seen_ns":0}`, false},
		{"negative mean", "ba", `{"version":"v1","kind":"baseline","last_seen_ns":0,"baseline":{"open":10,"count":0,"mean":-1,"variance":0,"seen":1,"last_event":10}}`, false},
		{"last event after open", "ba", `{"version":"v1","kind":"baseline","last_seen_ns":0,"baseline":{"open":10,"count":0,"mean":1,"variance":0,"seen":1,"last_event":11}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scenarioSet(t)
			n := s.Restore([]detect.SavedState{{DetectorID: tt.id, AppID: "a", State: json.RawMessage(tt.state)}})
			if (n == 1) != tt.ok {
				t.Errorf("restored %d, want ok = %v", n, tt.ok)
			}
		})
	}
}

// FuzzRestore feeds arbitrary bytes as saved state, then uses the set: nothing panics,
// and what Dirty writes always restores.
func FuzzRestore(f *testing.F) {
	seed := scenarioSet(f)
	for i, id := range []string{"th", "ra", "co", "ba"} {
		for j := range 30 {
			seed.Observe(id, "a", at(time.Duration(j)*7*time.Second), fmt.Sprint(j), float64(i*j))
		}
	}
	seed.Tick(at(5 * time.Minute))
	for _, st := range seed.Dirty() {
		f.Add([]byte(st.State), int64(0), 5.0)
	}
	f.Add([]byte(`{"version":"v1","kind":"rate","last_seen_ns":0,"window":{"head":-1,"counts":[1]}}`), int64(math.MinInt64), math.NaN())
	f.Add([]byte(`{"version":"v1","kind":"baseline","last_seen_ns":0,"baseline":{"open":-9223372036854775808}}`), int64(math.MaxInt64), math.Inf(1))
	f.Add([]byte(`null`), int64(-1), 0.0)
	f.Fuzz(func(t *testing.T, data []byte, offset int64, value float64) {
		s := scenarioSet(t)
		for _, d := range scenarioDetectors(t) {
			s.Restore([]detect.SavedState{{DetectorID: d.ID, AppID: "a", State: data}})
		}
		times := []time.Time{
			{}, t0, t0.Add(time.Duration(offset)), time.Unix(0, offset), t0.Add(-time.Duration(offset)),
			time.Unix(math.MaxInt64/2, 0), time.Unix(math.MinInt64/2, 0),
		}
		for _, when := range times {
			for _, d := range scenarioDetectors(t) {
				s.Observe(d.ID, "a", when, "e", value)
				s.Observe(d.ID, "b", when, "e", value)
			}
			s.Tick(when)
			for _, d := range scenarioDetectors(t) {
				s.Status(d.ID)
			}
		}
		var saved []detect.SavedState
		for _, st := range s.Dirty() {
			if string(st.State) != "null" {
				saved = append(saved, st)
			}
		}
		if n := scenarioSet(t).Restore(saved); n != len(saved) {
			t.Fatalf("restored %d of the %d states Dirty wrote", n, len(saved))
		}
	})
}
