package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Detector is a stored anomaly detector. Nil filters match any value.
type Detector struct {
	ID              uuid.UUID
	Name            string
	Description     string
	AppID           *string
	EventCategory   *string
	EventType       *string
	Condition       string // optional CEL filter
	Kind            string // threshold, rate, count or baseline
	Config          json.RawMessage
	CooldownSeconds int
	WebhookIDs      []uuid.UUID
	PublishSubject  *string // nil: anomalies.<app>.<detector id>
	Enabled         bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

const detectorColumns = `id, name, description, app_id, event_category, event_type, condition, kind, config,
	cooldown_seconds, webhook_ids, publish_subject, enabled, created_at, updated_at`

func scanDetector(row pgx.Row) (Detector, error) {
	var d Detector
	err := row.Scan(&d.ID, &d.Name, &d.Description, &d.AppID, &d.EventCategory, &d.EventType, &d.Condition, &d.Kind,
		&d.Config, &d.CooldownSeconds, &d.WebhookIDs, &d.PublishSubject, &d.Enabled, &d.CreatedAt, &d.UpdatedAt)
	return d, err
}

// ListDetectors returns every detector, oldest first.
func (s *Store) ListDetectors(ctx context.Context) ([]Detector, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+detectorColumns+` FROM detectors ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list detectors: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Detector, error) { return scanDetector(r) })
	if err != nil {
		return nil, fmt.Errorf("list detectors: %w", err)
	}
	return ds, nil
}

// DetectorState is a detector's saved state for one app.
type DetectorState struct {
	DetectorID uuid.UUID
	AppID      string
	State      json.RawMessage
	UpdatedAt  time.Time
}

// DetectorInput is what CreateDetector and UpdateDetector store. The caller has validated
// it, Config included (normalised, with its defaults filled in).
type DetectorInput struct {
	Name            string
	Description     string
	AppID           *string
	EventCategory   *string
	EventType       *string
	Condition       string
	Kind            string
	Config          json.RawMessage
	CooldownSeconds int
	WebhookIDs      []uuid.UUID
	PublishSubject  *string
	Enabled         bool
}

// CreateDetector stores a new detector and announces it on ReactionChannel. Webhooks it
// names that do not exist are a *MissingWebhooksError.
func (s *Store) CreateDetector(ctx context.Context, in DetectorInput) (Detector, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Detector{}, fmt.Errorf("create detector: %w", err)
	}
	var d Detector
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockWebhooks(ctx, tx, in.WebhookIDs); err != nil {
			return err
		}
		d, err = scanDetector(tx.QueryRow(ctx, `INSERT INTO detectors (id, name, description, app_id,
			event_category, event_type, condition, kind, config, cooldown_seconds, webhook_ids, publish_subject, enabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING `+detectorColumns,
			id, in.Name, in.Description, in.AppID, in.EventCategory, in.EventType, in.Condition, in.Kind,
			configOrEmpty(in.Config), in.CooldownSeconds, nonNilIDs(in.WebhookIDs), in.PublishSubject, in.Enabled))
		if err != nil {
			return err
		}
		return notifyReaction(ctx, tx, "detector", id)
	})
	if err != nil {
		return Detector{}, fmt.Errorf("create detector %q: %w", in.Name, err)
	}
	return d, nil
}

// GetDetector returns one detector; an unknown id is ErrNotFound.
func (s *Store) GetDetector(ctx context.Context, id uuid.UUID) (Detector, error) {
	d, err := scanDetector(s.pool.QueryRow(ctx, `SELECT `+detectorColumns+` FROM detectors WHERE id = $1`, id))
	if err != nil {
		return Detector{}, fmt.Errorf("get detector %s: %w", id, notFound(err))
	}
	return d, nil
}

// UpdateDetector replaces every field of a detector and announces the change; an unknown
// id is ErrNotFound, webhooks that do not exist a *MissingWebhooksError. Its saved state
// is kept: the engine decides whether a changed configuration still fits it.
func (s *Store) UpdateDetector(ctx context.Context, id uuid.UUID, in DetectorInput) (Detector, error) {
	var d Detector
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockWebhooks(ctx, tx, in.WebhookIDs); err != nil {
			return err
		}
		var err error
		d, err = scanDetector(tx.QueryRow(ctx, `UPDATE detectors SET name = $2, description = $3, app_id = $4,
			event_category = $5, event_type = $6, condition = $7, kind = $8, config = $9, cooldown_seconds = $10,
			webhook_ids = $11, publish_subject = $12, enabled = $13, updated_at = now()
			WHERE id = $1 RETURNING `+detectorColumns,
			id, in.Name, in.Description, in.AppID, in.EventCategory, in.EventType, in.Condition, in.Kind,
			configOrEmpty(in.Config), in.CooldownSeconds, nonNilIDs(in.WebhookIDs), in.PublishSubject, in.Enabled))
		if err != nil {
			return notFound(err)
		}
		return notifyReaction(ctx, tx, "detector", id)
	})
	if err != nil {
		return Detector{}, fmt.Errorf("update detector %s: %w", id, err)
	}
	return d, nil
}

// SetDetectorEnabled turns a detector on or off and announces it, leaving every other field
// as it is (see SetRuleEnabled). An unknown id is ErrNotFound.
func (s *Store) SetDetectorEnabled(ctx context.Context, id uuid.UUID, enabled bool) (Detector, error) {
	return setEnabled(ctx, s, "detector", id, enabled, detectorColumns, scanDetector)
}

// DeleteDetector deletes a detector with its state and anomalies and announces it; an
// unknown id is ErrNotFound. Its past deliveries stay, with detector_id cleared.
func (s *Store) DeleteDetector(ctx context.Context, id uuid.UUID) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM detectors WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return notifyReaction(ctx, tx, "detector", id)
	})
	if err != nil {
		return fmt.Errorf("delete detector %s: %w", id, err)
	}
	return nil
}

// configOrEmpty stores a missing configuration as {} (the column is NOT NULL).
func configOrEmpty(c json.RawMessage) json.RawMessage {
	if len(c) == 0 {
		return json.RawMessage(`{}`)
	}
	return c
}

// ListDetectorStates returns the saved state of every detector and app.
func (s *Store) ListDetectorStates(ctx context.Context) ([]DetectorState, error) {
	rows, err := s.pool.Query(ctx, `SELECT detector_id, app_id, state, updated_at FROM detector_state
		ORDER BY detector_id, app_id`)
	if err != nil {
		return nil, fmt.Errorf("list detector states: %w", err)
	}
	states, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DetectorState, error) {
		var st DetectorState
		err := r.Scan(&st.DetectorID, &st.AppID, &st.State, &st.UpdatedAt)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("list detector states: %w", err)
	}
	return states, nil
}

// SaveDetectorStates writes states (their UpdatedAt is ignored: the row gets now()) in one
// transaction; a state that is JSON null deletes the row. States of detectors that no longer exist are dropped rather than failing the
// others: the engine may save one just after a person deleted its detector. For a detector
// and app given twice the last state wins.
func (s *Store) SaveDetectorStates(ctx context.Context, states []DetectorState) error {
	if len(states) == 0 {
		return nil
	}
	// One INSERT may not update the same row twice, so repeats are folded here.
	type key struct {
		id  uuid.UUID
		app string
	}
	at := make(map[key]int, len(states))
	var ids []uuid.UUID
	var apps, docs []string
	for _, st := range states {
		doc := string(st.State)
		if len(st.State) == 0 {
			doc = "{}"
		}
		k := key{st.DetectorID, st.AppID}
		if i, ok := at[k]; ok {
			docs[i] = doc
			continue
		}
		at[k] = len(ids)
		ids, apps, docs = append(ids, st.DetectorID), append(apps, st.AppID), append(docs, doc)
	}
	// A JSON null is the state of an app the detector forgot: its row goes.
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM detector_state d
			USING unnest($1::uuid[], $2::text[], $3::text[]) AS u(detector_id, app_id, state)
			WHERE d.detector_id = u.detector_id AND d.app_id = u.app_id AND u.state::jsonb = 'null'::jsonb`,
			ids, apps, docs); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO detector_state (detector_id, app_id, state, updated_at)
			SELECT u.detector_id, u.app_id, u.state::jsonb, now()
			FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(detector_id, app_id, state)
			JOIN detectors d ON d.id = u.detector_id
			WHERE u.state::jsonb <> 'null'::jsonb
			ON CONFLICT (detector_id, app_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
			ids, apps, docs)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %d detector states: %w", len(ids), err)
	}
	return nil
}
