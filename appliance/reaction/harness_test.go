package reaction_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/reaction"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// The tests share one embedded PostgreSQL; each gets a database of its own.
func TestMain(m *testing.M) { pgtest.Main(m) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// env is a real stream and a real configuration database, with an engine and a
// dispatcher started on demand.
type env struct {
	t     testing.TB
	ctx   context.Context
	bus   *bus.Bus
	store *store.Store
	expr  *expr.Env
	clock *fakeClock
	m     *reaction.Metrics
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := pgtest.Context(t)
	s, err := store.Open(ctx, pgtest.NewDatabase(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	b, err := bus.Open(ctx, bus.Options{
		StoreDir: t.TempDir(), DedupWindow: time.Minute, MaxAge: time.Hour, MaxBytes: 1 << 30,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	x, err := expr.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, bus: b, store: s, expr: x, clock: newFakeClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)),
		m: reaction.NewMetrics(prometheus.NewRegistry())}
}

// running is a started part; stop ends it and waits.
type running struct {
	stop func()
}

// startEngine runs an engine on the "reaction" consumer, stopped at the end of the test.
func (e *env) startEngine(wake func()) (*reaction.Engine, *running) {
	e.t.Helper()
	cons, err := e.bus.EnsureConsumer(e.ctx, reaction.ConsumerConfig(bus.ReactionConsumer))
	if err != nil {
		e.t.Fatal(err)
	}
	eng := reaction.NewEngine(cons, e.bus.Conn(), e.store, e.expr, reaction.Options{
		Clock: e.clock, TickEvery: 20 * time.Millisecond, SaveEvery: 100 * time.Millisecond, ReloadEvery: time.Hour,
	}, e.m, wake, testLogger(e.t))
	return eng, e.run(eng.Run)
}

func (e *env) startDispatcher(opts reaction.DispatchOptions) (*reaction.Dispatcher, *running) {
	e.t.Helper()
	opts.AllowPrivate = true
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	opts.Jitter = -1 // none: the tests time retries
	d := reaction.NewDispatcher(e.store, opts, e.m, testLogger(e.t))
	return d, e.run(d.Run)
}

func (e *env) run(fn func(context.Context)) *running {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	var once sync.Once
	r := &running{stop: func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				e.t.Error("a reaction part did not stop within 30s")
			}
		})
	}}
	e.t.Cleanup(r.stop)
	return r
}

// publish stores events as ingest does.
func (e *env) publish(evs ...*causalityv1.EventEnvelope) {
	e.t.Helper()
	msgs := make([]bus.Message, len(evs))
	for i, ev := range evs {
		if ev.Id == "" {
			ev.Id = uuid.Must(uuid.NewV7()).String()
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		msgs[i] = bus.Message{Subject: event.Subject(ev), Data: data, MsgID: ev.Id, ReceivedMs: time.Now().UnixMilli()}
	}
	res, err := e.bus.Publish(e.ctx, msgs)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Duplicate {
			e.t.Fatalf("publish %d: err %v, duplicate %v", i, r.Err, r.Duplicate)
		}
	}
}

// drained waits until the engine has acknowledged every event in the stream.
func (e *env) drained() {
	e.t.Helper()
	eventually(e.t, 5*time.Minute, "the reaction consumer to catch up", func() bool {
		c, err := e.bus.JetStream().Consumer(e.ctx, bus.StreamName, bus.ReactionConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(e.ctx)
		if err != nil {
			return false
		}
		st, err := e.bus.JetStream().Stream(e.ctx, bus.StreamName)
		if err != nil {
			return false
		}
		si, err := st.Info(e.ctx)
		// The ack floor at the stream's last event: everything before it was evaluated.
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= si.State.LastSeq
	})
}

func (e *env) webhook(url string) (uuid.UUID, string) {
	e.t.Helper()
	secret, err := webhook.NewSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := e.store.CreateWebhook(e.ctx, store.WebhookInput{Name: "receiver", URL: url, Enabled: true}, secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return w.ID, secret
}

func (e *env) rule(in store.RuleInput) uuid.UUID {
	e.t.Helper()
	if in.Name == "" {
		in.Name = "test rule"
	}
	in.Enabled = true
	r, err := e.store.CreateRule(e.ctx, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

func (e *env) detector(in store.DetectorInput) uuid.UUID {
	e.t.Helper()
	if in.Name == "" {
		in.Name = "test detector"
	}
	in.Enabled = true
	d, err := e.store.CreateDetector(e.ctx, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.ID
}

func (e *env) deliveries(hook uuid.UUID) []store.Delivery {
	e.t.Helper()
	ds, err := e.store.ListDeliveries(e.ctx, store.DeliveryFilter{WebhookID: &hook, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func eventually(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeClock is the detectors' time, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver is a real webhook endpoint that records what it gets and answers as told.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	answer   func(n int) int // status for the n-th request (1-based)
	delay    time.Duration
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newReceiver(t testing.TB, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{header: req.Header.Clone(), body: body, at: time.Now()})
		n, delay := len(r.requests), r.delay
		r.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		code := http.StatusOK
		if r.answer != nil {
			code = r.answer(n)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("answer from the test receiver"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// purchase is a purchase_complete event of app for total cents.
func purchase(app string, total int64) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{AppId: app, DeviceId: "device-1", TimestampMs: time.Now().UnixMilli(),
		Payload: &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{
			OrderId: "o-1", TotalCents: total, Currency: "EUR"}}}
}

func screenView(app, screen string) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{AppId: app, DeviceId: "device-1", TimestampMs: time.Now().UnixMilli(),
		Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: screen}}}
}

// levelUp is a custom event "level_up" with the int parameter level.
func levelUp(app string, level int64) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{AppId: app, DeviceId: "device-1", TimestampMs: time.Now().UnixMilli(),
		Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
			EventName: "level_up", IntParams: map[string]int64{"level": level}}}}
}
