package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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

// tableChecksum is md5 over every row of table in a fixed order: equal before and after
// means nothing in it changed.
func tableChecksum(t *testing.T, dbURL, table string) string {
	t.Helper()
	var sum string
	q := `SELECT coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '') FROM ` + table + ` r`
	if err := pgtest.Connect(t, dbURL).QueryRow(context.Background(), q).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// MigrateTo stops at the version asked for, and refuses one the binary does not have.
func TestMigrateToStopsAtVersion(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	ctx := pgtest.Context(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := MigrateTo(ctx, pool, 1, testLogger(t)); err != nil {
		t.Fatalf("MigrateTo(1): %v", err)
	}
	if v, err := SchemaVersion(ctx, pool); err != nil || v != 1 {
		t.Fatalf("SchemaVersion = %d, %v; want 1", v, err)
	}
	if tableExists(t, dbURL, "webhooks") {
		t.Error("MigrateTo(1) created webhooks, which migration 2 makes")
	}
	latest, err := LatestVersion()
	if err != nil {
		t.Fatal(err)
	}
	if err := MigrateTo(ctx, pool, latest+1, testLogger(t)); err == nil || !strings.Contains(err.Error(), "knows versions up to") {
		t.Errorf("MigrateTo(latest+1) = %v, want a refusal", err)
	}
	empty := pgtest.NewDatabase(t)
	if v, err := SchemaVersion(ctx, pgtest.Connect(t, empty)); err != nil || v != 0 {
		t.Errorf("SchemaVersion of an empty database = %d, %v; want 0", v, err)
	}
}

// A database an older binary made (schema version 1) is migrated to the latest version by
// Open, and its rows are kept as they were.
func TestOpenMigratesForwardKeepingData(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	ctx := pgtest.Context(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := MigrateTo(ctx, pool, 1, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	// What a version-1 binary stored: an app, a key, the admin password hash.
	for _, q := range []string{
		`INSERT INTO apps (id) VALUES ('shop')`,
		`INSERT INTO api_keys (id, app_id, name, key_hash, key_prefix, rate_limit)
			VALUES ('0190a5a0-0000-7000-8000-000000000001', 'shop', 'web', '\x0102', 'cz_ab', 50)`,
		`INSERT INTO settings (key, value) VALUES ('admin_password_hash', '$argon2id$...')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{}
	for _, table := range []string{"apps", "api_keys", "settings"} {
		before[table] = tableChecksum(t, dbURL, table)
	}

	s, err := Open(ctx, dbURL, testLogger(t))
	if err != nil {
		t.Fatalf("Open of a version-1 database: %v", err)
	}
	defer s.Close()
	latest, _ := LatestVersion()
	if v, err := SchemaVersion(ctx, s.Pool()); err != nil || v != latest {
		t.Fatalf("after Open: schema version %d, %v; want %d", v, err, latest)
	}
	for table, sum := range before {
		if got := tableChecksum(t, dbURL, table); got != sum {
			t.Errorf("rows of %s changed by the migration", table)
		}
	}
	keys, err := s.ListKeys(ctx, false)
	if err != nil || len(keys) != 1 || keys[0].AppID != "shop" || keys[0].Prefix != "cz_ab" {
		t.Errorf("ListKeys after migrating = %+v, %v", keys, err)
	}
	if _, err := s.ListWebhooks(ctx); err != nil {
		t.Errorf("the tables of migration 2 are not usable: %v", err)
	}
}

// A binary older than the database refuses it with a message that says what to run, and
// changes no row of any table, the migrations table included.
func TestOpenRefusesNewerSchemaLeavesDataAlone(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	if _, err := s.CreateKey(ctx, NewAPIKey{AppID: "shop", Name: "web", Hash: []byte{1, 2, 3}, Prefix: "cz_x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	tables := []string{"schema_migrations", "apps", "api_keys", "settings", "webhooks", "rules", "detectors", "deliveries", "anomalies"}
	before := map[string]string{}
	for _, table := range tables {
		before[table] = tableChecksum(t, dbURL, table)
	}

	s2, err := Open(ctx, dbURL, testLogger(t))
	if err == nil {
		s2.Close()
		t.Fatal("Open succeeded on a database of a newer schema")
	}
	if !errors.Is(err, ErrSchemaNewer) {
		t.Fatalf("Open = %v, want ErrSchemaNewer", err)
	}
	for _, want := range []string{"schema version 9999", "at least as new", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, table := range tables {
		if got := tableChecksum(t, dbURL, table); got != before[table] {
			t.Errorf("table %s changed although the start was refused", table)
		}
	}
}
