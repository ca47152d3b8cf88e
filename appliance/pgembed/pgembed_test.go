package pgembed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
)

// Tests that start PostgreSQL need binaries: the embedded bundle (CI runs
// `make bundle` first) or CAUSALITY_PG_BINARIES, a PostgreSQL 17 directory
// with bin/, lib/ and share/. With neither they are skipped.

const helperEnv = "PGEMBED_TEST_HELPER"

func TestMain(m *testing.M) {
	if IsSupervisor() {
		os.Exit(RunSupervisor())
	}
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}

// runHelper plays the appliance in a process of its own, so that a test can
// kill it: it starts PostgreSQL, prints the URL and the postmaster's PID,
// and waits to be killed.
func runHelper() int {
	s, err := Start(context.Background(), Options{
		Dir:         os.Getenv("PGEMBED_TEST_DIR"),
		BinariesDir: os.Getenv("CAUSALITY_PG_BINARIES"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"url": s.URL(), "pid": s.pid})
	select {}
}

// binariesOrSkip returns Options.BinariesDir for tests: "" to use the bundle.
func binariesOrSkip(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("CAUSALITY_PG_BINARIES"); dir != "" {
		return dir
	}
	if _, err := fs.Stat(bundleFS, bundleName()); err != nil {
		t.Skipf("no PostgreSQL to test with: run `make bundle` (or set CAUSALITY_PG_BINARIES to a PostgreSQL %s directory with bin/, lib/, share/)", MajorVersion)
	}
	return ""
}

// testDir returns a Dir for Options. t.TempDir makes 0700 directories; the
// account PostgreSQL runs as when the tests run as root must get through.
func testDir(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	for _, d := range []string{parent, filepath.Dir(parent)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(parent, "postgres")
}

func testOptions(t *testing.T) Options {
	return Options{
		Dir:         testDir(t),
		BinariesDir: binariesOrSkip(t),
		Logger:      slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

func startT(t *testing.T, opts Options) (*Server, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	elapsed := time.Since(begin)
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, elapsed
}

func connect(t *testing.T, s *Server) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// procUID reads the real uid of a process from /proc.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return ""
}

func TestStartQueryStopRestart(t *testing.T) {
	opts := testOptions(t)

	s, cold := startT(t, opts)
	t.Logf("cold start (unpack + initdb + start): %v", cold)
	if !strings.HasPrefix(s.URL(), "postgres://causality:") || !strings.HasSuffix(s.URL(), "/causality?sslmode=disable") ||
		!strings.Contains(s.URL(), "@127.0.0.1:") {
		t.Errorf("URL = %s", s.URL())
	}
	conn := connect(t, s)
	if v := queryString(t, conn, "SHOW server_version"); !strings.HasPrefix(v, MajorVersion+".") {
		t.Errorf("server_version = %s", v)
	}
	if v := queryString(t, conn, "SELECT current_user || '/' || current_database()"); v != "causality/causality" {
		t.Errorf("user/database = %s", v)
	}
	if v := queryString(t, conn, "SHOW listen_addresses"); v != "127.0.0.1" {
		t.Errorf("listen_addresses = %s", v)
	}
	if v := queryString(t, conn, "SHOW password_encryption"); v != "scram-sha-256" {
		t.Errorf("password_encryption = %s", v)
	}
	mustExec(t, conn, "CREATE TABLE kept (v text)")
	mustExec(t, conn, "INSERT INTO kept VALUES ('survives a restart')")

	if os.Geteuid() == 0 {
		if uid := procUID(t, s.pid); uid == "0" {
			t.Errorf("postmaster %d runs as root", s.pid)
		} else {
			t.Logf("running as root; postmaster runs as uid %s", uid)
		}
	}
	if info, err := os.Stat(filepath.Join(opts.Dir, "password")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v %v", info, err)
	}
	bad := strings.Replace(s.URL(), "causality:", "causality:x", 1)
	if c, err := pgx.Connect(context.Background(), bad); err == nil {
		c.Close(context.Background())
		t.Error("connected with a wrong password")
	}
	conn.Close(context.Background())

	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := <-s.Wait(); err != nil {
		t.Errorf("Wait after Stop = %v", err)
	}
	if alive(s.pid) {
		t.Errorf("postmaster %d still runs after Stop", s.pid)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "cluster", "data", "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: %v", err)
	}

	s2, warm := startT(t, opts)
	t.Logf("warm start: %v", warm)
	if v := queryString(t, connect(t, s2), "SELECT v FROM kept"); v != "survives a restart" {
		t.Errorf("after restart: %q", v)
	}
	if err := s2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if log, err := os.ReadFile(filepath.Join(opts.Dir, "postgres.log")); err != nil || !strings.Contains(string(log), "database system is ready to accept connections") {
		t.Errorf("postgres.log lacks PostgreSQL's log (%v):\n%s", err, log)
	}
}

// snapshot records every file under dir: mode, owner, time, content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		entry := fmt.Sprintf("%v %d:%d %d", info.Mode(), st.Uid, st.Gid, info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			entry += " " + hex.EncodeToString(sum[:])
		}
		snap[p] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestRefusesOtherMajorVersion(t *testing.T) {
	dir := testDir(t)
	data := filepath.Join(dir, "cluster", "data")
	files := map[string]string{
		"PG_VERSION":          "16\n",
		"postgresql.conf":     "# a PostgreSQL 16 cluster\n",
		"base/1/1259":         "table data",
		"global/pg_control":   "control",
		"postmaster.opts":     "/usr/lib/postgresql/16/bin/postgres",
		"pg_wal/000000010000": "wal",
	}
	for name, content := range files {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, filepath.Dir(dir))

	_, err := start(context.Background(), Options{Dir: dir}, bundleFS)
	if !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("Start = %v, want ErrVersionMismatch", err)
	}
	for _, want := range []string{"PostgreSQL 16", "ships PostgreSQL 17", "Nothing was changed", "pg_dumpall", "upgrading.html", data} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	after := snapshot(t, filepath.Dir(dir))
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %s -> %s", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

func TestRecoversPostmasterLeftBySIGKILL(t *testing.T) {
	opts := testOptions(t)
	s, _ := startT(t, opts)
	conn := connect(t, s)
	mustExec(t, conn, "CREATE TABLE kept (v text)")
	mustExec(t, conn, "INSERT INTO kept VALUES ('before the kill')")
	conn.Close(context.Background())

	// SIGKILL the supervisor: PostgreSQL is orphaned and keeps running.
	if err := s.sup.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.Wait():
		if err == nil {
			t.Error("Wait = nil after the supervisor was killed")
		} else {
			t.Logf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not report the killed supervisor")
	}
	stale := s.pid
	if !alive(stale) || !postgresIn(stale, filepath.Join(opts.Dir, "cluster", "data")) {
		t.Fatalf("expected the orphaned postmaster %d to run", stale)
	}

	s2, elapsed := startT(t, opts)
	t.Logf("start over a stale postmaster: %v", elapsed)
	if alive(stale) {
		t.Errorf("stale postmaster %d still runs", stale)
	}
	if v := queryString(t, connect(t, s2), "SELECT v FROM kept"); v != "before the kill" {
		t.Errorf("after recovery: %q", v)
	}
	if err := s2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop of the first server: %v", err)
	}
}

