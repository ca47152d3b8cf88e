// Package reaction watches the live event stream and tells people: it evaluates rules (CEL
// conditions) and anomaly detectors on every event of the durable consumer "reaction",
// records what they find in Postgres (anomalies, and one outbox row per webhook call), then
// acknowledges the events; a Dispatcher sends the outbox rows as signed webhooks.
//
// Exactly the right deliveries: an event is acknowledged only after its matches are
// committed, and an outbox row is unique per webhook and cause ("rule:<rule>:<event>"), so
// an event redelivered after a crash records nothing twice. Alerts on NATS
// (alerts.<app>.<rule>, anomalies.<app>.<detector>) are published after the commit and
// before the ack: at least once, with a Nats-Msg-Id that lets a JetStream stream capturing
// them drop repeats.
//
// One engine runs at a time across processes sharing a database (a Postgres advisory
// lock), because detectors count events and must see all of them.
package reaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Clock tells the time to the detectors; tests drive it by hand.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Options tune an Engine; zero values take the defaults.
type Options struct {
	BatchSize   int           // most matched events recorded in one transaction; default 500
	MaxDelay    time.Duration // longest a matched event waits for its transaction; default 10ms
	TickEvery   time.Duration // how often detectors close windows without events; default 1s
	SaveEvery   time.Duration // how often detector state is saved; default 5s
	ReloadEvery time.Duration // reload the configuration even without a notification; default 30s
	Clock       Clock         // default the wall clock
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 10 * time.Millisecond
	}
	if o.TickEvery <= 0 {
		o.TickEvery = time.Second
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 5 * time.Second
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
}

// ConsumerConfig is the durable consumer the engine needs. The ack wait covers a batch
// whose commit is retried while Postgres is away: the engine extends it with in-progress
// acks meanwhile.
func ConsumerConfig(durable string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 20_000,
	}
}

// lockName is the advisory lock that makes one engine run at a time.
const lockName = "reaction-engine"

// Engine evaluates rules and detectors on the stream.
type Engine struct {
	cons  jetstream.Consumer
	nc    *nats.Conn
	store *store.Store
	env   *expr.Env
	opts  Options
	log   *slog.Logger
	m     *Metrics
	wake  func() // tells the local dispatcher that deliveries are waiting

	set    *detect.Set
	rules  *ruleSet
	reload chan struct{}

	// The batch being recorded: events held until their records commit.
	held       []jetstream.Msg
	deliveries []outboxRow
	anomalies  []anomalyRow
	alerts     []alert
	firstHeld  time.Time
	firedSince bool // a firing changed detector state since the last save
	unsaved    map[[2]string]detect.SavedState

	scratch   causalityv1.EventEnvelope
	input     *expr.Input
	eventJSON json.RawMessage // of scratch, rendered on first need
	evalLog   rateLog

	mu      sync.Mutex // guards running
	running bool
	lag     cached[float64]
}

// NewEngine builds an engine; Run starts it. wake, when not nil, is called after deliveries
// were recorded.
func NewEngine(cons jetstream.Consumer, nc *nats.Conn, s *store.Store, env *expr.Env, opts Options, m *Metrics, wake func(), log *slog.Logger) *Engine {
	opts.defaults()
	if wake == nil {
		wake = func() {}
	}
	return &Engine{
		cons: cons, nc: nc, store: s, env: env, opts: opts, log: log, m: m, wake: wake,
		input: env.NewInput(nil, "", ""),
		set:   detect.NewSet(), rules: &ruleSet{byKind: map[kindKey]*kindMatch{}}, reload: make(chan struct{}, 1),
	}
}

// Detectors gives read access to live detector state (for the admin API and UI).
func (e *Engine) Detectors() *detect.Set { return e.set }

// DetectorStatus is a detector's live state per app.
func (e *Engine) DetectorStatus(id string) []detect.AppStatus { return e.set.Status(id) }

// Running reports whether this process holds the engine lock and evaluates the stream.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

// Reload asks the engine to reload rules, detectors and webhooks now.
func (e *Engine) Reload() {
	select {
	case e.reload <- struct{}{}:
	default:
	}
}

