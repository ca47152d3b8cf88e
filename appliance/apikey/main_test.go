package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/causality-io/causality/appliance/pgembed"
	"github.com/causality-io/causality/appliance/store"
)

// One embedded PostgreSQL serves the whole package, started by the first test that needs
// it (starting one costs seconds); each test gets a database of its own.

func TestMain(m *testing.M) {
	if pgembed.IsSupervisor() {
		os.Exit(pgembed.RunSupervisor())
	}
	code := m.Run()
	testPG.stop()
	os.Exit(code)
}

var testPG sharedPostgres

type sharedPostgres struct {
	once    sync.Once
	srv     *pgembed.Server
	dir     string
	url     string // the server's own database, for CREATE DATABASE
	skip    string // why there is no PostgreSQL to test with
	err     error
	counter atomic.Int64
}

func (p *sharedPostgres) start() {
	dir, err := os.MkdirTemp("", "causality-apikey-test-")
	if err != nil {
		p.err = err
		return
	}
	p.dir = dir
	// MkdirTemp makes 0700; PostgreSQL runs as nobody when the tests run as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		p.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgembed.Start(ctx, pgembed.Options{
		Dir:         filepath.Join(dir, "postgres"),
		BinariesDir: os.Getenv("CAUSALITY_PG_BINARIES"),
	})
	switch {
	case errors.Is(err, pgembed.ErrNoBinaries):
		p.skip = "no PostgreSQL to test with: run `make bundle` (or set CAUSALITY_PG_BINARIES to a PostgreSQL " +
			pgembed.MajorVersion + " directory with bin/, lib/, share/)"
	case err != nil:
		p.err = fmt.Errorf("start embedded PostgreSQL (files kept in %s): %w", dir, err)
		p.dir = "" // keep them for a look
	default:
		p.srv, p.url = srv, srv.URL()
	}
}

func (p *sharedPostgres) stop() {
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.srv.Stop(ctx)
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// newDatabase creates an empty database for the test and returns its URL; the test is
// skipped when there is no PostgreSQL to run.
func newDatabase(t *testing.T) string {
	t.Helper()
	testPG.once.Do(testPG.start)
	if testPG.skip != "" {
		t.Skip(testPG.skip)
	}
	if testPG.err != nil {
		t.Fatal(testPG.err)
	}
	name := fmt.Sprintf("t%d_%s", testPG.counter.Add(1), nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	name = name[:min(len(name), 63)]
	conn := connect(t, testPG.url)
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(testPG.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// connect opens a plain connection, closed when the test ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openStore opens a store on a fresh database, closed when the test ends.
func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	dbURL := newDatabase(t)
	s, err := store.Open(testContext(t), dbURL, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s, dbURL
}

// testContext ends with the test, and after 30 seconds at most.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