// The appliance killed with SIGKILL: the supervisor gets its parent-death
// signal and stops PostgreSQL cleanly.
func TestApplianceKilledStopsPostgres(t *testing.T) {
	opts := testOptions(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe, "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1", "PGEMBED_TEST_DIR="+opts.Dir)
	helper.Stderr = t.Output()
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	var info struct {
		URL string
		PID int
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	conn, err := pgx.Connect(context.Background(), info.URL)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "CREATE TABLE kept (v text)")
	mustExec(t, conn, "INSERT INTO kept VALUES ('committed before kill -9')")
	conn.Close(context.Background())

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	pidFile := filepath.Join(opts.Dir, "cluster", "data", "postmaster.pid")
	deadline := time.Now().Add(20 * time.Second)
	for alive(info.PID) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(info.PID) {
		t.Fatalf("postmaster %d still runs after the appliance was killed", info.PID)
	}
	// A clean shutdown removes the lock file.
	if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("postmaster.pid left behind (no clean shutdown): %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(opts.Dir, "postgres.log"))
	if !strings.Contains(string(log), "database system is shut down") {
		t.Errorf("postgres.log shows no clean shutdown:\n%s", log)
	}

	s, _ := startT(t, opts)
	if v := queryString(t, connect(t, s), "SELECT v FROM kept"); v != "committed before kill -9" {
		t.Errorf("after restart: %q", v)
	}
}

func TestMissingBinaries(t *testing.T) {
	dir := testDir(t)
	_, err := start(context.Background(), Options{Dir: dir}, fstest.MapFS{})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start without bundle = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"make bundle", "--pg-binaries", "--database-url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	missing := filepath.Join(dir, "no-such-postgres")
	_, err = start(context.Background(), Options{Dir: dir, BinariesDir: missing}, fstest.MapFS{})
	if err == nil || !strings.Contains(err.Error(), "--pg-binaries "+missing) || !strings.Contains(err.Error(), "bin/") {
		t.Fatalf("Start with a missing --pg-binaries = %v", err)
	}
}

func TestRootNeedsReachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs PostgreSQL as another user")
	}
	closed := filepath.Join(filepath.Dir(testDir(t)), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := start(context.Background(), Options{Dir: filepath.Join(closed, "postgres")}, fstest.MapFS{})
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+closed) || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("Start under a closed directory = %v", err)
	}
}

// A first start killed during initdb leaves a partial cluster and the
// marker; the next start creates the cluster again.
func TestInterruptedFirstStart(t *testing.T) {
	opts := testOptions(t)
	data := filepath.Join(opts.Dir, "cluster", "data")
	if err := os.MkdirAll(filepath.Join(data, "base"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		filepath.Join(data, "PG_VERSION"):                  MajorVersion + "\n",
		filepath.Join(opts.Dir, "cluster", "initialising"): "",
	} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := startT(t, opts)
	if v := queryString(t, connect(t, s), "SELECT current_database()"); v != "causality" {
		t.Errorf("database = %s", v)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "cluster", "initialising")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker left after a complete first start: %v", err)
	}
}
