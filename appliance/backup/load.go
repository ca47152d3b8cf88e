package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/causality-io/causality/appliance/store"
)

// ErrNotEmpty means the restore target already holds something; restore never overwrites.
var ErrNotEmpty = errors.New("restore target is not empty")

// load restores the archive into the database at dbURL, which must be empty: the schema
// at the backup's version from this binary's migrations, every table's rows in one
// transaction, then the migrations since. It returns the schema version it ends at.
func load(ctx context.Context, a *archive, dbURL string, log *slog.Logger, say func(string, ...any)) (int, error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	if err := refuseNonEmpty(ctx, pool); err != nil {
		return 0, err
	}
	m := a.manifest
	if err := store.MigrateTo(ctx, pool, m.SchemaVersion, log); err != nil {
		return 0, fmt.Errorf("create the schema at version %d: %w", m.SchemaVersion, err)
	}
	if err := matchSchema(ctx, pool, m); err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The migrations just recorded themselves; the backup's history replaces that.
		names := make([]string, len(m.Tables))
		for i, t := range m.Tables {
			names[i] = pgx.Identifier{t.Name}.Sanitize()
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(names, ", ")); err != nil {
			return err
		}
		for _, t := range m.Tables {
			if err := loadTable(ctx, tx, a, t); err != nil {
				return err
			}
			say("  %-20s %s", t.Name, rows(t.Rows))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Forward to this binary's schema, exactly as `causality serve` would at start.
	s, err := store.Open(ctx, dbURL, log)
	if err != nil {
		return 0, fmt.Errorf("migrate the restored database forward: %w", err)
	}
	defer s.Close()
	return store.SchemaVersion(ctx, s.Pool())
}

func loadTable(ctx context.Context, tx pgx.Tx, a *archive, t Table) error {
	rc, err := a.open(t)
	if err != nil {
		return err
	}
	defer rc.Close()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, rc, copySQL(t, "FROM STDIN"))
	if err != nil {
		if errors.Is(err, ErrDamaged) {
			return err
		}
		return fmt.Errorf("load %s: %w", t.Name, err)
	}
	// CopyFrom stops at EOF of the reader, where the checksum was checked.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	if tag.RowsAffected() != t.Rows {
		return fmt.Errorf("%w: %s: %s holds %d rows, the manifest says %d", ErrDamaged, a.name, t.File, tag.RowsAffected(), t.Rows)
	}
	return nil
}

// refuseNonEmpty fails unless the database's current schema holds no relations.
func refuseNonEmpty(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT relname FROM pg_class
		WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		ORDER BY relname LIMIT 6`)
	if err != nil {
		return fmt.Errorf("look into the target database: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look into the target database: %w", err)
	}
	if len(names) > 0 {
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		return fmt.Errorf("%w: the database already has tables (%s): restore only into an empty database", ErrNotEmpty, strings.Join(names, ", "))
	}
	return nil
}

// matchSchema checks that the schema this binary's migrations made at the backup's
// version has exactly the backup's tables and columns.
func matchSchema(ctx context.Context, pool *pgxpool.Pool, m Manifest) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	have, err := listTables(ctx, tx)
	if err != nil {
		return err
	}
	cols := map[string][]string{}
	for _, t := range have {
		cols[t.Name] = slices.Sorted(slices.Values(t.Columns))
	}
	for _, t := range m.Tables {
		want, ok := cols[t.Name]
		if !ok {
			return fmt.Errorf("%w: %s: table %s is not in schema version %d as this binary makes it", ErrDamaged, describe(m), t.Name, m.SchemaVersion)
		}
		if got := slices.Sorted(slices.Values(t.Columns)); !slices.Equal(got, want) {
			return fmt.Errorf("%w: %s: table %s has columns (%s), schema version %d has (%s)", ErrDamaged, describe(m), t.Name,
				strings.Join(got, ", "), m.SchemaVersion, strings.Join(want, ", "))
		}
		delete(cols, t.Name)
	}
	for name := range cols {
		return fmt.Errorf("%w: %s: table %s of schema version %d is missing from the backup", ErrDamaged, describe(m), name, m.SchemaVersion)
	}
	return nil
}

// describe names a backup in messages.
func describe(m Manifest) string {
	return fmt.Sprintf("backup of %s by causality %s", m.CreatedAt.Format("2006-01-02 15:04:05Z"), m.CausalityVersion)
}

func rows(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}
