package event

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// A fast path for JSON bodies.
//
// protojson decodes a realistic event (about 540 bytes with its device
// context) in about 11 µs and 94 allocations: more than the ingest path may
// spend on an event in total. unmarshalJSONFast reads the same JSON in under
// 2 µs and 20 allocations (as many as binary protobuf), but only what it is
// sure about: plain JSON for the field kinds of the wire contract (strings,
// bools, integers, floats, enums, messages, repeated fields, string-keyed
// maps), field names in either form, unknown fields (skipped, as protojson
// does with DiscardUnknown). At the first thing it does not handle or that is
// not valid (a syntax error, a duplicate field, a number in a form it does not
// read, NaN, an escaped field name...) it gives up, and decode runs protojson
// on the body from scratch: protojson stays the reference for what is
// accepted and for every error message. Tests (a random differential test and
// the fuzz targets) check that whatever the fast path accepts, protojson
// decodes to the same message.

// maxSkipDepth bounds the nesting of unknown JSON values the fast path skips;
// deeper ones are left to protojson.
const maxSkipDepth = 64

// jsonMessage is what the fast path knows of one message type. It writes the
// fields of the generated Go struct directly, as code setting msg.AppId would:
// going through protoreflect costs two allocations per string field.
type jsonMessage struct {
	goType reflect.Type          // the generated struct
	byName map[string]*jsonField // by JSON (lowerCamelCase) and proto (snake_case) name
}

// jsonField is what the fast path knows of one field.
type jsonField struct {
	bit    uint64 // 1 << field index, for duplicate detection
	oneof  int    // index of the containing oneof, or -1
	kind   protoreflect.Kind
	list   bool
	offset uintptr // of the Go struct field (for a oneof member: of the oneof's interface field)

	msg      *jsonMessage      // message fields, repeated messages
	mapValue protoreflect.Kind // map fields (keys are strings): the kind of the values, else 0
	enum     map[string]int32  // enum fields: number by value name

	oneofIndex int          // oneof members: index of the interface field in the struct
	wrapper    reflect.Type // oneof members: the wrapper struct (one field, the message pointer)
	sliceType  reflect.Type // repeated messages: the slice type
}

// jsonMessages holds the fast path's view of the request messages, built once.
var jsonMessages = sync.OnceValue(func() map[protoreflect.FullName]*jsonMessage {
	out := map[protoreflect.FullName]*jsonMessage{}
	for _, m := range []proto.Message{&causalityv1.IngestEventRequest{}, &causalityv1.IngestEventBatchRequest{}} {
		buildJSONMessage(m.ProtoReflect().Type(), out)
	}
	return out
})

// buildJSONMessage describes a message type and those it refers to, or
// returns nil when the type has something the fast path does not read (such
// messages always go to protojson).
func buildJSONMessage(mt protoreflect.MessageType, seen map[protoreflect.FullName]*jsonMessage) *jsonMessage {
	md := mt.Descriptor()
	if jm, ok := seen[md.FullName()]; ok {
		return jm
	}
	seen[md.FullName()] = nil // until complete; a cycle is left to protojson
	goPtr := reflect.TypeOf(mt.Zero().Interface())
	if md.Fields().Len() > 64 || md.ExtensionRanges().Len() > 0 || goPtr.Kind() != reflect.Pointer || goPtr.Elem().Kind() != reflect.Struct {
		return nil
	}
	jm := &jsonMessage{goType: goPtr.Elem(), byName: map[string]*jsonField{}}
	fields := md.Fields()
	infos := make([]*jsonField, fields.Len())
	for i := range fields.Len() {
		if infos[i] = buildJSONField(mt, jm.goType, fields.Get(i), seen); infos[i] == nil {
			return nil
		}
	}
	// protojson looks a name up as a JSON name first, then as a proto name:
	// JSON names are entered last so that they win.
	for i, fi := range infos {
		jm.byName[string(fields.Get(i).Name())] = fi
	}
	for i, fi := range infos {
		jm.byName[fields.Get(i).JSONName()] = fi
	}
	seen[md.FullName()] = jm
	return jm
}

