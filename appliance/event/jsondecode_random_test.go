package event

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// TestFastJSONRandomDifferential writes random JSON shaped like the wire
// contract, with the awkward parts mixed in (both name forms, duplicates,
// nulls, unknown fields, numbers in every form, escapes, wrong types), and
// checks the fast path against protojson on each body.
func TestFastJSONRandomDifferential(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(7, 11))
	batch := (&causalityv1.IngestEventBatchRequest{}).ProtoReflect().Descriptor()
	single := (&causalityv1.IngestEventRequest{}).ProtoReflect().Descriptor()
	taken := 0
	for i := range n {
		g := jsonGen{r: r}
		md := single
		if i%2 == 1 {
			md = batch
		}
		g.message(md, 0)
		body := []byte(g.b.String())
		newMsg := newSingle
		if md == batch {
			newMsg = newBatch
		}
		if checkFastJSON(t, body, newMsg) {
			taken++
		}
	}
	// The generator must exercise the fast path, not only protojson.
	if taken < n/3 {
		t.Errorf("the fast path took only %d of %d bodies", taken, n)
	}
	t.Logf("the fast path took %d of %d bodies", taken, n)
}

type jsonGen struct {
	r *rand.Rand
	b strings.Builder
}

func (g *jsonGen) one(n int) bool { return g.r.IntN(n) == 0 }

func (g *jsonGen) space() {
	if g.one(8) {
		g.b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[g.r.IntN(4)])
	}
}

func (g *jsonGen) message(md protoreflect.MessageDescriptor, depth int) {
	g.space()
	g.b.WriteByte('{')
	fields := md.Fields()
	count := g.r.IntN(6)
	if md.FullName() == "causality.v1.EventEnvelope" {
		count = 2 + g.r.IntN(6)
	}
	if md.Fields().Len() == 1 {
		count = min(count, 1+g.r.IntN(2)) // a request: its one field, seldom twice
	}
	used := map[protoreflect.Name]bool{}
	usedOneof := map[protoreflect.Name]bool{}
	for i := range count {
		if i > 0 {
			g.b.WriteByte(',')
		}
		g.space()
		var fd protoreflect.FieldDescriptor
		switch {
		case g.one(12):
			g.b.WriteString(`"unknown` + string(rune('a'+g.r.IntN(3))) + `"`)
		case g.one(60):
			g.b.WriteString(`"[causality.v1.x]"`)
		default:
			// Mostly a field not used yet, and at most one member of a oneof.
			for try := 0; try < 10; try++ {
				fd = fields.Get(g.r.IntN(fields.Len()))
				od := fd.ContainingOneof()
				if (!used[fd.Name()] && (od == nil || !usedOneof[od.Name()])) || g.one(30) {
					break
				}
			}
			used[fd.Name()] = true
			if od := fd.ContainingOneof(); od != nil {
				usedOneof[od.Name()] = true
			}
			if g.one(2) {
				g.b.WriteString(`"` + fd.JSONName() + `"`)
			} else {
				g.b.WriteString(`"` + string(fd.Name()) + `"`)
			}
		}
		g.space()
		g.b.WriteByte(':')
		g.space()
		switch {
		case fd == nil || g.one(40):
			g.anyValue(depth)
		case g.one(15):
			g.b.WriteString("null")
		default:
			g.field(fd, depth)
		}
		g.space()
	}
	if g.one(80) {
		g.b.WriteByte(',')
	}
	g.b.WriteByte('}')
	g.space()
}

