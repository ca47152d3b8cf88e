package detect_test

import (
	"encoding/json"
	"testing"

	"github.com/causality-io/causality/appliance/reaction/detect"
)

// FuzzParseConfig: any JSON body a client sends as a detector's settings is accepted with
// valid values or refused with an error, never a panic; what is accepted round-trips.
func FuzzParseConfig(f *testing.F) {
	for _, kind := range detect.Kinds {
		f.Add(kind, `{}`)
	}
	f.Add("threshold", `{"value":"event.purchase_complete.total_cents","max":100000}`)
	f.Add("rate", `{"max_per_minute":1e308}`)
	f.Add("count", `{"window_seconds":-1,"max_count":5}`)
	f.Add("baseline", `{"interval_seconds":60,"sensitivity":"NaN","direction":"up"}`)
	f.Fuzz(func(t *testing.T, kind, raw string) {
		c, err := detect.ParseConfig(kind, json.RawMessage(raw))
		if err != nil {
			return
		}
		again, err := detect.ParseConfig(kind, c.JSON())
		if err != nil {
			t.Fatalf("accepted %s but refused its normalised form %s: %v", raw, c.JSON(), err)
		}
		if string(again.JSON()) != string(c.JSON()) {
			t.Fatalf("normalised form changed: %s then %s", c.JSON(), again.JSON())
		}
	})
}
