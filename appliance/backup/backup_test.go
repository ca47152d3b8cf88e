package backup

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/store"
)

// fill stores a row or two in every table, with the values COPY's text format has to
// escape: tabs, newlines, backslashes, NULLs, non-ASCII text, bytea, jsonb and arrays.
func fill(t *testing.T, dbURL string) {
	t.Helper()
	conn := pgtest.Connect(t, dbURL)
	for _, q := range []string{
		`INSERT INTO apps (id) VALUES ('shop'), ('app-ü')`,
		`INSERT INTO api_keys (id, app_id, name, key_hash, key_prefix, rate_limit, last_used_at, revoked_at) VALUES
			('0190a5a0-0000-7000-8000-000000000001', 'shop', E'web\tkey\nwith lines \\ and a backslash', '\x00ff10', 'cz_ab', 50.5, now(), NULL),
			('0190a5a0-0000-7000-8000-000000000002', 'app-ü', 'ios «beta»', '\xdeadbeef', 'cz_cd', NULL, NULL, now())`,
		`INSERT INTO settings (key, value) VALUES ('admin_password_hash', '$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA')`,
		`INSERT INTO webhooks (id, name, url, headers, secret, enabled, disabled_reason, failing_since) VALUES
			('0190a5a0-0000-7000-8000-0000000000a1', 'ops', 'https://hooks.example.com/c?x=1&y=2', '{"X-Token": "a\"b"}', 'whsec_c2VjcmV0', false, 'failing since Monday', now())`,
		`INSERT INTO rules (id, name, description, app_id, condition, webhook_ids, priority) VALUES
			('0190a5a0-0000-7000-8000-0000000000b1', 'big purchase', E'multi\nline', 'shop',
			 'event.purchase_complete.total_cents > 100000 && event.purchase_complete.currency == "EUR"',
			 '{0190a5a0-0000-7000-8000-0000000000a1}', 5)`,
		`INSERT INTO detectors (id, name, kind, config, webhook_ids, cooldown_seconds) VALUES
			('0190a5a0-0000-7000-8000-0000000000c1', 'checkout stalls', 'baseline', '{"sensitivity": 4, "direction": "both"}',
			 '{0190a5a0-0000-7000-8000-0000000000a1}', 60)`,
		`INSERT INTO detector_state (detector_id, app_id, state) VALUES
			('0190a5a0-0000-7000-8000-0000000000c1', 'shop', '{"mean": 12.5, "dev": 3.25, "intervals": 30}')`,
		`INSERT INTO anomalies (id, detector_id, app_id, kind, dedup_key, fired_at, message, observed, expected, details, event_id) VALUES
			('0190a5a0-0000-7000-8000-0000000000d1', '0190a5a0-0000-7000-8000-0000000000c1', 'shop', 'baseline', 'w:2026-11-27T08:00',
			 now(), 'count 0, expected 12.5', 0, 12.5, '{"direction": "drop"}', NULL)`,
		`INSERT INTO deliveries (id, webhook_id, type, source_key, rule_id, app_id, event_id, body, status, attempts, last_status_code, last_error, delivered_at) VALUES
			('0190a5a0-0000-7000-8000-0000000000e1', '0190a5a0-0000-7000-8000-0000000000a1', 'rule.matched',
			 'rule:0190a5a0-0000-7000-8000-0000000000b1:e-1', '0190a5a0-0000-7000-8000-0000000000b1', 'shop', 'e-1',
			 '{"type":"rule.matched","data":{"note":"tab\there"}}', 'succeeded', 1, 200, NULL, now()),
			('0190a5a0-0000-7000-8000-0000000000e2', '0190a5a0-0000-7000-8000-0000000000a1', 'webhook.test', 'test:1', NULL, NULL, NULL,
			 '{}', 'retrying', 3, 503, E'503 Service Unavailable\n<html>', NULL)`,
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func openStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	s, err := store.Open(pgtest.Context(t), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func readManifest(t *testing.T, file string) Manifest {
	t.Helper()
	a, err := openArchive(file)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return a.manifest
}

// A backup restored into an empty database gives back every row of every table, the
// migrations table (with its applied_at) included.
func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	openStore(t, src)
	fill(t, src)
	file := filepath.Join(t.TempDir(), "backup.zip")
	res, err := Backup(pgtest.Context(t), testOptions(t, src), file)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	latest, _ := store.LatestVersion()
	want := tableSums(t, src)
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if res.File != file || res.Bytes != info.Size() || res.SchemaVersion != latest || res.Tables != len(want) || res.Rows < 14 {
		t.Errorf("Backup = %+v; file is %d bytes, latest schema %d, %d tables", res, info.Size(), latest, len(want))
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600 (it holds secrets)", info.Mode().Perm())
	}
	m := readManifest(t, file)
	if m.Format != FormatName || m.FormatVersion != FormatVersion || m.CausalityVersion != "v-test" || m.SchemaVersion != latest ||
		m.PostgresMajor != "17" || !strings.HasPrefix(m.PostgresVersion, "17.") || m.Database != "external" || m.CreatedAt.IsZero() {
		t.Errorf("manifest = %+v", m)
	}
	// Parents before children.
	pos := map[string]int{}
	for i, tb := range m.Tables {
		pos[tb.Name] = i
	}
	for _, fk := range [][2]string{{"apps", "api_keys"}, {"webhooks", "deliveries"}, {"rules", "deliveries"}, {"detectors", "anomalies"}, {"detectors", "detector_state"}} {
		if pos[fk[0]] > pos[fk[1]] {
			t.Errorf("%s is loaded after %s, which references it: %v", fk[0], fk[1], pos)
		}
	}

	dst := pgtest.NewDatabase(t)
	rres, err := Restore(pgtest.Context(t), testOptions(t, dst), file)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rres.SchemaVersion != latest || rres.Manifest.SchemaVersion != latest {
		t.Errorf("Restore = %+v", rres)
	}
	got := tableSums(t, dst)
	if len(got) != len(want) {
		t.Errorf("restored %d tables, the source has %d", len(got), len(want))
	}
	for table, sum := range want {
		if got[table] != sum {
			t.Errorf("table %s differs after the round trip", table)
		}
	}
	// The restored database works for the store as it is.
	wh, err := openStore(t, dst).ListWebhooks(pgtest.Context(t))
	if err != nil || len(wh) != 1 || wh[0].Secret != "whsec_c2VjcmV0" {
		t.Errorf("restored webhooks = %+v, %v", wh, err)
	}
}

// A backup of an older schema is restored at that version and migrated forward.
func TestRestoreMigratesAnOldBackupForward(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	ctx := pgtest.Context(t)
	pool, err := pgxpool.New(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := store.MigrateTo(ctx, pool, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO apps (id) VALUES ('shop');
		INSERT INTO api_keys (id, app_id, name, key_hash, key_prefix) VALUES ('0190a5a0-0000-7000-8000-000000000001', 'shop', 'web', '\x01', 'cz_a')`); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "v1.zip")
	res, err := Backup(ctx, testOptions(t, src), file)
	if err != nil || res.SchemaVersion != 1 || res.Tables != 4 {
		t.Fatalf("Backup of a version-1 database = %+v, %v", res, err)
	}
	dst := pgtest.NewDatabase(t)
	rres, err := Restore(ctx, testOptions(t, dst), file)
	latest, _ := store.LatestVersion()
	if err != nil || rres.SchemaVersion != latest {
		t.Fatalf("Restore = %+v, %v; want schema version %d", rres, err, latest)
	}
	keys, err := openStore(t, dst).ListKeys(ctx, true)
	if err != nil || len(keys) != 1 || keys[0].Prefix != "cz_a" {
		t.Errorf("keys after restoring = %+v, %v", keys, err)
	}
}

func TestRestoreRefusesANonEmptyDatabase(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	openStore(t, src)
	file := filepath.Join(t.TempDir(), "backup.zip")
	if _, err := Backup(pgtest.Context(t), testOptions(t, src), file); err != nil {
		t.Fatal(err)
	}
	dst := pgtest.NewDatabase(t)
	if _, err := pgtest.Connect(t, dst).Exec(context.Background(), `CREATE TABLE mine (x int); INSERT INTO mine VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(pgtest.Context(t), testOptions(t, dst), file)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "mine") || !strings.Contains(err.Error(), "empty database") {
		t.Fatalf("Restore into a database with a table = %v, want ErrNotEmpty naming it", err)
	}
	var n int
	if err := pgtest.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM mine`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the existing table was touched: %d rows, %v", n, err)
	}
}

func TestRestoreRefusesANonEmptyDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(t.Context(), Options{DataDir: dir}, filepath.Join(dir, "whatever.zip"))
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "keep.txt") || !strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("Restore into a non-empty dir = %v, want ErrNotEmpty naming what is there", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "mine" {
		t.Error("the existing file was touched")
	}
}

// Damaged or foreign files are refused with a message naming the file, before the data
// dir is even created.
func TestRestoreRefusesADamagedArchive(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	openStore(t, src)
	fill(t, src)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zip")
	if _, err := Backup(pgtest.Context(t), testOptions(t, src), good); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A byte in the middle of a table's compressed data (a byte of a header the reader
	// does not use would change nothing that matters, and restore fine).
	zr, err := zip.OpenReader(good)
	if err != nil {
		t.Fatal(err)
	}
	var at int64
	for _, f := range zr.File {
		if f.Name == "data/deliveries.copy" {
			off, err := f.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			at = off + int64(f.CompressedSize64)/2
		}
	}
	zr.Close()
	flipped := append([]byte(nil), raw...)
	flipped[at] ^= 0xff
	tests := []struct {
		name, file, want string
	}{
		{"cut short", write("short.zip", raw[:len(raw)/2]), "not a valid zip file"},
		{"a byte changed", write("flipped.zip", flipped), "data/deliveries.copy"},
		{"not a zip", write("notes.txt", []byte("just some text\n")), "not a valid zip file"},
		{"empty file", write("empty.zip", nil), "not a valid zip file"},
	}
	edited := func(name string, edit func(string, []byte) []byte) string {
		p := filepath.Join(dir, name)
		rewriteArchive(t, good, p, edit)
		return p
	}
	tests = append(tests,
		struct{ name, file, want string }{"no manifest", edited("nomanifest.zip", func(n string, b []byte) []byte {
			if n == manifestName {
				return nil
			}
			return b
		}), "no manifest.json"},
		struct{ name, file, want string }{"rows changed, checksum kept", edited("changed.zip", func(n string, b []byte) []byte {
			if n == "data/webhooks.copy" {
				return []byte(strings.Replace(string(b), "whsec_c2VjcmV0", "whsec_c2VjcmV1", 1))
			}
			return b
		}), "data/webhooks.copy does not match its checksum"},
		struct{ name, file, want string }{"a data file missing", edited("missing.zip", func(n string, b []byte) []byte {
			if n == "data/rules.copy" {
				return nil
			}
			return b
		}), "data/rules.copy is missing"},
		struct{ name, file, want string }{"another format", edited("other.zip", func(n string, b []byte) []byte {
			if n == manifestName {
				return []byte(`{"format": "something-else", "format_version": 1}`)
			}
			return b
		}), `format "something-else"`},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "data")
			_, err := Restore(t.Context(), Options{DataDir: target}, tt.file)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Restore = %v, want ErrDamaged", err)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and say %q", err, tt.file, tt.want)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("the data dir was created for a damaged backup: %v", err)
			}
		})
	}
	if _, err := Restore(t.Context(), Options{DataDir: filepath.Join(dir, "x")}, filepath.Join(dir, "absent.zip")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Restore of a missing file = %v", err)
	}
}

// A backup of a newer schema (or archive format) than this binary knows is refused with a
// message naming the causality version to use.
func TestRestoreRefusesANewerBackup(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	openStore(t, src)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zip")
	if _, err := Backup(pgtest.Context(t), testOptions(t, src), good); err != nil {
		t.Fatal(err)
	}
	latest, _ := store.LatestVersion()
	newer := func(name string, change func(*Manifest)) string {
		p := filepath.Join(dir, name)
		rewriteArchive(t, good, p, func(n string, b []byte) []byte {
			if n != manifestName {
				return b
			}
			var m Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m.CausalityVersion = "v9.9.9"
			change(&m)
			out, _ := json.Marshal(m)
			return out
		})
		return p
	}
	for _, tt := range []struct {
		name, file, want string
	}{
		{"schema", newer("schema.zip", func(m *Manifest) { m.SchemaVersion = latest + 1 }), "schema version"},
		{"archive format", newer("format.zip", func(m *Manifest) { m.FormatVersion = FormatVersion + 1 }), "archive format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "data")
			_, err := Restore(t.Context(), Options{DataDir: target}, tt.file)
			if !errors.Is(err, ErrNewerBackup) {
				t.Fatalf("Restore = %v, want ErrNewerBackup", err)
			}
			t.Logf("refused: %v", err)
			for _, want := range []string{tt.want, "v9.9.9 or newer"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("the data dir was created for a newer backup: %v", err)
			}
		})
	}
}

func TestBackupFindsNothingToBackUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "b.zip")
	_, err := Backup(t.Context(), Options{DataDir: filepath.Join(dir, "data")}, file)
	if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("Backup of a data dir without a cluster = %v, want ErrNoDatabase", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("Backup created the data dir: %v", err)
	}
	empty := pgtest.NewDatabase(t)
	if _, err := Backup(pgtest.Context(t), testOptions(t, empty), file); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("Backup of a database without the schema = %v, want ErrNoDatabase", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s: %v", file, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("a failed backup left files: %v", entries)
	}
}

func TestLoadOrder(t *testing.T) {
	tables := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	tests := []struct {
		name    string
		tables  map[string]bool
		refs    map[string][]string
		want    string
		wantErr string
	}{
		{name: "by name without references", tables: tables("c", "a", "b"), want: "a b c"},
		{name: "chain", tables: tables("a", "b", "c"), refs: map[string][]string{"a": {"b"}, "b": {"c"}}, want: "c b a"},
		{name: "diamond", tables: tables("top", "l", "r", "bottom"),
			refs: map[string][]string{"bottom": {"l", "r"}, "l": {"top"}, "r": {"top"}}, want: "top l r bottom"},
		{name: "self reference", tables: tables("a", "tree"), refs: map[string][]string{"tree": {"tree", "a"}}, want: "a tree"},
		{name: "reference out of the schema", tables: tables("a"), refs: map[string][]string{"a": {"elsewhere"}}, want: "a"},
		{name: "cycle", tables: tables("a", "b", "c"), refs: map[string][]string{"a": {"b"}, "b": {"a"}}, wantErr: "tables a, b form a cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadOrder(tt.tables, tt.refs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadOrder = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Fatalf("loadOrder = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
