package event

import (
	"strconv"
	"unicode/utf8"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// The answers to ingest requests are encoded to JSON by hand: a batch's answer
// holds one result per event, and protojson spends about 1.5 µs on each, as
// much as decoding the event. The output is what protojson writes with
// EmitUnpopulated (same names, order and escaping; tests compare them), except
// that invalid UTF-8, on which protojson fails, is written as U+FFFD.

// appendIngestEventResponse appends r as JSON.
func appendIngestEventResponse(b []byte, r *causalityv1.IngestEventResponse) []byte {
	b = append(b, `{"eventId":`...)
	b = appendJSONString(b, r.GetEventId())
	b = append(b, `,"status":`...)
	b = appendJSONString(b, r.GetStatus())
	return append(b, '}')
}

// appendIngestEventBatchResponse appends r as JSON.
func appendIngestEventBatchResponse(b []byte, r *causalityv1.IngestEventBatchResponse) []byte {
	b = append(b, `{"acceptedCount":`...)
	b = strconv.AppendInt(b, int64(r.GetAcceptedCount()), 10)
	b = append(b, `,"rejectedCount":`...)
	b = strconv.AppendInt(b, int64(r.GetRejectedCount()), 10)
	b = append(b, `,"results":[`...)
	for i, res := range r.GetResults() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(res.GetIndex()), 10)
		b = append(b, `,"eventId":`...)
		b = appendJSONString(b, res.GetEventId())
		b = append(b, `,"status":`...)
		b = appendJSONString(b, res.GetStatus())
		b = append(b, `,"error":`...)
		b = appendJSONString(b, res.GetError())
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string, escaped as protojson does:
// '"', '\\' and control characters only.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