// goKinds maps the field kinds the fast path reads to the kind of their Go field.
var goKinds = map[protoreflect.Kind]reflect.Kind{
	protoreflect.StringKind: reflect.String,
	protoreflect.BoolKind:   reflect.Bool,
	protoreflect.Int32Kind:  reflect.Int32,
	protoreflect.EnumKind:   reflect.Int32,
	protoreflect.Int64Kind:  reflect.Int64,
	protoreflect.FloatKind:  reflect.Float32,
	protoreflect.DoubleKind: reflect.Float64,
}

func buildJSONField(mt protoreflect.MessageType, goType reflect.Type, fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]*jsonMessage) *jsonField {
	fi := &jsonField{bit: 1 << fd.Index(), oneof: -1, kind: fd.Kind(), list: fd.IsList()}
	od := fd.ContainingOneof()
	if od != nil && od.IsSynthetic() {
		return nil // proto3 optional: pointer fields, not handled
	}
	if od != nil {
		// A oneof member lives in a wrapper struct behind an interface field;
		// set the member once to learn the wrapper's type.
		if fi.kind != protoreflect.MessageKind {
			return nil
		}
		sf, ok := goType.FieldByName(goOneofName(goType, string(od.Name())))
		if !ok || sf.Type.Kind() != reflect.Interface {
			return nil
		}
		m := mt.New()
		m.Set(fd, m.NewField(fd))
		w := reflect.ValueOf(m.Interface()).Elem().FieldByIndex(sf.Index).Elem().Type()
		if w.Kind() != reflect.Pointer || w.Elem().Kind() != reflect.Struct || w.Elem().NumField() != 1 || w.Elem().Field(0).Offset != 0 {
			return nil
		}
		fi.oneof, fi.oneofIndex, fi.offset, fi.wrapper = od.Index(), sf.Index[0], sf.Offset, w.Elem()
		if fi.msg = buildJSONMessage(m.Get(fd).Message().Type(), seen); fi.msg == nil {
			return nil
		}
		if w.Elem().Field(0).Type != reflect.PointerTo(fi.msg.goType) {
			return nil
		}
		return fi
	}

	sf, ok := goFieldByProtoName(goType, string(fd.Name()))
	if !ok {
		return nil
	}
	fi.offset = sf.Offset
	switch {
	case fd.IsMap():
		if fd.MapKey().Kind() != protoreflect.StringKind {
			return nil
		}
		fi.mapValue = fd.MapValue().Kind()
		var want reflect.Type
		switch fi.mapValue {
		case protoreflect.StringKind:
			want = reflect.TypeFor[map[string]string]()
		case protoreflect.Int64Kind:
			want = reflect.TypeFor[map[string]int64]()
		case protoreflect.DoubleKind:
			want = reflect.TypeFor[map[string]float64]()
		case protoreflect.BoolKind:
			want = reflect.TypeFor[map[string]bool]()
		}
		if want == nil || sf.Type != want {
			return nil
		}
	case fi.kind == protoreflect.MessageKind:
		m := mt.New()
		var sub protoreflect.MessageType
		if fi.list {
			sub = m.Mutable(fd).List().NewElement().Message().Type()
		} else {
			sub = m.NewField(fd).Message().Type()
		}
		if fi.msg = buildJSONMessage(sub, seen); fi.msg == nil {
			return nil
		}
		want := reflect.PointerTo(fi.msg.goType)
		if fi.list {
			want = reflect.SliceOf(want)
			fi.sliceType = want
		}
		if sf.Type != want {
			return nil
		}
	case fi.list:
		if fi.kind != protoreflect.StringKind || sf.Type != reflect.TypeFor[[]string]() {
			return nil
		}
	default:
		if k, ok := goKinds[fi.kind]; !ok || sf.Type.Kind() != k {
			return nil
		}
		if fi.kind == protoreflect.EnumKind {
			values := fd.Enum().Values()
			fi.enum = make(map[string]int32, values.Len())
			for i := range values.Len() {
				fi.enum[string(values.Get(i).Name())] = int32(values.Get(i).Number())
			}
		}
	}
	return fi
}

