package appliance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/reaction/webhook/webhooktest"
)

// TestRuleToWebhookEndToEnd follows events from ingest to a receiver's door: a webhook and a
// rule made through the admin API (a broken condition refused with its position), purchases
// ingested over HTTP, the matching ones delivered as Standard Webhooks whose signatures the
// independent npm library accepts, the delivery log, and a replay.
func TestRuleToWebhookEndToEnd(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.WebhookAllowPrivate = true // the receiver listens on 127.0.0.1
	s := start(t, cfg)
	recv := newHookReceiver(t, nil)
	hookID, secret := createWebhook(s, "orders desk", recv.url())

	// A typo in a field name is refused when the rule is saved, with where it is.
	r := s.admin("POST", "/api/v1/admin/rules", mustJSON(t, map[string]any{
		"name": "big purchase", "event_category": "commerce", "event_type": "purchase_complete",
		"condition": "event.purchase_complete.total_cent > 100000", "webhook_ids": []string{hookID},
	}))
	if r.code != http.StatusBadRequest {
		t.Fatalf("rule with a misspelt field: got %s, want 400", r)
	}
	var refused struct {
		Error  string `json:"error"`
		Fields []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
		} `json:"fields"`
	}
	decodeInto(t, r.body, &refused)
	if len(refused.Fields) != 1 || refused.Fields[0].Field != "condition" {
		t.Fatalf("want one error, for condition: %s", r)
	}
	// Column 24 is the '.' that selects total_cent, as CEL points at it.
	if f := refused.Fields[0]; f.Line != 1 || f.Column != 24 || !strings.Contains(f.Message, "total_cent") {
		t.Fatalf("condition error should name total_cent at line 1, column 24: %+v", f)
	}

	ruleID := createRule(s, map[string]any{
		"name": "big purchase", "event_category": "commerce", "event_type": "purchase_complete",
		"condition": "event.purchase_complete.total_cents > 100000", "webhook_ids": []string{hookID},
	})
	var rules struct {
		Rules []struct {
			ID string `json:"id"`
		} `json:"rules"`
	}
	decodeInto(t, s.admin("GET", "/api/v1/admin/rules", "").body, &rules)
	if len(rules.Rules) != 1 || rules.Rules[0].ID != ruleID {
		t.Fatalf("want only the valid rule stored, got %+v", rules.Rules)
	}
	waitRulesLoaded(s, 1)

	// Totals below, at and above the limit; a checkout over the limit is no purchase.
	key := s.createKey("shop", "")
	type purchase struct {
		order string
		cents int64
		match bool
	}
	purchases := []purchase{
		{"o-small", 4599, false}, {"o-big", 150_000, true}, {"o-edge", 100_000, false},
		{"o-just-over", 100_001, true}, {"o-huge", 2_500_000, true},
	}
	var batch []map[string]any
	for _, p := range purchases {
		batch = append(batch, map[string]any{"appId": "shop", "deviceId": "d-1",
			"purchaseComplete": map[string]any{"orderId": p.order, "totalCents": strconv.FormatInt(p.cents, 10), "currency": "EUR"}})
	}
	batch = append(batch, map[string]any{"appId": "shop", "deviceId": "d-1",
		"checkoutStart": map[string]any{"cartId": "c-1", "totalCents": "500000"}})
	sent := time.Now()
	ids := ingestBatch(s, key, batch) // ids assigned by the server
	want := map[string]purchase{}     // event id -> purchase, for the matching ones
	for i, p := range purchases {
		if p.match {
			want[ids[i]] = p
		}
	}
	// A last matching purchase in a request of its own: it is behind the batch in the
	// stream, and the engine evaluates in stream order, so once its delivery is recorded
	// every event before it has been evaluated, and the outbox is complete.
	last := purchase{"o-last", 120_000, true}
	lastIDs := ingestBatch(s, key, []map[string]any{{"appId": "shop", "deviceId": "d-2",
		"purchaseComplete": map[string]any{"orderId": last.order, "totalCents": strconv.FormatInt(last.cents, 10)}}})
	want[lastIDs[0]] = last
	answered := time.Now()

	pollUntil(t, time.Minute, func() (bool, string) {
		got := recv.calls()
		return len(got) >= len(want), fmt.Sprintf("the receiver got %d webhooks, want %d", len(got), len(want))
	})
	all := listDeliveries(s, "")
	if len(all) != len(want) {
		t.Fatalf("the outbox holds %d deliveries, want %d: %+v", len(all), len(want), all)
	}
	byEvent := map[string]deliveryJSON{}
	for _, d := range all {
		if _, ok := want[d.eventID()]; !ok {
			t.Fatalf("delivery for event %q, which matches no rule: %+v", d.eventID(), d)
		}
		byEvent[d.eventID()] = d
	}

	calls := recv.calls()
	if len(calls) != len(want) {
		t.Fatalf("the receiver got %d webhooks, want exactly %d", len(calls), len(want))
	}
	var items []webhooktest.Item
	seen := map[string]bool{}
	for _, c := range calls {
		var body ruleMatchedBody
		decodeInto(t, c.body, &body)
		p, ok := want[body.Data.Event.ID]
		if !ok || seen[body.Data.Event.ID] {
			t.Fatalf("unexpected or repeated webhook for event %q: %s", body.Data.Event.ID, c.body)
		}
		seen[body.Data.Event.ID] = true
		d := byEvent[body.Data.Event.ID]
		checkWebhookHeaders(t, c, d.ID)
		if body.Type != "rule.matched" || body.Data.Rule.ID != ruleID || body.Data.Rule.Name != "big purchase" ||
			body.Data.AppID != "shop" || body.Data.Event.AppID != "shop" {
			t.Errorf("webhook body: %s", c.body)
		}
		// timestamp is when ingest received the event (in milliseconds).
		if body.Timestamp.Before(sent.Truncate(time.Millisecond)) || body.Timestamp.After(answered) {
			t.Errorf("webhook timestamp %v is not between sending (%v) and the answer (%v)", body.Timestamp, sent, answered)
		}
		if pc := body.Data.Event.PurchaseComplete; pc == nil || pc.OrderID != p.order || pc.TotalCents != strconv.FormatInt(p.cents, 10) {
			t.Errorf("webhook for %s carries another event: %s", p.order, c.body)
		}
		items = append(items, webhooktest.Item{Secret: secret, Header: c.header, Body: c.body})
	}
	// The independent implementation accepts every signature, and is no rubber stamp: it
	// refuses a changed body and another secret.
	tampered := webhooktest.Item{Secret: secret, Header: calls[0].header, Body: bytes.Replace(calls[0].body, []byte("shop"), []byte("shoq"), 1)}
	wrongKey := webhooktest.Item{Secret: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), Header: calls[0].header, Body: calls[0].body}
	errs := webhooktest.VerifyWithNode(t, append(items, tampered, wrongKey))
	for i, err := range errs[:len(items)] {
		if err != nil {
			t.Errorf("standardwebhooks refuses webhook %d (%s): %v", i, calls[i].header.Get("webhook-id"), err)
		}
	}
	if errs[len(items)] == nil || errs[len(items)+1] == nil {
		t.Errorf("standardwebhooks accepted a tampered body (%v) or a wrong secret (%v)", errs[len(items)], errs[len(items)+1])
	}

	// The delivery log: recorded as succeeded once the answers are in.
	pollUntil(t, time.Minute, func() (bool, string) {
		n := len(listDeliveries(s, "?status=succeeded"))
		return n == len(want), fmt.Sprintf("%d deliveries succeeded, want %d", n, len(want))
	})
	for _, d := range listDeliveries(s, "?status=succeeded") {
		if d.WebhookID != hookID || d.Type != "rule.matched" || d.RuleID == nil || *d.RuleID != ruleID ||
			d.AppID == nil || *d.AppID != "shop" || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 200 {
			t.Errorf("succeeded delivery: %+v", d)
		}
	}
	if r := s.admin("GET", "/api/v1/admin/deliveries?status=bogus", ""); r.code != http.StatusBadRequest ||
		!strings.Contains(string(r.body), "status") {
		t.Errorf("?status=bogus: got %s, want 400 naming status", r)
	}

	// A replay sends the same delivery again: same webhook-id, same body, newly signed.
	replayed := byEvent[lastIDs[0]]
	r = s.admin("POST", "/api/v1/admin/deliveries/"+replayed.ID+"/replay", "")
	if r.code != http.StatusAccepted {
		t.Fatalf("replay: got %s, want 202", r)
	}
	pollUntil(t, time.Minute, func() (bool, string) {
		n := len(recv.callsWithID(replayed.ID))
		return n >= 2, fmt.Sprintf("the receiver got webhook-id %s %d times, want 2", replayed.ID, n)
	})
	again := recv.callsWithID(replayed.ID)
	if len(again) != 2 || !bytes.Equal(again[0].body, again[1].body) {
		t.Fatalf("replay: %d calls with webhook-id %s; bodies equal: %v", len(again), replayed.ID, len(again) == 2 && bytes.Equal(again[0].body, again[1].body))
	}
	checkWebhookHeaders(t, again[1], replayed.ID)
	if errs := webhooktest.VerifyWithNode(t, []webhooktest.Item{{Secret: secret, Header: again[1].header, Body: again[1].body}}); errs[0] != nil {
		t.Errorf("standardwebhooks refuses the replay: %v", errs[0])
	}
	pollUntil(t, time.Minute, func() (bool, string) {
		d := getDelivery(s, replayed.ID)
		return d.Status == "succeeded" && d.Attempts == 2, fmt.Sprintf("replayed delivery is %s after %d attempts, want succeeded after 2", d.Status, d.Attempts)
	})
	if n := len(recv.calls()); n != len(want)+1 {
		t.Errorf("the receiver got %d webhooks in all, want %d", n, len(want)+1)
	}
}

