package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Status names of the JetStream target, in report order: a publish call is "acked" when
// every message of it was, else named after the first refusal.
var jsStatuses = []string{"acked", "full", "unavailable", "error"}

const (
	jsAcked = iota
	jsFull
	jsUnavailable
	jsError
)

// msgTemplate is one event as the server would publish it: binary envelope, subject.
type msgTemplate struct {
	subject string
	data    []byte
	idAt    int    // offset of the counter digits in data; -1 with fixed ids
	msgID   string // with fixed ids: the id the server would use
}

// MsgSet is the pool of events the JetStream target publishes, with ids patched per
// publish like the HTTP bodies'.
type MsgSet struct {
	msgs    []msgTemplate
	per     int // events per publish call
	app     string
	runID   string
	maxData int
	counter atomic.Uint64
}

// buildMessages makes opts.bodies*events-per-request distinct events.
func buildMessages(gen *eventGen, opts bodyOptions) (*MsgSet, error) {
	s := &MsgSet{per: opts.batchSize, app: opts.app, runID: opts.runID}
	if opts.single {
		s.per = 1
	}
	for i := range opts.bodies * s.per {
		var c [idDigits]byte
		putHex(c[:], uint64(i))
		id := "bench-" + opts.runID + "-" + string(c[:])
		if opts.unique {
			id = "bench-" + opts.runID + "-" + idMarker
		}
		e := gen.envelope(id)
		data, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		t := msgTemplate{subject: event.Subject(e), data: data, idAt: -1}
		if opts.unique {
			t.idAt = bytes.Index(data, []byte(idMarker))
			if t.idAt < 0 {
				return nil, errors.New("event template: id placeholder not found")
			}
			putHex(data[t.idAt:], 0)
		} else {
			t.msgID = event.DedupKey(e) // what the ingest path sends
		}
		s.maxData = max(s.maxData, len(data))
		s.msgs = append(s.msgs, t)
	}
	return s, nil
}

// jsSender publishes batches through the appliance's own bus code, as the ingest path does
// (pipelined async publish with Nats-Msg-Id, then wait for every ack), minus HTTP,
// decoding, validation and the response.
type jsSender struct {
	bus     *bus.Bus
	set     *MsgSet
	ctx     context.Context
	timeout time.Duration
	out     []bus.Message
	arena   []byte
	msgID   []byte
}

func newJSSender(ctx context.Context, b *bus.Bus, set *MsgSet, timeout time.Duration) *jsSender {
	return &jsSender{
		bus: b, set: set, ctx: ctx, timeout: timeout,
		out:   make([]bus.Message, set.per),
		arena: make([]byte, set.per*set.maxData),
	}
}

func (s *jsSender) send(seq uint64) outcome {
	set := s.set
	n := uint64(set.per)
	first := seq * n
	var base uint64
	unique := set.msgs[0].idAt >= 0
	if unique {
		base = set.counter.Add(n) - n
	}
	now := time.Now().UnixMilli()
	arena := s.arena
	for i := range s.out {
		t := &set.msgs[(first+uint64(i))%uint64(len(set.msgs))]
		m := bus.Message{Subject: t.subject, Data: t.data, MsgID: t.msgID, ReceivedMs: now}
		if unique {
			// The arena is reused only after Publish returned, when every ack is in and
			// the client holds no message any more.
			d := arena[:len(t.data):len(t.data)]
			arena = arena[len(t.data):]
			copy(d, t.data)
			putHex(d[t.idAt:], base+uint64(i))
			m.Data = d
			// The same Nats-Msg-Id the ingest path derives from the event's id.
			s.msgID = append(s.msgID[:0], set.runID...)
			s.msgID = append(s.msgID, "00000000"...)
			s.msgID = append(s.msgID, zeroID[:]...)
			putHex(s.msgID[len(s.msgID)-idDigits:], base+uint64(i))
			m.MsgID = event.DedupKey(&causalityv1.EventEnvelope{AppId: set.app, Id: string(s.msgID)})
		}
		s.out[i] = m
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	results, err := s.bus.Publish(ctx, s.out)
	if err != nil {
		return outcome{status: jsError, err: err.Error(), backoff: true}
	}
	o := outcome{status: jsAcked, ok: true}
	for _, r := range results {
		if r.Err == nil {
			o.accepted++
			if r.Duplicate {
				o.dups++
			}
			continue
		}
		if o.ok {
			o.ok, o.err = false, r.Err.Error()
			switch {
			case errors.Is(r.Err, bus.ErrFull):
				o.status = jsFull
			case errors.Is(r.Err, bus.ErrUnavailable):
				o.status = jsUnavailable
			default:
				o.status = jsError
			}
		}
	}
	return o
}

var zeroID [idDigits]byte

// openBus starts the embedded JetStream the way `causality serve` does, with the stream
// limits of its defaults.
func openBus(ctx context.Context, dir string, syncAlways bool, log *slog.Logger) (*bus.Bus, error) {
	return bus.Open(ctx, bus.Options{
		StoreDir:    dir,
		SyncAlways:  syncAlways,
		DedupWindow: 2 * time.Minute,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    10 << 30,
		Logger:      log,
	})
}
