package reaction

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
)

// DefaultSchedule is when each attempt of a delivery is made, counted from the failure
// before it: at once, then after 5 s, 5 min, 30 min, 2 h, 5 h and 10 h, about 18 hours in
// all, as the Standard Webhooks guidance suggests. After the last one the delivery is dead.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

// DispatchOptions tune a Dispatcher; zero values take the defaults.
type DispatchOptions struct {
	Workers      int             // requests in flight at once; default 32
	Schedule     []time.Duration // delay before each attempt, the first usually 0; default DefaultSchedule
	Timeout      time.Duration   // one request; default 10 s
	DisableAfter time.Duration   // an endpoint failing without a success for this long is disabled; default 5 days
	Poll         time.Duration   // look for due retries at least this often; default 500 ms
	Jitter       float64         // retry delays vary by ± this fraction, so retries of one outage spread out; default 0.2
	AllowPrivate bool            // allow loopback and private destinations
}

func (o *DispatchOptions) defaults() {
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = 5 * 24 * time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		o.Jitter = 0
	} else if o.Jitter == 0 {
		o.Jitter = 0.2
	}
}

// Dispatcher sends the outbox. Every process runs one; they share the work through
// SELECT ... FOR UPDATE SKIP LOCKED. A claimed delivery is leased for the request timeout
// plus a margin: if the process dies mid-request, the lease runs out and another attempt
// is made, so a receiver may see a webhook-id twice (the spec's receivers drop repeats)
// but never loses one.
type Dispatcher struct {
	store  *store.Store
	sender *webhook.Sender
	opts   DispatchOptions
	m      *Metrics
	log    *slog.Logger
	wake   chan struct{}
	outbox cached[map[string]float64]
}

// NewDispatcher builds a dispatcher; Run starts it.
func NewDispatcher(s *store.Store, opts DispatchOptions, m *Metrics, log *slog.Logger) *Dispatcher {
	opts.defaults()
	return &Dispatcher{
		store:  s,
		sender: webhook.NewSender(webhook.Options{Timeout: opts.Timeout, AllowPrivate: opts.AllowPrivate}),
		opts:   opts, m: m, log: log,
		wake: make(chan struct{}, 1),
	}
}

// Wake makes the dispatcher look for due deliveries now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// job is a claimed delivery with its endpoint.
type job struct {
	id       uuid.UUID
	webhook  uuid.UUID
	attempts int // including this one
	body     string
	url      string
	headers  map[string]string
	secret   string
}

type outcome struct {
	job
	res webhook.Result
}

// Run sends deliveries until ctx ends, then lets requests in flight finish and records them.
func (d *Dispatcher) Run(ctx context.Context) {
	go d.listen(ctx)
	jobs := make(chan job)
	outcomes := make(chan outcome, d.opts.Workers)
	var inflight atomic.Int64
	freed := make(chan struct{}, 1)

	var workers sync.WaitGroup
	for range d.opts.Workers {
		workers.Go(func() {
			for j := range jobs {
				// A request already started finishes even when the appliance stops, so its
				// result is recorded rather than guessed.
				res := d.sender.Send(context.WithoutCancel(ctx), webhook.Request{
					URL: j.url, Headers: j.headers, MsgID: j.id.String(), Timestamp: time.Now(), Body: []byte(j.body), Secret: j.secret,
				})
				outcomes <- outcome{job: j, res: res}
			}
		})
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.recordOutcomes(context.WithoutCancel(ctx), outcomes, func(n int) {
			inflight.Add(int64(-n))
			select {
			case freed <- struct{}{}:
			default:
			}
		})
	}()

	capacity := int64(2 * d.opts.Workers)
	poll := time.NewTimer(d.opts.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		free := capacity - inflight.Load()
		if free <= 0 { // every slot busy: wait for results
			select {
			case <-ctx.Done():
			case <-freed:
			}
			continue
		}
		want := int(min(free, 200))
		js, err := d.claim(ctx, want)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("claim webhook deliveries; retrying", "err", err)
		}
		inflight.Add(int64(len(js)))
		for _, j := range js {
			jobs <- j
		}
		if len(js) == want {
			continue // more may be due at once
		}
		poll.Reset(d.opts.Poll)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-poll.C:
		}
	}
	close(jobs)
	workers.Wait()
	close(outcomes)
	<-recorded
}

