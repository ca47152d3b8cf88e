package warehouse

import (
	"testing"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestRawPartitionFieldNumbers(t *testing.T) {
	fields := (&causalityv1.EventEnvelope{}).ProtoReflect().Descriptor().Fields()
	if f := fields.ByName("id"); f == nil || f.Number() != envelopeID {
		t.Fatalf("id field is %v, RawID reads %d", f, envelopeID)
	}
	if f := fields.ByName("app_id"); f == nil || f.Number() != envelopeAppID {
		t.Fatalf("app_id field is %v, RawPartitionOf reads %d", f, envelopeAppID)
	}
	if f := fields.ByName("timestamp_ms"); f == nil || f.Number() != envelopeTimestampMs {
		t.Fatalf("timestamp_ms field is %v, RawPartitionOf reads %d", f, envelopeTimestampMs)
	}
}

func TestRawPartitionOfAgreesWithPartitionOf(t *testing.T) {
	envs := []*causalityv1.EventEnvelope{
		benchEnvelope(),
		{AppId: "a/b=c", TimestampMs: recvMs - 3_600_000},
		{AppId: "clock", TimestampMs: 5}, // absurd: receive time
		{AppId: "future", TimestampMs: recvMs + 48*3_600_000},
		{}, // no app, no time
	}
	for _, e := range envs {
		data, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RawPartitionOf(data, recvMs)
		if want := PartitionOf(e, recvMs); err != nil || got != want {
			t.Errorf("RawPartitionOf(%v) = %+v, %v; want %+v", e, got, err, want)
		}
	}
	if _, err := RawPartitionOf([]byte{0x12, 0x05, 'a'}, recvMs); err == nil {
		t.Error("truncated app_id accepted")
	}
}

// FuzzRawPartitionOf: whatever proto.Unmarshal accepts, RawPartitionOf
// accepts and files in the same partition; nothing panics.
func FuzzRawPartitionOf(f *testing.F) {
	seed, _ := proto.Marshal(benchEnvelope())
	f.Add(seed)
	f.Add([]byte{0x12, 0x02, 'h', 'i', 0x20, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := RawPartitionOf(data, recvMs)
		var env causalityv1.EventEnvelope
		if proto.Unmarshal(data, &env) != nil {
			return
		}
		if want := PartitionOf(&env, recvMs); err != nil || got != want {
			t.Fatalf("RawPartitionOf = %+v, %v; proto.Unmarshal files it in %+v", got, err, want)
		}
		if id, err := RawID(data); err != nil || id != env.GetId() {
			t.Fatalf("RawID = %q, %v; proto.Unmarshal reads %q", id, err, env.GetId())
		}
	})
}

func TestRawIDAgreesWithUnmarshal(t *testing.T) {
	for _, e := range []*causalityv1.EventEnvelope{benchEnvelope(), {Id: "x"}, {}} {
		data, _ := proto.Marshal(e)
		if got, err := RawID(data); err != nil || got != e.GetId() {
			t.Errorf("RawID = %q, %v; want %q", got, err, e.GetId())
		}
	}
	if _, err := RawID([]byte{0x0a, 0x09, 'a'}); err == nil {
		t.Error("truncated id accepted")
	}
}
