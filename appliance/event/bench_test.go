package event

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Run: go test -run='^$' -bench=. -benchmem -cpu=1 ./appliance/event
// ns/event divides ns/op by the events an op handles; cpu-ns/event is the
// process's CPU time (GC included) per event, which, unlike wall time, holds
// on a busy machine. Run with -cpu=1 so that it is one core's work.
//
// 2026-11-27, AMD EPYC (Oxide virtual "Turin-like"), 2 vCPUs, Go 1.26.8,
// -cpu=1, realistic events of ~540 JSON bytes (full device context):
//
//	DecodeBatchJSON100             1.86 µs/event  20 allocs/event
//	DecodeBatchJSON100Protojson   11.1  µs/event  94 allocs/event (without the fast path)
//	DecodeBatchProto100            1.30 µs/event  20 allocs/event
//	Validate                       5 ns           0 allocs
//	ValidateProtovalidate          1.87 µs        0 allocs (why Validate is hand-written)
//	Subject                        77 ns          1 alloc
//	Normalize (assigns a UUIDv7)   290 ns         2 allocs
//	DedupKey                       144 ns         1 alloc
//	IngestPath100 json / proto     2.5 / 1.8 µs/event (decode, validate, normalize, key, subject)
//	EncodeBatchResponse100 json    85 ns/event    (protojson: ~1.6 µs/event)

// realisticBatch returns n events as an SDK sends them: the session of
// batch_mixed.json (ten events of mixed kinds) repeated, each with its own id
// and the full device context of single_screen_view.json.
func realisticBatch(tb testing.TB, n int) *causalityv1.IngestEventBatchRequest {
	tb.Helper()
	session, err := DecodeBatch("application/json", fixture(tb, "batch_mixed.json"))
	if err != nil {
		tb.Fatal(err)
	}
	single, err := DecodeSingle("application/json", fixture(tb, "single_screen_view.json"))
	if err != nil {
		tb.Fatal(err)
	}
	dc := single.GetEvent().GetDeviceContext()
	req := &causalityv1.IngestEventBatchRequest{}
	for i := range n {
		e := proto.Clone(session.GetEvents()[i%len(session.GetEvents())]).(*causalityv1.EventEnvelope)
		e.Id = fmt.Sprintf("0193a5b2-7c4e-7d2a-9f10-%012d", i)
		e.TimestampMs += int64(i)
		e.DeviceContext = dc
		req.Events = append(req.Events, e)
	}
	return req
}

func BenchmarkDecodeBatchJSON100(b *testing.B) {
	body, err := protojson.Marshal(realisticBatch(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer perEvent(b, 100)()
	for b.Loop() {
		if _, err := DecodeBatch("application/json", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatchJSON100Protojson measures protojson alone on the same
// body: what DecodeBatch would cost without its fast path.
func BenchmarkDecodeBatchJSON100Protojson(b *testing.B) {
	body, err := protojson.Marshal(realisticBatch(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer perEvent(b, 100)()
	for b.Loop() {
		if err := jsonIn.Unmarshal(body, &causalityv1.IngestEventBatchRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatchProto100(b *testing.B) {
	body, err := proto.Marshal(realisticBatch(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	defer perEvent(b, 100)()
	for b.Loop() {
		if _, err := DecodeBatch("application/x-protobuf", body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	events := realisticBatch(b, 10).GetEvents()
	v := newValidator(b)
	b.ReportAllocs()
	defer perEvent(b, 1)()
	i := 0
	for b.Loop() {
		if err := v.Validate(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkValidateProtovalidate measures what Validate would cost if it ran
// protovalidate: the reason it does not.
func BenchmarkValidateProtovalidate(b *testing.B) {
	events := realisticBatch(b, 10).GetEvents()
	pv, err := protoValidator()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer perEvent(b, 1)()
	i := 0
	for b.Loop() {
		if err := pv.Validate(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSubject(b *testing.B) {
	events := realisticBatch(b, 10).GetEvents()
	b.ReportAllocs()
	defer perEvent(b, 1)()
	i := 0
	for b.Loop() {
		_ = Subject(events[i%len(events)])
		i++
	}
}

// BenchmarkIngestPath100 is the package's whole share of a 100-event batch:
// decode, then per event Validate, Normalize, DedupKey and Subject.
func BenchmarkIngestPath100(b *testing.B) {
	batch := realisticBatch(b, 100)
	for _, e := range batch.GetEvents() {
		e.Id = "" // the server assigns ids: the costlier path
	}
	v := newValidator(b)
	now := time.Now()
	for _, format := range []struct {
		name, contentType string
		marshal           func(proto.Message) ([]byte, error)
	}{
		{"json", "application/json", protojson.Marshal},
		{"proto", "application/x-protobuf", proto.Marshal},
	} {
		b.Run(format.name, func(b *testing.B) {
			body, err := format.marshal(batch)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer perEvent(b, 100)()
			for b.Loop() {
				req, err := DecodeBatch(format.contentType, body)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range req.GetEvents() {
					if err := v.Validate(e); err != nil {
						b.Fatal(err)
					}
					Normalize(e, now)
					_ = DedupKey(e)
					_ = Subject(e)
				}
			}
		})
	}
}

// perEvent starts measuring CPU time; the function it returns reports wall and
// CPU time per event for ops of n events.
func perEvent(b *testing.B, n int) func() {
	start := processCPU()
	return func() {
		events := float64(b.N) * float64(n)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
		if cpu := processCPU() - start; cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	e := realisticBatch(b, 1).GetEvents()[0]
	now := time.Now()
	b.ReportAllocs()
	defer perEvent(b, 1)()
	for b.Loop() {
		e.Id = ""
		Normalize(e, now)
	}
}

func BenchmarkDedupKey(b *testing.B) {
	e := realisticBatch(b, 1).GetEvents()[0]
	b.ReportAllocs()
	defer perEvent(b, 1)()
	for b.Loop() {
		_ = DedupKey(e)
	}
}

// BenchmarkEncodeBatchResponse100 encodes the answer to a 100-event batch:
// one result per event, so it is a per-event cost too.
func BenchmarkEncodeBatchResponse100(b *testing.B) {
	resp := &causalityv1.IngestEventBatchResponse{AcceptedCount: 98, RejectedCount: 2}
	for i := range 100 {
		r := &causalityv1.EventResult{Index: int32(i), EventId: fmt.Sprintf("0193a5b2-7c4e-7d2a-9f10-%012d", i), Status: "accepted"}
		if i%50 == 7 {
			r.Status, r.Error = "rejected", "screen_view.screen_name: must not be empty"
		}
		resp.Results = append(resp.Results, r)
	}
	for _, ct := range []string{"application/json", "application/x-protobuf"} {
		b.Run(ct[len("application/"):], func(b *testing.B) {
			b.ReportAllocs()
			defer perEvent(b, 100)()
			for b.Loop() {
				if _, _, err := EncodeResponse(ct, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
