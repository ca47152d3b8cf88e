package event

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// The buf.validate annotations of proto/causality/v1 are the documented
// contract; Validator implements them by hand for speed. The tests here run
// protovalidate (one instance: building it is expensive) next to Validator and
// fail when the two disagree.

var protoValidator = sync.OnceValues(func() (protovalidate.Validator, error) {
	return protovalidate.New(protovalidate.WithMessages(
		&causalityv1.EventEnvelope{},
		&causalityv1.IngestEventRequest{},
		&causalityv1.IngestEventBatchRequest{},
	))
})

// protoViolations runs protovalidate on m and renders its violations the way
// ValidationError does, after checking that each is a rule Validator knows.
func protoViolations(t testing.TB, m proto.Message) string {
	t.Helper()
	pv, err := protoValidator()
	if err != nil {
		t.Fatal(err)
	}
	err = pv.Validate(m)
	if err == nil {
		return ""
	}
	var ve *protovalidate.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("protovalidate: %v", err)
	}
	var out []string
	for _, v := range ve.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		msg := ""
		switch rule := v.Proto.GetRuleId(); {
		case rule == "required" && field == "payload":
			msg = msgNoPayload
		case rule == "required" && v.FieldDescriptor != nil && v.FieldDescriptor.Message() != nil:
			msg = msgRequired
		case rule == "required":
			msg = msgEmpty
		case rule == "repeated.min_items" || rule == "repeated.max_items":
			msg = "a batch holds 1 to 1000 events"
		default:
			t.Fatalf("protovalidate reports a rule Validator does not implement: %s (%s)", rule, v)
		}
		out = append(out, field+": "+msg)
	}
	return sortedViolations(strings.Join(out, "; "))
}

// sortedViolations sorts the violations of an error message: protovalidate
// reports the oneof first, Validator in field order.
func sortedViolations(s string) string {
	parts := strings.Split(s, "; ")
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// checkAgree fails unless Validator and protovalidate give the same verdict on
// e, with the same violations.
func checkAgree(t testing.TB, v *Validator, e *causalityv1.EventEnvelope) {
	t.Helper()
	got := sortedViolations(errString(v.Validate(e)))
	want := protoViolations(t, e)
	if got != want {
		t.Fatalf("Validator and protovalidate disagree on %v:\nValidator:     %q\nprotovalidate: %q", e, got, want)
	}
}

func TestValidatorAgreesWithProtovalidate(t *testing.T) {
	v := newValidator(t)
	var cases []*causalityv1.EventEnvelope
	for _, k := range allKinds {
		cases = append(cases, k.valid(), k.empty())
		for _, mod := range []func(*causalityv1.EventEnvelope){
			func(e *causalityv1.EventEnvelope) { e.AppId = "" },
			func(e *causalityv1.EventEnvelope) { e.DeviceId = "" },
			func(e *causalityv1.EventEnvelope) { e.AppId, e.DeviceId = "", "" },
		} {
			e := k.empty()
			mod(e)
			cases = append(cases, e)
		}
	}
	cases = append(cases, &causalityv1.EventEnvelope{}, &causalityv1.EventEnvelope{AppId: "a", DeviceId: "d"})
	for _, name := range fixtureNames(t, "*.json") {
		if events, err := decodeAny(fixture(t, name)); err == nil {
			cases = append(cases, events...)
		}
	}
	for _, e := range cases {
		checkAgree(t, v, e)
	}
}

// TestValidatorAgreesOnRandomEnvelopes builds envelopes with every field
// (envelope and payload) randomly set or empty.
func TestValidatorAgreesOnRandomEnvelopes(t *testing.T) {
	v := newValidator(t)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		checkAgree(t, v, randomEnvelope(r))
	}
}

func TestProtovalidateRequestRules(t *testing.T) {
	valid := allKinds[0].valid()
	tests := []struct {
		name string
		m    proto.Message
		want string
	}{
		{"single", &causalityv1.IngestEventRequest{Event: valid}, ""},
		{"single without event", &causalityv1.IngestEventRequest{}, "event: required"},
		{"batch of 0", &causalityv1.IngestEventBatchRequest{}, "events: a batch holds 1 to 1000 events"},
		{"batch of 1000", &causalityv1.IngestEventBatchRequest{Events: slices.Repeat([]*causalityv1.EventEnvelope{valid}, 1000)}, ""},
		{"batch of 1001", &causalityv1.IngestEventBatchRequest{Events: slices.Repeat([]*causalityv1.EventEnvelope{valid}, 1001)}, "events: a batch holds 1 to 1000 events"},
	}
	for _, tt := range tests {
		if got := protoViolations(t, tt.m); got != tt.want {
			t.Errorf("%s: protovalidate = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// randomEnvelope returns an envelope of a random kind whose string fields are
// each randomly empty or not.
func randomEnvelope(r *rand.Rand) *causalityv1.EventEnvelope {
	k := allKinds[r.IntN(len(allKinds))]
	var e *causalityv1.EventEnvelope
	switch r.IntN(3) {
	case 0:
		e = k.valid()
	case 1:
		e = k.empty()
	default:
		e = k.valid()
		e.Payload = nil
	}
	if r.IntN(4) == 0 {
		e.AppId = ""
	}
	if r.IntN(4) == 0 {
		e.DeviceId = ""
	}
	if r.IntN(2) == 0 {
		e.Id = "x"
	}
	return e
}

// decodeAny decodes a fixture as a batch or else as a single request.
func decodeAny(body []byte) ([]*causalityv1.EventEnvelope, error) {
	if b, err := DecodeBatch("application/json", body); err == nil {
		return b.GetEvents(), nil
	}
	s, err := DecodeSingle("application/json", body)
	if err != nil {
		return nil, err
	}
	return []*causalityv1.EventEnvelope{s.GetEvent()}, nil
}
