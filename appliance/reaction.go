package appliance

import (
	"context"
	"fmt"
	"sync"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/reaction"
)

// reactionParts are the reaction engine and the webhook dispatcher, with what stops them.
type reactionParts struct {
	engine     *reaction.Engine
	dispatcher *reaction.Dispatcher
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// startReaction starts the engine (rules and detectors on the "reaction" consumer; it runs
// in one process at a time) and the dispatcher (in every process).
func (a *Appliance) startReaction(ctx context.Context) error {
	cons, err := a.bus.EnsureConsumer(ctx, reaction.ConsumerConfig(bus.ReactionConsumer))
	if err != nil {
		return err
	}
	log := a.log.With("component", "reaction")
	m := reaction.NewMetrics(a.metrics.Registry)
	r := &reactionParts{}
	r.dispatcher = reaction.NewDispatcher(a.store, reaction.DispatchOptions{
		Workers:      a.cfg.WebhookWorkers,
		Schedule:     a.cfg.WebhookRetrySchedule,
		Timeout:      a.cfg.WebhookTimeout,
		DisableAfter: a.cfg.WebhookDisableAfter,
		AllowPrivate: a.cfg.WebhookAllowPrivate,
	}, m, log.With("part", "dispatcher"))
	r.engine = reaction.NewEngine(cons, a.bus.Conn(), a.store, a.expr, reaction.Options{Clock: a.reactionClock}, m,
		r.dispatcher.Wake, log.With("part", "engine"))
	r.engine.RegisterLag(a.metrics.Registry)
	r.dispatcher.RegisterOutbox(a.metrics.Registry)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.done.Go(func() { r.engine.Run(runCtx) })
	r.done.Go(func() { r.dispatcher.Run(runCtx) })
	a.reaction = r
	return nil
}

// stopReaction stops the engine (which records what it holds) and the dispatcher (which
// finishes the requests in flight), within ctx.
func (a *Appliance) stopReaction(ctx context.Context) error {
	if a.reaction == nil {
		return nil
	}
	a.reaction.cancel()
	done := make(chan struct{})
	go func() {
		a.reaction.done.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop reaction engine: %w", ctx.Err())
	}
}

// SetReactionClock gives the detectors another clock than the wall clock: for tests and
// simulations. Call it before Start.
func (a *Appliance) SetReactionClock(c reaction.Clock) { a.reactionClock = c }
