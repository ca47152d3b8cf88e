package event

import (
	"cmp"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrJSONUnsupported is returned by AppendJSON for a message it does not render: one that
// holds a well-known type (google.protobuf.*) or an extension. Callers fall back to
// protojson, which renders everything.
var ErrJSONUnsupported = errors.New("message needs protojson")

// AppendJSON appends m as compact JSON with proto (snake_case) field names: byte for byte
// what protojson.MarshalOptions{UseProtoNames: true} writes once its deliberately random
// spacing is removed. Fields come in declaration order and only when set; 64-bit integers
// are strings, enums their value names, bytes base64, map keys sorted, and NaN and the
// infinities strings. Invalid UTF-8, on which protojson fails, is written as U+FFFD, as in
// the ingest answers (ingest refuses such strings anyway).
//
// It exists for the warehouse, which renders every event's payload: protojson took a third
// of the sink's encoding time and a tenth of the appliance's allocations. The fuzz test
// holds the two to the same output.
func AppendJSON(dst []byte, m protoreflect.Message) ([]byte, error) {
	return appendMessage(dst, m)
}

func appendMessage(b []byte, m protoreflect.Message) ([]byte, error) {
	md := m.Descriptor()
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") || md.ExtensionRanges().Len() > 0 {
		return b, ErrJSONUnsupported
	}
	b = append(b, '{')
	first := true
	fields := md.Fields()
	var err error
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, fd.TextName())
		b = append(b, ':')
		v := m.Get(fd)
		switch {
		case fd.IsList():
			b, err = appendList(b, v.List(), fd)
		case fd.IsMap():
			b, err = appendMap(b, v.Map(), fd)
		default:
			b, err = appendSingular(b, v, fd)
		}
		if err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendList(b []byte, l protoreflect.List, fd protoreflect.FieldDescriptor) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := range l.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendSingular(b, l.Get(i), fd); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// mapEntry is one entry of a map field, taken out to be sorted.
type mapEntry struct {
	k protoreflect.MapKey
	v protoreflect.Value
}

func appendMap(b []byte, mp protoreflect.Map, fd protoreflect.FieldDescriptor) ([]byte, error) {
	// One pass collects keys and values: a lookup per key afterwards costs as much again
	// in reflection.
	entries := make([]mapEntry, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, mapEntry{k, v})
		return true
	})
	// protojson's order: false before true, numbers ascending, strings by code point
	// (for valid UTF-8, the order of their bytes).
	switch fd.MapKey().Kind() {
	case protoreflect.BoolKind:
		slices.SortFunc(entries, func(x, y mapEntry) int { return cmpBool(x.k.Bool(), y.k.Bool()) })
	case protoreflect.StringKind:
		slices.SortFunc(entries, func(x, y mapEntry) int { return strings.Compare(x.k.String(), y.k.String()) })
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		slices.SortFunc(entries, func(x, y mapEntry) int { return cmp.Compare(x.k.Uint(), y.k.Uint()) })
	default:
		slices.SortFunc(entries, func(x, y mapEntry) int { return cmp.Compare(x.k.Int(), y.k.Int()) })
	}
	b = append(b, '{')
	vd := fd.MapValue()
	var err error
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.k.String())
		b = append(b, ':')
		if b, err = appendSingular(b, e.v, vd); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendSingular(b []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.StringKind:
		return appendJSONString(b, v.String()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), nil
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32), nil
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64), nil
	case protoreflect.BytesKind:
		b = append(b, '"')
		return append(base64.StdEncoding.AppendEncode(b, v.Bytes()), '"'), nil
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return b, ErrJSONUnsupported
		}
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendJSONString(b, string(ev.Name())), nil
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), nil
	case protoreflect.MessageKind:
		return appendMessage(b, v.Message())
	default: // groups: proto2 only
		return b, ErrJSONUnsupported
	}
}

// appendFloat writes a number the way protojson (and encoding/json) does: the shortest
// representation that reads back exactly, in exponent form only for very small or very
// large magnitudes, with the non-numbers as strings.
func appendFloat(b []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bitSize == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bitSize)
	if format == 'e' {
		// 1e-07 is written 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func cmpBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case !x:
		return -1
	}
	return 1
}
