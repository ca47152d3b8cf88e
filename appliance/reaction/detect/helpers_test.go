package detect_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

// t0 is the start of every scenario: a minute boundary, so intervals line up with it.
var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// at is t0 plus d, for reading scenarios as offsets.
func at(d time.Duration) time.Time { return t0.Add(d) }

func config(t testing.TB, kind, settings string) detect.Config {
	t.Helper()
	c, err := detect.ParseConfig(kind, json.RawMessage(settings))
	if err != nil {
		t.Fatalf("ParseConfig(%s, %s): %v", kind, settings, err)
	}
	return c
}

// newSet is a set with one detector "d" of kind and settings.
func newSet(t testing.TB, kind, settings string, cooldown time.Duration) *detect.Set {
	t.Helper()
	s := detect.NewSet()
	s.Configure([]detect.Detector{{ID: "d", Config: config(t, kind, settings), Cooldown: cooldown, Version: "v1"}})
	return s
}

// observe feeds one event and collects its firing, if any.
func observe(s *detect.Set, fs *[]detect.Firing, app string, when time.Time, id string, value float64) {
	if f, ok := s.Observe("d", app, when, id, value); ok {
		*fs = append(*fs, f)
	}
}

func statusOf(t testing.TB, s *detect.Set, app string) detect.AppStatus {
	t.Helper()
	for _, a := range s.Status("d") {
		if a.AppID == app {
			return a
		}
	}
	t.Fatalf("no status for app %q", app)
	return detect.AppStatus{}
}
