package appliance_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKillNineRecordsEveryDeliveryOnce kills the real binary with SIGKILL while events
// flow and a rule matches a tenth of them, restarts it on the same data dir, and checks
// what the receiver saw: every acknowledged matching event was delivered, each under one
// webhook-id (its delivery was recorded once, whatever was redelivered after a kill), and
// nothing else was.
func TestKillNineRecordsEveryDeliveryOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	var mu sync.Mutex
	hookIDs := map[string]map[string]int{} // event id -> webhook-id -> times received
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Data struct {
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Data.Event.ID == "" {
			t.Errorf("webhook body without an event: %s", b)
		}
		mu.Lock()
		if hookIDs[body.Data.Event.ID] == nil {
			hookIDs[body.Data.Event.ID] = map[string]int{}
		}
		hookIDs[body.Data.Event.ID][r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer recv.Close()

	dir := dataDir(t)
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	flags := []string{"--webhook-allow-private"}
	p := startProcess(t, dir, httpAddr, natsAddr, flags...)
	key := adminCreateKey(t, p.base)
	hook := adminPost(t, p.base, "/api/v1/admin/webhooks", fmt.Sprintf(`{"name":"receiver","url":%q}`, recv.URL))
	adminPost(t, p.base, "/api/v1/admin/rules", fmt.Sprintf(`{"name":"tenth","condition":"event.id.endsWith(\"7\")","webhook_ids":[%q]}`, hook))
	waitMetric(t, p.base, "causality_reaction_rules", 1, 10*time.Second)

	p, acked := killUnderLoad(t, p, key, 4, func() *proc { return startProcess(t, dir, httpAddr, natsAddr, flags...) })

	// Events a killed engine held come back after the ack wait (1 min), and deliveries a
	// killed dispatcher was sending after their lease (timeout + 30 s).
	waitMetric(t, p.base, "causality_reaction_consumer_lag", 0, 3*time.Minute)
	waitMetric(t, p.base, `causality_webhook_outbox{status="pending"}`, 0, 2*time.Minute)
	waitMetric(t, p.base, `causality_webhook_outbox{status="retrying"}`, 0, 2*time.Minute)

	mu.Lock()
	defer mu.Unlock()
	matching, resent := 0, 0
	for _, id := range acked {
		if !strings.HasSuffix(id, "7") {
			continue
		}
		matching++
		ids := hookIDs[id]
		if len(ids) == 0 {
			t.Errorf("event %s matched but was never delivered", id)
		}
		if len(ids) > 1 {
			t.Errorf("event %s was delivered under %d webhook-ids (recorded more than once): %v", id, len(ids), ids)
		}
		for _, n := range ids {
			resent += n - 1
		}
	}
	for id := range hookIDs {
		if !strings.HasSuffix(id, "7") {
			t.Errorf("event %s does not match the rule but was delivered", id)
		}
	}
	if matching == 0 {
		t.Fatal("no matching event was acknowledged")
	}
	t.Logf("%d acknowledged events, %d matching, all delivered once recorded; %d calls repeated after a kill (same webhook-id)",
		len(acked), matching, resent)
}

// adminPost creates something through the admin API and returns its id.
func adminPost(t *testing.T, base, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ ID string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &v) != nil || v.ID == "" {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return v.ID
}

// waitMetric waits until a metric of /metrics has the value want.
func waitMetric(t *testing.T, base, name string, want float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := metric(t, base, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after %s, want %v", name, v, within, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