// TestWebhookSurvivesARestartMidRetry: a delivery whose first attempt failed waits in the
// outbox across a restart on the same data dir, and the new process delivers it with the
// same webhook-id.
func TestWebhookSurvivesARestartMidRetry(t *testing.T) {
	dir := dataDir(t)
	newConfig := func() *config.Config {
		cfg := testConfig(t, dir)
		cfg.WebhookAllowPrivate = true
		cfg.WebhookRetrySchedule = []time.Duration{0, 2 * time.Second, time.Hour}
		return cfg
	}
	recv := newHookReceiver(t, func(n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})

	first := start(t, newConfig())
	hookID, secret := createWebhook(first, "flaky receiver", recv.url())
	createRule(first, map[string]any{"name": "every commerce event", "event_category": "commerce", "webhook_ids": []string{hookID}})
	waitRulesLoaded(first, 1)
	key := first.createKey("shop", "")
	r := first.ingest("/v1/events/ingest", key, "application/json",
		[]byte(`{"event":{"appId":"shop","deviceId":"d-1","addToCart":{"productId":"p-1","quantity":2,"priceCents":"1999"}}}`))
	if r.code != http.StatusAccepted {
		t.Fatalf("ingest: %s", r)
	}
	eventID, _ := r.json(t)["eventId"].(string)

	var d deliveryJSON
	pollUntil(t, time.Minute, func() (bool, string) {
		ds := listDeliveries(first, "?status=retrying")
		if len(ds) == 1 {
			d = ds[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d deliveries retrying, want 1 (all: %+v)", len(ds), listDeliveries(first, ""))
	})
	if d.eventID() != eventID || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 500 ||
		d.LastError == nil || !strings.Contains(*d.LastError, "500") {
		t.Fatalf("retrying delivery: %+v", d)
	}

	stopping := time.Now()
	first.stop()
	// The retry is due about 2 s (±20%) after the failure. Had it reached the receiver
	// before the stop, this test would prove nothing about restarts.
	if n := len(recv.calls()); n != 1 {
		t.Fatalf("the retry came before the first appliance stopped (stop took %v, receiver got %d calls)", time.Since(stopping), n)
	}
	stopped := time.Now()
	t.Logf("first appliance stopped in %v", stopped.Sub(stopping).Round(time.Millisecond))

	second := start(t, newConfig())
	pollUntil(t, time.Minute, func() (bool, string) {
		d = getDelivery(second, d.ID)
		return d.Status == "succeeded", fmt.Sprintf("delivery is %s after %d attempts", d.Status, d.Attempts)
	})
	if d.Attempts != 2 || d.LastStatusCode == nil || *d.LastStatusCode != 200 {
		t.Fatalf("delivered after the restart: %+v, want 2 attempts, the last answered 200", d)
	}
	calls := recv.calls()
	if len(calls) != 2 {
		t.Fatalf("the receiver got %d calls, want 2", len(calls))
	}
	for i, c := range calls {
		checkWebhookHeaders(t, c, d.ID)
		if i > 0 && !bytes.Equal(c.body, calls[0].body) {
			t.Errorf("the retry sent another body:\n%s\n%s", calls[0].body, c.body)
		}
	}
	if !calls[1].at.After(stopped) {
		t.Errorf("the second call arrived before the first appliance had stopped")
	}
	var body ruleMatchedBody
	decodeInto(t, calls[1].body, &body)
	if body.Data.Event.ID != eventID || body.Data.AppID != "shop" {
		t.Errorf("delivered body: %s", calls[1].body)
	}
	items := []webhooktest.Item{{Secret: secret, Header: calls[0].header, Body: calls[0].body}, {Secret: secret, Header: calls[1].header, Body: calls[1].body}}
	for i, err := range webhooktest.VerifyWithNode(t, items) {
		if err != nil {
			t.Errorf("standardwebhooks refuses call %d: %v", i, err)
		}
	}
}

// BenchmarkIngestToWebhookLatency measures the whole reaction path under light load: single
// events one at a time, about 100 a second, each matching a rule with a webhook to a local
// receiver; the latency of an event is from ingest's 202 answer to its webhook's arrival
// (ingest's JetStream ack, the engine's batch of up to 10 ms and its Postgres commit, the
// dispatcher's claim, the signed POST). ns/op is suppressed: it is the 10 ms pacing.
//
//	go test -run '^$' -bench IngestToWebhookLatency -benchtime 500x ./appliance/
func BenchmarkIngestToWebhookLatency(b *testing.B) {
	cfg := testConfig(b, dataDir(b))
	cfg.WebhookAllowPrivate = true
	s := start(b, cfg)
	recv := newHookReceiver(b, nil)
	hookID, _ := createWebhook(s, "latency receiver", recv.url())
	createRule(s, map[string]any{"name": "every latency event", "app_id": "latency", "webhook_ids": []string{hookID}})
	waitRulesLoaded(s, 1)
	key := s.createKey("latency", "")
	send := func(id string) time.Time {
		r := s.ingest("/v1/events/ingest", key, "application/json",
			fmt.Appendf(nil, `{"event":{"id":%q,"appId":"latency","deviceId":"d-1","screenView":{"screenName":"Home"}}}`, id))
		if r.code != http.StatusAccepted {
			b.Fatalf("ingest %s: %s", id, r)
		}
		return time.Now()
	}
	// One event first, so that connections are open and the first sample is no cold start.
	send("warm-up")
	pollUntil(b, time.Minute, func() (bool, string) {
		_, ok := recv.arrival("warm-up")
		return ok, "the warm-up webhook has not arrived"
	})

	const spacing = 10 * time.Millisecond
	acked := map[string]time.Time{}
	for b.Loop() {
		began := time.Now()
		id := fmt.Sprintf("lat-%d", len(acked))
		acked[id] = send(id)
		time.Sleep(time.Until(began.Add(spacing)))
	}

	latencies := make([]time.Duration, 0, len(acked))
	pollUntil(b, 2*time.Minute, func() (bool, string) {
		latencies = latencies[:0]
		for id, at := range acked {
			arrived, ok := recv.arrival(id)
			if !ok {
				return false, fmt.Sprintf("%d of %d webhooks arrived", len(latencies), len(acked))
			}
			latencies = append(latencies, arrived.Sub(at))
		}
		return true, ""
	})
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(latencies, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 99)), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
}

// percentile is the p-th percentile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(i, 1)-1]
}

