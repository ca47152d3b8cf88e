package detect_test

import (
	"sync"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

func TestConfigure(t *testing.T) {
	rate := config(t, "rate", `{"max_per_minute":1000}`)
	s := detect.NewSet()
	s.Configure([]detect.Detector{
		{ID: "keep", Config: rate, Version: "v1"},
		{ID: "bump", Config: rate, Version: "v1"},
		{ID: "drop", Config: rate, Version: "v1"},
	})
	for _, id := range []string{"keep", "bump", "drop"} {
		for i := range 3 {
			s.Observe(id, "a", at(time.Duration(i)*time.Second), "e", 0)
		}
	}
	s.Configure([]detect.Detector{
		{ID: "keep", Config: rate, Version: "v1", Cooldown: time.Minute},
		{ID: "bump", Config: rate, Version: "v2"},
		{ID: "new", Config: rate, Version: "v1"},
		{ID: "bad", Config: detect.Config{Kind: "rate"}, Version: "v1"}, // no settings
	})
	tests := []struct {
		id    string
		count float64 // -1: unknown detector
	}{
		{"keep", 3}, // same version keeps its state
		{"bump", 0}, // a new version starts empty
		{"new", 0},
		{"drop", -1}, // removed
		{"bad", -1},  // a config that fails its checks is left out
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			st := s.Status(tt.id)
			switch {
			case tt.count < 0:
				if st != nil {
					t.Errorf("Status = %+v, want nil", st)
				}
				if _, ok := s.Observe(tt.id, "a", at(4*time.Second), "e", 0); ok {
					t.Error("Observe fired")
				}
			case tt.count == 0:
				if len(st) != 0 {
					t.Errorf("Status = %+v, want no apps", st)
				}
			default:
				if len(st) != 1 || st[0].WindowCount != tt.count {
					t.Errorf("Status = %+v, want %v events", st, tt.count)
				}
			}
		})
	}
}

func TestConfigureSameVersionOtherSettingsResets(t *testing.T) {
	// The engine bumps Version on every change; should it not, state built for another
	// window must still not be read with this one.
	s := detect.NewSet()
	s.Configure([]detect.Detector{{ID: "d", Config: config(t, "count", `{"window_seconds":10,"max_count":5}`), Version: "v1"}})
	s.Observe("d", "a", t0, "e", 0)
	s.Configure([]detect.Detector{{ID: "d", Config: config(t, "count", `{"window_seconds":20,"max_count":5}`), Version: "v1"}})
	if st := s.Status("d"); len(st) != 0 {
		t.Errorf("Status = %+v, want no apps", st)
	}
}

func TestStatusSortedByApp(t *testing.T) {
	s := newSet(t, "threshold", `{"value":"v","max":10}`, 0)
	for _, app := range []string{"c", "a", "b"} {
		s.Observe("d", app, t0, "e", 1)
	}
	st := s.Status("d")
	if len(st) != 3 || st[0].AppID != "a" || st[1].AppID != "b" || st[2].AppID != "c" {
		t.Errorf("Status = %+v", st)
	}
}

// TestConcurrentStatus runs the writer and Status readers together; -race checks it.
func TestConcurrentStatus(t *testing.T) {
	s := detect.NewSet()
	s.Configure([]detect.Detector{
		{ID: "r", Config: config(t, "rate", `{"max_per_minute":100}`), Version: "v1"},
		{ID: "b", Config: config(t, "baseline", `{}`), Version: "v1"},
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					s.Status("r")
					s.Status("b")
				}
			}
		})
	}
	for i := range 5000 {
		when := at(time.Duration(i) * 50 * time.Millisecond)
		s.Observe("r", "a", when, "e", 0)
		s.Observe("b", "a", when, "e", 0)
		if i%100 == 0 {
			s.Tick(when)
			s.Dirty()
		}
	}
	close(stop)
	wg.Wait()
}
