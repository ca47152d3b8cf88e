package store

import (
	"context"
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

// Two appliances sharing a database: while one holds the lock, the
// other's attempt does not run; afterwards it does.
func TestWithLockExcludesOtherSessions(t *testing.T) {
	t.Parallel()
	a, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	b, err := Open(ctx, dbURL, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ran, err := a.WithLock(ctx, "compaction", func(ctx context.Context) error {
		inner, err := b.WithLock(ctx, "compaction", func(context.Context) error {
			t.Error("second holder ran while the first held the lock")
			return nil
		})
		if err != nil || inner {
			t.Errorf("second WithLock = %v, %v; want false, nil", inner, err)
		}
		other, err := b.WithLock(ctx, "retention", func(context.Context) error { return nil })
		if err != nil || !other {
			t.Errorf("a lock of another name = %v, %v; want true", other, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("first WithLock = %v, %v", ran, err)
	}
	ran, err = b.WithLock(ctx, "compaction", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("after release WithLock = %v, %v; want true", ran, err)
	}
}
