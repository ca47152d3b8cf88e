package detect_test

import (
	"math"
	"testing"
	"time"
)

func TestThreshold(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		value    float64
		fires    bool
		expected float64
		message  string
	}{
		{"above max", `{"value":"event.purchase.total","max":100000}`, 250000, true, 100000, "event.purchase.total 250,000 above max 100,000"},
		{"below min", `{"value":"v","min":10,"max":20}`, 2.5, true, 10, "v 2.5 below min 10"},
		{"inside", `{"value":"v","min":10,"max":20}`, 15, false, 0, ""},
		{"on the bound", `{"value":"v","min":10,"max":20}`, 20, false, 0, ""},
		{"min only, high value", `{"value":"v","min":10}`, 1e9, false, 0, ""},
		{"NaN", `{"value":"v","min":10,"max":20}`, math.NaN(), false, 0, ""},
		{"+Inf", `{"value":"v","max":20}`, math.Inf(1), false, 0, ""},
		{"-Inf", `{"value":"v","min":10}`, math.Inf(-1), false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, "threshold", tt.settings, time.Minute)
			f, ok := s.Observe("d", "app1", t0, "ev1", tt.value)
			if ok != tt.fires {
				t.Fatalf("fired = %v, want %v (%+v)", ok, tt.fires, f)
			}
			if !ok {
				return
			}
			if f.DetectorID != "d" || f.AppID != "app1" || f.Kind != "threshold" || f.EventID != "ev1" ||
				f.DedupKey != "event:ev1" || !f.At.Equal(t0) {
				t.Errorf("firing identity = %+v", f)
			}
			if f.Observed != tt.value || f.Expected != tt.expected || f.Message != tt.message {
				t.Errorf("observed %v expected %v message %q; want %v %v %q",
					f.Observed, f.Expected, f.Message, tt.value, tt.expected, tt.message)
			}
			if f.Details["value"] != tt.value {
				t.Errorf("details = %v", f.Details)
			}
		})
	}
}

func TestThresholdLastValueSkipsNaN(t *testing.T) {
	s := newSet(t, "threshold", `{"value":"v","max":20}`, 0)
	s.Observe("d", "a", t0, "e1", 7)
	s.Observe("d", "a", at(time.Second), "e2", math.NaN())
	if got := statusOf(t, s, "a").LastValue; got != 7 {
		t.Errorf("LastValue = %v, want 7 (NaN is no value)", got)
	}
}

func TestCooldown(t *testing.T) {
	tests := []struct {
		name     string
		cooldown time.Duration
		want     []string // ids of the events that fire
	}{
		{"suppresses then allows", time.Minute, []string{"e0", "e3", "e4", "e5"}},
		{"zero suppresses nothing", 0, []string{"e0", "e1", "e2", "e3", "e4", "e5"}},
	}
	// Offsets of events that are all above max; e4 is another app's first.
	offsets := []time.Duration{0, 30 * time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second, 121 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, "threshold", `{"value":"v","max":1}`, tt.cooldown)
			var got []string
			for i, off := range offsets {
				app := "a"
				if i == 4 {
					app = "b" // cooldown is per app
				}
				id := "e" + string(rune('0'+i))
				if f, ok := s.Observe("d", app, at(off), id, 5); ok {
					got = append(got, f.EventID)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("fired %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("fired %v, want %v", got, tt.want)
				}
			}
			if tt.cooldown > 0 {
				if last := statusOf(t, s, "a").LastFiredAt; !last.Equal(at(121 * time.Second)) {
					t.Errorf("LastFiredAt = %v", last)
				}
			}
		})
	}
}

func TestUnknownDetector(t *testing.T) {
	s := newSet(t, "threshold", `{"value":"v","max":1}`, 0)
	if _, ok := s.Observe("nope", "a", t0, "e", 5); ok {
		t.Error("an unknown detector fired")
	}
	if st := s.Status("nope"); st != nil {
		t.Errorf("Status of an unknown detector = %v", st)
	}
}

func TestThresholdForgetsAfterADay(t *testing.T) {
	tests := []struct {
		name     string
		cooldown time.Duration
		kept     bool
	}{
		{"forgotten", time.Hour, false},
		{"kept within its cooldown", 48 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, "threshold", `{"value":"v","max":1}`, tt.cooldown)
			s.Observe("d", "a", t0, "e1", 5) // fires
			s.Tick(at(24 * time.Hour))
			if len(s.Status("d")) != 1 {
				t.Fatal("forgotten after exactly a day")
			}
			s.Tick(at(25 * time.Hour))
			if kept := len(s.Status("d")) == 1; kept != tt.kept {
				t.Errorf("kept = %v, want %v", kept, tt.kept)
			}
		})
	}
}