// Run evaluates the stream until ctx ends, whenever this process holds the engine lock;
// otherwise it waits for it, so that another process's engine can be taken over.
func (e *Engine) Run(ctx context.Context) {
	go e.listen(ctx)
	for ctx.Err() == nil {
		ran, err := e.store.WithLock(ctx, lockName, e.runLocked)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("reaction engine stopped; restarting", "err", err)
		}
		if !ran {
			sleep(ctx, 5*time.Second)
		} else if ctx.Err() == nil {
			sleep(ctx, time.Second)
		}
	}
}

// listen turns configuration changes announced by Postgres into reloads. It also reloads
// each time the LISTEN is in place: a change made before (while the engine started, or while
// the connection was down) was announced to nobody.
func (e *Engine) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.store.Listen(ctx, store.ReactionChannel, e.Reload, e.Reload)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("listening for rule changes; retrying", "err", err)
		sleep(ctx, time.Second)
	}
}

func (e *Engine) setRunning(v bool) {
	e.mu.Lock()
	e.running = v
	e.mu.Unlock()
}

// runLocked is the engine proper, while this process holds the lock.
func (e *Engine) runLocked(ctx context.Context) error {
	e.setRunning(true)
	defer e.setRunning(false)
	if err := e.loadConfig(ctx); err != nil {
		return err
	}
	states, err := e.store.ListDetectorStates(ctx)
	if err != nil {
		return fmt.Errorf("load detector state: %w", err)
	}
	saved := make([]detect.SavedState, len(states))
	for i, s := range states {
		saved[i] = detect.SavedState{DetectorID: s.DetectorID.String(), AppID: s.AppID, State: s.State}
	}
	n := e.set.Restore(saved)
	e.log.Info("reaction engine running", "rules", len(e.rules.rules), "detectors", len(e.rules.detectors), "restored_states", n)

	stopCtx := context.WithoutCancel(ctx)
	defer func() {
		saveCtx, cancel := context.WithTimeout(stopCtx, 5*time.Second)
		defer cancel()
		e.saveState(saveCtx)
	}()

	it, err := e.cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("reaction consumer: %w", err)
	}
	defer it.Stop()
	lastTick, lastSave, lastReload := time.Now(), time.Now(), time.Now()
	for ctx.Err() == nil {
		wait := 100 * time.Millisecond
		if len(e.held) > 0 {
			wait = max(time.Millisecond, e.opts.MaxDelay-time.Since(e.firstHeld))
		}
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		switch {
		case err == nil:
			e.handle(msg)
		case errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return errors.New("reaction consumer: the message iterator closed")
		default:
			e.log.Warn("reaction consumer", "err", err)
			sleep(ctx, 100*time.Millisecond)
		}
		if len(e.held) >= e.opts.BatchSize || (len(e.held) > 0 && (err != nil || time.Since(e.firstHeld) >= e.opts.MaxDelay)) {
			e.commit(ctx)
		}
		if time.Since(lastTick) >= e.opts.TickEvery {
			lastTick = time.Now()
			e.tick(ctx)
		}
		select {
		case <-e.reload:
			lastReload = time.Time{}
		default:
		}
		if time.Since(lastReload) >= e.opts.ReloadEvery {
			lastReload = time.Now()
			if err := e.loadConfig(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("reload rules and detectors; keeping the current ones", "err", err)
			}
		}
		if e.firedSince || time.Since(lastSave) >= e.opts.SaveEvery {
			lastSave = time.Now()
			e.saveState(ctx)
		}
	}
	// Evaluate what was already pulled (left in the iterator it would come back only after
	// the ack wait) and record what is held; what cannot be recorded in time comes back
	// after the ack wait.
	finalCtx, cancel := context.WithTimeout(stopCtx, 10*time.Second)
	defer cancel()
	it.Drain()
	for finalCtx.Err() == nil {
		// A drained iterator ends by itself; the wait only matters on a starved machine.
		msg, err := it.Next(jetstream.NextMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		e.handle(msg)
	}
	e.commit(finalCtx)
	return nil
}

// loadConfig compiles the enabled rules and detectors and gives the detectors their new
// settings.
func (e *Engine) loadConfig(ctx context.Context) error {
	rules, err := e.store.ListRules(ctx)
	if err != nil {
		return err
	}
	detectors, err := e.store.ListDetectors(ctx)
	if err != nil {
		return err
	}
	hooks, err := e.store.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	rs := compileRuleSet(e.env, rules, detectors, hooks, e.log)
	e.set.Configure(rs.specs)
	e.rules = rs
	e.m.Rules.Set(float64(len(rs.rules)))
	e.m.Detectors.Set(float64(len(rs.detectors)))
	return nil
}

