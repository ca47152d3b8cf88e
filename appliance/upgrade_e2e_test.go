package appliance_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/causality-io/causality/appliance"
	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/datadir"
	"github.com/causality-io/causality/appliance/pgembed"
	"github.com/causality-io/causality/appliance/store"
)

// upStartPostgres starts the embedded PostgreSQL of a data dir on its own, as a tool or an
// older binary would, stopped when the test ends (or by the returned func).
func upStartPostgres(t *testing.T, cfg *config.Config) (dbURL string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		t.Fatal(err)
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{Dir: cfg.PostgresDir(), BinariesDir: cfg.PGBinaries})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	}
	t.Cleanup(stop)
	return srv.URL(), stop
}

// upStartFails starts an appliance that must refuse to start, and returns why.
func upStartFails(t *testing.T, cfg *config.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := appliance.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard).WithVersion("v-old")
	err := a.Start(ctx)
	if err == nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = a.Stop(stopCtx)
		t.Fatal("the appliance started")
	}
	t.Logf("refused: %v", err)
	return err
}

// upChecksums is md5 over every row of every table of the database.
func upChecksums(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, table := range tables {
		var sum string
		if err := conn.QueryRow(ctx, `SELECT coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '') FROM `+table+` r`).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		sums[table] = sum
	}
	return sums
}

// A data dir left by a binary at schema version 1 (an app and its key, no reaction tables)
// is migrated to the latest schema when a newer appliance starts on it, and its key works.
func TestStartMigratesAnOlderDataDirForward(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	dbURL, stop := upStartPostgres(t, cfg)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(ctx, pool, 1, nil); err != nil {
		t.Fatal(err)
	}
	key, hash, display := apikey.Generate()
	if _, err := pool.Exec(ctx, `INSERT INTO apps (id) VALUES ('shop')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO api_keys (id, app_id, name, key_hash, key_prefix)
		VALUES ('0190a5a0-0000-7000-8000-000000000001', 'shop', 'old', $1, $2)`, hash, display); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	stop()

	s := start(t, cfg)
	r := s.ingest("/v1/events/batch", key, "application/json", []byte(`{"events":[{"appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}}]}`))
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"acceptedCount":1`) {
		t.Errorf("the version-1 key does not work after the upgrade: %s", r)
	}
	if r := s.admin("GET", "/api/v1/admin/rules", ""); r.code != http.StatusOK {
		t.Errorf("the tables of the newer schema are not there: %s", r)
	}
	latest, _ := store.LatestVersion()
	info, ok, err := datadir.Read(cfg.DataDir)
	if err != nil || !ok || info.Format != datadir.Format || info.SchemaVersion != latest || info.WrittenBy != "dev" {
		t.Errorf("datadir.json after the start = %+v, %v, %v; want format %d at schema version %d", info, ok, err, datadir.Format, latest)
	}
}

// A binary older than the database refuses to start, says to use a newer one, and changes
// no row in any table; datadir.json keeps naming the newer binary.
func TestStartRefusesADatabaseOfANewerSchema(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	s := start(t, cfg)
	s.createKey("shop", "")
	s.stop()
	dbURL, stop := upStartPostgres(t, cfg)
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_from_a_newer_binary.sql')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	before := upChecksums(t, dbURL)
	stop()
	record, err := os.ReadFile(filepath.Join(cfg.DataDir, datadir.FileName))
	if err != nil {
		t.Fatal(err)
	}

	err = upStartFails(t, cfg)
	if !errors.Is(err, store.ErrSchemaNewer) {
		t.Fatalf("start = %v, want ErrSchemaNewer", err)
	}
	for _, want := range []string{"schema version 9999", "run a causality binary at least as new", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}

	dbURL, _ = upStartPostgres(t, cfg)
	after := upChecksums(t, dbURL)
	if len(after) != len(before) {
		t.Errorf("tables before %v, after %v", before, after)
	}
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("table %s changed although the start was refused", table)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(cfg.DataDir, datadir.FileName)); string(now) != string(record) {
		t.Errorf("datadir.json changed by the refused start:\n%s\nthen\n%s", record, now)
	}
}

// A data dir whose format is newer than the binary's is refused before anything starts:
// nothing is created in it.
func TestStartRefusesADataDirOfANewerFormat(t *testing.T) {
	dir := dataDir(t)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	record := []byte(`{"format": 99, "written_by": "v42.0.0"}`)
	if err := os.WriteFile(filepath.Join(dir, datadir.FileName), record, 0o644); err != nil {
		t.Fatal(err)
	}
	err := upStartFails(t, testConfig(t, dir))
	if !errors.Is(err, datadir.ErrNewer) || !strings.Contains(err.Error(), "v42.0.0") {
		t.Fatalf("start = %v, want datadir.ErrNewer naming v42.0.0", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the refused start created files: %v", entries)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, datadir.FileName)); string(now) != string(record) {
		t.Errorf("datadir.json changed: %s", now)
	}
}

// A second appliance on a data dir in use is refused, and the first keeps running (it
// would otherwise stop the first's PostgreSQL as a leftover).
func TestSecondApplianceOnTheSameDataDirIsRefused(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	s := start(t, cfg)
	err := upStartFails(t, testConfig(t, cfg.DataDir))
	if !errors.Is(err, datadir.ErrLocked) || !strings.Contains(err.Error(), "causality serve") {
		t.Fatalf("second start = %v, want datadir.ErrLocked naming the holder", err)
	}
	if r := s.do("GET", "/readyz", nil, nil); r.code != http.StatusOK {
		t.Errorf("the first appliance after the refused second start: %s", r)
	}
}
