package event

import (
	"errors"
	"fmt"
	"mime"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// MaxBatchEvents is the most events one batch request may hold (WIRE.md).
const MaxBatchEvents = 1000

// ErrUnsupportedMediaType is returned (wrapped, with the offending type) by the
// decoders for a Content-Type they do not read; the caller answers 415.
// Every other decode error means a malformed body (400).
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// Content types of responses.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/x-protobuf"
)

// format is the encoding of a body.
type format int

const (
	formatJSON format = iota
	formatProto
)

// Media types read as binary protobuf. application/x-protobuf is the one the
// contract names; application/protobuf and application/vnd.google.protobuf are
// spellings in the wild, application/proto is what Connect clients send, and
// application/octet-stream is what generic HTTP clients send for raw bytes.
// The only binary body the API takes is protobuf, so reading octet-stream as
// protobuf turns a mislabelled body into a clear 400 rather than a 415.
var protoMediaTypes = map[string]bool{
	"application/x-protobuf":          true,
	"application/protobuf":            true,
	"application/vnd.google.protobuf": true,
	"application/proto":               true,
	"application/octet-stream":        true,
}

// Media types read as JSON besides application/json, for clients that cannot or do not
// label their JSON: `curl -d` sends application/x-www-form-urlencoded, and a browser's
// sendBeacon or a CORS "simple" request (no preflight) sends text/plain. A body in any of
// them that is not JSON still gets a clear 400.
var lenientJSONMediaTypes = map[string]bool{
	"text/plain":                        true,
	"application/x-www-form-urlencoded": true,
}

// bodyFormat maps a raw Content-Type header value to the body's format.
// JSON is application/json (or a lenient type above, or no Content-Type at all) with no
// charset or a UTF-8 one (protojson reads UTF-8 only); protobuf is any of protoMediaTypes.
func bodyFormat(contentType string) (format, error) {
	if strings.TrimSpace(contentType) == "" {
		return formatJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("%w %q: send application/json or application/x-protobuf", ErrUnsupportedMediaType, contentType)
	}
	if mt == "application/json" || lenientJSONMediaTypes[mt] {
		switch cs := strings.ToLower(params["charset"]); cs {
		case "", "utf-8", "utf8", "us-ascii":
			return formatJSON, nil
		default:
			return 0, fmt.Errorf("%w: charset %q; send JSON in UTF-8", ErrUnsupportedMediaType, cs)
		}
	}
	if protoMediaTypes[mt] {
		return formatProto, nil
	}
	return 0, fmt.Errorf("%w %q: send application/json or application/x-protobuf", ErrUnsupportedMediaType, mt)
}

// Fields the client sends that this version does not know are dropped, both in
// JSON and in protobuf: apps instrumented against a newer SDK (or the original
// Causality with extra fields) keep working, as WIRE.md promises, instead of
// failing on the first unknown field. Rejecting them would give sharper errors
// for typos, but a typo in a required field is caught by validation anyway.
var (
	jsonIn   = protojson.UnmarshalOptions{DiscardUnknown: true}
	protoIn  = proto.UnmarshalOptions{DiscardUnknown: true}
	jsonOut  = protojson.MarshalOptions{EmitUnpopulated: true}
	protoOut = proto.MarshalOptions{}
)

// decode reads body into m in the format contentType names.
func decode(contentType string, body []byte, m proto.Message) error {
	f, err := bodyFormat(contentType)
	if err != nil {
		return err
	}
	if f == formatProto {
		if err := protoIn.Unmarshal(body, m); err != nil {
			return fmt.Errorf("invalid protobuf body: %s", trimProtoPrefix(err))
		}
		return nil
	}
	if len(body) == 0 {
		return errors.New("invalid JSON body: the body is empty")
	}
	if unmarshalJSONFast(body, m) {
		return nil
	}
	proto.Reset(m) // the fast path gave up half way: start again
	if err := jsonIn.Unmarshal(body, m); err != nil {
		return fmt.Errorf("invalid JSON body: %s", trimProtoPrefix(err))
	}
	return nil
}

// trimProtoPrefix drops the "proto: " that the protobuf runtime puts before
// its messages (followed by a space or, at random, a no-break space).
func trimProtoPrefix(err error) string {
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, "proto:"); ok {
		s = strings.TrimLeft(rest, " \u00a0")
	}
	return s
}

// DecodeSingle decodes the body of POST /v1/events/ingest (already
// un-gzipped) in the format contentType names. It fails with an error wrapping
// ErrUnsupportedMediaType for a type it does not read, and otherwise with a
// message fit for the client: "invalid JSON body: ...", "invalid protobuf
// body: ..." or "event: required". The event itself is not validated.
func DecodeSingle(contentType string, body []byte) (*causalityv1.IngestEventRequest, error) {
	req := &causalityv1.IngestEventRequest{}
	if err := decode(contentType, body, req); err != nil {
		return nil, err
	}
	if req.GetEvent() == nil {
		return nil, errors.New("event: required")
	}
	return req, nil
}

// DecodeBatch decodes the body of POST /v1/events/batch like DecodeSingle and
// checks that it holds 1 to MaxBatchEvents events. It does not validate the
// events: the caller validates each one, so that a batch with some invalid
// events still accepts the valid ones.
func DecodeBatch(contentType string, body []byte) (*causalityv1.IngestEventBatchRequest, error) {
	req := &causalityv1.IngestEventBatchRequest{}
	if err := decode(contentType, body, req); err != nil {
		return nil, err
	}
	if n := len(req.GetEvents()); n == 0 || n > MaxBatchEvents {
		return nil, fmt.Errorf("events: a batch holds 1 to %d events, got %d", MaxBatchEvents, n)
	}
	return req, nil
}

// EncodeResponse encodes m in the format of the request: binary protobuf when
// contentType is one of the protobuf types DecodeSingle reads (answered with
// that same media type), JSON otherwise, including for a missing or
// unsupported type, so that errors about the type itself are readable. JSON
// uses lowerCamelCase names and writes every field, zeros included
// ("rejectedCount": 0), so clients need no defaults.
func EncodeResponse(contentType string, m proto.Message) (body []byte, respContentType string, err error) {
	if mt, ok := protoMediaType(contentType); ok {
		body, err = protoOut.Marshal(m)
		if err != nil {
			return nil, "", fmt.Errorf("encode protobuf response: %w", err)
		}
		return body, mt, nil
	}
	switch r := m.(type) {
	case *causalityv1.IngestEventResponse:
		return appendIngestEventResponse(make([]byte, 0, 128), r), ContentTypeJSON, nil
	case *causalityv1.IngestEventBatchResponse:
		return appendIngestEventBatchResponse(make([]byte, 0, 64+100*len(r.GetResults())), r), ContentTypeJSON, nil
	}
	body, err = jsonOut.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("encode JSON response: %w", err)
	}
	return body, ContentTypeJSON, nil
}

// protoMediaType returns the bare media type of contentType when it is read as
// protobuf.
func protoMediaType(contentType string) (string, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !protoMediaTypes[mt] {
		return "", false
	}
	return mt, true
}
