package detect_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

func TestRateFiresOnceWithCooldown(t *testing.T) {
	s := newSet(t, "rate", `{"max_per_minute":1000}`, 5*time.Minute)
	var fs []detect.Firing
	const n = 1001
	var last time.Time
	for i := range n {
		last = at(time.Duration(i) * 30 * time.Second / n)
		observe(s, &fs, "a", last, "e"+strconv.Itoa(i), 0)
	}
	// More events right after stay within the cooldown.
	for i := range 100 {
		observe(s, &fs, "a", at(31*time.Second+time.Duration(i)*time.Millisecond), "x", 0)
	}
	if len(fs) != 1 {
		t.Fatalf("fired %d times, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Kind != "rate" || f.EventID != "e1000" || f.Observed != 1001 || f.Expected != 1000 || !f.At.Equal(last) {
		t.Errorf("firing = %+v", f)
	}
	if want := "1,001 events in the last minute, above the limit of 1,000"; f.Message != want {
		t.Errorf("message = %q, want %q", f.Message, want)
	}
	// The last event is at 29.97 s: its sub-bucket of one second ends at 30 s.
	if want := "window:" + strconv.FormatInt(at(30*time.Second).UnixMilli(), 10); f.DedupKey != want {
		t.Errorf("DedupKey = %q, want %q", f.DedupKey, want)
	}
	if f.Details["window_seconds"] != int64(60) || f.Details["count"] != int64(1001) {
		t.Errorf("details = %v", f.Details)
	}
}

func TestRateAtTheLimitNeverFires(t *testing.T) {
	// 1,000 events a minute, evenly: no 60-second span holds more than 1,000.
	s := newSet(t, "rate", `{"max_per_minute":1000}`, 0)
	var fs []detect.Firing
	for i := range 5 * 1000 {
		observe(s, &fs, "a", at(time.Duration(i)*60*time.Millisecond), "e", 0)
	}
	if len(fs) != 0 {
		t.Fatalf("fired %d times, first %+v", len(fs), fs[0])
	}
	if got := statusOf(t, s, "a").WindowCount; got < 980 || got > 1000 {
		t.Errorf("WindowCount = %v, want about 1000", got)
	}
}

func TestRateOldEventsSlideOut(t *testing.T) {
	s := newSet(t, "rate", `{"max_per_minute":1000}`, 0)
	var fs []detect.Firing
	for i := range 900 { // in the first 5 s
		observe(s, &fs, "a", at(time.Duration(i)*5*time.Second/900), "old", 0)
	}
	for i := range 200 { // 66 s to 67 s: the 900 have left the window
		observe(s, &fs, "a", at(66*time.Second+time.Duration(i)*5*time.Millisecond), "new", 0)
	}
	if len(fs) != 0 {
		t.Fatalf("fired on events that slid out: %+v", fs[0])
	}
	if got := statusOf(t, s, "a").WindowCount; got != 200 {
		t.Errorf("WindowCount = %v, want 200", got)
	}
	// Older than the window: ignored. Slightly out of order: counted.
	observe(s, &fs, "a", at(2*time.Second), "late", 0)
	observe(s, &fs, "a", at(60*time.Second), "late", 0)
	if got := statusOf(t, s, "a").WindowCount; got != 201 {
		t.Errorf("WindowCount after late events = %v, want 201", got)
	}
	// Tick slides the window seen by Status without any event.
	s.Tick(at(128 * time.Second))
	if got := statusOf(t, s, "a").WindowCount; got != 0 {
		t.Errorf("WindowCount after the window passed = %v, want 0", got)
	}
	// Two windows after its last event the app is forgotten.
	s.Tick(at(188 * time.Second))
	if st := s.Status("d"); len(st) != 0 {
		t.Errorf("Status after two idle windows = %+v, want the app forgotten", st)
	}
}

func TestCountWindow(t *testing.T) {
	tests := []struct {
		name    string
		offsets []time.Duration
		fires   int
		message string
	}{
		{"6 in 9 s", []time.Duration{0, 1e9, 2e9, 5e9, 8e9, 9e9}, 1, "6 events in the last 10 seconds, above the limit of 5"},
		{"6 spread over 10 s", []time.Duration{0, 2e9, 4e9, 6e9, 8e9, 10e9}, 0, ""},
		{"5 in 1 s", []time.Duration{0, 1e8, 2e8, 3e8, 4e8}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, "count", `{"window_seconds":10,"max_count":5}`, time.Hour)
			var fs []detect.Firing
			for i, off := range tt.offsets {
				observe(s, &fs, "a", at(off), "e"+strconv.Itoa(i), 0)
			}
			if len(fs) != tt.fires {
				t.Fatalf("fired %d times, want %d: %+v", len(fs), tt.fires, fs)
			}
			if tt.fires == 0 {
				return
			}
			f := fs[0]
			if f.Kind != "count" || f.Message != tt.message || f.Observed != 6 || f.Expected != 5 {
				t.Errorf("firing = %+v", f)
			}
			// Sub-buckets of a 10 s window are 166 2/3 ms: the one holding 9 s ends at
			// 9.1666... s, rounded up to the millisecond.
			if want := "window:" + strconv.FormatInt(at(9167*time.Millisecond).UnixMilli(), 10); f.DedupKey != want {
				t.Errorf("DedupKey = %q, want %q", f.DedupKey, want)
			}
		})
	}
}
