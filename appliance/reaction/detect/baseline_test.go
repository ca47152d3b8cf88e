package detect_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

// driver feeds one app's traffic minute by minute, calling Tick every 10 seconds as the
// engine's timer would, and collects the firings of both.
type driver struct {
	t   testing.TB
	s   *detect.Set
	app string
	now time.Time
	fs  []detect.Firing
}

func newDriver(t testing.TB, s *detect.Set) *driver {
	return &driver{t: t, s: s, app: "a", now: t0}
}

// minute sends n events evenly over the next minute.
func (d *driver) minute(n int) {
	start := d.now
	i := 0
	for k := 1; k <= 6; k++ {
		tick := start.Add(time.Duration(k) * 10 * time.Second)
		for ; i < n; i++ {
			when := start.Add(time.Duration(i) * time.Minute / time.Duration(n))
			if !when.Before(tick) {
				break
			}
			observe(d.s, &d.fs, d.app, when, "", 0)
		}
		d.fs = append(d.fs, d.s.Tick(tick)...)
	}
	d.now = start.Add(time.Minute)
}

// steady sends minutes of about perMinute events, ± noise, from a fixed seed.
func (d *driver) steady(minutes, perMinute, noise int) {
	r := rand.New(rand.NewPCG(1, 2))
	for range minutes {
		d.minute(perMinute - noise + r.IntN(2*noise+1))
	}
}

// firedAt lists the times of the firings, as offsets from t0.
func firedAt(fs []detect.Firing) []time.Duration {
	out := make([]time.Duration, len(fs))
	for i, f := range fs {
		out[i] = f.At.Sub(t0)
	}
	return out
}

func TestBaselineSteadyThenSpike(t *testing.T) {
	d := newDriver(t, newSet(t, "baseline", `{}`, 0))
	d.steady(20, 100, 10)
	if len(d.fs) != 0 {
		t.Fatalf("steady traffic fired at %v: %+v", firedAt(d.fs), d.fs[0])
	}
	d.minute(400)
	if len(d.fs) != 1 {
		t.Fatalf("spike fired %d times, want 1: %+v", len(d.fs), d.fs)
	}
	f := d.fs[0]
	if f.Kind != "baseline" || f.EventID != "" || f.Observed != 400 || !f.At.Equal(at(21*time.Minute)) {
		t.Errorf("firing = %+v", f)
	}
	if want := "interval:" + strconv.FormatInt(at(20*time.Minute).Unix(), 10); f.DedupKey != want {
		t.Errorf("DedupKey = %q, want %q", f.DedupKey, want)
	}
	if f.Expected < 90 || f.Expected > 110 {
		t.Errorf("Expected (mean) = %v, want about 100", f.Expected)
	}
	if !strings.HasPrefix(f.Message, "400 events in the minute from 10:20 UTC, ") ||
		!strings.Contains(f.Message, " deviations above the usual ") {
		t.Errorf("message = %q", f.Message)
	}
	if f.Details["direction"] != "spike" || f.Details["z"].(float64) < 3 {
		t.Errorf("details = %v", f.Details)
	}
}

func TestBaselineDropToZero(t *testing.T) {
	tests := []struct {
		name     string
		cooldown time.Duration
	}{
		{"cooldown 10m", 10 * time.Minute},
		{"no cooldown", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, newSet(t, "baseline", `{}`, tt.cooldown))
			d.steady(20, 100, 10)
			// No events at all from 10:20: only the timer runs.
			for range 30 {
				d.minute(0)
			}
			if len(d.fs) == 0 {
				t.Fatal("a drop to zero did not fire")
			}
			// The first empty interval is 10:20-10:21; its end's Tick reports it.
			f := d.fs[0]
			if f.Details["direction"] != "drop" || !f.At.Equal(at(21*time.Minute)) || f.Observed != 0 {
				t.Fatalf("first firing = %+v", f)
			}
			if !strings.HasPrefix(f.Message, "0 events in the minute from 10:20 UTC, ") ||
				!strings.Contains(f.Message, " deviations below the usual ") {
				t.Errorf("message = %q", f.Message)
			}
			if tt.cooldown == 0 {
				if len(d.fs) < 2 {
					t.Errorf("without a cooldown fired only at %v; the following empty intervals are drops too", firedAt(d.fs))
				}
				return
			}
			// Exactly once per cooldown.
			for i := 1; i < len(d.fs); i++ {
				if gap := d.fs[i].At.Sub(d.fs[i-1].At); gap < tt.cooldown {
					t.Errorf("fired at %v: %v apart, within the cooldown", firedAt(d.fs), gap)
				}
			}
		})
	}
}

