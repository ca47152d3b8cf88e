package admin

import (
	"log/slog"
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/store"
)

// The tests share one embedded PostgreSQL; each gets a database of its own.
func TestMain(m *testing.M) { pgtest.Main(m) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openStore opens a store on a fresh database, closed when the test ends.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(pgtest.Context(t), pgtest.NewDatabase(t), testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
