package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func openTestBus(t *testing.T, dedup time.Duration) *Bus {
	t.Helper()
	b, err := Open(context.Background(), Options{
		StoreDir: t.TempDir(), DedupWindow: dedup, MaxAge: time.Hour, MaxBytes: 64 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func msgs(prefix string, n int) []Message {
	out := make([]Message, n)
	for i := range out {
		out[i] = Message{Subject: "events.shop.screen.view", Data: []byte("x"), MsgID: fmt.Sprintf("%s-%d", prefix, i), ReceivedMs: 1}
	}
	return out
}

func TestPublishAcksAndDedups(t *testing.T) {
	b := openTestBus(t, time.Minute)
	ctx := context.Background()
	res, err := b.Publish(ctx, msgs("a", 50))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Duplicate || r.Sequence == 0 {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	res, _ = b.Publish(ctx, msgs("a", 50))
	for i, r := range res {
		if !r.Duplicate {
			t.Fatalf("repeat %d not reported duplicate: %+v", i, r)
		}
	}
	st, err := b.State(ctx)
	if err != nil || st.Messages != 50 {
		t.Fatalf("stream holds %d messages (err %v), want 50", st.Messages, err)
	}
}

func TestPublishToFullStreamIsErrFull(t *testing.T) {
	b := openTestBus(t, time.Minute)
	big := make([]byte, 512<<10)
	var full error
	for i := 0; i < 200 && full == nil; i++ {
		res, err := b.Publish(context.Background(), []Message{{Subject: "events.a.b.c", Data: big, MsgID: fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		full = res[0].Err
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("a full stream gave %v, want ErrFull", full)
	}
}

func TestDedupCapWindow(t *testing.T) {
	d := &DedupCap{MaxIDs: 1_000_000, Configured: 2 * time.Minute, MinWindow: 10 * time.Second}
	tests := []struct {
		rate float64
		want time.Duration
	}{
		{0, 2 * time.Minute},          // no estimate yet
		{5000, 2 * time.Minute},       // 600k ids fit
		{8333.3, 2 * time.Minute},     // just fits
		{8334, 119 * time.Second},     // just does not
		{10000, 100 * time.Second},    // 1M / 10k
		{60000, 16 * time.Second},     // 16.6s, truncated to whole seconds
		{100000, 10 * time.Second},    // exactly the floor
		{1_000_000, 10 * time.Second}, // never below the floor
	}
	for _, tt := range tests {
		if got := d.window(tt.rate); got != tt.want {
			t.Errorf("window(%v) = %v, want %v", tt.rate, got, tt.want)
		}
	}
}

func TestDedupCapShortensAndRestoresTheLiveWindow(t *testing.T) {
	b := openTestBus(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan time.Duration, 16)
	d := &DedupCap{Bus: b, MaxIDs: 100, Configured: time.Minute, MinWindow: time.Second, Every: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnChange: func(w time.Duration) { changes <- w }}
	go d.Run(ctx)
	if w := <-changes; w != time.Minute {
		t.Fatalf("first window %v", w)
	}
	// About 1000 events a second: 100 ids allow a window of well under a minute.
	for i := 0; i < 10; i++ {
		if _, err := b.Publish(ctx, msgs(fmt.Sprint("burst", i), 200)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var shortened time.Duration
	select {
	case shortened = <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("window never shortened under load")
	}
	cfg, err := b.streamConfig(ctx)
	if err != nil || shortened >= time.Minute || cfg.Duplicates != shortened {
		t.Fatalf("shortened to %v, stream says %v (err %v)", shortened, cfg.Duplicates, err)
	}
	// It may shorten further while the rate estimate catches up, then must come back.
	deadline := time.After(30 * time.Second)
	for w := shortened; w != time.Minute; {
		select {
		case w = <-changes:
		case <-deadline:
			t.Fatalf("window stuck at %v after the load stopped", w)
		}
	}
}

// BenchmarkPublish is the bare JetStream baseline of BenchmarkIngestBatch in appliance/:
// 100-message batches of ~380-byte events with dedup ids, pipelined, waiting for acks.
//
//	go test -run '^$' -bench Publish -benchtime 20000x ./appliance/bus
func BenchmarkPublish(b *testing.B) {
	bus, err := Open(context.Background(), Options{
		StoreDir: b.TempDir(), DedupWindow: 2 * time.Minute, MaxAge: time.Hour, MaxBytes: 8 << 30,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	data := make([]byte, 380)
	var batchNo atomic.Int64
	const perBatch = 100
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		msgs := make([]Message, perBatch)
		for pb.Next() {
			n := batchNo.Add(1)
			for i := range msgs {
				msgs[i] = Message{Subject: "events.bench.screen.view", Data: data, MsgID: fmt.Sprintf("%016x%016x", n, i), ReceivedMs: 1}
			}
			if _, err := bus.Publish(context.Background(), msgs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/time.Since(start).Seconds(), "events/s")
}

// streamConfig reads the live stream config, to see the window DedupCap set.
func (b *Bus) streamConfig(ctx context.Context) (jetstream.StreamConfig, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return info.Config, nil
}
