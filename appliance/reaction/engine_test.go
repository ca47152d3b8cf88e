package reaction_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/reaction"
	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
)

// body is a webhook body as a receiver reads it.
type body struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		Rule struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rule"`
		AppID   string `json:"app_id"`
		Anomaly struct {
			ID       string   `json:"id"`
			AppID    string   `json:"app_id"`
			Message  string   `json:"message"`
			Observed *float64 `json:"observed"`
		} `json:"anomaly"`
		Detector struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		} `json:"detector"`
		Event struct {
			ID               string `json:"id"`
			AppID            string `json:"appId"`
			PurchaseComplete struct {
				TotalCents string `json:"totalCents"`
			} `json:"purchaseComplete"`
		} `json:"event"`
	} `json:"data"`
}

func decodeBody(t testing.TB, b []byte) body {
	t.Helper()
	var v body
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("webhook body is not JSON: %v: %s", err, b)
	}
	return v
}

func TestRuleMatchesAreDeliveredSignedAndPublished(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	hook, secret := e.webhook(recv.URL)
	big := e.rule(store.RuleInput{Name: "big purchase", Condition: `event.purchase_complete.total_cents > 100000`,
		WebhookIDs: []uuid.UUID{hook}, Priority: 5})
	// A rule for another app and one for another type never match these events.
	e.rule(store.RuleInput{AppID: ptr("other-app"), WebhookIDs: []uuid.UUID{hook}})
	e.rule(store.RuleInput{EventCategory: ptr("screen"), WebhookIDs: []uuid.UUID{hook}})

	alerts := make(chan *nats.Msg, 16)
	sub, err := e.bus.Conn().ChanSubscribe("alerts.>", alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	d, _ := e.startDispatcher(reaction.DispatchOptions{})
	e.startEngine(d.Wake)
	small, large, huge := purchase("shop", 500), purchase("shop", 250_000), purchase("shop", 100_001)
	e.publish(small, large, huge)
	e.drained()

	eventually(t, 10*time.Second, "two deliveries", func() bool { return len(recv.got()) >= 2 })
	time.Sleep(200 * time.Millisecond) // and no third
	got := recv.got()
	if len(got) != 2 {
		t.Fatalf("receiver got %d calls, want 2", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		if err := webhook.Verify(secret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		b := decodeBody(t, r.body)
		if b.Type != reaction.TypeRuleMatched || b.Data.Rule.ID != big.String() || b.Data.Rule.Name != "big purchase" || b.Data.AppID != "shop" {
			t.Errorf("body: %s", r.body)
		}
		seen[b.Data.Event.ID] = true
		if r.header.Get("webhook-id") == "" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers: %v", r.header)
		}
	}
	if !seen[large.Id] || !seen[huge.Id] || seen[small.Id] {
		t.Errorf("delivered events %v, want %s and %s", seen, large.Id, huge.Id)
	}

	// The same two matches went to NATS subscribers.
	for range 2 {
		select {
		case m := <-alerts:
			want := "alerts.shop." + big.String()
			if m.Subject != want {
				t.Errorf("alert subject %s, want %s", m.Subject, want)
			}
			if b := decodeBody(t, m.Data); b.Type != reaction.TypeRuleMatched {
				t.Errorf("alert body: %s", m.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("alert not published")
		}
	}
	eventually(t, 5*time.Second, "deliveries recorded as succeeded", func() bool {
		ds := e.deliveries(hook)
		for _, d := range ds {
			if d.Status != "succeeded" || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 200 {
				return false
			}
		}
		return len(ds) == 2
	})
}

func TestCustomSubjectAndIntParams(t *testing.T) {
	e := newEnv(t)
	e.rule(store.RuleInput{Condition: `event.custom_event.int_params["level"] >= 10`, PublishSubject: ptr("game.levels")})
	alerts := make(chan *nats.Msg, 16)
	sub, err := e.bus.Conn().ChanSubscribe("game.levels", alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.startEngine(nil)
	low, high := levelUp("game", 3), levelUp("game", 12)
	e.publish(low, high)
	select {
	case m := <-alerts:
		if !strings.Contains(string(m.Data), high.Id) {
			t.Errorf("alert is not about the level 12 event: %s", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert")
	}
	e.drained()
	select {
	case m := <-alerts:
		t.Fatalf("a second alert: %s", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

// An event delivered again (as after a crash between recording and acknowledging) records
// no second delivery and reaches the receiver once.
func TestRedeliveredEventsRecordDeliveriesOnce(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	hook, _ := e.webhook(recv.URL)
	e.rule(store.RuleInput{EventCategory: ptr("commerce"), WebhookIDs: []uuid.UUID{hook}})
	d, _ := e.startDispatcher(reaction.DispatchOptions{})
	_, first := e.startEngine(d.Wake)
	for i := range 20 {
		e.publish(purchase("shop", int64(i)))
	}
	e.drained()
	eventually(t, 10*time.Second, "20 deliveries", func() bool { return len(recv.got()) == 20 })
	first.stop()

	// Replace the consumer with one that starts over: every event comes again, exactly
	// what a lost ack would cause.
	if err := e.bus.JetStream().DeleteConsumer(e.ctx, bus.StreamName, bus.ReactionConsumer); err != nil {
		t.Fatal(err)
	}
	e.startEngine(d.Wake)
	e.drained()
	time.Sleep(300 * time.Millisecond)
	if n := len(e.deliveries(hook)); n != 20 {
		t.Errorf("%d deliveries recorded, want 20", n)
	}
	if n := len(recv.got()); n != 20 {
		t.Errorf("receiver got %d calls, want 20", n)
	}
}

func TestRuleChangesTakeEffectWithinASecond(t *testing.T) {
	e := newEnv(t)
	alerts := make(chan *nats.Msg, 16)
	sub, err := e.bus.Conn().ChanSubscribe("alerts.>", alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	eng, _ := e.startEngine(nil)
	eventually(t, 10*time.Second, "the engine to take its lock", eng.Running)
	time.Sleep(100 * time.Millisecond)

	id := e.rule(store.RuleInput{Condition: `type == "view"`})
	changed := time.Now()
	// Events published until one matches: the first match tells when the rule took effect.
	for {
		e.publish(screenView("web", "home"))
		select {
		case <-alerts:
			if took := time.Since(changed); took > time.Second {
				t.Errorf("the new rule took effect after %v, want within a second", took)
			}
			// Disabling it stops the matches as quickly.
			if _, err := e.store.UpdateRule(e.ctx, id, store.RuleInput{Name: "off", Condition: `type == "view"`, Enabled: false}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			e.drained()
			for len(alerts) > 0 {
				<-alerts
			}
			e.publish(screenView("web", "home"))
			e.drained()
			select {
			case m := <-alerts:
				t.Fatalf("a disabled rule matched: %s", m.Data)
			case <-time.After(200 * time.Millisecond):
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(changed) > 5*time.Second {
			t.Fatal("the new rule never matched")
		}
	}
}

// An event that cannot be decoded is dropped with a log line and does not hold up others.
func TestUndecodableEventIsDropped(t *testing.T) {
	e := newEnv(t)
	e.rule(store.RuleInput{})
	alerts := make(chan *nats.Msg, 16)
	sub, _ := e.bus.Conn().ChanSubscribe("alerts.>", alerts)
	defer sub.Unsubscribe()
	if _, err := e.bus.JetStream().Publish(e.ctx, "events.bad.custom.x", []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	e.publish(screenView("web", "home"))
	e.startEngine(nil)
	select {
	case <-alerts:
	case <-time.After(5 * time.Second):
		t.Fatal("the good event was not evaluated")
	}
	e.drained()
}

// With no rule or detector enabled, the engine only acknowledges: it keeps up, records
// nothing, and does not even decode (so an undecodable event is not its concern).
func TestWithNothingEnabledEventsAreOnlyAcknowledged(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.CreateRule(e.ctx, store.RuleInput{Name: "off", Condition: "true", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bus.JetStream().Publish(e.ctx, "events.bad.custom.x", []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		e.publish(screenView("web", "home"))
	}
	e.startEngine(nil)
	e.drained()
	if got := testutil.ToFloat64(e.m.Events); got != 51 {
		t.Errorf("events counted %v, want 51", got)
	}
	if got := testutil.ToFloat64(e.m.Poison); got != 0 {
		t.Errorf("poison events %v: the idle engine decoded events", got)
	}
	var deliveries int
	if err := e.store.Pool().QueryRow(e.ctx, "SELECT count(*) FROM deliveries").Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if deliveries != 0 {
		t.Errorf("%d deliveries recorded with every rule disabled", deliveries)
	}
}

func ptr[T any](v T) *T { return &v }
