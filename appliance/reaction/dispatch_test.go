package reaction_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/reaction"
	"github.com/causality-io/causality/appliance/store"
)

// forward makes a rule that sends every purchase to hook; make it before the engine starts.
func (e *env) forward(hook uuid.UUID) {
	e.t.Helper()
	e.rule(store.RuleInput{EventCategory: ptr("commerce"), WebhookIDs: []uuid.UUID{hook}})
}

// purchases publishes n purchases.
func (e *env) purchases(n int) {
	e.t.Helper()
	for i := range n {
		e.publish(purchase("shop", int64(i)))
	}
}

func TestFailingReceiverIsRetriedUntilItSucceeds(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	hook, _ := e.webhook(recv.URL)
	schedule := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, time.Hour}
	d, _ := e.startDispatcher(reaction.DispatchOptions{Schedule: schedule})
	e.forward(hook)
	e.startEngine(d.Wake)
	e.purchases(1)

	eventually(t, 10*time.Second, "the delivery to succeed", func() bool {
		ds := e.deliveries(hook)
		return len(ds) == 1 && ds[0].Status == "succeeded"
	})
	got := recv.got()
	if len(got) != 4 {
		t.Fatalf("receiver got %d calls, want 4 (3 failures, then success)", len(got))
	}
	id := got[0].header.Get("webhook-id")
	for i, r := range got {
		if r.header.Get("webhook-id") != id {
			t.Errorf("attempt %d has webhook-id %q, want the same %q on every attempt", i+1, r.header.Get("webhook-id"), id)
		}
		if i > 0 {
			if gap, want := r.at.Sub(got[i-1].at), schedule[i]; gap < want {
				t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, want)
			}
		}
	}
	dl := e.deliveries(hook)[0]
	if dl.Attempts != 4 || dl.LastStatusCode == nil || *dl.LastStatusCode != 204 || dl.DeliveredAt == nil {
		t.Errorf("delivery: attempts %d, last code %v, delivered %v", dl.Attempts, dl.LastStatusCode, dl.DeliveredAt)
	}
	var health store.Webhook
	health, err := e.store.GetWebhook(e.ctx, hook)
	if err != nil {
		t.Fatal(err)
	}
	if health.FailingSince != nil {
		t.Errorf("webhook still failing since %v after a success", health.FailingSince)
	}
}

func TestReceiverThatTimesOutEndsDead(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	recv.delay = 5 * time.Second
	hook, _ := e.webhook(recv.URL)
	d, _ := e.startDispatcher(reaction.DispatchOptions{Timeout: 200 * time.Millisecond, Schedule: []time.Duration{0, 50 * time.Millisecond}})
	e.forward(hook)
	e.startEngine(d.Wake)
	e.purchases(1)
	eventually(t, 10*time.Second, "the delivery to die", func() bool {
		ds := e.deliveries(hook)
		return len(ds) == 1 && ds[0].Status == "dead"
	})
	dl := e.deliveries(hook)[0]
	if dl.Attempts != 2 || dl.LastError == nil || !strings.Contains(*dl.LastError, "timeout") {
		t.Errorf("dead delivery: attempts %d, last error %v; want 2 attempts ending in a timeout", dl.Attempts, dl.LastError)
	}
	if dl.LastLatencyMS == nil || *dl.LastLatencyMS < 150 || *dl.LastLatencyMS > 2000 {
		t.Errorf("last latency %v ms, want about the 200 ms timeout", dl.LastLatencyMS)
	}

	// A replay gives it one more attempt.
	recv.mu.Lock()
	recv.delay = 0
	recv.mu.Unlock()
	if _, err := e.store.ReplayDelivery(e.ctx, dl.ID); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	eventually(t, 10*time.Second, "the replayed delivery to succeed", func() bool {
		return e.deliveries(hook)[0].Status == "succeeded"
	})
}

// A receiver that is down (nothing listens) until later gets its deliveries when it comes up.
func TestReceiverDownUntilLater(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: connections are refused
	hook, _ := e.webhook("http://" + addr + "/hook")
	schedule := make([]time.Duration, 30)
	for i := range schedule {
		schedule[i] = 100 * time.Millisecond
	}
	d, _ := e.startDispatcher(reaction.DispatchOptions{Schedule: schedule})
	e.forward(hook)
	e.startEngine(d.Wake)
	e.purchases(3)
	eventually(t, 10*time.Second, "attempts against the closed port", func() bool {
		ds := e.deliveries(hook)
		return len(ds) == 3 && ds[0].Attempts >= 2
	})
	if le := e.deliveries(hook)[0].LastError; le == nil || !strings.Contains(*le, "refused") {
		t.Errorf("last error %v, want connection refused", le)
	}
	if w, _ := e.store.GetWebhook(e.ctx, hook); w.FailingSince == nil {
		t.Error("the webhook does not say it is failing")
	}

	// Up at the same address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	recv := newReceiver(t, nil)
	recv.Listener.Close()
	up := httptest.NewUnstartedServer(recv.Config.Handler)
	up.Listener = ln
	up.Start()
	defer up.Close()
	eventually(t, 10*time.Second, "the deliveries once the receiver is up", func() bool {
		for _, dl := range e.deliveries(hook) {
			if dl.Status != "succeeded" {
				return false
			}
		}
		return true
	})
	if n := len(recv.got()); n != 3 {
		t.Errorf("receiver got %d calls, want 3", n)
	}
}

