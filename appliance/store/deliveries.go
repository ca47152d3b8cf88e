package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DeliveriesChannel is the LISTEN/NOTIFY channel that wakes the dispatchers of every
// appliance sharing the database when a delivery is due now, instead of at their next poll.
const DeliveriesChannel = "causality_deliveries"

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // not tried yet, or being sent
	DeliveryRetrying  = "retrying"  // failed, tried again at NextAttemptAt
	DeliverySucceeded = "succeeded" // the endpoint answered 2xx
	DeliveryDead      = "dead"      // out of attempts
)

// DeliveryTypeTest is the type of the deliveries EnqueueTestDelivery makes.
const DeliveryTypeTest = "webhook.test"

// Delivery is one webhook call of the outbox, made or to be made.
type Delivery struct {
	ID             uuid.UUID // also the webhook-id header
	WebhookID      uuid.UUID
	Type           string // rule.matched, anomaly.detected or webhook.test
	SourceKey      string // what caused it, unique per webhook
	RuleID         *uuid.UUID
	DetectorID     *uuid.UUID
	AppID          *string
	EventID        *string
	Body           string // the exact JSON sent and signed on every attempt
	Status         string
	Priority       int
	Attempts       int
	NextAttemptAt  time.Time
	LastAttemptAt  *time.Time
	LastStatusCode *int
	LastError      *string
	LastLatencyMS  *int
	CreatedAt      time.Time
	DeliveredAt    *time.Time
}

const deliveryColumns = `id, webhook_id, type, source_key, rule_id, detector_id, app_id, event_id, body, status,
	priority, attempts, next_attempt_at, last_attempt_at, last_status_code, last_error, last_latency_ms,
	created_at, delivered_at`

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.WebhookID, &d.Type, &d.SourceKey, &d.RuleID, &d.DetectorID, &d.AppID, &d.EventID,
		&d.Body, &d.Status, &d.Priority, &d.Attempts, &d.NextAttemptAt, &d.LastAttemptAt, &d.LastStatusCode,
		&d.LastError, &d.LastLatencyMS, &d.CreatedAt, &d.DeliveredAt)
	return d, err
}

// DefaultListLimit is how many rows a list returns when its filter sets no limit.
const DefaultListLimit = 100

// DeliveryFilter narrows ListDeliveries; zero fields match everything.
type DeliveryFilter struct {
	Status    string
	WebhookID *uuid.UUID
	Limit     int     // <= 0: DefaultListLimit
	Before    *Cursor // only deliveries after it in the list, to page back from the last one seen
}

// ListDeliveries returns deliveries newest first, by creation time then id.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	at, id := cursorArgs(f.Before)
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE ($1 = '' OR status = $1)
		  AND ($2::uuid IS NULL OR webhook_id = $2)
		  AND ($3::timestamptz IS NULL OR created_at < $3 OR (created_at = $3 AND id < $5))
		ORDER BY created_at DESC, id DESC LIMIT $4`,
		f.Status, f.WebhookID, at, limitOrDefault(f.Limit), id)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return ds, nil
}

func limitOrDefault(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return n
}

// GetDelivery returns one delivery; an unknown id is ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, id uuid.UUID) (Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = $1`, id))
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", id, notFound(err))
	}
	return d, nil
}

// ReplayDelivery makes a delivery due again now, whatever its status, and wakes the
// dispatchers; an unknown id is ErrNotFound. Attempts and the last outcome are kept, so
// its history stays readable; the same id (and so the same webhook-id header) is sent.
func (s *Store) ReplayDelivery(ctx context.Context, id uuid.UUID) (Delivery, error) {
	var d Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRow(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = now()
			WHERE id = $1 RETURNING `+deliveryColumns, id))
		if err != nil {
			return notFound(err)
		}
		return notifyDeliveries(ctx, tx)
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("replay delivery %s: %w", id, err)
	}
	return d, nil
}

// EnqueueTestDelivery adds a webhook.test delivery of body to a webhook and wakes the
// dispatchers; an unknown webhook is ErrNotFound.
func (s *Store) EnqueueTestDelivery(ctx context.Context, webhookID uuid.UUID, body string) (Delivery, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Delivery{}, fmt.Errorf("enqueue test delivery: %w", err)
	}
	var d Delivery
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Every test is its own source, so that each one is sent.
		d, err = scanDelivery(tx.QueryRow(ctx, `INSERT INTO deliveries (id, webhook_id, type, source_key, body, priority)
			VALUES ($1, $2, $3, $4, $5, 0) RETURNING `+deliveryColumns,
			id, webhookID, DeliveryTypeTest, "test:"+uuid.NewString(), body))
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation: no such webhook
				return ErrNotFound
			}
			return err
		}
		return notifyDeliveries(ctx, tx)
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("enqueue test delivery to webhook %s: %w", webhookID, err)
	}
	return d, nil
}

func notifyDeliveries(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, DeliveriesChannel)
	return err
}
