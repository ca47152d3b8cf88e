package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causality-io/causality/appliance/bus"
)

// readers drain the stream through durable explicit-ack pull consumers, acking every
// message as it arrives. That is what the appliance's warehouse and reaction consumers cost
// JetStream (delivery, ack, consumer state), without any work of their own, so a baseline
// with readers is the ceiling of the whole pipeline on this machine, not only of ingest.
type readers struct {
	cons   []jetstream.Consumer
	read   []atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    atomic.Pointer[error]
	// hiccups counts errors the iterator reported and carried on from.
	hiccups atomic.Int64
}

// readerMaxAckPending matches the reaction consumer's limit.
const readerMaxAckPending = 20_000

func startReaders(ctx context.Context, b *bus.Bus, n int) (*readers, error) {
	r := &readers{read: make([]atomic.Int64, n)}
	for i := range n {
		c, err := b.EnsureConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       fmt.Sprintf("bench-reader-%d", i+1),
			AckWait:       time.Minute,
			MaxAckPending: readerMaxAckPending,
		})
		if err != nil {
			return nil, err
		}
		r.cons = append(r.cons, c)
	}
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	for i, c := range r.cons {
		it, err := c.Messages(jetstream.PullMaxMessages(1000))
		if err != nil {
			cancel()
			r.wg.Wait()
			return nil, fmt.Errorf("reader %d: %w", i+1, err)
		}
		r.wg.Go(func() { <-rctx.Done(); it.Stop() })
		r.wg.Go(func() {
			for {
				m, err := it.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err != nil {
					// Missed heartbeats and the like, when the machine is saturated: the
					// iterator goes on, as the appliance's consumers do.
					r.hiccups.Add(1)
					time.Sleep(10 * time.Millisecond) // no busy loop if the error persists
					continue
				}
				if err := m.Ack(); err != nil {
					r.err.CompareAndSwap(nil, &err)
				}
				r.read[i].Add(1)
			}
		})
	}
	return r, nil
}

// total is how many messages each reader has acknowledged so far.
func (r *readers) total() []int64 {
	out := make([]int64, len(r.read))
	for i := range r.read {
		out[i] = r.read[i].Load()
	}
	return out
}

// drain waits until every reader has read and acknowledged everything in the stream, and
// says how long that took.
func (r *readers) drain(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		behind := false
		for _, c := range r.cons {
			info, err := c.Info(ctx)
			if err != nil {
				return time.Since(start), fmt.Errorf("reader lag: %w", err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				behind = true
			}
		}
		if !behind {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("readers still behind after %s", limit)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the readers and returns the first error any of them met.
func (r *readers) stop() error {
	r.cancel()
	r.wg.Wait()
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

// ReaderInfo is what the readers of the JetStream target did.
type ReaderInfo struct {
	Count int `json:"count"`
	// EventsPerSec is the slowest reader's rate over the measured window.
	EventsPerSec float64 `json:"events_per_second"`
	// DrainSeconds is how long after the load the last reader took to catch up.
	DrainSeconds float64 `json:"drain_seconds"`
	// IteratorErrors counts pull errors the readers carried on from (missed heartbeats).
	IteratorErrors int64  `json:"iterator_errors,omitempty"`
	Error          string `json:"error,omitempty"`
}

// readerWatch measures the readers over the load's measured window: from the end of the
// warmup to the end of the load.
type readerWatch struct {
	r     *readers
	mu    sync.Mutex
	start time.Time
	from  []int64
	timer *time.Timer
}

func watchReaders(r *readers, warmup time.Duration) *readerWatch {
	w := &readerWatch{r: r}
	w.timer = time.AfterFunc(warmup, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.start, w.from = time.Now(), r.total()
	})
	return w
}

// finish is called once the load has stopped: it takes the window's rates, then waits for
// the readers to catch up.
func (w *readerWatch) finish(ctx context.Context) *ReaderInfo {
	w.timer.Stop()
	end, to := time.Now(), w.r.total()
	w.mu.Lock()
	start, from := w.start, w.from
	w.mu.Unlock()
	info := &ReaderInfo{Count: len(to)}
	if from != nil {
		secs := end.Sub(start).Seconds()
		for i := range to {
			rate := float64(to[i]-from[i]) / secs
			if i == 0 || rate < info.EventsPerSec {
				info.EventsPerSec = rate
			}
		}
	}
	took, err := w.r.drain(ctx, 5*time.Minute)
	info.DrainSeconds = took.Seconds()
	info.IteratorErrors = w.r.hiccups.Load()
	if err == nil {
		err = w.r.stop()
	}
	if err != nil {
		info.Error = err.Error()
	}
	return info
}
