package reaction_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/reaction"
)

// BenchmarkDispatch measures how fast the dispatcher empties the outbox into one local
// receiver: claim, sign, POST, record, with the default 32 workers. Each iteration is one
// delivery; the receiver answers 204 at once.
//
//	go test -run '^$' -bench Dispatch -benchtime 20000x ./appliance/reaction/
func BenchmarkDispatch(b *testing.B) {
	e := newEnv(b)
	recv := newReceiver(b, func(int) int { return http.StatusNoContent })
	hook, _ := e.webhook(recv.URL)
	n := b.N
	if _, err := e.store.Pool().Exec(e.ctx, `INSERT INTO deliveries (id, webhook_id, type, source_key, body)
		SELECT gen_random_uuid(), $1, 'rule.matched', 'bench:' || i, '{"type":"rule.matched","timestamp":"2026-11-27T10:00:00Z","data":{"n":' || i || '}}'
		FROM generate_series(1, $2) AS i`, hook, n); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	_, run := e.startDispatcher(reaction.DispatchOptions{})
	for {
		var left int
		if err := e.store.Pool().QueryRow(e.ctx, `SELECT count(*) FROM deliveries WHERE status <> 'succeeded'`).Scan(&left); err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	run.stop()
	if got := len(recv.got()); got != n {
		b.Fatalf("receiver got %d requests, want %d", got, n)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}
