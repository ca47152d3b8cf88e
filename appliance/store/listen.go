package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Listen calls notify for every notification on channel until ctx ends or the connection
// breaks (then it returns the error; the caller decides when to listen again).
func (s *Store) Listen(ctx context.Context, channel string, notify func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *") //nolint:errcheck // the connection goes back to the pool either way
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("listen %s: %w", channel, err)
		}
		notify()
	}
}
