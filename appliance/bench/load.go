package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// sender performs one request of a run (an HTTP call, or one JetStream publish of a batch).
// Every worker has its own sender, so a sender needs no locking.
type sender interface {
	send(seq uint64) outcome
}

// outcome is what one request did.
type outcome struct {
	status   int    // index into the target's status names
	ok       bool   // succeeded: its latency is recorded
	accepted int    // events the target took (duplicates included)
	dups     int    // of which the target reported as duplicates
	err      string // what went wrong when !ok; one per run is kept as an example
	// backoff asks a closed-loop worker to pause before its next request: the target is
	// unreachable, and retrying at once would only spin.
	backoff bool
}

// loadConfig is the shape of a run, whatever the target.
type loadConfig struct {
	duration time.Duration
	warmup   time.Duration
	rate     float64 // requests/s over all workers; 0: each worker as fast as it can
	statuses int     // number of status names of the target

	progressEvery time.Duration
	progress      io.Writer // nil: no progress lines
}

// loadResult is what a run measured, after the warmup.
type loadResult struct {
	latency  Histogram // from the scheduled send time (open loop) or the send (closed loop)
	service  Histogram // from the actual send: differs from latency only with a rate
	requests int64
	accepted int64
	dups     int64
	status   []int64
	firstErr string
	elapsed  time.Duration // measured window: end of warmup to the last request's answer
	// backlog counts requests the schedule held for the measured window that were never sent
	// because every worker was still busy when the window closed (rate only).
	backlog     int64
	interrupted bool
}

// worker is one worker's tally, merged at the end.
type worker struct {
	latency, service Histogram
	requests         int64
	accepted, dups   int64
	status           []int64
	firstErr         string
	lastDone         time.Time
}

// runLoad drives senders (one per worker) for the warmup and then the measured duration.
//
// With a rate the schedule is open-loop: request n is due at start + n/rate whatever
// happened before, a free worker takes the next due request, and latency counts from the
// due time. A slow answer therefore shows up in the latency of the requests queued behind
// it instead of silently lowering the load (coordinated omission). Without a rate each
// worker sends its next request as soon as the last one is answered.
func runLoad(ctx context.Context, cfg loadConfig, senders []sender) loadResult {
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	due := func(n int64) time.Time {
		return start.Add(time.Duration(float64(n) * float64(time.Second) / cfg.rate))
	}

	var next atomic.Int64                      // next request number
	var liveReq, liveAcc, liveErr atomic.Int64 // measured so far, for progress lines
	workers := make([]*worker, len(senders))
	var wg sync.WaitGroup
	for i, s := range senders {
		w := &worker{status: make([]int64, cfg.statuses)}
		workers[i] = w
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				var planned time.Time
				if cfg.rate > 0 {
					planned = due(n)
					if !planned.Before(end) {
						return
					}
					if d := time.Until(planned); d > 0 {
						timer.Reset(d)
						select {
						case <-timer.C:
						case <-ctx.Done():
							return
						}
					} else if !time.Now().Before(end) {
						return // the window closed with this request still queued: backlog
					}
				} else if planned = time.Now(); !planned.Before(end) {
					return
				}
				sent := time.Now()
				o := s.send(uint64(n))
				done := time.Now()
				if o.backoff && cfg.rate == 0 {
					timer.Reset(10 * time.Millisecond)
					select {
					case <-timer.C:
					case <-ctx.Done():
					}
				}
				if planned.Before(measureFrom) {
					continue // warmup
				}
				w.requests++
				w.status[o.status]++
				w.accepted += int64(o.accepted)
				w.dups += int64(o.dups)
				w.lastDone = done
				liveReq.Add(1)
				liveAcc.Add(int64(o.accepted))
				if o.ok {
					w.latency.Record(done.Sub(planned))
					w.service.Record(done.Sub(sent))
				} else {
					liveErr.Add(1)
					if w.firstErr == "" {
						w.firstErr = o.err
					}
				}
			}
		})
	}

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if cfg.progress != nil && cfg.progressEvery > 0 {
		progressDone.Go(func() {
			t := time.NewTicker(cfg.progressEvery)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case now := <-t.C:
					el := now.Sub(start).Truncate(time.Second)
					if now.Before(measureFrom) {
						fmt.Fprintf(cfg.progress, "bench: %s warming up\n", el)
						continue
					}
					secs := now.Sub(measureFrom).Seconds()
					fmt.Fprintf(cfg.progress, "bench: %s  %.0f events/s  %.0f requests/s  errors %d\n",
						el, float64(liveAcc.Load())/secs, float64(liveReq.Load())/secs, liveErr.Load())
				}
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()
	finished := time.Now()

	r := loadResult{status: make([]int64, cfg.statuses), interrupted: ctx.Err() != nil}
	last := end
	for _, w := range workers {
		r.latency.Merge(&w.latency)
		r.service.Merge(&w.service)
		r.requests += w.requests
		r.accepted += w.accepted
		r.dups += w.dups
		for i, c := range w.status {
			r.status[i] += c
		}
		if r.firstErr == "" {
			r.firstErr = w.firstErr
		}
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	if r.interrupted {
		last = finished
	}
	r.elapsed = max(last.Sub(measureFrom), 0)
	if cfg.rate > 0 && !r.interrupted {
		r.backlog = slotsBefore(due, cfg.rate, start, end) - slotsBefore(due, cfg.rate, start, measureFrom) - r.requests
	}
	return r
}

// slotsBefore counts the request numbers n whose due time is before t.
func slotsBefore(due func(int64) time.Time, rate float64, start, t time.Time) int64 {
	n := int64(math.Ceil(t.Sub(start).Seconds() * rate))
	for n > 0 && !due(n-1).Before(t) {
		n--
	}
	for due(n).Before(t) {
		n++
	}
	return max(n, 0)
}
