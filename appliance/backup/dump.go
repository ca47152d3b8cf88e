package backup

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/causality-io/causality/appliance/store"
)

// dump writes the database's tables and then the manifest (m, completed here) to w as a
// zip archive, reading everything in one REPEATABLE READ, READ ONLY transaction: one
// snapshot, so a running appliance may keep writing.
func dump(ctx context.Context, conn *pgx.Conn, m *Manifest, w io.Writer) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to keep

	if m.SchemaVersion, err = store.SchemaVersion(ctx, tx); err != nil {
		return err
	}
	if m.SchemaVersion == 0 {
		return fmt.Errorf("%w: the database has no causality schema (no schema_migrations table)", ErrNoDatabase)
	}
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_version'), (current_setting('server_version_num')::int / 10000)::text`).
		Scan(&m.PostgresVersion, &m.PostgresMajor); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	if m.PostgresVersion, _, _ = strings.Cut(m.PostgresVersion, " "); m.PostgresVersion == "" {
		return fmt.Errorf("read server version: empty")
	}
	tables, err := listTables(ctx, tx)
	if err != nil {
		return err
	}
	if err := refuseSequences(ctx, tx); err != nil {
		return err
	}
	// Keep migrations of a newer binary (DDL) out until the dump is done, as pg_dump does.
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{t.Name}.Sanitize()
	}
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS SHARE MODE`); err != nil {
		return fmt.Errorf("lock tables: %w", err)
	}

	zw := zip.NewWriter(w)
	for i := range tables {
		t := &tables[i]
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: t.File, Method: zip.Deflate, Modified: m.CreatedAt})
		if err != nil {
			return err
		}
		h := sha256.New()
		cw := &countingWriter{w: io.MultiWriter(fw, h)}
		tag, err := tx.Conn().PgConn().CopyTo(ctx, cw, copySQL(*t, "TO STDOUT"))
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.Name, err)
		}
		t.Rows, t.Bytes, t.SHA256 = tag.RowsAffected(), cw.n, hex.EncodeToString(h.Sum(nil))
	}
	m.Tables = tables
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: manifestName, Method: zip.Deflate, Modified: m.CreatedAt})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(fw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	return zw.Close()
}

// copySQL is the COPY statement for a table, with its columns named so that the order in
// the file does not depend on the order in which migrations added them.
func copySQL(t Table, direction string) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	return "COPY " + pgx.Identifier{t.Name}.Sanitize() + " (" + strings.Join(cols, ", ") + ") " + direction
}

// notBackedUp are tables a backup leaves out: admin UI sign-ins belong to the running
// installation, and a restored one starts with everybody signed out.
var notBackedUp = []string{"admin_sessions"}

// listTables returns the tables of the current schema with their columns (generated
// columns left out: they are computed again), ordered so that every table comes after
// the tables its foreign keys reference.
func listTables(ctx context.Context, q pgx.Tx) ([]Table, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND NOT c.relname = ANY($1)
		GROUP BY c.relname`, notBackedUp)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	byName := map[string]Table{}
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Name, &t.Columns); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.File = path.Join("data", t.Name+".copy")
		byName[t.Name] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	rows, err = q.Query(ctx, `
		SELECT c.relname, r.relname
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid
		JOIN pg_class r ON r.oid = k.confrelid
		WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	refs := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			return nil, fmt.Errorf("list foreign keys: %w", err)
		}
		refs[child] = append(refs[child], parent)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	order, err := loadOrder(byName, refs)
	if err != nil {
		return nil, err
	}
	tables := make([]Table, len(order))
	for i, name := range order {
		tables[i] = byName[name]
	}
	return tables, nil
}

// loadOrder sorts tables so that each comes after those it references (refs: table ->
// referenced tables), by name where the references leave a choice, so that the same schema
// always gives the same order. A table referencing itself is fine (COPY checks foreign
// keys at the end of the statement); a cycle between tables is refused.
func loadOrder[T any](tables map[string]T, refs map[string][]string) ([]string, error) {
	var names []string
	for name := range tables {
		names = append(names, name)
	}
	slices.Sort(names)
	done := map[string]bool{}
	var order []string
	for len(order) < len(names) {
		progressed := false
		for _, name := range names {
			if done[name] {
				continue
			}
			ready := true
			for _, p := range refs[name] {
				if _, known := tables[p]; known && p != name && !done[p] {
					ready = false
					break
				}
			}
			if ready {
				done[name] = true
				order = append(order, name)
				progressed = true
			}
		}
		if !progressed {
			var left []string
			for _, name := range names {
				if !done[name] {
					left = append(left, name)
				}
			}
			return nil, fmt.Errorf("the foreign keys of tables %s form a cycle: no load order", strings.Join(left, ", "))
		}
	}
	return order, nil
}

// refuseSequences fails when the schema has sequences: their positions are state this
// format does not carry, so a migration that adds one must extend the backup first (the
// round-trip test would fail).
func refuseSequences(ctx context.Context, q pgx.Tx) error {
	var seqs []string
	rows, err := q.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'S' ORDER BY relname`)
	if err != nil {
		return err
	}
	seqs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(seqs) > 0 {
		return fmt.Errorf("the schema has sequences (%s), which backup format %d does not carry", strings.Join(seqs, ", "), FormatVersion)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
