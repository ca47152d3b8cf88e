package reaction

import (
	"context"
)

// Lag is the number of events in the stream the engine has not evaluated and recorded
// yet: waiting for delivery plus delivered and unacknowledged. It shares the consumer-lag
// gauge's cache, so the consumer is asked at most once a second.
func (e *Engine) Lag(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	lag, err := e.lag.get(func(ctx context.Context) (float64, error) {
		info, err := e.cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		return float64(info.NumPending + uint64(info.NumAckPending)), nil
	})
	return uint64(lag), err
}

// OutboxCounts are the deliveries not yet sent, by status.
type OutboxCounts struct {
	Pending  int64 // not tried yet
	Retrying int64 // failed, will be tried again
	Dead     int64 // out of attempts
}

// Outbox counts the deliveries waiting to be sent or retried, and the dead ones. It shares
// the outbox gauges' cache, so the database is asked at most once a second.
func (d *Dispatcher) Outbox(ctx context.Context) (OutboxCounts, error) {
	if err := ctx.Err(); err != nil {
		return OutboxCounts{}, err
	}
	counts, err := d.outbox.get(func(ctx context.Context) (map[string]float64, error) {
		rows, err := d.store.Pool().Query(ctx, `SELECT status, count(*) FROM deliveries WHERE status <> 'succeeded' GROUP BY status`)
		if err != nil {
			return nil, err
		}
		m := map[string]float64{}
		for rows.Next() {
			var s string
			var n int64
			if err := rows.Scan(&s, &n); err != nil {
				return nil, err
			}
			m[s] = float64(n)
		}
		return m, rows.Err()
	})
	return OutboxCounts{Pending: int64(counts["pending"]), Retrying: int64(counts["retrying"]), Dead: int64(counts["dead"])}, err
}
