package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causality-io/causality/appliance/admin"
	"github.com/causality-io/causality/appliance/bus"
)

func TestIngestRate(t *testing.T) {
	t.Parallel()
	var r ingestRate
	r.init(int(sampleKeep/sampleEvery) + 1)
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if rate, span := r.since(t0, 0, sampleEvery); rate != 0 || span != 0 {
		t.Errorf("no samples: %v over %s", rate, span)
	}
	// 10 events a second for the first half hour, then 100 a second.
	count := func(at time.Time) float64 {
		s := at.Sub(t0).Seconds()
		if s <= 1800 {
			return 10 * s
		}
		return 18000 + 100*(s-1800)
	}
	r.add(t0, 0)
	// Shortly after the start, both rates cover what there is.
	now := t0.Add(2 * time.Second)
	if rate, span := r.since(now, count(now), sampleEvery); !near(rate, 10) || span != 2*time.Second {
		t.Errorf("after 2s: now %v over %s, want 10/s over 2s", rate, span)
	}
	// Two hours of samples: the ring keeps the last one.
	for at := t0.Add(sampleEvery); !at.After(t0.Add(2 * time.Hour)); at = at.Add(sampleEvery) {
		r.add(at, count(at))
	}
	now = t0.Add(2*time.Hour + 3*time.Second)
	rate, span := r.since(now, count(now), sampleEvery)
	if !near(rate, 100) || span != 8*time.Second {
		t.Errorf("now: %v over %s, want 100/s over the last 8s", rate, span)
	}
	rate, span = r.since(now, count(now), sampleKeep)
	if !near(rate, 100) || span != time.Hour+3*time.Second {
		t.Errorf("last hour: %v over %s, want 100/s over 1h3s (the oldest sample kept)", rate, span)
	}
	// Half an hour after the change, the hour's average is between the two rates.
	var h ingestRate
	h.init(int(sampleKeep/sampleEvery) + 1)
	for at := t0; !at.After(t0.Add(time.Hour)); at = at.Add(sampleEvery) {
		h.add(at, count(at))
	}
	now = t0.Add(time.Hour)
	if rate, span := h.since(now, count(now), sampleKeep); !near(rate, 55) || span != time.Hour {
		t.Errorf("mixed hour: %v over %s, want 55/s over 1h", rate, span)
	}
	// A counter that went back (a restart cannot do it, but a reset could) never gives a
	// negative rate.
	if rate, _ := h.since(now, 0, sampleEvery); rate != 0 {
		t.Errorf("counter reset: %v/s", rate)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func openTestBus(t *testing.T, maxAge time.Duration) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{
		StoreDir: t.TempDir(), DedupWindow: time.Minute, MaxAge: maxAge, MaxBytes: 1 << 30,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestEventsTodayFromTheStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := openTestBus(t, 48*time.Hour)
	o := &overview{a: &Appliance{bus: b}}
	publish := func(id string) {
		t.Helper()
		res, err := b.Publish(ctx, []bus.Message{{Subject: "events.shop.screen.view", Data: []byte(id), MsgID: id, ReceivedMs: 1}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("publish %s: %v %v", id, err, res[0].Err)
		}
	}
	info := func() *jetstream.StreamInfo {
		t.Helper()
		info, err := o.streamInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	if n, err := o.eventsToday(ctx, info(), time.Now()); n != 0 || err != nil {
		t.Errorf("empty stream: %d today, %v", n, err)
	}
	publish("a")
	publish("b")
	time.Sleep(20 * time.Millisecond)
	between := time.Now()
	time.Sleep(20 * time.Millisecond)
	publish("c")
	publish("d")
	publish("e")

	// The stream's get by start time finds the first event stored after a moment.
	if seq, found, err := o.firstSeqSince(ctx, between); err != nil || !found || seq != 3 {
		t.Errorf("first since the middle: seq %d, found %v, %v; want 3", seq, found, err)
	}
	if _, found, err := o.firstSeqSince(ctx, time.Now().Add(time.Hour)); err != nil || found {
		t.Errorf("first since a later time: found %v, %v", found, err)
	}
	// Everything was stored today (unless the test straddles midnight UTC).
	now := time.Now()
	if n, err := o.eventsToday(ctx, info(), now); err != nil || (now.UTC().Hour() > 0 && n != 5) {
		t.Errorf("today: %d, %v; want 5", n, err)
	}
	// Tomorrow, nothing was stored yet.
	if n, err := o.eventsToday(ctx, info(), now.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("tomorrow: %d, %v; want 0", n, err)
	}
	// A stream that keeps events for less than the day so far cannot know the day's count.
	short := &overview{a: &Appliance{bus: openTestBus(t, time.Minute)}}
	res, err := short.a.bus.Publish(ctx, []bus.Message{{Subject: "events.shop.screen.view", Data: []byte("x"), MsgID: "x", ReceivedMs: 1}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	shortInfo, err := short.streamInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := short.eventsToday(ctx, shortInfo, time.Now().UTC().Truncate(24*time.Hour).Add(2*time.Hour)); n != -1 || err != nil {
		t.Errorf("max age 1m at 02:00: %d, %v; want -1 (unknown)", n, err)
	}
}

func TestLiveEventsSubscribe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := openTestBus(t, time.Hour)
	l := (&Appliance{bus: b}).liveEvents()

	if err := l.Subscribe(ctx, "$JS.API.>", func() {}, func(admin.LiveEvent) {}); err == nil {
		t.Error("a subscription outside the event subjects was accepted")
	}
	got := make(chan admin.LiveEvent, 10)
	subCtx, unsubscribe := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- l.Subscribe(subCtx, "events.shop.>", func() {}, func(e admin.LiveEvent) { got <- e }) }()
	// The subscription is in place once a publish after it arrives; retry until then.
	deadline := time.Now().Add(10 * time.Second)
	var first admin.LiveEvent
	for i := 0; ; i++ {
		id := fmt.Sprintf("warmup-%d", i)
		if res, err := b.Publish(ctx, []bus.Message{{Subject: "events.shop.screen.view", Data: []byte(id), MsgID: id, ReceivedMs: 1700000000123}}); err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		select {
		case first = <-got:
		case <-time.After(50 * time.Millisecond):
		}
		if first.Data != nil || time.Now().After(deadline) {
			break
		}
	}
	if !strings.HasPrefix(string(first.Data), "warmup-") || first.Received.UnixMilli() != 1700000000123 {
		t.Fatalf("first live event: %q received %s", first.Data, first.Received)
	}
	for len(got) > 0 {
		<-got
	}
	// Another app's events are not on the subject; this app's are, as they are stored.
	for _, m := range []bus.Message{
		{Subject: "events.blog.screen.view", Data: []byte("blog"), MsgID: "blog", ReceivedMs: 1},
		{Subject: "events.shop.custom.x", Data: []byte("shop"), MsgID: "shop", ReceivedMs: 1},
	} {
		if res, err := b.Publish(ctx, []bus.Message{m}); err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
	}
	select {
	case e := <-got:
		if string(e.Data) != "shop" {
			t.Errorf("live event %q, want shop", e.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}
	unsubscribe()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("subscribe ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return when its context ended")
	}
}
