package event

import (
	"errors"
	"testing"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func newValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidateAcceptsEveryKind(t *testing.T) {
	v := newValidator(t)
	for _, k := range allKinds {
		if err := v.Validate(k.valid()); err != nil {
			t.Errorf("%s: Validate = %v, want nil", k.field, err)
		}
	}
}

// TestValidateRequiredPayloadFields empties each payload: the kinds with a
// required field must be rejected naming it, the others accepted.
func TestValidateRequiredPayloadFields(t *testing.T) {
	v := newValidator(t)
	required := 0
	for _, k := range allKinds {
		err := v.Validate(k.empty())
		if k.required == "" {
			if err != nil {
				t.Errorf("%s: empty payload: Validate = %v, want nil", k.field, err)
			}
			continue
		}
		required++
		want := k.field + "." + k.required + ": must not be empty"
		if err == nil || err.Error() != want {
			t.Errorf("%s: empty payload: Validate = %v, want %q", k.field, err, want)
		}
	}
	// WIRE.md lists nine payload fields that must not be empty.
	if required != 9 {
		t.Errorf("%d kinds have a required field, WIRE.md lists 9", required)
	}
}

func TestValidateEnvelope(t *testing.T) {
	v := newValidator(t)
	valid := func(mod func(e *causalityv1.EventEnvelope)) *causalityv1.EventEnvelope {
		e := allKinds[4].valid() // screen_view
		mod(e)
		return e
	}
	tests := []struct {
		name string
		e    *causalityv1.EventEnvelope
		want string // "" for valid
	}{
		{"valid", valid(func(*causalityv1.EventEnvelope) {}), ""},
		{"no id and timestamp is fine", valid(func(e *causalityv1.EventEnvelope) { e.Id, e.TimestampMs = "", 0 }), ""},
		{"whitespace app_id is not empty", valid(func(e *causalityv1.EventEnvelope) { e.AppId = " " }), ""},
		{"missing app_id", valid(func(e *causalityv1.EventEnvelope) { e.AppId = "" }), "app_id: must not be empty"},
		{"missing device_id", valid(func(e *causalityv1.EventEnvelope) { e.DeviceId = "" }), "device_id: must not be empty"},
		{"no payload", valid(func(e *causalityv1.EventEnvelope) { e.Payload = nil }), "payload: exactly one payload field must be set"},
		{"everything missing", &causalityv1.EventEnvelope{},
			"app_id: must not be empty; device_id: must not be empty; payload: exactly one payload field must be set"},
		{"envelope and payload", func() *causalityv1.EventEnvelope {
			e := allKinds[len(allKinds)-1].empty()
			e.DeviceId = ""
			return e
		}(), "device_id: must not be empty; custom_event.event_name: must not be empty"},
		{"nil", nil, "event: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.e)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Violations) == 0 {
				t.Fatalf("Validate error %T is not a *ValidationError with violations", err)
			}
		})
	}
}

func TestValidateFixtures(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		file string
		want string
	}{
		{"single_minimal.json", ""},
		{"single_screen_view.json", ""},
		{"single_snake_case.json", ""},
		{"single_custom_event.json", ""},
		{"single_unknown_fields.json", ""},
		{"invalid_missing_app_id.json", "app_id: must not be empty"},
		{"invalid_missing_device_id.json", "device_id: must not be empty"},
		{"invalid_no_payload.json", "payload: exactly one payload field must be set"},
		{"invalid_empty_event_name.json", "custom_event.event_name: must not be empty"},
	}
	for _, tt := range tests {
		req, err := DecodeSingle("application/json", fixture(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		err = v.Validate(req.GetEvent())
		if got := errString(err); got != tt.want {
			t.Errorf("%s: Validate = %q, want %q", tt.file, got, tt.want)
		}
	}
}

func TestValidateBatchFixture(t *testing.T) {
	v := newValidator(t)
	req, err := DecodeBatch("application/json", fixture(t, "batch_partly_invalid.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"",
		"screen_view.screen_name: must not be empty",
		"",
		"device_id: must not be empty",
		"payload: exactly one payload field must be set",
		"",
	}
	if len(req.GetEvents()) != len(want) {
		t.Fatalf("%d events, want %d", len(req.GetEvents()), len(want))
	}
	for i, e := range req.GetEvents() {
		if got := errString(v.Validate(e)); got != want[i] {
			t.Errorf("event %d: Validate = %q, want %q", i, got, want[i])
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