// handle evaluates one event. An event that matched nothing is acknowledged at once; one
// with records waits for their commit.
func (e *Engine) handle(msg jetstream.Msg) {
	if e.rules.empty() {
		// Nothing is enabled, so nothing can match: skip decoding, most of the cost of an
		// event. A fresh install, or one used only for its lake, pays only for the ack.
		e.m.Events.Inc()
		e.ack(msg)
		return
	}
	recorded, err := e.evaluate(msg.Data(), func() time.Time { return receivedAt(msg) })
	if err != nil {
		e.poison(msg, err)
		return
	}
	if !recorded {
		e.ack(msg)
		return
	}
	if len(e.held) == 0 {
		e.firstHeld = time.Now()
	}
	e.held = append(e.held, msg)
}

// evaluate runs the rules and detectors on one stored event and queues what they found for
// the next commit; it reports whether anything was queued. received is asked only when a
// rule matches. An error means the event can never be evaluated.
func (e *Engine) evaluate(data []byte, received func() time.Time) (bool, error) {
	e.m.Events.Inc()
	ev := &e.scratch
	proto.Reset(ev)
	if err := proto.Unmarshal(data, ev); err != nil {
		return false, fmt.Errorf("undecodable event: %w", err)
	}
	category, typ, ok := event.Kind(ev)
	if !ok {
		return false, errors.New("event without payload")
	}
	in := e.input
	in.Reset(ev, category, typ)
	e.eventJSON = nil
	km := e.rules.forKind(category, typ)
	recorded := false
	for _, r := range km.rules {
		if !r.filter.admitsApp(ev.AppId) {
			continue
		}
		if r.cond != nil {
			ok, err := r.cond.Match(in)
			if err != nil {
				e.evalFailed("rule", r.id, r.name, ev, err)
				continue
			}
			if !ok {
				continue
			}
		}
		e.m.RuleMatches.Inc()
		e.ruleMatched(r, ev, received())
		recorded = true
	}
	var now time.Time
	for _, d := range km.detectors {
		if !d.filter.admitsApp(ev.AppId) {
			continue
		}
		if d.cond != nil {
			ok, err := d.cond.Match(in)
			if err != nil {
				e.evalFailed("detector", d.id, d.name, ev, err)
				continue
			}
			if !ok {
				continue
			}
		}
		var value float64
		if d.value != nil {
			v, err := d.value.Value(in)
			if err != nil {
				e.evalFailed("detector", d.id, d.name, ev, err)
				continue
			}
			value = v
		}
		if now.IsZero() {
			now = e.opts.Clock.Now()
		}
		if f, fired := e.set.Observe(d.idText, ev.AppId, now, ev.Id, value); fired {
			e.fired(d, f, ev)
			recorded = true
		}
	}
	return recorded, nil
}

