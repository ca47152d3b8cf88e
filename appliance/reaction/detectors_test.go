package reaction_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/causality-io/causality/appliance/reaction"
	"github.com/causality-io/causality/appliance/store"
)

func (e *env) anomalies(detector uuid.UUID) []store.Anomaly {
	e.t.Helper()
	as, err := e.store.ListAnomalies(e.ctx, store.AnomalyFilter{DetectorID: &detector, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

// The baseline detector notices that events stopped although no event says so: the timer
// closes empty intervals. Time is the test's clock.
func TestBaselineFindsTheDropToZero(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	hook, _ := e.webhook(recv.URL)
	det := e.detector(store.DetectorInput{
		Name: "checkout traffic", EventCategory: ptr("commerce"), Kind: "baseline",
		Config:          json.RawMessage(`{"interval_seconds": 60, "warmup_intervals": 3, "history_intervals": 10, "sensitivity": 3}`),
		CooldownSeconds: 3600, WebhookIDs: []uuid.UUID{hook},
	})
	found := make(chan *nats.Msg, 4)
	sub, err := e.bus.Conn().ChanSubscribe("anomalies.>", found)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	d, _ := e.startDispatcher(reaction.DispatchOptions{})
	eng, _ := e.startEngine(d.Wake)

	// Six minutes of steady traffic: 20 purchases a minute.
	for range 6 {
		for i := range 20 {
			e.publish(purchase("shop", int64(100+i)))
		}
		eventually(t, 30*time.Second, "the engine to count the minute's events", func() bool {
			st := eng.Detectors().Status(det.String())
			return len(st) == 1 && st[0].WindowCount == 20
		})
		e.clock.Advance(time.Minute)
		time.Sleep(60 * time.Millisecond) // a few ticks close the interval
	}
	if as := e.anomalies(det); len(as) != 0 {
		t.Fatalf("steady traffic fired: %+v", as)
	}

	// Then nothing at all, and only time passes.
	e.clock.Advance(time.Minute)
	eventually(t, 5*time.Second, "the drop to be recorded", func() bool { return len(e.anomalies(det)) == 1 })
	a := e.anomalies(det)[0]
	if a.AppID != "shop" || a.Kind != "baseline" || a.Observed == nil || *a.Observed != 0 || a.EventID != nil {
		t.Errorf("anomaly: %+v", a)
	}
	if a.Expected == nil || *a.Expected < 15 {
		t.Errorf("expected %v, want the usual ~20 a minute", a.Expected)
	}
	select {
	case m := <-found:
		if m.Subject != "anomalies.shop."+det.String() {
			t.Errorf("published on %s", m.Subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the anomaly was not published")
	}
	eventually(t, 5*time.Second, "the anomaly webhook", func() bool { return len(recv.got()) == 1 })
	b := decodeBody(t, recv.got()[0].body)
	if b.Type != reaction.TypeAnomalyDetected || b.Data.Detector.ID != det.String() || b.Data.Anomaly.AppID != "shop" || b.Data.Anomaly.Message == "" {
		t.Errorf("anomaly body: %s", recv.got()[0].body)
	}

	// The cooldown holds back the next empty minutes.
	for range 3 {
		e.clock.Advance(time.Minute)
		time.Sleep(60 * time.Millisecond)
	}
	if n := len(e.anomalies(det)); n != 1 {
		t.Errorf("%d anomalies within the cooldown, want 1", n)
	}
}

func TestThresholdFiresPerEvent(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	hook, _ := e.webhook(recv.URL)
	det := e.detector(store.DetectorInput{
		Kind: "threshold", Config: json.RawMessage(`{"value": "event.purchase_complete.total_cents", "max": 100000}`),
		WebhookIDs: []uuid.UUID{hook},
	})
	d, _ := e.startDispatcher(reaction.DispatchOptions{})
	e.startEngine(d.Wake)
	big := purchase("shop", 250_000)
	e.publish(purchase("shop", 10), big, screenView("shop", "home"))
	e.drained()
	eventually(t, 5*time.Second, "one anomaly", func() bool { return len(e.anomalies(det)) == 1 })
	a := e.anomalies(det)[0]
	if a.EventID == nil || *a.EventID != big.Id || a.Observed == nil || *a.Observed != 250_000 {
		t.Errorf("anomaly: %+v", a)
	}
	eventually(t, 5*time.Second, "the webhook", func() bool { return len(recv.got()) == 1 })
	if b := decodeBody(t, recv.got()[0].body); b.Data.Event.ID != big.Id {
		t.Errorf("the anomaly webhook does not carry the event: %s", recv.got()[0].body)
	}
}

// Detector state is saved and restored: counts carry over a restart of the engine.
func TestDetectorStateSurvivesARestart(t *testing.T) {
	e := newEnv(t)
	det := e.detector(store.DetectorInput{Kind: "rate", Config: json.RawMessage(`{"max_per_minute": 5}`), CooldownSeconds: 0})
	_, first := e.startEngine(nil)
	for range 4 {
		e.publish(screenView("web", "home"))
	}
	e.drained()
	first.stop()

	e.startEngine(nil)
	e.publish(screenView("web", "home"))
	e.drained()
	if n := len(e.anomalies(det)); n != 0 {
		t.Fatalf("fired at 5 events, the limit: %d anomalies", n)
	}
	e.publish(screenView("web", "home"))
	e.drained()
	eventually(t, 5*time.Second, "the rate anomaly after the restart", func() bool { return len(e.anomalies(det)) == 1 })
	if a := e.anomalies(det)[0]; a.Observed == nil || *a.Observed != 6 || !strings.Contains(a.Message, "6") {
		t.Errorf("anomaly: observed %v, message %q; want 6 events counted across the restart", a.Observed, a.Message)
	}
}
