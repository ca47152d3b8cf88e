package event

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestNormalizeFillsIDAndTimestamp(t *testing.T) {
	now := time.Date(2026, 11, 27, 16, 0, 0, 123_456_789, time.UTC)
	e := allKinds[4].valid()
	Normalize(e, now)
	u, err := uuid.Parse(e.GetId())
	if err != nil || u.Version() != 7 {
		t.Errorf("id %q is not a UUIDv7: %v", e.GetId(), err)
	}
	if want := int64(1795795200123); e.GetTimestampMs() != want {
		t.Errorf("timestamp_ms = %d, want %d", e.GetTimestampMs(), want)
	}

	other := allKinds[4].valid()
	Normalize(other, now)
	if other.GetId() == e.GetId() {
		t.Error("two events got the same id")
	}
}

func TestNormalizeKeepsClientValues(t *testing.T) {
	e := allKinds[4].valid()
	e.Id, e.TimestampMs = "client-id", 42
	Normalize(e, time.Now())
	if e.GetId() != "client-id" || e.GetTimestampMs() != 42 {
		t.Errorf("Normalize changed id or timestamp: %v", e)
	}
	// A negative timestamp is the client's (absurd) value, not a missing one.
	e.TimestampMs = -1
	Normalize(e, time.Now())
	if e.GetTimestampMs() != -1 {
		t.Errorf("timestamp_ms = %d, want -1", e.GetTimestampMs())
	}
}

func TestDedupKey(t *testing.T) {
	ev := func(app, id, key string) *causalityv1.EventEnvelope {
		return &causalityv1.EventEnvelope{AppId: app, Id: id, IdempotencyKey: key}
	}
	base := DedupKey(ev("shop", "id-1", ""))
	if len(base) != 32 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("DedupKey = %q, want 32 lower-case hex digits", base)
	}
	same := []struct {
		name string
		a, b *causalityv1.EventEnvelope
	}{
		{"same id", ev("shop", "id-1", ""), ev("shop", "id-1", "")},
		{"idempotency key wins over id", ev("shop", "id-1", "k"), ev("shop", "id-2", "k")},
		{"id equal to a key", ev("shop", "k", ""), ev("shop", "other", "k")},
	}
	for _, tt := range same {
		if DedupKey(tt.a) != DedupKey(tt.b) {
			t.Errorf("%s: keys differ", tt.name)
		}
	}
	differ := []struct {
		name string
		a, b *causalityv1.EventEnvelope
	}{
		{"different ids", ev("shop", "id-1", ""), ev("shop", "id-2", "")},
		{"different keys", ev("shop", "id-1", "k1"), ev("shop", "id-1", "k2")},
		{"same key, other app", ev("shop", "", "order-1"), ev("blog", "", "order-1")},
		{"app and key boundary", ev("ab", "", "c"), ev("a", "", "bc")},
	}
	for _, tt := range differ {
		if DedupKey(tt.a) == DedupKey(tt.b) {
			t.Errorf("%s: keys equal", tt.name)
		}
	}
	if k := DedupKey(ev("shop", "", "")); k != "" {
		t.Errorf("DedupKey without id or key = %q, want \"\"", k)
	}
	if k := DedupKey(ev("shop", "", strings.Repeat("x", 1<<20))); len(k) != 32 {
		t.Errorf("DedupKey of a 1 MiB key has length %d", len(k))
	}
}
