package event

import (
	"strings"
	"unicode"
	"unicode/utf8"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// maxTokenBytes caps the app and type tokens of a subject. Both come from the
// client; NATS refuses a protocol line longer than its max_control_line (4 KiB
// by default), so an unbounded event_name could make a publish fail. Longer
// tokens are cut at a character boundary; the event itself keeps the full value.
const maxTokenBytes = 128

// Subject returns the NATS subject of an event, "events.<app>.<category>.<type>"
// (DESIGN.md). The app and type tokens are sanitised: '.', '*', '>', any
// whitespace, control or other non-printable character and invalid UTF-8 each
// become '_', an empty token becomes "_", and a token is cut to 128 bytes.
// Printable non-ASCII characters are kept (NATS subjects are UTF-8).
// An envelope without payload (which Validate rejects) gets "events.<app>._._".
func Subject(e *causalityv1.EventEnvelope) string {
	category, typ, ok := Kind(e)
	if !ok {
		category = "_"
	}
	app := e.GetAppId()
	var b strings.Builder
	b.Grow(len("events...") + min(len(app), maxTokenBytes) + len(category) + min(len(typ), maxTokenBytes) + 2)
	b.WriteString("events.")
	writeToken(&b, app)
	b.WriteByte('.')
	b.WriteString(category)
	b.WriteByte('.')
	writeToken(&b, typ)
	return b.String()
}

// writeToken writes s as one sanitised subject token.
func writeToken(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('_')
		return
	}
	n := 0 // bytes of the token written so far
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if n+1 > maxTokenBytes {
				return
			}
			if c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
				c = '_'
			}
			b.WriteByte(c)
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			if n+1 > maxTokenBytes {
				return
			}
			b.WriteByte('_')
			n++
			continue
		}
		if n+size > maxTokenBytes {
			return
		}
		b.WriteRune(r)
		n += size
	}
}
