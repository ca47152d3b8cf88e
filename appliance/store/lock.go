package store

import (
	"context"
	"fmt"
	"hash/fnv"
)

// WithLock runs fn while holding the session advisory lock called name,
// if no other session (another appliance sharing the database) holds it;
// it reports whether fn ran. Housekeeping that must run in one process at
// a time across a scale-out (lake compaction) is guarded this way. The
// lock goes with the connection, so a process that dies releases it.
func (s *Store) WithLock(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	h := fnv.New64a()
	h.Write([]byte("causality:" + name))
	key := int64(h.Sum64())
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	if !got {
		return false, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck // released with the session anyway
	return true, fn(ctx)
}
