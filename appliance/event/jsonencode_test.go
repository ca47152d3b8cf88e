package event

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// checkEncodeMatchesProtojson fails unless EncodeResponse writes m as
// protojson (with EmitUnpopulated) does, but for white space.
func checkEncodeMatchesProtojson(t *testing.T, m proto.Message) {
	t.Helper()
	got, ct, err := EncodeResponse("application/json", m)
	if err != nil || ct != ContentTypeJSON {
		t.Fatalf("EncodeResponse: %q, %v", ct, err)
	}
	want, err := jsonOut.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var g, w bytes.Buffer
	if err := json.Compact(&g, got); err != nil {
		t.Fatalf("EncodeResponse wrote invalid JSON %s: %v", got, err)
	}
	if err := json.Compact(&w, want); err != nil {
		t.Fatal(err)
	}
	if g.String() != w.String() {
		t.Errorf("EncodeResponse wrote\n%s\nprotojson writes\n%s", g.String(), w.String())
	}
}

func TestEncodeResponseMatchesProtojson(t *testing.T) {
	tricky := "q\"b\\s/\b\f\n\r\t\x00\x01\x1f\x7f é 😀 \u2028 <>&"
	for _, m := range []proto.Message{
		&causalityv1.IngestEventResponse{},
		&causalityv1.IngestEventResponse{EventId: "0193a5b2-7c4e-7d2a-9f10-3b6c2e8a4d01", Status: "accepted"},
		&causalityv1.IngestEventResponse{EventId: tricky, Status: tricky},
		&causalityv1.IngestEventBatchResponse{},
		&causalityv1.IngestEventBatchResponse{AcceptedCount: 1, RejectedCount: -2, Results: []*causalityv1.EventResult{
			{Index: 0, EventId: "e-1", Status: "accepted"},
			{},
			{Index: 2147483647, EventId: tricky, Status: "rejected", Error: tricky},
			{Index: -2147483648, Status: "duplicate"},
		}},
	} {
		checkEncodeMatchesProtojson(t, m)
	}
}

func TestEncodeResponseInvalidUTF8(t *testing.T) {
	body, _, err := EncodeResponse("application/json", &causalityv1.IngestEventResponse{EventId: "a\xffb\xc3", Status: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"eventId":"a\ufffdb\ufffd","status":"ok"}`; string(body) != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// FuzzEncodeResponse: for any valid UTF-8 strings the hand-written encoder
// writes what protojson writes.
func FuzzEncodeResponse(f *testing.F) {
	f.Add("e-1", "accepted", "", int32(0))
	f.Add("q\"\\\x00\n", "rejected", "screen_view.screen_name: must not be empty", int32(-1))
	f.Fuzz(func(t *testing.T, id, status, errText string, index int32) {
		resp := &causalityv1.IngestEventBatchResponse{AcceptedCount: index, Results: []*causalityv1.EventResult{
			{Index: index, EventId: id, Status: status, Error: errText},
		}}
		if _, err := jsonOut.Marshal(resp); err != nil {
			body, _, err := EncodeResponse("application/json", resp)
			if err != nil || !json.Valid(body) {
				t.Fatalf("invalid UTF-8 gave %s, %v", body, err)
			}
			return
		}
		checkEncodeMatchesProtojson(t, resp)
	})
}
