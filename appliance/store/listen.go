package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Listen calls notify for every notification on channel until ctx ends or the connection
// breaks (then it returns the error; the caller decides when to listen again).
//
// ready, when not nil, is called once the LISTEN is in place. A change committed before that
// moment is never announced to this listener, so a caller that reloads in ready misses
// nothing: not at its start, nor across a reconnection.
func (s *Store) Listen(ctx context.Context, channel string, ready, notify func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *") //nolint:errcheck // the connection goes back to the pool either way
	if ready != nil {
		ready()
	}
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("listen %s: %w", channel, err)
		}
		notify()
	}
}
