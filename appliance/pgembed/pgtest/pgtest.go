// Package pgtest gives the tests of a package one embedded PostgreSQL, started by the first
// test that needs it (starting one costs seconds), and an empty database per test.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDatabase(t)
//		...
//	}
//
// Tests are skipped, with a message saying how to fix it, when there is no PostgreSQL to
// run: no bundle in the binary and no CAUSALITY_PG_BINARIES.
package pgtest

import (
	"context"
	"errors"
	"fmt"
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
)

// Main runs the tests of a package. It must be the package's TestMain: the embedded
// PostgreSQL re-executes the test binary as its supervisor, and the server is stopped after.
func Main(m *testing.M) {
	if pgembed.IsSupervisor() {
		os.Exit(pgembed.RunSupervisor())
	}
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

var shared server

type server struct {
	once    sync.Once
	srv     *pgembed.Server
	dir     string
	url     string // the server's own database, for CREATE DATABASE
	skip    string // why there is no PostgreSQL to test with
	err     error
	counter atomic.Int64
}

func (p *server) start() {
	dir, err := os.MkdirTemp("", "causality-pgtest-")
	if err != nil {
		p.err = err
		return
	}
	p.dir = dir
	// MkdirTemp makes 0700; PostgreSQL runs as an unprivileged account when tests run as root.
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

func (p *server) stop() {
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

// NewDatabase creates an empty database for the test and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	shared.once.Do(shared.start)
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	name := fmt.Sprintf("t%d_%s", shared.counter.Add(1), nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	name = name[:min(len(name), 63)]
	conn := Connect(t, shared.url)
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(shared.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Connect opens a plain connection, closed when the test ends.
func Connect(t testing.TB, dbURL string) *pgx.Conn {
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

// Context ends with the test, and after 30 seconds at most.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
