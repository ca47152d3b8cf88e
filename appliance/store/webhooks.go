package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Webhook is a stored webhook endpoint.
type Webhook struct {
	ID             uuid.UUID
	Name           string
	URL            string
	Headers        map[string]string
	Secret         string // whsec_...; shown to the user only at creation
	Enabled        bool
	DisabledReason *string // set when the dispatcher disabled it for failing too long
	FailingSince   *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const webhookColumns = `id, name, url, headers, secret, enabled, disabled_reason, failing_since, created_at, updated_at`

func scanWebhook(row pgx.Row) (Webhook, error) {
	var w Webhook
	err := row.Scan(&w.ID, &w.Name, &w.URL, &w.Headers, &w.Secret, &w.Enabled, &w.DisabledReason, &w.FailingSince,
		&w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// ListWebhooks returns every webhook, oldest first.
func (s *Store) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	hooks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return hooks, nil
}

// WebhookInput is what CreateWebhook and UpdateWebhook store. The caller has validated it;
// the secret is set once, at creation.
type WebhookInput struct {
	Name    string
	URL     string
	Headers map[string]string
	Enabled bool
}

// MissingWebhooksError is a rule or detector naming webhooks that do not exist (deleted
// after the caller checked them, or never there).
type MissingWebhooksError struct {
	IDs []uuid.UUID
}

func (e *MissingWebhooksError) Error() string {
	return fmt.Sprintf("no webhook %s", joinIDs(e.IDs))
}

func joinIDs(ids []uuid.UUID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

// lockWebhooks checks, inside the transaction that saves a rule or detector, that the
// webhooks it names exist, and keeps them from being deleted until it commits. Without the
// lock a concurrent DeleteWebhook could remove its id from every rule just before this
// transaction writes it back, and the engine would then hold deliveries for a webhook that
// no longer exists.
func lockWebhooks(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM webhooks WHERE id = ANY($1) FOR KEY SHARE`, ids)
	if err != nil {
		return fmt.Errorf("lock webhooks: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("lock webhooks: %w", err)
	}
	if missing := without(ids, found); len(missing) > 0 {
		return &MissingWebhooksError{IDs: missing}
	}
	return nil
}

// without returns the ids of all that are not in some, in their order, once each.
func without(all, some []uuid.UUID) []uuid.UUID {
	skip := make(map[uuid.UUID]bool, len(some)+len(all))
	for _, id := range some {
		skip[id] = true
	}
	var out []uuid.UUID
	for _, id := range all {
		if !skip[id] {
			out = append(out, id)
			skip[id] = true
		}
	}
	return out
}

// nonNilHeaders keeps no headers an empty JSON object: pgx would send a nil map as NULL.
func nonNilHeaders(h map[string]string) map[string]string {
	if h == nil {
		return map[string]string{}
	}
	return h
}

// CreateWebhook stores a new webhook with its signing secret and announces it on
// ReactionChannel.
func (s *Store) CreateWebhook(ctx context.Context, in WebhookInput, secret string) (Webhook, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	var w Webhook
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w, err = scanWebhook(tx.QueryRow(ctx, `INSERT INTO webhooks (id, name, url, headers, secret, enabled)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+webhookColumns,
			id, in.Name, in.URL, nonNilHeaders(in.Headers), secret, in.Enabled))
		if err != nil {
			return err
		}
		return notifyReaction(ctx, tx, "webhook", id)
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("create webhook %q: %w", in.Name, err)
	}
	return w, nil
}

// GetWebhook returns one webhook; an unknown id is ErrNotFound.
func (s *Store) GetWebhook(ctx context.Context, id uuid.UUID) (Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if err != nil {
		return Webhook{}, fmt.Errorf("get webhook %s: %w", id, notFound(err))
	}
	return w, nil
}

// UpdateWebhook replaces a webhook's settings (not its secret) and announces the change;
// an unknown id is ErrNotFound. Saving it enabled clears what the dispatcher recorded
// about failures: a person enabling it (or fixing its URL) gives it a fresh start.
func (s *Store) UpdateWebhook(ctx context.Context, id uuid.UUID, in WebhookInput) (Webhook, error) {
	var w Webhook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET name = $2, url = $3, headers = $4,
			enabled = $5,
			disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
			failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
			updated_at = now()
			WHERE id = $1 RETURNING `+webhookColumns,
			id, in.Name, in.URL, nonNilHeaders(in.Headers), in.Enabled))
		if err != nil {
			return notFound(err)
		}
		return notifyReaction(ctx, tx, "webhook", id)
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("update webhook %s: %w", id, err)
	}
	return w, nil
}

// DeleteWebhook deletes a webhook with its deliveries, removes it from every rule and
// detector that named it, and announces each change; an unknown id is ErrNotFound.
func (s *Store) DeleteWebhook(ctx context.Context, id uuid.UUID) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		for _, table := range []string{"rules", "detectors"} {
			kind := strings.TrimSuffix(table, "s")
			_, err := tx.Exec(ctx, `WITH changed AS (
					UPDATE `+table+` SET webhook_ids = array_remove(webhook_ids, $1), updated_at = now()
					WHERE $1 = ANY(webhook_ids) RETURNING id)
				SELECT pg_notify($2, $3::text || ':' || id::text) FROM changed`, id, ReactionChannel, kind)
			if err != nil {
				return fmt.Errorf("remove from %s: %w", table, err)
			}
		}
		return notifyReaction(ctx, tx, "webhook", id)
	})
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}

// MissingWebhooks returns which of ids name no webhook, in their order, once each.
func (s *Store) MissingWebhooks(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM webhooks WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up webhooks: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("look up webhooks: %w", err)
	}
	return without(ids, found), nil
}
