package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ReactionChannel is the LISTEN/NOTIFY channel announcing a change of rules, detectors or
// webhooks, so that the reaction engine of every appliance sharing the database reloads
// them within a second.
const ReactionChannel = "causality_reaction"

// Rule is a stored rule. Nil filters match any value.
type Rule struct {
	ID             uuid.UUID
	Name           string
	Description    string
	AppID          *string
	EventCategory  *string
	EventType      *string
	Condition      string // CEL; empty matches every event the filters let through
	WebhookIDs     []uuid.UUID
	PublishSubject *string // nil: alerts.<app>.<rule id>
	Priority       int
	Enabled        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const ruleColumns = `id, name, description, app_id, event_category, event_type, condition, webhook_ids,
	publish_subject, priority, enabled, created_at, updated_at`

func scanRule(row pgx.Row) (Rule, error) {
	var r Rule
	err := row.Scan(&r.ID, &r.Name, &r.Description, &r.AppID, &r.EventCategory, &r.EventType, &r.Condition,
		&r.WebhookIDs, &r.PublishSubject, &r.Priority, &r.Enabled, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

// ListRules returns every rule, highest priority first, then oldest first.
func (s *Store) ListRules(ctx context.Context) ([]Rule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ruleColumns+` FROM rules ORDER BY priority DESC, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	rules, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) { return scanRule(r) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	return rules, nil
}

// RuleInput is what CreateRule and UpdateRule store. The caller has validated it (the
// admin API does); nil filters and a nil PublishSubject are stored as NULL.
type RuleInput struct {
	Name           string
	Description    string
	AppID          *string
	EventCategory  *string
	EventType      *string
	Condition      string
	WebhookIDs     []uuid.UUID
	PublishSubject *string
	Priority       int
	Enabled        bool
}

// CreateRule stores a new rule and announces it on ReactionChannel. Webhooks it names
// that do not exist are a *MissingWebhooksError.
func (s *Store) CreateRule(ctx context.Context, in RuleInput) (Rule, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Rule{}, fmt.Errorf("create rule: %w", err)
	}
	var r Rule
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockWebhooks(ctx, tx, in.WebhookIDs); err != nil {
			return err
		}
		r, err = scanRule(tx.QueryRow(ctx, `INSERT INTO rules (id, name, description, app_id, event_category,
			event_type, condition, webhook_ids, publish_subject, priority, enabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+ruleColumns,
			id, in.Name, in.Description, in.AppID, in.EventCategory, in.EventType, in.Condition,
			nonNilIDs(in.WebhookIDs), in.PublishSubject, in.Priority, in.Enabled))
		if err != nil {
			return err
		}
		return notifyReaction(ctx, tx, "rule", id)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("create rule %q: %w", in.Name, err)
	}
	return r, nil
}

// GetRule returns one rule; an unknown id is ErrNotFound.
func (s *Store) GetRule(ctx context.Context, id uuid.UUID) (Rule, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM rules WHERE id = $1`, id))
	if err != nil {
		return Rule{}, fmt.Errorf("get rule %s: %w", id, notFound(err))
	}
	return r, nil
}

// UpdateRule replaces every field of a rule and announces the change; an unknown id is
// ErrNotFound, webhooks that do not exist a *MissingWebhooksError.
func (s *Store) UpdateRule(ctx context.Context, id uuid.UUID, in RuleInput) (Rule, error) {
	var r Rule
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockWebhooks(ctx, tx, in.WebhookIDs); err != nil {
			return err
		}
		var err error
		r, err = scanRule(tx.QueryRow(ctx, `UPDATE rules SET name = $2, description = $3, app_id = $4,
			event_category = $5, event_type = $6, condition = $7, webhook_ids = $8, publish_subject = $9,
			priority = $10, enabled = $11, updated_at = now()
			WHERE id = $1 RETURNING `+ruleColumns,
			id, in.Name, in.Description, in.AppID, in.EventCategory, in.EventType, in.Condition,
			nonNilIDs(in.WebhookIDs), in.PublishSubject, in.Priority, in.Enabled))
		if err != nil {
			return notFound(err)
		}
		return notifyReaction(ctx, tx, "rule", id)
	})
	if err != nil {
		return Rule{}, fmt.Errorf("update rule %s: %w", id, err)
	}
	return r, nil
}

// SetRuleEnabled turns a rule on or off and announces it, leaving every other field as it
// is, so that a toggle cannot undo an edit saved at the same moment. An unknown id is
// ErrNotFound.
func (s *Store) SetRuleEnabled(ctx context.Context, id uuid.UUID, enabled bool) (Rule, error) {
	return setEnabled(ctx, s, "rule", id, enabled, ruleColumns, scanRule)
}

// setEnabled sets the enabled column of one rule or detector (kind names both its table,
// in the plural, and the announcement) in the transaction that announces it.
func setEnabled[T any](ctx context.Context, s *Store, kind string, id uuid.UUID, enabled bool, columns string, scan func(pgx.Row) (T, error)) (T, error) {
	var v T
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		v, err = scan(tx.QueryRow(ctx, `UPDATE `+kind+`s SET enabled = $2, updated_at = now() WHERE id = $1 RETURNING `+columns, id, enabled))
		if err != nil {
			return notFound(err)
		}
		return notifyReaction(ctx, tx, kind, id)
	})
	if err != nil {
		return v, fmt.Errorf("enable %s %s: %w", kind, id, err)
	}
	return v, nil
}

// DeleteRule deletes a rule and announces it; an unknown id is ErrNotFound. Its past
// deliveries stay, with rule_id cleared.
func (s *Store) DeleteRule(ctx context.Context, id uuid.UUID) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM rules WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return notifyReaction(ctx, tx, "rule", id)
	})
	if err != nil {
		return fmt.Errorf("delete rule %s: %w", id, err)
	}
	return nil
}

// notifyReaction announces a change of one rule, detector or webhook ("rule:<id>"). It
// runs in the transaction of the change, so listeners hear of it only once it committed.
func notifyReaction(ctx context.Context, tx pgx.Tx, kind string, id uuid.UUID) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ReactionChannel, kind+":"+id.String())
	return err
}

// notFound turns "no rows" into ErrNotFound and leaves other errors alone.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// nonNilIDs keeps an empty list an empty array: pgx sends a nil slice as NULL, which the
// NOT NULL webhook_ids columns refuse.
func nonNilIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}