// A dispatcher that stops in the middle of a retry series leaves the delivery to the next
// one, which continues the series where it was.
func TestRestartInTheMiddleOfARetrySeries(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	hook, _ := e.webhook(recv.URL)
	schedule := []time.Duration{0, 1500 * time.Millisecond, time.Hour}
	first, running := e.startDispatcher(reaction.DispatchOptions{Schedule: schedule})
	e.forward(hook)
	e.startEngine(first.Wake)
	e.purchases(1)
	eventually(t, 10*time.Second, "the first, failed attempt", func() bool {
		ds := e.deliveries(hook)
		return len(ds) == 1 && ds[0].Status == "retrying"
	})
	running.stop()
	failedAt := recv.got()[0].at

	second, _ := e.startDispatcher(reaction.DispatchOptions{Schedule: schedule})
	second.Wake()
	eventually(t, 10*time.Second, "the second attempt by the new dispatcher", func() bool {
		return e.deliveries(hook)[0].Status == "succeeded"
	})
	got := recv.got()
	if len(got) != 2 {
		t.Fatalf("receiver got %d calls, want 2", len(got))
	}
	if gap := got[1].at.Sub(failedAt); gap < schedule[1] {
		t.Errorf("the retry came %v after the failure, want the scheduled %v", gap, schedule[1])
	}
	if dl := e.deliveries(hook)[0]; dl.Attempts != 2 {
		t.Errorf("attempts %d, want 2", dl.Attempts)
	}
}

// An endpoint failing longer than DisableAfter is disabled with a reason, and its
// deliveries wait.
func TestEndpointFailingTooLongIsDisabled(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, func(int) int { return http.StatusBadGateway })
	hook, _ := e.webhook(recv.URL)
	schedule := make([]time.Duration, 50)
	for i := range schedule {
		schedule[i] = 100 * time.Millisecond
	}
	d, _ := e.startDispatcher(reaction.DispatchOptions{Schedule: schedule, DisableAfter: time.Second})
	e.forward(hook)
	e.startEngine(d.Wake)
	e.purchases(1)
	eventually(t, 15*time.Second, "the webhook to be disabled", func() bool {
		w, err := e.store.GetWebhook(e.ctx, hook)
		return err == nil && !w.Enabled
	})
	w, _ := e.store.GetWebhook(e.ctx, hook)
	if w.DisabledReason == nil || !strings.Contains(*w.DisabledReason, "HTTP 502") {
		t.Errorf("disabled reason %v, want one naming the last error", w.DisabledReason)
	}
	n := len(recv.got())
	time.Sleep(500 * time.Millisecond)
	if m := len(recv.got()); m != n {
		t.Errorf("a disabled webhook got %d more calls", m-n)
	}
	if dl := e.deliveries(hook)[0]; dl.Status != "retrying" {
		t.Errorf("delivery %s, want it kept (retrying) for when the webhook is enabled again", dl.Status)
	}
}

// Destinations on private addresses are refused at connect time unless allowed.
func TestPrivateDestinationsAreRefused(t *testing.T) {
	e := newEnv(t)
	recv := newReceiver(t, nil)
	hook, _ := e.webhook(recv.URL)
	m := e.m
	d := reaction.NewDispatcher(e.store, reaction.DispatchOptions{Schedule: []time.Duration{0}, Poll: 20 * time.Millisecond}, m, testLogger(t))
	e.run(d.Run)
	e.forward(hook)
	e.startEngine(d.Wake)
	e.purchases(1)
	eventually(t, 10*time.Second, "the delivery to die", func() bool {
		ds := e.deliveries(hook)
		return len(ds) == 1 && ds[0].Status == "dead"
	})
	if le := e.deliveries(hook)[0].LastError; le == nil || !strings.Contains(*le, "--webhook-allow-private") {
		t.Errorf("last error %v, want the refusal naming --webhook-allow-private", le)
	}
	if n := len(recv.got()); n != 0 {
		t.Errorf("the private receiver got %d calls", n)
	}
}