func TestBaselineWarmup(t *testing.T) {
	// The first minute is partial to the detector and not learned: after k minutes of
	// history, k-1 intervals are warm.
	tests := []struct {
		minutes int
		fires   bool
	}{
		{5, false},
		{10, false},
		{11, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.minutes), func(t *testing.T) {
			d := newDriver(t, newSet(t, "baseline", `{"warmup_intervals":10}`, 0))
			d.steady(tt.minutes, 100, 0)
			if got := statusOf(t, d.s, "a").Intervals; got != tt.minutes-1 {
				t.Errorf("Intervals = %d, want %d", got, tt.minutes-1)
			}
			d.minute(1000)
			if fired := len(d.fs) > 0; fired != tt.fires {
				t.Errorf("fired = %v, want %v (%+v)", fired, tt.fires, d.fs)
			}
		})
	}
}

func TestBaselineDirection(t *testing.T) {
	tests := []struct {
		direction string
		spike     bool // else a drop to zero
		fires     bool
	}{
		{"spike", true, true},
		{"spike", false, false},
		{"drop", true, false},
		{"drop", false, true},
		{"both", true, true},
		{"both", false, true},
	}
	for _, tt := range tests {
		name := tt.direction + " sees a drop"
		if tt.spike {
			name = tt.direction + " sees a spike"
		}
		t.Run(name, func(t *testing.T) {
			d := newDriver(t, newSet(t, "baseline", `{"direction":"`+tt.direction+`"}`, 0))
			d.steady(20, 100, 10)
			if tt.spike {
				d.minute(400)
			} else {
				d.minute(0)
				d.minute(0)
			}
			if fired := len(d.fs) > 0; fired != tt.fires {
				t.Errorf("fired = %v, want %v (%+v)", fired, tt.fires, d.fs)
			}
		})
	}
}

func TestBaselineLongJumpIsBounded(t *testing.T) {
	d := newDriver(t, newSet(t, "baseline", `{"history_intervals":30}`, 0))
	d.steady(20, 100, 10)
	before := statusOf(t, d.s, "a")

	// Down for 1,000 hours: 60,000 intervals passed.
	later := d.now.Add(1000 * time.Hour)
	fs := d.s.Tick(later)
	if len(fs) != 1 || fs[0].Details["direction"] != "drop" || !fs[0].At.Equal(at(21*time.Minute)) {
		t.Fatalf("the jump fired %+v, want one drop at 10:21", fs)
	}
	after := statusOf(t, d.s, "a")
	if got := after.Intervals - before.Intervals; got != 31 {
		t.Errorf("the jump learned %d intervals, want history+1 = 31", got)
	}

	// It goes on from the new time.
	if _, ok := d.s.Observe("d", "a", later.Add(5*time.Second), "", 0); ok {
		t.Error("an event after the jump fired")
	}
	if got := statusOf(t, d.s, "a").WindowCount; got != 1 {
		t.Errorf("WindowCount after the jump = %v, want 1", got)
	}
	d.s.Tick(later.Add(time.Minute))
	if got := statusOf(t, d.s, "a").Intervals - after.Intervals; got != 1 {
		t.Errorf("one minute later %d intervals were learned, want 1", got)
	}
}

func TestBaselineLateEventCountsInOpenInterval(t *testing.T) {
	s := newSet(t, "baseline", `{}`, 0)
	s.Observe("d", "a", at(5*time.Minute+30*time.Second), "", 0)
	s.Observe("d", "a", at(4*time.Minute+50*time.Second), "", 0)
	if got := statusOf(t, s, "a"); got.WindowCount != 2 || got.Intervals != 0 {
		t.Errorf("status = %+v, want 2 events in the open interval, none closed", got)
	}
}

func TestBaselineMinExpected(t *testing.T) {
	// Half an event a minute, then 5: many deviations, but too little to judge unless
	// min_expected allows it.
	tests := []struct {
		settings string
		fires    bool
	}{
		{`{}`, false},
		{`{"min_expected":0.1}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.settings, func(t *testing.T) {
			d := newDriver(t, newSet(t, "baseline", tt.settings, 0))
			for i := range 40 {
				d.minute(i % 2)
			}
			d.minute(5)
			if fired := len(d.fs) > 0; fired != tt.fires {
				t.Errorf("fired = %v, want %v (%+v)", fired, tt.fires, d.fs)
			}
		})
	}
}

func TestBaselineForgetsQuietApps(t *testing.T) {
	tests := []struct {
		name     string
		cooldown time.Duration
		kept     bool // still there 30 minutes after the traffic stopped
	}{
		{"forgotten", 0, false},
		{"kept within its cooldown", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, "baseline", `{"history_intervals":2,"warmup_intervals":1}`, tt.cooldown)
			d := newDriver(t, s)
			d.steady(3, 10, 0)
			for range 30 {
				d.minute(0)
			}
			if kept := len(s.Status("d")) == 1; kept != tt.kept {
				t.Fatalf("kept = %v, want %v", kept, tt.kept)
			}
			if tt.kept {
				return
			}
			var null bool
			for _, st := range s.Dirty() {
				null = null || (st.AppID == "a" && string(st.State) == "null")
			}
			if !null {
				t.Error("Dirty did not report the forgotten app")
			}
		})
	}
}