func (g *jsonGen) field(fd protoreflect.FieldDescriptor, depth int) {
	switch {
	case fd.IsMap():
		g.b.WriteByte('{')
		for i := range g.r.IntN(4) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.str([]string{"a", "b", "k", ""}[g.r.IntN(4)])
			g.b.WriteByte(':')
			if g.one(20) {
				g.b.WriteString("null")
			} else {
				g.scalar(fd.MapValue())
			}
		}
		g.b.WriteByte('}')
	case fd.IsList():
		g.b.WriteByte('[')
		for i := range g.r.IntN(4) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			switch {
			case g.one(25):
				g.b.WriteString("null")
			case fd.Kind() == protoreflect.MessageKind:
				g.message(fd.Message(), depth+1)
			default:
				g.scalar(fd)
			}
		}
		g.b.WriteByte(']')
	case fd.Kind() == protoreflect.MessageKind:
		g.message(fd.Message(), depth+1)
	default:
		g.scalar(fd)
	}
}

func (g *jsonGen) scalar(fd protoreflect.FieldDescriptor) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		g.randomString()
	case protoreflect.BoolKind:
		g.b.WriteString([]string{"true", "false", `"true"`, "1", "tru"}[g.weighted(5)])
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		switch g.r.IntN(6) {
		case 0, 1, 2:
			g.str(string(values.Get(g.r.IntN(values.Len())).Name()))
		case 3:
			g.str("NOT_A_VALUE")
		default:
			g.number(true)
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		g.number(false)
	default:
		g.number(true)
	}
}

// weighted picks among n choices, the first ones most often.
func (g *jsonGen) weighted(n int) int {
	if g.one(4) {
		return g.r.IntN(n)
	}
	return g.r.IntN(2) % n
}

var numbers = []string{
	"0", "-0", "1", "42", "-7", "2147483647", "-2147483648", "2147483648", "-2147483649",
	"9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
	"1.5", "-0.25", "1e3", "1E+2", "1e-7", "3.4028235e38", "3.5e38", "1e39", "1e400", "1e-46",
	"01", "1.", ".5", "-", "+1", "1e", "0x10",
	`"1795795200123"`, `"-5"`, `"1.5"`, `"1e3"`, `" 1"`, `"01"`, `"NaN"`, `"Infinity"`, `"-Infinity"`, `""`,
}

func (g *jsonGen) number(integerish bool) {
	if !g.one(4) {
		if integerish {
			g.b.WriteString([]string{"0", "1", "-7", "123456", `"1795795200123"`}[g.r.IntN(5)])
		} else {
			g.b.WriteString([]string{"0", "1.5", "-0.25", "1e3", "540.5"}[g.r.IntN(5)])
		}
		return
	}
	g.b.WriteString(numbers[g.r.IntN(len(numbers))])
}

var stringParts = []string{
	"a", "Home", "sku-1", "é", "😀", " ", ".", "*", ">",
	`\"`, `\\`, `\/`, `\n`, `\t`, `\u00e9`, `\u0000`, `\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83dx`, `\x`, `\u12`,
	"\x01", "\xff", "\xc3", "\u2028",
}

func (g *jsonGen) randomString() {
	g.b.WriteByte('"')
	for range g.r.IntN(5) {
		if g.one(10) {
			g.b.WriteString(stringParts[g.r.IntN(len(stringParts))])
		} else {
			g.b.WriteString(stringParts[g.r.IntN(4)])
		}
	}
	g.b.WriteByte('"')
}

func (g *jsonGen) str(s string) { g.b.WriteString(`"` + s + `"`) }

func (g *jsonGen) anyValue(depth int) {
	if depth > 3 {
		g.b.WriteString("1")
		return
	}
	switch g.r.IntN(7) {
	case 0:
		g.randomString()
	case 1:
		g.number(false)
	case 2:
		g.b.WriteString([]string{"true", "false", "null"}[g.r.IntN(3)])
	case 3:
		g.b.WriteByte('[')
		for i := range g.r.IntN(3) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.anyValue(depth + 1)
		}
		g.b.WriteByte(']')
	default:
		g.b.WriteByte('{')
		for i := range g.r.IntN(3) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.randomString()
			g.b.WriteByte(':')
			g.anyValue(depth + 1)
		}
		g.b.WriteByte('}')
	}
}
