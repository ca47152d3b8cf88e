package appliance_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/causality-io/causality/appliance/config"
)

// TestRestartKeepsKeysAndEvents stops an appliance and starts a new one on the same data
// dir: keys, the admin password and every stored event are still there.
func TestRestartKeepsKeysAndEvents(t *testing.T) {
	dir := dataDir(t)
	first := start(t, testConfig(t, dir))
	key := first.createKey("shop", "")
	if r := first.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "keep", 25)); r.code != http.StatusOK {
		t.Fatalf("ingest: %s", r)
	}
	first.stop()

	cfg := testConfig(t, dir)
	cfg.AdminPassword = "" // the stored password must still hold, and no new one is generated
	second := start(t, cfg)
	if strings.Contains(second.out.String(), "generated") {
		t.Fatalf("restart generated a new admin password:\n%s", second.out)
	}
	if r := second.admin("GET", "/api/v1/admin/keys", ""); r.code != http.StatusOK {
		t.Fatalf("stored admin password refused after restart: %s", r)
	}
	if got := len(second.stored()); got != 25 {
		t.Fatalf("after restart the stream holds %d events, want 25", got)
	}
	if r := second.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "again", 5)); r.code != http.StatusOK {
		t.Fatalf("key from before the restart: %s", r)
	}
	// Dedup state survives too: the first batch again is all duplicate.
	r := second.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "keep", 25))
	if r.code != http.StatusOK || strings.Contains(string(r.body), `"accepted"`) {
		t.Fatalf("resent batch after restart should be all duplicate: %s", r)
	}
}

// TestFirstStartGeneratesPassword: with no --admin-password ever given, the first start
// prints a password once and it works.
func TestFirstStartGeneratesPassword(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.AdminPassword = ""
	s := start(t, cfg)
	out := s.out.String()
	_, after, ok := strings.Cut(out, "shown only this once): ")
	if !ok {
		t.Fatalf("banner shows no generated password:\n%s", out)
	}
	password := strings.Fields(after)[0]
	for _, want := range []string{s.base + "/api/v1/admin/", s.base + "/v1/events/batch", cfg.NATSListen, "Data dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	req, _ := http.NewRequest("GET", s.base+"/api/v1/admin/keys", nil)
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generated password refused: %d", resp.StatusCode)
	}
}

// TestStreamFullAnswers503: when the stream reaches its size limit, ingest refuses with
// 503 and Retry-After instead of dropping events, and what it accepted is all there.
func TestStreamFullAnswers503(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.StreamMaxBytes = config.MiB
	s := start(t, cfg)
	key := s.createKey("shop", "")
	accepted := 0
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("a 1 MiB stream never filled up")
		}
		r := s.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "fill"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 500))
		if r.code == http.StatusServiceUnavailable {
			if r.header.Get("Retry-After") == "" || !strings.Contains(r.json(t)["error"].(string), "full") {
				t.Fatalf("503 without Retry-After or reason: %s", r)
			}
			break
		}
		if r.code != http.StatusOK {
			t.Fatalf("got %s", r)
		}
		accepted += 500
	}
	if got := len(s.stored()); got < accepted {
		t.Fatalf("stream holds %d events, fewer than the %d acknowledged", got, accepted)
	}
	if r := s.do("GET", "/readyz", nil, nil); r.code != http.StatusOK {
		t.Fatalf("a full stream is not a down bus: readyz %s", r)
	}
}

// TestExternalNATS runs against a separate nats-server via --nats-url; when that server
// goes away, ingest answers 503 and /readyz says so.
func TestExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external nats-server not ready")
	}
	defer ns.Shutdown()

	cfg := testConfig(t, dataDir(t))
	cfg.NATSURL, cfg.NATSListen = ns.ClientURL(), ""
	s := start(t, cfg)
	key := s.createKey("shop", "")
	if r := s.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "ext", 10)); r.code != http.StatusOK {
		t.Fatalf("ingest via external nats: %s", r)
	}
	if got := len(readStream(t, ns.ClientURL())); got != 10 {
		t.Fatalf("external stream holds %d events, want 10", got)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	r := s.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "down", 10))
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("with the bus down: %s", r)
	}
	if r := s.do("GET", "/readyz", nil, nil); r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "nats") {
		t.Fatalf("readyz with the bus down: %s", r)
	}
}