// receivedAt is when ingest accepted the event, from the header it stamps.
func receivedAt(msg jetstream.Msg) time.Time {
	if ms, err := strconv.ParseInt(msg.Headers().Get(bus.HeaderReceivedAt), 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	if md, err := msg.Metadata(); err == nil {
		return md.Timestamp.UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) ruleMatched(r *rule, ev *causalityv1.EventEnvelope, at time.Time) {
	body := appendRuleMatched(nil, r, ev.AppId, at, e.renderEvent(ev))
	source := "rule:" + r.id.String() + ":" + ev.Id
	for _, hook := range r.webhooks {
		e.deliveries = append(e.deliveries, outboxRow{
			webhook: hook, typ: TypeRuleMatched, source: source, rule: r.id, app: ev.AppId, event: ev.Id,
			body: body, priority: r.priority,
		})
	}
	subject := r.subject
	if subject == "" {
		subject = "alerts." + ev.AppId + "." + r.id.String()
	}
	e.alerts = append(e.alerts, alert{subject: subject, msgID: source, body: body})
}

// fired turns a detector's firing into an anomaly record, its deliveries and its alert.
// ev is nil for firings of the timer.
func (e *Engine) fired(d *detector, f detect.Firing, ev *causalityv1.EventEnvelope) {
	e.m.Anomalies.Inc()
	e.firedSince = true
	id, _ := uuid.NewV7()
	a := anomalyRow{id: id, detector: d.id, app: f.AppID, kind: f.Kind, dedup: f.DedupKey, at: f.At.UTC(),
		message: f.Message, observed: f.Observed, expected: f.Expected, details: f.Details, event: f.EventID}
	data := anomalyData{
		Anomaly: anomalyView{ID: id, AppID: f.AppID, FiredAt: a.at, Message: f.Message,
			Observed: finite(f.Observed), Expected: finite(f.Expected), Details: f.Details},
		Detector: detectorRef{ID: d.id, Name: d.name, Kind: d.kind},
	}
	if ev != nil {
		data.Event = e.renderEvent(ev)
	}
	a.body = marshalBody(envelope{Type: TypeAnomalyDetected, Timestamp: a.at, Data: data})
	a.webhooks = d.webhooks
	a.subject = d.subject
	if a.subject == "" {
		a.subject = "anomalies." + f.AppID + "." + d.idText
	}
	e.anomalies = append(e.anomalies, a)
}

// renderEvent is the JSON of the event being evaluated, rendered once however many rules
// match it.
func (e *Engine) renderEvent(ev *causalityv1.EventEnvelope) json.RawMessage {
	if e.eventJSON == nil {
		e.eventJSON = eventJSON(ev)
	}
	return e.eventJSON
}

// tick lets detectors close windows that no event closed: the drop to zero.
func (e *Engine) tick(ctx context.Context) {
	firings := e.set.Tick(e.opts.Clock.Now())
	if len(firings) == 0 {
		return
	}
	byID := make(map[string]*detector, len(e.rules.detectors))
	for _, d := range e.rules.detectors {
		byID[d.idText] = d
	}
	for _, f := range firings {
		if d := byID[f.DetectorID]; d != nil {
			e.fired(d, f, nil)
		}
	}
	e.commit(ctx)
}

func (e *Engine) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		e.log.Warn("ack event", "err", err)
	}
}

// poison drops an event that can never be evaluated, saying so once per event.
func (e *Engine) poison(msg jetstream.Msg, err error) {
	e.m.Poison.Inc()
	e.log.Error("event dropped by the reaction engine", "err", err)
	if err := msg.Term(); err != nil {
		e.log.Warn("terminate event", "err", err)
	}
}

// evalFailed counts an evaluation error (a missing map key, a division by zero); it means
// no match. The log says so at most once a minute per rule or detector.
func (e *Engine) evalFailed(what string, id uuid.UUID, name string, ev *causalityv1.EventEnvelope, err error) {
	e.m.EvalErrors.WithLabelValues(what).Inc()
	if e.evalLog.allow(id, time.Minute) {
		e.log.Warn(what+" evaluation failed; counted as no match", what+"_id", id, what, name, "event_id", ev.Id, "err", err)
	}
}

// saveState writes detector state that changed.
func (e *Engine) saveState(ctx context.Context) {
	e.firedSince = false
	dirty := e.set.Dirty()
	// States a failed save left behind go with this one, unless newer ones replace them.
	for _, s := range dirty {
		if e.unsaved == nil {
			e.unsaved = make(map[[2]string]detect.SavedState)
		}
		e.unsaved[[2]string{s.DetectorID, s.AppID}] = s
	}
	if len(e.unsaved) == 0 {
		return
	}
	states := make([]store.DetectorState, 0, len(e.unsaved))
	for _, s := range e.unsaved {
		id, err := uuid.Parse(s.DetectorID)
		if err != nil {
			continue
		}
		states = append(states, store.DetectorState{DetectorID: id, AppID: s.AppID, State: s.State})
	}
	if err := e.store.SaveDetectorStates(ctx, states); err != nil {
		e.log.Warn("save detector state; kept in memory and saved later", "err", err)
		return
	}
	clear(e.unsaved)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rateLog allows a log line per key at most once per interval.
type rateLog struct {
	last map[uuid.UUID]time.Time
}

func (r *rateLog) allow(key uuid.UUID, every time.Duration) bool {
	if r.last == nil {
		r.last = make(map[uuid.UUID]time.Time)
	}
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < every {
		return false
	}
	if len(r.last) > 10_000 {
		clear(r.last)
	}
	r.last[key] = now
	return true
}
