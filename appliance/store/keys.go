package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrNotFound is returned when a row asked for by id does not exist.
var ErrNotFound = errors.New("not found")

// KeysChannel is the LISTEN/NOTIFY channel announcing a change of API keys, so that every
// appliance sharing the database refreshes its in-memory key cache.
const KeysChannel = "causality_api_keys"

// APIKey is a stored key, without the key itself (only its hash is kept).
type APIKey struct {
	ID         uuid.UUID
	AppID      string
	Name       string
	Prefix     string
	Hash       []byte
	RateLimit  *float64
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// NewAPIKey is what CreateKey stores.
type NewAPIKey struct {
	AppID     string
	Name      string
	Hash      []byte
	Prefix    string
	RateLimit *float64
}

const keyColumns = `id, app_id, name, key_prefix, key_hash, rate_limit, created_at, last_used_at, revoked_at`

func scanKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.AppID, &k.Name, &k.Prefix, &k.Hash, &k.RateLimit, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
	return k, err
}

// CreateKey stores a key, creating its app on first use, and notifies other instances.
func (s *Store) CreateKey(ctx context.Context, nk NewAPIKey) (APIKey, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return APIKey{}, err
	}
	var k APIKey
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO apps (id) VALUES ($1) ON CONFLICT DO NOTHING`, nk.AppID); err != nil {
			return err
		}
		k, err = scanKey(tx.QueryRow(ctx, `INSERT INTO api_keys (id, app_id, name, key_hash, key_prefix, rate_limit)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+keyColumns,
			id, nk.AppID, nk.Name, nk.Hash, nk.Prefix, nk.RateLimit))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, KeysChannel, id.String())
		return err
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key for app %s: %w", nk.AppID, err)
	}
	return k, nil
}

// ListKeys returns keys newest first; revoked ones only when asked.
func (s *Store) ListKeys(ctx context.Context, includeRevoked bool) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE $1 OR revoked_at IS NULL ORDER BY created_at DESC, id DESC`, includeRevoked)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeKey marks a key revoked (kept for the record) and notifies other instances.
// Revoking a revoked key is not an error; an unknown id is ErrNotFound.
func (s *Store) RevokeKey(ctx context.Context, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("api key %s: %w", id, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, KeysChannel, id.String())
		return err
	})
}

// TouchKeys records when keys were last used. The ingest path collects these in memory and
// writes them now and then, never per request.
func (s *Store) TouchKeys(ctx context.Context, used map[uuid.UUID]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(used))
	times := make([]time.Time, 0, len(used))
	for id, t := range used {
		ids = append(ids, id)
		times = append(times, t)
	}
	_, err := s.pool.Exec(ctx, `UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.t)
		FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, t) WHERE k.id = u.id`, ids, times)
	if err != nil {
		return fmt.Errorf("record api key use: %w", err)
	}
	return nil
}
