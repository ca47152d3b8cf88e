package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/google/uuid"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Normalize completes a valid event the way the server promises (WIRE.md): an
// empty id becomes a new UUIDv7 and a zero timestamp_ms becomes now, in Unix
// milliseconds. It runs after validation and changes nothing else.
func Normalize(e *causalityv1.EventEnvelope, now time.Time) {
	if e.GetId() == "" {
		// NewV7 only fails when the system's random source does, and since
		// Go 1.24 crypto/rand crashes the program rather than return an error.
		e.Id = uuid.Must(uuid.NewV7()).String()
	}
	if e.GetTimestampMs() == 0 {
		e.TimestampMs = now.UnixMilli()
	}
}

// DedupKey returns the key under which the bus deduplicates an event (the
// JetStream message id), or "" when the event has neither idempotency_key nor
// id (call it after Normalize, which assigns an id).
//
// The event's identity is its idempotency_key if set, else its id, as DESIGN.md
// says; the key is that identity scoped to the event's app and hashed:
//   - scoped, because all apps share one stream and its duplicate window, so
//     two apps that both send idempotency_key "order-1" must not swallow each
//     other's events;
//   - hashed (SHA-256, first 128 bits, 32 hex characters), because both
//     values are chosen by the client and may be long: the stream keeps every
//     key of its duplicate window in memory, which stays bounded only if the
//     key has a fixed size. It is also always safe as a NATS header value.
func DedupKey(e *causalityv1.EventEnvelope) string {
	key := e.GetIdempotencyKey()
	if key == "" {
		key = e.GetId()
	}
	if key == "" {
		return ""
	}
	app := e.GetAppId()
	var buf [256]byte
	// The length prefix keeps ("a", "bc") and ("ab", "c") apart.
	b := binary.AppendUvarint(buf[:0], uint64(len(app)))
	b = append(b, app...)
	b = append(b, key...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
