package appliance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/causality-io/causality/appliance/admin"
	"github.com/causality-io/causality/appliance/bus"
)

// Per subscription, the messages the NATS client may hold before it drops them (its
// default is half a million): the UI's callback only queues, so these fill only when the
// process cannot keep up at all.
const (
	livePendingMsgs  = 1024
	livePendingBytes = 8 << 20
)

// liveEvents tails the stored events for the admin UI's live page (admin.LiveSource)
// through a core NATS subscription: JetStream stores what is published on the events
// subjects, and core subscribers receive the same messages as they are published.
type liveEvents struct {
	a        *Appliance
	once     sync.Once
	stopping chan struct{} // closed when HTTP begins to shut down
}

func (a *Appliance) liveEvents() *liveEvents {
	return &liveEvents{a: a, stopping: make(chan struct{})}
}

// Subscribe calls fn with every event published on subject from now on, until ctx ends or
// the appliance begins to stop. The streams end first thing in a stop: HTTP's shutdown
// waits for every request, and these would never end on their own.
func (l *liveEvents) Subscribe(ctx context.Context, subject string, ready func(), fn func(admin.LiveEvent)) error {
	if !strings.HasPrefix(subject, bus.SubjectPrefix+".") {
		return fmt.Errorf("live events: subject %q is not an event subject", subject)
	}
	l.once.Do(func() {
		if l.a.http != nil {
			l.a.http.RegisterOnShutdown(func() { close(l.stopping) })
		}
	})
	sub, err := l.a.bus.Conn().Subscribe(subject, func(m *nats.Msg) {
		fn(admin.LiveEvent{Data: m.Data, Received: receivedAt(m)})
	})
	if err != nil {
		return fmt.Errorf("live events: subscribe to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(livePendingMsgs, livePendingBytes); err != nil {
		return fmt.Errorf("live events: %w", err)
	}
	// The server has the subscription once a round trip after it completes.
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = l.a.bus.Conn().FlushWithContext(flushCtx)
	cancel()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("live events: subscribe to %s: %w", subject, err)
	}
	ready()
	select {
	case <-ctx.Done():
	case <-l.stopping:
	}
	return nil
}

// receivedAt is the receive time ingest stamped on a message, or now.
func receivedAt(m *nats.Msg) time.Time {
	if ms, err := strconv.ParseInt(m.Header.Get(bus.HeaderReceivedAt), 10, 64); err == nil {
		return time.UnixMilli(ms)
	}
	return time.Now()
}
