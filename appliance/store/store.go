// Package store is the configuration database: a pgx pool on the embedded or an external
// PostgreSQL, the migrations, and one file per entity with its queries.
package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store wraps the pool; repositories hang off it as methods.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// Open connects to url and runs the pending migrations.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// Long-held connections: the reaction engine's lock and three LISTENs (keys, rules,
	// deliveries); the rest serve the dispatcher, the engine's commits and the admin.
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres %s: %w", redact(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", redact(cfg), err)
	}
	s := &Store{pool: pool, log: log}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func redact(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Pool is for components that own their own queries (reaction, admin).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Check pings the database, for /readyz.
func (s *Store) Check(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }
