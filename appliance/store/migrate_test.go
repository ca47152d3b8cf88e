package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/migrations"
)

func TestLoadMigrations(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name         string
		fsys         fstest.MapFS
		wantVersions []int
		wantErr      string // substring; empty means success
	}{
		{
			name: "sorted by number, not by name",
			fsys: fstest.MapFS{
				"10_c.sql":   file("SELECT 10"),
				"0002_b.sql": file("SELECT 2"),
				"1_a.sql":    file("SELECT 1"),
			},
			wantVersions: []int{1, 2, 10},
		},
		{
			name: "other files and directories ignored",
			fsys: fstest.MapFS{
				"0001_a.sql":     file("SELECT 1"),
				"README.md":      file("# notes"),
				"migrations.go":  file("package migrations"),
				"old/0002_b.sql": file("SELECT 2"),
			},
			wantVersions: []int{1},
		},
		{name: "none", fsys: fstest.MapFS{}, wantVersions: nil},
		{name: "no number", fsys: fstest.MapFS{"apps.sql": file("")}, wantErr: "migration apps.sql: name must start with a positive number and '_'"},
		{name: "no underscore", fsys: fstest.MapFS{"0001.sql": file("")}, wantErr: "migration 0001.sql"},
		{name: "not a number before the underscore", fsys: fstest.MapFS{"v1_apps.sql": file("")}, wantErr: "migration v1_apps.sql"},
		{name: "zero", fsys: fstest.MapFS{"0000_apps.sql": file("")}, wantErr: "migration 0000_apps.sql"},
		{name: "negative", fsys: fstest.MapFS{"-1_apps.sql": file("")}, wantErr: "migration -1_apps.sql"},
		{
			name:    "duplicate version",
			fsys:    fstest.MapFS{"0001_a.sql": file(""), "0002_b.sql": file(""), "2_c.sql": file("")},
			wantErr: "migrations 0002_b.sql and 2_c.sql share version 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadMigrations = %v, %v; want an error containing %q", ms, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var versions []int
			for _, m := range ms {
				versions = append(versions, m.version)
				if want := string(tt.fsys[m.name].Data); m.sql != want {
					t.Errorf("%s: sql = %q, want %q", m.name, m.sql, want)
				}
			}
			if !equalInts(versions, tt.wantVersions) {
				t.Fatalf("versions = %v, want %v", versions, tt.wantVersions)
			}
		})
	}
}

// The migrations the binary ships are well formed and numbered 1, 2, 3... without gaps, so a
// new file with a typo in its number is caught here rather than at a customer's start.
func TestShippedMigrations(t *testing.T) {
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d (no gaps)", m.name, m.version, i+1)
		}
		if strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %s is empty", m.name)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type appliedMigration struct {
	version   int
	name      string
	appliedAt time.Time
}

func appliedMigrations(t *testing.T, dbURL string) []appliedMigration {
	t.Helper()
	conn := pgtest.Connect(t, dbURL)
	rows, err := conn.Query(context.Background(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []appliedMigration
	for rows.Next() {
		var m appliedMigration
		if err := rows.Scan(&m.version, &m.name, &m.appliedAt); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func tableExists(t *testing.T, dbURL, table string) bool {
	t.Helper()
	var exists bool
	if err := pgtest.Connect(t, dbURL).QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	s, dbURL := openStore(t)
	first := appliedMigrations(t, dbURL)
	if len(first) != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want one per migration (%d): %v", len(first), len(ms), first)
	}
	for i, m := range ms {
		if first[i].version != m.version || first[i].name != m.name {
			t.Errorf("row %d = %d %s, want %d %s", i, first[i].version, first[i].name, m.version, m.name)
		}
	}
	for _, table := range []string{"apps", "api_keys", "settings"} {
		if !tableExists(t, dbURL, table) {
			t.Errorf("table %s missing after Open", table)
		}
	}
	if err := s.Check(pgtest.Context(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}

	// A second Open (a restart) applies nothing again.
	s2, err := Open(pgtest.Context(t), dbURL, testLogger(t))
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	s2.Close()
	second := appliedMigrations(t, dbURL)
	if len(second) != len(first) {
		t.Fatalf("after a second Open: %v, want %v", second, first)
	}
	for i := range first {
		if !second[i].appliedAt.Equal(first[i].appliedAt) {
			t.Errorf("migration %d re-applied: applied_at %v, then %v", first[i].version, first[i].appliedAt, second[i].appliedAt)
		}
	}
}

// Appliances sharing a database start at once: the advisory lock lets one migrate and the
// other find the work done.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(pgtest.Context(t), dbURL, testLogger(t))
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	ms, _ := loadMigrations(migrations.FS)
	if got := appliedMigrations(t, dbURL); len(got) != len(ms) {
		t.Fatalf("schema_migrations = %v, want %d rows", got, len(ms))
	}
}

// A database migrated by a newer binary is refused, and left exactly as it was.
func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dbURL)
	ctx := pgtest.Context(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, dbURL)

	s, err := Open(ctx, dbURL, testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database of a newer schema")
	}
	if !errors.Is(err, ErrSchemaNewer) {
		t.Fatalf("Open = %v, want ErrSchemaNewer", err)
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not say the database's version", err)
	}

	after := appliedMigrations(t, dbURL)
	if len(after) != 1 || after[0].version != before[0].version || !after[0].appliedAt.Equal(before[0].appliedAt) {
		t.Errorf("schema_migrations changed: %v, then %v", before, after)
	}
	for _, table := range []string{"apps", "api_keys", "settings"} {
		if tableExists(t, dbURL, table) {
			t.Errorf("table %s was created although the schema is newer", table)
		}
	}
}

// Connection errors name the server and database but never the password.
func TestOpenErrorHidesPassword(t *testing.T) {
	const password = "s3cret-pw"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	s, err := Open(ctx, "postgres://causality:"+password+"@127.0.0.1:1/config?sslmode=disable&connect_timeout=5", nil)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with nothing listening")
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/config") {
		t.Errorf("error %q does not name the server and database", err)
	}

	if _, err := Open(ctx, "postgres://%zz", nil); err == nil || !strings.Contains(err.Error(), "parse database url") {
		t.Errorf("Open of a malformed URL = %v, want a parse error", err)
	}
}
