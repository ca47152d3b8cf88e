package backup

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

// The tests share one embedded PostgreSQL (a database each); the data dir tests start
// their own, which re-executes the test binary as its supervisor (pgtest.Main handles it).
func TestMain(m *testing.M) { pgtest.Main(m) }

// reachableDir is a temporary dir the unprivileged PostgreSQL account can reach when the
// tests run as root (t.TempDir is 0700).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testOptions points at an external database (a pgtest one) with progress in the test log.
func testOptions(t *testing.T, dbURL string) Options {
	return Options{DatabaseURL: dbURL, Version: "v-test", Progress: t.Output()}
}

// rewriteArchive copies the zip src to dst, passing each entry's content through edit
// (which may return nil to drop the entry).
func rewriteArchive(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if data = edit(f.Name, data); data == nil {
			continue
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tableSums is md5 over each backed-up table's rows in a fixed order, for comparing two
// databases.
func tableSums(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	conn := pgtest.Connect(t, dbURL)
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
		AND NOT relname = ANY($1)`, notBackedUp)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	sums := map[string]string{}
	for _, table := range tables {
		var sum string
		var n int
		q := `SELECT coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), ''), count(*) FROM ` + table + ` r`
		if err := conn.QueryRow(ctx, q).Scan(&sum, &n); err != nil {
			t.Fatal(err)
		}
		sums[table] = sum
	}
	return sums
}
