package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Anomaly is one firing of a detector for an app.
type Anomaly struct {
	ID         uuid.UUID
	DetectorID uuid.UUID
	AppID      string
	Kind       string
	DedupKey   string // names the firing, so recording it again changes nothing
	FiredAt    time.Time
	Message    string
	Observed   *float64
	Expected   *float64
	Details    json.RawMessage
	EventID    *string // the event that fired it, for per-event kinds
}

const anomalyColumns = `id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected, details, event_id`

func scanAnomaly(row pgx.Row) (Anomaly, error) {
	var a Anomaly
	err := row.Scan(&a.ID, &a.DetectorID, &a.AppID, &a.Kind, &a.DedupKey, &a.FiredAt, &a.Message, &a.Observed,
		&a.Expected, &a.Details, &a.EventID)
	return a, err
}

// AnomalyFilter narrows ListAnomalies; zero fields match everything.
type AnomalyFilter struct {
	DetectorID *uuid.UUID
	AppID      string
	Limit      int     // <= 0: DefaultListLimit
	Before     *Cursor // only anomalies after it in the list, to page back from the last one seen
}

// ListAnomalies returns anomalies newest first, by firing time then id.
func (s *Store) ListAnomalies(ctx context.Context, f AnomalyFilter) ([]Anomaly, error) {
	at, id := cursorArgs(f.Before)
	rows, err := s.pool.Query(ctx, `SELECT `+anomalyColumns+` FROM anomalies
		WHERE ($1::uuid IS NULL OR detector_id = $1)
		  AND ($2 = '' OR app_id = $2)
		  AND ($3::timestamptz IS NULL OR fired_at < $3 OR (fired_at = $3 AND id < $5))
		ORDER BY fired_at DESC, id DESC LIMIT $4`,
		f.DetectorID, f.AppID, at, limitOrDefault(f.Limit), id)
	if err != nil {
		return nil, fmt.Errorf("list anomalies: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Anomaly, error) { return scanAnomaly(r) })
	if err != nil {
		return nil, fmt.Errorf("list anomalies: %w", err)
	}
	return as, nil
}
