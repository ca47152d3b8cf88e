package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/causality-io/causality/migrations"
)

// migrationLock is the advisory lock key that serialises migrations when several
// appliances share one database.
const migrationLock = 0x6361757361 // "causa"

// ErrSchemaNewer means the database was migrated by a newer binary; this one must not touch it.
var ErrSchemaNewer = errors.New("database schema is newer than this binary")

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range entries {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// LatestVersion is the newest schema version this binary's migrations make.
func LatestVersion() (int, error) {
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		return 0, fmt.Errorf("load migrations: %w", err)
	}
	if len(ms) == 0 {
		return 0, nil
	}
	return ms[len(ms)-1].version, nil
}

// Querier is what SchemaVersion needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SchemaVersion is the newest migration the database records, 0 when it has none (no
// schema_migrations table in the search path).
func SchemaVersion(ctx context.Context, q Querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate applies every migration not yet recorded.
func (s *Store) migrate(ctx context.Context) error {
	return migrateTo(ctx, s.pool, -1, s.log)
}

// MigrateTo applies the migrations not yet recorded up to version and no further: a
// restore rebuilds the schema a backup was taken at before loading its rows. The rules of
// Open apply (ErrSchemaNewer when the database is past this binary).
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int, log *slog.Logger) error {
	latest, err := LatestVersion()
	if err != nil {
		return err
	}
	if version < 0 || version > latest {
		return fmt.Errorf("migrate to version %d: this binary knows versions up to %d", version, latest)
	}
	return migrateTo(ctx, pool, version, log)
}

// migrateTo applies every migration not yet recorded up to target (-1: all), each in its
// own transaction, under an advisory lock. A database that records a version this binary
// does not know is refused, and left as it was.
func migrateTo(ctx context.Context, pool *pgxpool.Pool, target int, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck // released with the session anyway

	// Read before creating anything, so that a refused database is not touched at all.
	current, err := SchemaVersion(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("%w: the database is at schema version %d, this binary knows up to %d; "+
			"run a causality binary at least as new as the one that last ran on it, or restore a backup taken with this version (nothing was changed)",
			ErrSchemaNewer, current, latest)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: version table: %w", err)
	}
	for _, m := range ms {
		if m.version <= current || (target >= 0 && m.version > target) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		log.Info("applied migration", "version", m.version, "name", m.name)
	}
	return nil
}
