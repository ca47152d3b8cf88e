package event

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// The fuzz targets decode arbitrary bodies, then run every event through what
// the ingest path does with it. Nothing may panic, every subject must be
// valid, Validator must agree with protovalidate, and for JSON the fast path
// must agree with protojson. Seeds are the fixtures
// of testdata/events (as protobuf too, for the binary target).
//
//	go test -run='^$' -fuzz=FuzzDecodeBatchJSON -fuzztime=30s ./appliance/event

func FuzzDecodeBatchJSON(f *testing.F) {
	for _, name := range fixtureNames(f, "*.json") {
		f.Add(fixture(f, name))
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastJSON(t, body, newBatch)
		req, err := DecodeBatch("application/json", body)
		if err != nil {
			return
		}
		for _, e := range req.GetEvents() {
			exercise(t, v, e)
		}
	})
}

func FuzzDecodeBatchProto(f *testing.F) {
	for _, name := range fixtureNames(f, "*.json") {
		events, err := decodeAny(fixture(f, name))
		if err != nil {
			continue
		}
		b, err := proto.Marshal(&causalityv1.IngestEventBatchRequest{Events: events})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeBatch("application/x-protobuf", body)
		if err != nil {
			return
		}
		for _, e := range req.GetEvents() {
			exercise(t, v, e)
		}
	})
}

func FuzzDecodeSingleJSON(f *testing.F) {
	for _, name := range fixtureNames(f, "*.json") {
		f.Add(fixture(f, name))
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastJSON(t, body, newSingle)
		req, err := DecodeSingle("application/json", body)
		if err != nil {
			return
		}
		if req.GetEvent() == nil {
			t.Fatal("DecodeSingle returned no event and no error")
		}
		exercise(t, v, req.GetEvent())
	})
}

// exercise runs e through validation, kind, subject, normalisation, the
// dedup key and AppendJSON, checking what must hold for any event.
func exercise(t *testing.T, v *Validator, e *causalityv1.EventEnvelope) {
	t.Helper()
	checkAgree(t, v, e)
	checkAppendJSON(t, e)
	err := v.Validate(e)
	if _, _, ok := Kind(e); !ok && err == nil {
		t.Fatalf("an event without payload passed validation: %v", e)
	}
	checkSubject(t, Subject(e))
	if err != nil {
		return
	}
	Normalize(e, time.Unix(1795795200, 0))
	if e.GetId() == "" || e.GetTimestampMs() == 0 || len(DedupKey(e)) != 32 {
		t.Fatalf("normalised event lacks id, timestamp or dedup key: %v", e)
	}
	if _, _, err := EncodeResponse("application/json", &causalityv1.IngestEventRequest{Event: e}); err != nil {
		t.Fatalf("cannot encode a decoded event: %v", err)
	}
}
