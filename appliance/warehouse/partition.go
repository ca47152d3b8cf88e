package warehouse

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Bounds for a plausible client clock. An event time outside them is
// "absurd" and the receive time (the appliance's own clock) is used instead,
// so the lake never grows partitions for 1970 or 2099 (DESIGN.md).
const (
	// minEventMs is 2000-01-01T00:00:00Z: no device running a Causality SDK
	// has a legitimate clock before it; unset and reset clocks (0, 1970)
	// fall below it.
	minEventMs int64 = 946684800000
	// maxAheadMs allows 24 h of clock skew ahead of the receive time (time
	// zones wrongly applied to UTC are at most 14 h); further ahead is a
	// wrong clock, not an event from the future.
	maxAheadMs int64 = 24 * 60 * 60 * 1000
	// maxBehindMs accepts events up to 30 days older than their receipt:
	// SDKs queue events offline and send them when back online, and those
	// belong to the hour they happened in. Older than that is far more likely
	// a wrong clock than a phone offline for a month, and writing into long
	// closed (possibly compacted or expired) partitions has a cost.
	maxBehindMs int64 = 30 * 24 * 60 * 60 * 1000
)

// EventTimeMs is the effective event time in Unix milliseconds: the client's
// timestamp_ms when it is plausible relative to receivedMs, else receivedMs.
//
// receivedMs is the appliance's clock and is trusted; if it is itself unset
// (<= minEventMs, only in hand-made data) the client time is used whenever
// it is at least minEventMs.
func EventTimeMs(timestampMs, receivedMs int64) int64 {
	if receivedMs < minEventMs {
		if timestampMs >= minEventMs {
			return timestampMs
		}
		return receivedMs
	}
	if timestampMs < minEventMs ||
		timestampMs > receivedMs+maxAheadMs ||
		timestampMs < receivedMs-maxBehindMs {
		return receivedMs
	}
	return timestampMs
}

// Partition is the Hive partition an event is written to: its app and the
// UTC hour of its effective event time.
type Partition struct {
	AppID string
	Year  int
	Month int
	Day   int
	Hour  int
}

// PartitionOf returns the partition of an event received at receivedMs
// (Unix milliseconds), by its effective event time (EventTimeMs) in UTC.
func PartitionOf(e *causalityv1.EventEnvelope, receivedMs int64) Partition {
	t := time.UnixMilli(EventTimeMs(e.GetTimestampMs(), receivedMs)).UTC()
	return Partition{
		AppID: e.GetAppId(),
		Year:  t.Year(),
		Month: int(t.Month()),
		Day:   t.Day(),
		Hour:  t.Hour(),
	}
}

// Path is the partition's directory relative to the warehouse root:
// "events/app_id=<escaped>/year=2026/month=11/day=7/hour=3". The integers
// have no leading zeros so that every engine's partition discovery types
// them as integers (DESIGN.md); app_id is escaped as Hive escapes partition
// values (see EscapePartitionValue).
func (p Partition) Path() string {
	var b strings.Builder
	b.Grow(len("events/app_id=/year=2026/month=11/day=30/hour=23") + len(p.AppID))
	b.WriteString("events/app_id=")
	b.WriteString(EscapePartitionValue(p.AppID))
	b.WriteString("/year=")
	b.WriteString(strconv.Itoa(p.Year))
	b.WriteString("/month=")
	b.WriteString(strconv.Itoa(p.Month))
	b.WriteString("/day=")
	b.WriteString(strconv.Itoa(p.Day))
	b.WriteString("/hour=")
	b.WriteString(strconv.Itoa(p.Hour))
	return b.String()
}

// hiveDefaultPartition is what Hive writes for an empty or null partition
// value; readers map it back to NULL.
const hiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__"

// EscapePartitionValue escapes a partition value the way Hive's
// FileUtils.escapePathName does (and Trino, Spark and DuckDB unescape):
// each byte in the set below becomes "%XX" with upper-case hex, everything
// else, including non-ASCII UTF-8, is kept as is. The set is Hive's, minus
// its Windows-only additions (space < > |):
//
//	control characters 0x01-0x1F and 0x7F, and " # % ' * / : = ? \ { [ ] ^
//
// 0x00 is escaped too: Hive leaves it alone only because a Java string
// rarely carries it, but no file system or object key can hold it raw.
// An empty value becomes __HIVE_DEFAULT_PARTITION__, as in Hive.
func EscapePartitionValue(v string) string {
	if v == "" {
		return hiveDefaultPartition
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if needsEscape(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if needsEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&0xF])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func needsEscape(c byte) bool {
	if c < 0x20 || c == 0x7F {
		return true
	}
	switch c {
	case '"', '#', '%', '\'', '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^':
		return true
	}
	return false
}

// RawPartitionOf is PartitionOf for an envelope still in protobuf form. It
// reads only app_id and timestamp_ms, skipping every other field without
// decoding it, so the sink can file an event without unmarshalling it
// (that happens once, when its file is written). Malformed protobuf is an
// error.
func RawPartitionOf(data []byte, receivedMs int64) (Partition, error) {
	var (
		appID string
		tsMs  int64
	)
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return Partition{}, fmt.Errorf("envelope: %w", protowire.ParseError(n))
		}
		data = data[n:]
		switch {
		case num == envelopeAppID && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return Partition{}, fmt.Errorf("envelope app_id: %w", protowire.ParseError(n))
			}
			appID, data = string(v), data[n:]
		case num == envelopeTimestampMs && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return Partition{}, fmt.Errorf("envelope timestamp_ms: %w", protowire.ParseError(n))
			}
			tsMs, data = int64(v), data[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return Partition{}, fmt.Errorf("envelope field %d: %w", num, protowire.ParseError(n))
			}
			data = data[n:]
		}
	}
	t := time.UnixMilli(EventTimeMs(tsMs, receivedMs)).UTC()
	return Partition{AppID: appID, Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour()}, nil
}

// RawID reads an envelope's id from its protobuf form, skipping every
// other field, so the sink can order a batch by id before decoding it.
func RawID(data []byte) (string, error) {
	var id []byte
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return "", fmt.Errorf("envelope: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if num == envelopeID && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return "", fmt.Errorf("envelope id: %w", protowire.ParseError(n))
			}
			id, data = v, data[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, data)
		if n < 0 {
			return "", fmt.Errorf("envelope field %d: %w", num, protowire.ParseError(n))
		}
		data = data[n:]
	}
	return string(id), nil
}

// Field numbers of EventEnvelope that RawPartitionOf and RawID read; a
// test checks them against the generated descriptor.
const (
	envelopeID          protowire.Number = 1
	envelopeAppID       protowire.Number = 2
	envelopeTimestampMs protowire.Number = 4
)