// hookCall is one request a hookReceiver got.
type hookCall struct {
	at      time.Time
	header  http.Header
	body    []byte
	eventID string // data.event.id of the body, if any
}

// hookReceiver is a webhook endpoint that records every request.
type hookReceiver struct {
	srv    *httptest.Server
	status func(n int) int // the answer to the n-th request (from 0); nil: 200

	mu       sync.Mutex
	got      []hookCall
	arrivals map[string]time.Time // first arrival per data.event.id
}

func newHookReceiver(t testing.TB, status func(n int) int) *hookReceiver {
	h := &hookReceiver{status: status, arrivals: map[string]time.Time{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var body struct {
			Data struct {
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			} `json:"data"`
		}
		_ = json.Unmarshal(buf.Bytes(), &body)
		h.mu.Lock()
		n := len(h.got)
		h.got = append(h.got, hookCall{at: at, header: r.Header.Clone(), body: buf.Bytes(), eventID: body.Data.Event.ID})
		if _, ok := h.arrivals[body.Data.Event.ID]; !ok {
			h.arrivals[body.Data.Event.ID] = at
		}
		h.mu.Unlock()
		code := http.StatusOK
		if h.status != nil {
			code = h.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) url() string { return h.srv.URL + "/hooks/causality" }

func (h *hookReceiver) calls() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (h *hookReceiver) callsWithID(webhookID string) []hookCall {
	var out []hookCall
	for _, c := range h.calls() {
		if c.header.Get("webhook-id") == webhookID {
			out = append(out, c)
		}
	}
	return out
}

func (h *hookReceiver) arrival(eventID string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.arrivals[eventID]
	return at, ok
}

// checkWebhookHeaders checks the Standard Webhooks headers of a call for delivery id.
func checkWebhookHeaders(t testing.TB, c hookCall, deliveryID string) {
	t.Helper()
	if got := c.header.Get("webhook-id"); got != deliveryID {
		t.Errorf("webhook-id %q, want the delivery's id %s", got, deliveryID)
	}
	ts, err := strconv.ParseInt(c.header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q is not Unix seconds near now", c.header.Get("webhook-timestamp"))
	}
	if sig := c.header.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") {
		t.Errorf("webhook-signature %q is not v1,<base64>", sig)
	}
	if ct := c.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

// ruleMatchedBody is the part of a rule.matched webhook body the tests check.
type ruleMatchedBody struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		Rule struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rule"`
		AppID string `json:"app_id"`
		Event struct {
			ID               string `json:"id"`
			AppID            string `json:"appId"`
			PurchaseComplete *struct {
				OrderID    string `json:"orderId"`
				TotalCents string `json:"totalCents"`
			} `json:"purchaseComplete"`
		} `json:"event"`
	} `json:"data"`
}

// deliveryJSON is a delivery as the admin API shows it.
type deliveryJSON struct {
	ID             string  `json:"id"`
	WebhookID      string  `json:"webhook_id"`
	Type           string  `json:"type"`
	RuleID         *string `json:"rule_id"`
	AppID          *string `json:"app_id"`
	EventID        *string `json:"event_id"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
}

func (d deliveryJSON) eventID() string {
	if d.EventID == nil {
		return ""
	}
	return *d.EventID
}

func listDeliveries(s *server, query string) []deliveryJSON {
	s.t.Helper()
	r := s.admin("GET", "/api/v1/admin/deliveries"+query, "")
	if r.code != http.StatusOK {
		s.t.Fatalf("list deliveries%s: %s", query, r)
	}
	var out struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	decodeInto(s.t, r.body, &out)
	return out.Deliveries
}

func getDelivery(s *server, id string) deliveryJSON {
	s.t.Helper()
	r := s.admin("GET", "/api/v1/admin/deliveries/"+id, "")
	if r.code != http.StatusOK {
		s.t.Fatalf("get delivery %s: %s", id, r)
	}
	var d deliveryJSON
	decodeInto(s.t, r.body, &d)
	return d
}

// createWebhook makes a webhook through the admin API and returns its id and signing secret.
func createWebhook(s *server, name, url string) (id, secret string) {
	s.t.Helper()
	r := s.admin("POST", "/api/v1/admin/webhooks", mustJSON(s.t, map[string]any{"name": name, "url": url}))
	if r.code != http.StatusCreated {
		s.t.Fatalf("create webhook: %s", r)
	}
	m := r.json(s.t)
	id, _ = m["id"].(string)
	secret, _ = m["secret"].(string)
	if _, err := uuid.Parse(id); err != nil || !strings.HasPrefix(secret, "whsec_") {
		s.t.Fatalf("create webhook answered no id or secret: %s", r)
	}
	return id, secret
}

// createRule makes a rule through the admin API and returns its id.
func createRule(s *server, rule map[string]any) string {
	s.t.Helper()
	r := s.admin("POST", "/api/v1/admin/rules", mustJSON(s.t, rule))
	if r.code != http.StatusCreated {
		s.t.Fatalf("create rule: %s", r)
	}
	id, _ := r.json(s.t)["id"].(string)
	if id == "" {
		s.t.Fatalf("create rule answered no id: %s", r)
	}
	return id
}

// waitRulesLoaded waits until the engine evaluates n rules. A rule saved through the API
// reaches the engine asynchronously (a Postgres notification); an event ingested before
// that is evaluated without it.
func waitRulesLoaded(s *server, n int) {
	s.t.Helper()
	pollUntil(s.t, time.Minute, func() (bool, string) {
		got := metricValue(s, "causality_reaction_rules")
		return got == float64(n), fmt.Sprintf("the engine evaluates %v rules, want %d", got, n)
	})
}

// metricValue reads one unlabelled series from /metrics; -1 when it is absent.
func metricValue(s *server, name string) float64 {
	s.t.Helper()
	r := s.do("GET", "/metrics", nil, nil)
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				s.t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// ingestBatch sends events as one JSON batch, all of which must be accepted, and returns
// their ids in order.
func ingestBatch(s *server, key string, events []map[string]any) []string {
	s.t.Helper()
	r := s.ingest("/v1/events/batch", key, "application/json", []byte(mustJSON(s.t, map[string]any{"events": events})))
	if r.code != http.StatusOK {
		s.t.Fatalf("ingest batch: %s", r)
	}
	var resp struct {
		AcceptedCount int `json:"acceptedCount"`
		Results       []struct {
			Index   int    `json:"index"`
			EventID string `json:"eventId"`
			Status  string `json:"status"`
		} `json:"results"`
	}
	decodeInto(s.t, r.body, &resp)
	if resp.AcceptedCount != len(events) || len(resp.Results) != len(events) {
		s.t.Fatalf("ingest batch: not all %d accepted: %s", len(events), r)
	}
	ids := make([]string, len(events))
	for _, res := range resp.Results {
		if res.Status != "accepted" || res.EventID == "" {
			s.t.Fatalf("ingest batch: %s", r)
		}
		ids[res.Index] = res.EventID
	}
	return ids
}

// pollUntil calls cond every 50 ms until it holds, failing with its last message after within.
func pollUntil(t testing.TB, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeInto(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}
