package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

var protoNames = protojson.MarshalOptions{UseProtoNames: true}

// checkAppendJSON holds AppendJSON to protojson, spacing aside, for the whole envelope and
// for its payload alone (what the warehouse writes), wherever protojson can render them.
func checkAppendJSON(t *testing.T, e *causalityv1.EventEnvelope) {
	t.Helper()
	msgs := []protoreflect.Message{e.ProtoReflect()}
	m := e.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload")); fd != nil {
		msgs = append(msgs, m.Get(fd).Message())
	}
	for _, m := range msgs {
		want, err := protoNames.Marshal(m.Interface())
		if err != nil {
			continue // invalid UTF-8: protojson refuses, AppendJSON writes U+FFFD
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, want); err != nil {
			t.Fatalf("protojson wrote invalid JSON: %v", err)
		}
		got, err := AppendJSON(nil, m)
		if errors.Is(err, ErrJSONUnsupported) {
			continue
		}
		if err != nil || !bytes.Equal(got, compact.Bytes()) {
			t.Fatalf("%s: AppendJSON (err %v)\n got %s\nwant %s", m.Descriptor().FullName(), err, got, compact.Bytes())
		}
	}
}

func TestAppendJSONMatchesProtojson(t *testing.T) {
	cases := map[string]*causalityv1.EventEnvelope{
		"empty": {},
		"screen view": {AppId: "shop", Id: "e1", TimestampMs: 1795795200123,
			Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "home", PreviousScreen: "tab \"1\"\n"}}},
		"custom with every map": {AppId: "a", Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
			EventName:    "level_up",
			StringParams: map[string]string{"b": "2", "a": "1", "": "empty key", "é": "\u00e9\x01\u2028", "z\\": "</script>"},
			IntParams:    map[string]int64{"max": math.MaxInt64, "min": math.MinInt64, "zero": 0},
			FloatParams: map[string]float64{"nan": math.NaN(), "inf": math.Inf(1), "-inf": math.Inf(-1), "tiny": 1e-7,
				"big": 1e21, "pi": math.Pi, "neg0": math.Copysign(0, -1), "whole": 3},
			BoolParams: map[string]bool{"t": true, "f": false},
		}}},
		"purchase with items": {Payload: &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{
			OrderId: "o1", ItemCount: 2, TotalCents: 1999,
			Items: []*causalityv1.PurchaseItem{{ProductId: "p1", Quantity: 1}, {}, {ProductId: "p2", PriceCents: -5}},
		}}},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) { checkAppendJSON(t, e) })
	}
}

// Random envelopes cover every payload type and field kind of the schema.
func TestAppendJSONRandomDifferential(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range n {
		e := &causalityv1.EventEnvelope{}
		fillRandom(r, e.ProtoReflect(), 0)
		checkAppendJSON(t, e)
	}
}

// fillRandom sets a random selection of m's fields, one member per oneof, to random values
// that include the edge cases of JSON rendering.
func fillRandom(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && (m.WhichOneof(od) != nil || r.IntN(od.Fields().Len()) != 0) {
			continue
		}
		if r.IntN(3) == 0 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				l.Append(randomValue(r, l.NewElement(), fd, depth))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.IntN(5) {
				k := randomValue(r, protoreflect.Value{}, fd.MapKey(), depth).MapKey()
				mp.Set(k, randomValue(r, mp.NewValue(), fd.MapValue(), depth))
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 3 {
				fillRandom(r, m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, randomValue(r, protoreflect.Value{}, fd, depth))
		}
	}
}

func randomValue(r *rand.Rand, fresh protoreflect.Value, fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	strs := []string{"", "a", "home", `é\u`, `"q"`, "\x00\x1f\t\n", "\u2028</script>", "日本", "\U0001F600"}
	floats := []float64{0, 1, -1.5, 1e-7, 1e21, 123456789.125, math.Pi, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64}
	ints := []int64{0, 1, -1, 42, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(strs[r.IntN(len(strs))] + strs[r.IntN(len(strs))])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(ints[r.IntN(len(ints))]))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(ints[r.IntN(len(ints))])
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(ints[r.IntN(len(ints))]))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(ints[r.IntN(len(ints))]))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(floats[r.IntN(len(floats))]))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(floats[r.IntN(len(floats))])
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(strs[r.IntN(len(strs))]))
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if r.IntN(5) == 0 {
			return protoreflect.ValueOfEnum(99) // a number the schema does not name
		}
		return protoreflect.ValueOfEnum(vals.Get(r.IntN(vals.Len())).Number())
	default: // messages in lists and maps
		if depth < 3 {
			fillRandom(r, fresh.Message(), depth+1)
		}
		return fresh
	}
}

func TestAppendJSONRefusesWellKnownTypes(t *testing.T) {
	s, _ := structpb.NewStruct(map[string]any{"a": 1})
	if _, err := AppendJSON(nil, s.ProtoReflect()); !errors.Is(err, ErrJSONUnsupported) {
		t.Errorf("google.protobuf.Struct: err %v, want ErrJSONUnsupported", err)
	}
}

func TestAppendJSONInvalidUTF8(t *testing.T) {
	sv := &causalityv1.ScreenView{ScreenName: "a\xffb"}
	got, err := AppendJSON(nil, sv.ProtoReflect())
	if err != nil || string(got) != `{"screen_name":"a\ufffdb"}` {
		t.Errorf("got %s, %v", got, err)
	}
	if _, err := proto.Marshal(sv); err == nil {
		t.Log("note: proto.Marshal accepted invalid UTF-8")
	}
}

func BenchmarkPayloadJSON(b *testing.B) {
	payloads := map[string]proto.Message{
		"custom": &causalityv1.CustomEvent{
			EventName: "level_up", StringParams: map[string]string{"level": "12", "world": "ice"},
			IntParams: map[string]int64{"score": 1234}, FloatParams: map[string]float64{"time_s": 12.5},
		},
		"screen_view": &causalityv1.ScreenView{ScreenName: "product_detail", PreviousScreen: "home", ScreenClass: "ProductViewController"},
	}
	for name, p := range payloads {
		m := p.ProtoReflect()
		b.Run(name+"/protojson", func(b *testing.B) {
			for b.Loop() {
				if _, err := protoNames.Marshal(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/AppendJSON", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendJSON(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