// listen wakes the dispatcher when another process (or the admin API) queued deliveries.
func (d *Dispatcher) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := d.store.Listen(ctx, store.DeliveriesChannel, d.Wake, d.Wake)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("listening for new deliveries; retrying", "err", err)
		sleep(ctx, time.Second)
	}
}

// claim leases up to n due deliveries of enabled webhooks, highest priority first.
func (d *Dispatcher) claim(ctx context.Context, n int) ([]job, error) {
	lease := (d.opts.Timeout + 30*time.Second).Seconds()
	rows, err := d.store.Pool().Query(ctx, `WITH due AS (
			SELECT dl.id FROM deliveries dl
			WHERE dl.status IN ('pending', 'retrying') AND dl.next_attempt_at <= now()
				AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = dl.webhook_id AND w.enabled)
			ORDER BY dl.priority DESC, dl.next_attempt_at
			LIMIT $1
			FOR UPDATE OF dl SKIP LOCKED)
		UPDATE deliveries dl SET attempts = dl.attempts + 1, last_attempt_at = now(),
			next_attempt_at = now() + $2 * interval '1 second'
		FROM due, webhooks w
		WHERE dl.id = due.id AND w.id = dl.webhook_id
		RETURNING dl.id, dl.webhook_id, dl.attempts, dl.body, w.url, w.headers, w.secret`, n, lease)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	js, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		var j job
		err := r.Scan(&j.id, &j.webhook, &j.attempts, &j.body, &j.url, &j.headers, &j.secret)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return js, nil
}