// goFieldByProtoName finds the struct field generated for a proto field, by
// the name in its protobuf tag.
func goFieldByProtoName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		for _, part := range strings.Split(sf.Tag.Get("protobuf"), ",") {
			if part == "name="+name {
				return sf, true
			}
		}
	}
	return reflect.StructField{}, false
}

// goOneofName returns the name of the struct field generated for a oneof.
func goOneofName(t reflect.Type, oneof string) string {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("protobuf_oneof") == oneof {
			return t.Field(i).Name
		}
	}
	return ""
}

// unmarshalJSONFast fills m, which must be empty, from body and reports
// whether it could. When it returns false m holds a partial result: reset it.
func unmarshalJSONFast(body []byte, m proto.Message) bool {
	jm := jsonMessages()[m.ProtoReflect().Descriptor().FullName()]
	rv := reflect.ValueOf(m)
	if jm == nil || rv.Kind() != reflect.Pointer || rv.Type().Elem() != jm.goType || rv.IsNil() {
		return false
	}
	d := jsonDecoder{b: body}
	d.space()
	if !d.message(rv.UnsafePointer(), jm) {
		return false
	}
	d.space()
	return d.i == len(d.b)
}

// jsonDecoder reads JSON from b, at i. Its methods return false when they meet
// something they leave to protojson.
type jsonDecoder struct {
	b []byte
	i int
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, or 0 at the end.
func (d *jsonDecoder) next() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// message reads an object into the struct at base.
func (d *jsonDecoder) message(base unsafe.Pointer, jm *jsonMessage) bool {
	if d.next() != '{' {
		return false
	}
	d.i++
	var seen, seenOneofs uint64
	if d.next() == '}' {
		d.i++
		return true
	}
	for {
		name, ok := d.name()
		if !ok {
			return false
		}
		if d.next() != ':' {
			return false
		}
		d.i++
		fi := jm.byName[string(name)]
		switch {
		case fi == nil:
			if len(name) > 1 && name[0] == '[' && name[len(name)-1] == ']' {
				return false // an extension name: protojson resolves those
			}
			if !d.skip(0) {
				return false
			}
		case seen&fi.bit != 0:
			return false // duplicate field
		default:
			seen |= fi.bit
			// null leaves a field unset, and does not count as setting a oneof.
			if d.null() {
				break
			}
			if fi.oneof >= 0 {
				if seenOneofs&(1<<fi.oneof) != 0 {
					return false
				}
				seenOneofs |= 1 << fi.oneof
			}
			if !d.field(base, jm, fi) {
				return false
			}
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// name reads an object member's name, which must be ASCII with no escapes.
func (d *jsonDecoder) name() ([]byte, bool) {
	if d.next() != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return d.b[start:j], true
		case c == '\\' || c < ' ' || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// null consumes a null literal if one is next.
func (d *jsonDecoder) null() bool {
	return d.next() == 'n' && d.literal("null")
}

// literal consumes lit if it is next and followed by a delimiter.
func (d *jsonDecoder) literal(lit string) bool {
	end := d.i + len(lit)
	if end > len(d.b) || string(d.b[d.i:end]) != lit || !d.delimiterAt(end) {
		return false
	}
	d.i = end
	return true
}

// delimiterAt reports whether a token may end before b[j].
func (d *jsonDecoder) delimiterAt(j int) bool {
	if j == len(d.b) {
		return true
	}
	switch d.b[j] {
	case ' ', '\t', '\n', '\r', ',', '}', ']', ':':
		return true
	}
	return false
}

// field reads the value of a (non-null) field of the struct at base.
func (d *jsonDecoder) field(base unsafe.Pointer, jm *jsonMessage, fi *jsonField) bool {
	p := unsafe.Add(base, fi.offset)
	switch {
	case fi.mapValue != 0:
		return d.mapField(p, fi.mapValue)
	case fi.list:
		if d.next() != '[' {
			return false
		}
		d.i++
		if d.next() == ']' {
			d.i++
			return true
		}
		for {
			if fi.kind == protoreflect.MessageKind {
				elem := reflect.New(fi.msg.goType)
				if !d.message(elem.UnsafePointer(), fi.msg) {
					return false
				}
				list := reflect.NewAt(fi.sliceType, p).Elem()
				list.Set(reflect.Append(list, elem))
			} else { // repeated string
				if d.next() != '"' {
					return false
				}
				s, ok := d.string()
				if !ok {
					return false
				}
				sp := (*[]string)(p)
				*sp = append(*sp, s)
			}
			switch d.next() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case fi.wrapper != nil: // oneof member
		msg := reflect.New(fi.msg.goType)
		if !d.message(msg.UnsafePointer(), fi.msg) {
			return false
		}
		w := reflect.New(fi.wrapper)
		*(*unsafe.Pointer)(w.UnsafePointer()) = msg.UnsafePointer()
		reflect.NewAt(jm.goType, base).Elem().Field(fi.oneofIndex).Set(w)
		return true
	case fi.kind == protoreflect.MessageKind:
		msg := reflect.New(fi.msg.goType)
		if !d.message(msg.UnsafePointer(), fi.msg) {
			return false
		}
		*(*unsafe.Pointer)(p) = msg.UnsafePointer()
		return true
	default:
		return d.scalar(p, fi.kind, fi.enum)
	}
}

// mapField reads an object of string keys into the map at p, whose values
// are of kind value.
func (d *jsonDecoder) mapField(p unsafe.Pointer, value protoreflect.Kind) bool {
	if d.next() != '{' {
		return false
	}
	d.i++
	if d.next() == '}' {
		d.i++
		return true
	}
	for {
		if d.next() != '"' {
			return false
		}
		key, ok := d.string()
		if !ok || d.next() != ':' {
			return false
		}
		d.i++
		if !d.mapEntry(p, value, key) {
			return false
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// mapEntry reads one value into the map at p under key, refusing a key
// already present (protojson rejects duplicate keys).
func (d *jsonDecoder) mapEntry(p unsafe.Pointer, value protoreflect.Kind, key string) bool {
	switch value {
	case protoreflect.StringKind:
		return setMapEntry(d, (*map[string]string)(p), key, value)
	case protoreflect.Int64Kind:
		return setMapEntry(d, (*map[string]int64)(p), key, value)
	case protoreflect.DoubleKind:
		return setMapEntry(d, (*map[string]float64)(p), key, value)
	case protoreflect.BoolKind:
		return setMapEntry(d, (*map[string]bool)(p), key, value)
	}
	return false
}

func setMapEntry[V any](d *jsonDecoder, mp *map[string]V, key string, kind protoreflect.Kind) bool {
	if _, dup := (*mp)[key]; dup {
		return false
	}
	var v V
	if !d.scalar(unsafe.Pointer(&v), kind, nil) {
		return false
	}
	if *mp == nil {
		*mp = make(map[string]V)
	}
	(*mp)[key] = v
	return true
}

// scalar reads a value of a scalar field into p, which points to a Go value
// of the kind's type. An unknown enum name leaves p as it is, as protojson
// with DiscardUnknown drops it.
func (d *jsonDecoder) scalar(p unsafe.Pointer, kind protoreflect.Kind, enum map[string]int32) bool {
	switch kind {
	case protoreflect.StringKind:
		if d.next() != '"' {
			return false
		}
		s, ok := d.string()
		*(*string)(p) = s
		return ok
	case protoreflect.BoolKind:
		switch d.next() {
		case 't':
			*(*bool)(p) = true
			return d.literal("true")
		case 'f':
			*(*bool)(p) = false
			return d.literal("false")
		}
		return false
	case protoreflect.Int32Kind:
		n, ok := d.integer(true, 32)
		*(*int32)(p) = int32(n)
		return ok
	case protoreflect.Int64Kind:
		n, ok := d.integer(true, 64)
		*(*int64)(p) = n
		return ok
	case protoreflect.FloatKind:
		f, ok := d.float(32)
		*(*float32)(p) = float32(f)
		return ok
	case protoreflect.DoubleKind:
		f, ok := d.float(64)
		*(*float64)(p) = f
		return ok
	case protoreflect.EnumKind:
		if d.next() == '"' {
			name, ok := d.name()
			if !ok {
				return false
			}
			if n, known := enum[string(name)]; known {
				*(*int32)(p) = n
			}
			return true
		}
		n, ok := d.integer(false, 32)
		*(*int32)(p) = int32(n)
		return ok
	}
	return false
}

// integer reads an integer of the given bits: a plain JSON integer, or (when
// quoted is allowed, as for int32 and int64 fields) one in a string, as
// protojson writes 64-bit integers. Fractions, exponents, leading zeros and
// white space inside quotes are left to protojson.
func (d *jsonDecoder) integer(quoted bool, bits int) (int64, bool) {
	inQuotes := false
	if d.next() == '"' {
		if !quoted {
			return 0, false
		}
		inQuotes = true
		d.i++
	}
	j := d.i
	neg := false
	if j < len(d.b) && d.b[j] == '-' {
		neg = true
		j++
	}
	start := j
	var u uint64
	for ; j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9'; j++ {
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(d.b[j]-'0')
	}
	digits := j - start
	if digits == 0 || (digits > 1 && d.b[start] == '0') {
		return 0, false
	}
	if inQuotes {
		if j >= len(d.b) || d.b[j] != '"' {
			return 0, false
		}
		j++
	}
	if !d.delimiterAt(j) {
		return 0, false
	}
	limit := uint64(1)<<(bits-1) - 1 // largest positive value
	if neg {
		limit++
	}
	if u > limit {
		return 0, false
	}
	d.i = j
	if neg {
		return -int64(u), true // wraps to the minimum for u == limit
	}
	return int64(u), true
}

// float reads a plain JSON number (not quoted, not NaN or Infinity).
func (d *jsonDecoder) float(bits int) (float64, bool) {
	d.space()
	end, ok := numberEnd(d.b, d.i)
	if !ok || !d.delimiterAt(end) {
		return 0, false
	}
	f, err := strconv.ParseFloat(unsafe.String(&d.b[d.i], end-d.i), bits)
	if err != nil {
		return 0, false
	}
	d.i = end
	return f, true
}

// numberEnd returns the end of the JSON number at b[i], by the JSON grammar.
func numberEnd(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// string reads a JSON string (d.b[d.i] is its opening quote).
func (d *jsonDecoder) string() (string, bool) {
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			raw := d.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			d.i = j + 1
			return string(raw), true
		case c == '\\':
			return d.escapedString(start, j)
		case c < ' ':
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escapedString reads the rest of a string holding escapes; b[start:j] is
// its plain beginning and b[j] the first backslash.
func (d *jsonDecoder) escapedString(start, j int) (string, bool) {
	out := make([]byte, 0, len(d.b[start:j])+16)
	out = append(out, d.b[start:j]...)
	for j < len(d.b) {
		c := d.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			d.i = j + 1
			return string(out), true
		case c < ' ':
			return "", false
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(d.b) {
			return "", false
		}
		switch e := d.b[j+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.b, j+2)
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low one is valid.
				if j+7 >= len(d.b) || d.b[j+6] != '\\' || d.b[j+7] != 'u' {
					return "", false
				}
				r2, ok := hex4(d.b, j+8)
				if !ok {
					return "", false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", false
				}
				j += 6
			}
			out = utf8.AppendRune(out, r)
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads the four hex digits at b[i].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// skip reads past any JSON value, checking that it is valid.
func (d *jsonDecoder) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	switch d.next() {
	case '"':
		_, ok := d.string()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '{':
		d.i++
		if d.next() == '}' {
			d.i++
			return true
		}
		for {
			if d.next() != '"' {
				return false
			}
			if _, ok := d.string(); !ok {
				return false
			}
			if d.next() != ':' {
				return false
			}
			d.i++
			if !d.skip(depth + 1) {
				return false
			}
			switch d.next() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		d.i++
		if d.next() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			switch d.next() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	default:
		end, ok := numberEnd(d.b, d.i)
		if !ok || !d.delimiterAt(end) {
			return false
		}
		d.i = end
		return true
	}
}
