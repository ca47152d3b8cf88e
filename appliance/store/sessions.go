package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a signed-in admin UI session.
type Session struct {
	TokenHash []byte
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession stores a session and drops expired ones.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, csrf string, expires time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < now()`); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO admin_sessions (token_hash, csrf_token, expires_at) VALUES ($1, $2, $3)`,
			tokenHash, csrf, expires); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// GetSession returns the unexpired session with tokenHash, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, tokenHash []byte) (Session, error) {
	var sess Session
	err := s.pool.QueryRow(ctx, `SELECT token_hash, csrf_token, created_at, expires_at FROM admin_sessions
		WHERE token_hash = $1 AND expires_at > now()`, tokenHash).Scan(&sess.TokenHash, &sess.CSRFToken, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteOtherSessions signs out every session but keep (after a password change).
func (s *Store) DeleteOtherSessions(ctx context.Context, keep []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash <> $1`, keep); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}
