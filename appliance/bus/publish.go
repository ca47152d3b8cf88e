package bus

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names on stored event messages.
const (
	// HeaderReceivedAt carries the server's receive time in Unix milliseconds.
	HeaderReceivedAt = "Causality-Received-Ms"
)

// Message is one event to store.
type Message struct {
	Subject    string
	Data       []byte
	MsgID      string // dedup identity; JetStream drops a repeat inside the duplicate window
	ReceivedMs int64
}

// Result is the outcome of one publish.
type Result struct {
	Duplicate bool
	Sequence  uint64
	Err       error // wraps ErrFull or ErrUnavailable
}

// Publish stores msgs and returns once JetStream has acknowledged (or refused) every one of
// them; results[i] belongs to msgs[i]. Publishing is asynchronous and pipelined, so a batch
// costs about one round trip, not one per message. The returned error is set only when ctx
// ended first; then the state of unacknowledged messages is unknown (a retry is safe, since
// every message carries its dedup id).
func (b *Bus) Publish(ctx context.Context, msgs []Message) ([]Result, error) {
	results := make([]Result, len(msgs))
	if !b.nc.IsConnected() {
		// While reconnecting the client would buffer and the caller would wait out its
		// timeout; tell it now so that clients retry elsewhere or later.
		for i := range results {
			results[i].Err = fmt.Errorf("%w: not connected to nats", ErrUnavailable)
		}
		return results, nil
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	natsMsgs := getMsgs(len(msgs))
	for i, m := range msgs {
		msg := natsMsgs[i]
		msg.Subject, msg.Data = m.Subject, m.Data
		msg.Header[jetstream.MsgIDHeader][0] = m.MsgID
		msg.Header[HeaderReceivedAt][0] = strconv.FormatInt(m.ReceivedMs, 10)
		f, err := b.js.PublishMsgAsync(msg)
		if err != nil {
			results[i].Err = classify(err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			results[i].Duplicate = ack.Duplicate
			results[i].Sequence = ack.Sequence
		case err := <-f.Err():
			results[i].Err = classify(err)
		case <-ctx.Done():
			// Unacknowledged messages are still the client's: leave them to the GC.
			return results, fmt.Errorf("waiting for stream acks: %w", ctx.Err())
		}
	}
	putMsgs(natsMsgs)
	return results, nil
}

// msgPool recycles messages with their header maps: building a header per event was a
// tenth of all allocation on the ingest path. A message goes back only once JetStream has
// answered for it, when the client no longer holds it: nats.go retries a no-responders
// publish only while its future is unresolved, and no async publish timeout is set (one
// could fail a future while a retry still holds the message).
var msgPool = sync.Pool{New: func() any {
	return &nats.Msg{Header: nats.Header{
		jetstream.MsgIDHeader: []string{""},
		HeaderReceivedAt:      []string{""},
	}}
}}

func getMsgs(n int) []*nats.Msg {
	out := make([]*nats.Msg, n)
	for i := range out {
		out[i] = msgPool.Get().(*nats.Msg)
	}
	return out
}

func putMsgs(msgs []*nats.Msg) {
	for _, m := range msgs {
		m.Subject, m.Data, m.Reply = "", nil, ""
		msgPool.Put(m)
	}
}
