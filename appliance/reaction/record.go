package reaction

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

// outboxRow is one webhook call to record.
type outboxRow struct {
	webhook  uuid.UUID
	typ      string
	source   string // unique per webhook: what caused the call
	rule     uuid.UUID
	detector uuid.UUID
	app      string
	event    string
	body     []byte
	priority int
}

// anomalyRow is one firing to record, with what it triggers.
type anomalyRow struct {
	id       uuid.UUID
	detector uuid.UUID
	app      string
	kind     string
	dedup    string
	at       time.Time
	message  string
	observed float64
	expected float64
	details  map[string]any
	event    string

	body     []byte
	webhooks []uuid.UUID
	subject  string
}

// alert is a message for NATS subscribers, published once its cause is recorded.
type alert struct {
	subject string
	msgID   string
	body    []byte
}

// commit records the batch, publishes its alerts and acknowledges its events. While
// Postgres is away it retries, keeping the events held (and their ack wait extended), so
// the stream buffers behind it and nothing is lost. It gives up only when ctx ends; the
// held events then come back after their ack wait.
func (e *Engine) commit(ctx context.Context) {
	if len(e.held) == 0 && len(e.anomalies) == 0 {
		return
	}
	backoff, failingSince, lastProgress := 100*time.Millisecond, time.Time{}, time.Now()
	var inserted int
	for {
		var err error
		start := time.Now()
		inserted, err = e.record(ctx)
		if err == nil {
			e.m.CommitDuration.Observe(time.Since(start).Seconds())
			break
		}
		if ctx.Err() != nil {
			e.log.Warn("reaction engine stopped before recording a batch; its events are evaluated again after their ack wait",
				"events", len(e.held), "err", err)
			e.resetBatch()
			return
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
			e.log.Error("recording matches failed; retrying, events wait in the stream", "err", err)
			e.m.CommitErrors.Inc()
		}
		if time.Since(lastProgress) > 10*time.Second {
			lastProgress = time.Now()
			for _, m := range e.held {
				_ = m.InProgress()
			}
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
	if !failingSince.IsZero() {
		e.log.Info("recording matches works again", "after", time.Since(failingSince).Round(time.Millisecond))
	}
	e.publish()
	for _, m := range e.held {
		e.ack(m)
	}
	e.resetBatch()
	if inserted > 0 {
		e.m.DeliveriesRecorded.Add(float64(inserted))
		e.wake()
	}
}

func (e *Engine) resetBatch() {
	clear(e.held)
	e.held = e.held[:0]
	e.deliveries = e.deliveries[:0]
	e.anomalies = e.anomalies[:0]
	e.alerts = e.alerts[:0]
}

// publish sends the batch's alerts. Core NATS publishing only buffers; a failure is logged
// and the alert lost, which is why webhooks (which are recorded) are the dependable path.
func (e *Engine) publish() {
	send := func(a alert) {
		msg := &nats.Msg{Subject: a.subject, Data: a.body, Header: nats.Header{}}
		msg.Header.Set(nats.MsgIdHdr, a.msgID)
		if err := e.nc.PublishMsg(msg); err != nil {
			e.log.Warn("publish alert", "subject", a.subject, "err", err)
			return
		}
		e.m.AlertsPublished.Inc()
	}
	for _, a := range e.alerts {
		send(a)
	}
	for _, a := range e.anomalies {
		send(alert{subject: a.subject, msgID: "anomaly:" + a.detector.String() + ":" + a.app + ":" + a.dedup, body: a.body})
	}
}

// record writes the batch's anomalies and deliveries in one transaction and returns how
// many deliveries are new. Rows that exist already (the same event seen again after a
// crash) are left as they are, and so are the deliveries of an anomaly recorded before.
func (e *Engine) record(ctx context.Context) (int, error) {
	rows := e.deliveries
	var inserted int
	err := pgx.BeginFunc(ctx, e.store.Pool(), func(tx pgx.Tx) error {
		if len(e.anomalies) > 0 {
			fresh, err := insertAnomalies(ctx, tx, e.anomalies)
			if err != nil {
				return err
			}
			for _, a := range e.anomalies {
				if !fresh[a.id] {
					continue
				}
				for _, hook := range a.webhooks {
					rows = append(rows, outboxRow{webhook: hook, typ: TypeAnomalyDetected, source: "anomaly:" + a.id.String(),
						detector: a.detector, app: a.app, event: a.event, body: a.body})
				}
			}
		}
		if len(rows) == 0 {
			return nil
		}
		n, err := insertDeliveries(ctx, tx, rows)
		inserted = n
		return err
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

func insertAnomalies(ctx context.Context, tx pgx.Tx, as []anomalyRow) (map[uuid.UUID]bool, error) {
	n := len(as)
	ids, detectors := make([]uuid.UUID, n), make([]uuid.UUID, n)
	apps, kinds, keys, messages, details, events := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at := make([]time.Time, n)
	observed, expected := make([]float64, n), make([]float64, n)
	for i, a := range as {
		ids[i], detectors[i], apps[i], kinds[i], keys[i], at[i] = a.id, a.detector, a.app, a.kind, a.dedup, a.at
		messages[i], observed[i], expected[i], events[i] = a.message, a.observed, a.expected, a.event
		details[i] = "{}"
		if b, err := json.Marshal(a.details); err == nil && a.details != nil {
			details[i] = string(b)
		}
	}
	// Detectors deleted since the firing are skipped by the join rather than failing the
	// whole batch on the foreign key.
	rows, err := tx.Query(ctx, `INSERT INTO anomalies (id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected, details, event_id)
		SELECT u.id, u.detector_id, u.app_id, u.kind, u.dedup_key, u.fired_at, u.message, u.observed, u.expected, u.details::jsonb, nullif(u.event_id, '')
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::float8[], $9::float8[], $10::text[], $11::text[])
			AS u(id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected, details, event_id)
		JOIN detectors d ON d.id = u.detector_id
		ON CONFLICT (detector_id, app_id, dedup_key) DO NOTHING
		RETURNING id`, ids, detectors, apps, kinds, keys, at, messages, observed, expected, details, events)
	if err != nil {
		return nil, fmt.Errorf("record anomalies: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("record anomalies: %w", err)
	}
	set := make(map[uuid.UUID]bool, len(fresh))
	for _, id := range fresh {
		set[id] = true
	}
	return set, nil
}

func insertDeliveries(ctx context.Context, tx pgx.Tx, rs []outboxRow) (int, error) {
	n := len(rs)
	ids, hooks, rules, detectors := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	types, sources, apps, events, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	prios := make([]int32, n)
	for i, r := range rs {
		id, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		ids[i], hooks[i], rules[i], detectors[i] = id, r.webhook, r.rule, r.detector
		types[i], sources[i], apps[i], events[i], bodies[i] = r.typ, r.source, r.app, r.event, string(r.body)
		prios[i] = int32(r.priority)
	}
	// The joins drop calls to webhooks deleted meanwhile and keep history of deleted rules
	// and detectors (their ids become NULL) instead of failing on a foreign key.
	tag, err := tx.Exec(ctx, `INSERT INTO deliveries (id, webhook_id, type, source_key, rule_id, detector_id, app_id, event_id, body, priority)
		SELECT u.id, u.webhook_id, u.type, u.source_key, r.id, d.id, nullif(u.app_id, ''), nullif(u.event_id, ''), u.body, u.priority
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::int4[])
			AS u(id, webhook_id, type, source_key, rule_id, detector_id, app_id, event_id, body, priority)
		JOIN webhooks w ON w.id = u.webhook_id
		LEFT JOIN rules r ON r.id = u.rule_id
		LEFT JOIN detectors d ON d.id = u.detector_id
		ON CONFLICT (webhook_id, source_key) DO NOTHING`, ids, hooks, types, sources, rules, detectors, apps, events, bodies, prios)
	if err != nil {
		return 0, fmt.Errorf("record deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
