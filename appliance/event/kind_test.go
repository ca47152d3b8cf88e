package event

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestKind(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.field, func(t *testing.T) {
			cat, typ, ok := Kind(k.valid())
			if !ok || cat != k.category || typ != k.typ {
				t.Errorf("Kind = %q, %q, %v; want %q, %q, true", cat, typ, ok, k.category, k.typ)
			}
		})
	}
}

func TestKindWithoutPayload(t *testing.T) {
	for name, e := range map[string]*causalityv1.EventEnvelope{
		"nil envelope": nil,
		"no payload":   {AppId: "shop", DeviceId: "d-1"},
	} {
		if cat, typ, ok := Kind(e); ok || cat != "" || typ != "" {
			t.Errorf("%s: Kind = %q, %q, %v; want \"\", \"\", false", name, cat, typ, ok)
		}
	}
}

func TestKindCustomTypeIsEventName(t *testing.T) {
	for _, name := range []string{"", "Level Complete.v2", "checkout*"} {
		e := envelope(&causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{EventName: name}})
		if cat, typ, ok := Kind(e); !ok || cat != "custom" || typ != name {
			t.Errorf("Kind(custom %q) = %q, %q, %v", name, cat, typ, ok)
		}
	}
}

// TestKindCoversEveryPayload fails when a payload is added to the .proto but
// not to Kind (or to allKinds), and checks that the table maps each payload
// field to the category WIRE.md gives it.
func TestKindCoversEveryPayload(t *testing.T) {
	oneof := (&causalityv1.EventEnvelope{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")
	fields := oneof.Fields()
	if fields.Len() != len(allKinds) {
		t.Fatalf("oneof payload has %d fields, allKinds %d", fields.Len(), len(allKinds))
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if got := string(fd.Name()); got != allKinds[i].field {
			t.Errorf("payload field %d is %s, allKinds has %s", i, got, allKinds[i].field)
		}
		e := &causalityv1.EventEnvelope{}
		m := e.ProtoReflect()
		m.Set(fd, protoreflect.ValueOfMessage(m.NewField(fd).Message()))
		if _, _, ok := Kind(e); !ok {
			t.Errorf("Kind does not know payload %s", fd.Name())
		}
	}
}