// recordOutcomes writes results in batches: whatever arrived while the previous batch was
// being written goes in the next one.
func (d *Dispatcher) recordOutcomes(ctx context.Context, in <-chan outcome, done func(int)) {
	batch := make([]outcome, 0, 256)
	for o := range in {
		batch = append(batch[:0], o)
	more:
		for len(batch) < cap(batch) {
			select {
			case o, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		for attempt := 0; ; attempt++ {
			err := d.complete(ctx, batch)
			if err == nil {
				break
			}
			if attempt >= 10 {
				// The leases run out and the deliveries are tried again: a receiver
				// may see them twice, never not at all.
				d.log.Error("recording webhook results failed; the deliveries will be attempted again", "deliveries", len(batch), "err", err)
				break
			}
			d.log.Warn("recording webhook results; retrying", "err", err)
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		done(len(batch))
	}
}

// complete records a batch of attempts and the health of their endpoints.
func (d *Dispatcher) complete(ctx context.Context, batch []outcome) error {
	n := len(batch)
	ids := make([]uuid.UUID, n)
	statuses, errs := make([]string, n), make([]string, n)
	delays := make([]float64, n)
	codes, latencies := make([]int32, n), make([]int32, n)
	okHooks, failedHooks := map[uuid.UUID]bool{}, map[uuid.UUID]string{}
	for i, o := range batch {
		ids[i], codes[i], latencies[i] = o.id, int32(o.res.StatusCode), int32(o.res.Latency.Milliseconds())
		d.m.AttemptDuration.Observe(o.res.Latency.Seconds())
		if o.res.OK {
			statuses[i] = "succeeded"
			okHooks[o.webhook] = true
			d.m.Attempts.WithLabelValues("succeeded").Inc()
			continue
		}
		d.m.Attempts.WithLabelValues("failed").Inc()
		errs[i] = errorText(o.res.Err)
		failedHooks[o.webhook] = errs[i]
		if o.attempts >= len(d.opts.Schedule) {
			statuses[i] = "dead"
			d.m.Dead.Inc()
			d.log.Warn("webhook delivery dead: out of attempts", "delivery_id", o.id, "webhook_id", o.webhook, "attempts", o.attempts, "last_error", errs[i])
			continue
		}
		statuses[i] = "retrying"
		delays[i] = d.jitter(d.opts.Schedule[o.attempts]).Seconds()
	}
	return pgx.BeginFunc(ctx, d.store.Pool(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE deliveries dl SET status = u.status,
				next_attempt_at = CASE WHEN u.status = 'retrying' THEN now() + u.delay * interval '1 second' ELSE dl.next_attempt_at END,
				last_status_code = nullif(u.code, 0), last_error = nullif(u.err, ''), last_latency_ms = u.latency,
				delivered_at = CASE WHEN u.status = 'succeeded' THEN now() ELSE dl.delivered_at END
			FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::int4[], $5::text[], $6::int4[]) AS u(id, status, delay, code, err, latency)
			WHERE dl.id = u.id`, ids, statuses, delays, codes, errs, latencies)
		if err != nil {
			return fmt.Errorf("record webhook results: %w", err)
		}
		return d.recordHealth(ctx, tx, okHooks, failedHooks)
	})
}

// recordHealth tracks how long each endpoint has been failing and disables the ones that
// failed for DisableAfter without a single success, saying why.
func (d *Dispatcher) recordHealth(ctx context.Context, tx pgx.Tx, ok map[uuid.UUID]bool, failed map[uuid.UUID]string) error {
	if len(ok) > 0 {
		ids := make([]uuid.UUID, 0, len(ok))
		for id := range ok {
			ids = append(ids, id)
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL`, ids); err != nil {
			return fmt.Errorf("record webhook health: %w", err)
		}
	}
	var ids []uuid.UUID
	var reasons []string
	for id, reason := range failed {
		if !ok[id] {
			ids = append(ids, id)
			reasons = append(reasons, reason)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE webhooks SET failing_since = now() WHERE id = ANY($1) AND failing_since IS NULL`, ids); err != nil {
		return fmt.Errorf("record webhook health: %w", err)
	}
	rows, err := tx.Query(ctx, `UPDATE webhooks w SET enabled = false, updated_at = now(),
			disabled_reason = format('disabled automatically at %s: failing since %s, last error: %s',
				to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
				to_char(w.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), u.reason)
		FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
		WHERE w.id = u.id AND w.enabled AND w.failing_since < now() - $3 * interval '1 second'
		RETURNING w.id, w.name, w.disabled_reason`, ids, reasons, d.opts.DisableAfter.Seconds())
	if err != nil {
		return fmt.Errorf("record webhook health: %w", err)
	}
	type disabled struct {
		id           uuid.UUID
		name, reason string
	}
	off, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (disabled, error) {
		var x disabled
		err := r.Scan(&x.id, &x.name, &x.reason)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("record webhook health: %w", err)
	}
	for _, x := range off {
		d.m.Disabled.Inc()
		d.log.Error("webhook disabled: failing for too long; enable it again in the admin UI or API once the endpoint works",
			"webhook_id", x.id, "webhook", x.name, "reason", x.reason)
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, store.ReactionChannel, "webhook:"+x.id.String()); err != nil {
			return fmt.Errorf("record webhook health: %w", err)
		}
	}
	return nil
}

func (d *Dispatcher) jitter(delay time.Duration) time.Duration {
	if delay <= 0 || d.opts.Jitter == 0 {
		return delay
	}
	f := 1 + d.opts.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(delay) * f)
}

// errorText is the error as the delivery log shows it: one line, bounded.
func errorText(err error) string {
	if err == nil {
		return "failed"
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	if s == "" {
		s = "failed"
	}
	return s
}
