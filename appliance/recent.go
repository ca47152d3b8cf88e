package appliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// maxRecent bounds how many events Recent reads: the admin UI tests a rule against at most
// this many, and one answer holds them all in memory.
const maxRecent = 1000

// Recent returns the newest n events of the EVENTS stream (at most 1000), newest first
// (admin.RecentEvents, for the rule editor's Test). Messages that do not decode are
// skipped; so are deleted ones, so fewer than n may come back.
//
// It reads through a short-lived ephemeral consumer starting at the right sequence, in one
// pull, rather than one request per sequence: a round trip each would be slow against an
// external NATS server.
func (a *Appliance) Recent(ctx context.Context, n int) ([]*causalityv1.EventEnvelope, error) {
	if a.bus == nil {
		return nil, errors.New("the event stream is not open")
	}
	n = min(n, maxRecent)
	if n <= 0 {
		return nil, nil
	}
	stream, err := a.bus.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamName, err)
	}
	st := stream.CachedInfo().State
	if st.Msgs == 0 || st.LastSeq < st.FirstSeq {
		return nil, nil
	}
	// The stream's limits remove events from its front only; sequences deleted inside it
	// (by hand) would leave fewer than n in the last n sequences, so the window widens by
	// as many, up to n more.
	span := uint64(n) + min(uint64(st.NumDeleted), uint64(n))
	start := st.FirstSeq
	if st.LastSeq-st.FirstSeq+1 > span {
		start = st.LastSeq - span + 1
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "causality admin UI: recent events for a rule test",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // the server removes it should the delete below fail
	})
	if err != nil {
		return nil, fmt.Errorf("read recent events: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stream.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil {
			a.log.Debug("delete the recent-events consumer", "err", err)
		}
	}()
	// No wait: what is stored up to the last sequence is there already; events that
	// arrive meanwhile may come too, and the newest n are kept.
	batch, err := cons.FetchNoWait(int(st.LastSeq - start + 1))
	if err != nil {
		return nil, fmt.Errorf("read recent events: %w", err)
	}
	events := make([]*causalityv1.EventEnvelope, 0, n)
	for msg := range batch.Messages() {
		ev := &causalityv1.EventEnvelope{}
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			continue
		}
		events = append(events, ev)
	}
	if err := batch.Error(); err != nil {
		return nil, fmt.Errorf("read recent events: %w", err)
	}
	if len(events) > n {
		events = events[len(events)-n:]
	}
	slices.Reverse(events)
	return events, nil
}
