package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/backup"
	"github.com/causality-io/causality/appliance/pgembed"
	"github.com/causality-io/causality/appliance/store"
)

// TestBackupRestoreRoundTrip: an appliance with a key, a webhook, a rule, a detector, a
// delivery history and an anomaly is backed up while it runs, stopped, restored into a new
// data dir, and started there: the key still authenticates ingest, the admin password is
// the old one, and the webhook (with its signing secret), rule, detector, deliveries and
// anomaly are all back as they were.
func TestBackupRestoreRoundTrip(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.WebhookAllowPrivate = true // the receiver listens on 127.0.0.1
	s := start(t, cfg)
	var received atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	key := s.createKey("shop", "")
	hook := s.admin("POST", "/api/v1/admin/webhooks", fmt.Sprintf(`{"name":"orders desk","url":%q}`, recv.URL+"/hook"))
	hookID := bkField(t, hook, http.StatusCreated, "id")
	bkField(t, s.admin("POST", "/api/v1/admin/rules", fmt.Sprintf(`{"name":"big purchase","event_type":"purchase_complete",
		"condition":"event.purchase_complete.total_cents > 100000","webhook_ids":[%q]}`, hookID)), http.StatusCreated, "id")
	bkField(t, s.admin("POST", "/api/v1/admin/detectors", fmt.Sprintf(`{"name":"huge order","event_type":"purchase_complete","kind":"threshold",
		"config":{"value":"event.purchase_complete.total_cents","max":1000000},"cooldown_seconds":0,"webhook_ids":[%q]}`, hookID)), http.StatusCreated, "id")
	bkField(t, s.admin("POST", "/api/v1/admin/webhooks/"+hookID+"/test", ""), http.StatusAccepted, "delivery_id")
	bkPoll(t, func() (bool, string) {
		r, d := bkMetric(s, "causality_reaction_rules"), bkMetric(s, "causality_reaction_detectors")
		return r == 1 && d == 1, fmt.Sprintf("the engine runs %v rules and %v detectors, want 1 and 1", r, d)
	})
	// Matches the rule and fires the detector: two more deliveries and an anomaly.
	r := s.ingest("/v1/events/batch", key, "application/json", []byte(`{"events":[{"appId":"shop","deviceId":"d-1",
		"purchaseComplete":{"orderId":"o-1","totalCents":"2500000","currency":"EUR"}}]}`))
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"acceptedCount":1`) {
		t.Fatalf("ingest: %s", r)
	}

	// The original's database, read through the store, once every delivery went out.
	origURL, ok, err := pgembed.Running(cfg.PostgresDir())
	if err != nil || !ok {
		t.Fatalf("find the running embedded PostgreSQL: %v, %v", ok, err)
	}
	orig := bkOpenStore(t, origURL)
	bkPoll(t, func() (bool, string) {
		ds, err := orig.ListDeliveries(t.Context(), store.DeliveryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range ds {
			if d.Status == "succeeded" {
				done++
			}
		}
		return done == 3 && received.Load() == 3, fmt.Sprintf("%d of %d deliveries succeeded, want 3 (receiver got %d)", done, len(ds), received.Load())
	})
	before := bkSnapshot(t, orig)

	file := filepath.Join(t.TempDir(), "causality-backup.zip")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := backup.Backup(ctx, backup.Options{DataDir: cfg.DataDir, PGBinaries: cfg.PGBinaries, Version: "v-e2e", Progress: t.Output()}, file)
	if err != nil {
		t.Fatalf("backup while running: %v", err)
	}
	t.Logf("backup: %+v", res)
	if after := bkSnapshot(t, orig); !bkEqual(t, before, after) {
		t.Fatal("the configuration changed while it was backed up; the comparison below would mean nothing")
	}
	// The appliance kept running through the backup.
	if r := s.do("GET", "/readyz", nil, nil); r.code != http.StatusOK {
		t.Errorf("readyz after the backup: %s", r)
	}
	orig.Close()
	s.stop()

	restored := dataDir(t)
	rres, err := backup.Restore(ctx, backup.Options{DataDir: restored, PGBinaries: cfg.PGBinaries, Version: "v-e2e", Progress: t.Output()}, file)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rres.SchemaVersion != res.SchemaVersion {
		t.Errorf("restored at schema version %d, backed up at %d", rres.SchemaVersion, res.SchemaVersion)
	}
	cfg2 := testConfig(t, restored)
	cfg2.WebhookAllowPrivate = true
	cfg2.AdminPassword = "" // the admin API below works only if the password hash came back
	s2 := start(t, cfg2)

	r = s2.ingest("/v1/events/batch", key, "application/json", []byte(`{"events":[{"appId":"shop","deviceId":"d-2","screenView":{"screenName":"Home"}}]}`))
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"acceptedCount":1`) {
		t.Errorf("the key does not authenticate ingest after the restore: %s", r)
	}
	newURL, ok, err := pgembed.Running(cfg2.PostgresDir())
	if err != nil || !ok {
		t.Fatalf("find the restored appliance's PostgreSQL: %v, %v", ok, err)
	}
	after := bkSnapshot(t, bkOpenStore(t, newURL))
	bkEqual(t, before, after)
	if !strings.Contains(after["webhooks"], `"Secret":"whsec_`) {
		t.Errorf("the webhook's signing secret is not back: %s", after["webhooks"])
	}
	for table, want := range map[string]int{"webhooks": 1, "rules": 1, "detectors": 1, "deliveries": 3, "anomalies": 1} {
		var rows []json.RawMessage
		if err := json.Unmarshal([]byte(after[table]), &rows); err != nil || len(rows) != want {
			t.Errorf("%s after the restore: %d rows, want %d (%v)", table, len(rows), want, err)
		}
	}
	// And through the admin API of the restored appliance.
	if r := s2.admin("GET", "/api/v1/admin/deliveries", ""); r.code != http.StatusOK || strings.Count(string(r.body), `"status":"succeeded"`) != 3 {
		t.Errorf("deliveries after the restore: %s", r)
	}
	if r := s2.admin("GET", "/api/v1/admin/anomalies", ""); r.code != http.StatusOK || !strings.Contains(string(r.body), "threshold") {
		t.Errorf("anomalies after the restore: %s", r)
	}
}

// bkSnapshot is the configuration as the store reads it, as JSON per entity.
func bkSnapshot(t *testing.T, s *store.Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	add := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	webhooks, err := s.ListWebhooks(ctx)
	add("webhooks", webhooks, err)
	rules, err := s.ListRules(ctx)
	add("rules", rules, err)
	detectors, err := s.ListDetectors(ctx)
	add("detectors", detectors, err)
	deliveries, err := s.ListDeliveries(ctx, store.DeliveryFilter{})
	add("deliveries", deliveries, err)
	anomalies, err := s.ListAnomalies(ctx, store.AnomalyFilter{})
	add("anomalies", anomalies, err)
	keys, err := s.ListKeys(ctx, true)
	for i := range keys {
		keys[i].LastUsedAt = nil // touched by ingest
	}
	add("keys", keys, err)
	hash, _, err := s.Setting(ctx, store.SettingAdminPasswordHash)
	add("admin password hash", hash, err)
	return out
}

func bkEqual(t *testing.T, want, got map[string]string) bool {
	t.Helper()
	equal := true
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s differ:\n was %s\n now %s", name, w, got[name])
			equal = false
		}
	}
	return equal
}

func bkOpenStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// bkField checks an admin API answer's code and returns one string field of it.
func bkField(t *testing.T, r response, code int, field string) string {
	t.Helper()
	if r.code != code {
		t.Fatalf("got %s, want %d", r, code)
	}
	v, _ := r.json(t)[field].(string)
	if v == "" {
		t.Fatalf("answer has no %s: %s", field, r)
	}
	return v
}

func bkPoll(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bkMetric reads one unlabelled series from /metrics; -1 when it is absent.
func bkMetric(s *server, name string) float64 {
	r := s.do("GET", "/metrics", nil, nil)
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

// TestBackupCommandsWithTheRealBinary runs `causality backup` as its own process against a
// `causality serve` process (the data dir from the environment, as under systemd), then
// `causality restore` into a used and into a new data dir, and serves the restored one.
func TestBackupCommandsWithTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	dir := dataDir(t)
	p := startProcess(t, dir, freeAddr(t), freeAddr(t))
	key := adminCreateKey(t, p.base)
	run := func(env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(causalityBinary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		t.Logf("causality %s: exit %d\n%s%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), errOut.String(), out.String())
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	file := filepath.Join(t.TempDir(), "b.zip")
	stdout, _, code := run([]string{"CAUSALITY_DATA_DIR=" + dir}, "backup", "--to", file)
	if code != 0 || !regexp.MustCompile(`^backup written to `+regexp.QuoteMeta(file)+` \(\d+ bytes, schema version \d+\)\n$`).MatchString(stdout) {
		t.Fatalf("backup: exit %d, stdout %q", code, stdout)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited

	if _, stderr, code := run(nil, "restore", "--from", file, "--data-dir", dir); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore into the used data dir: exit %d, stderr %q", code, stderr)
	}
	restored := dataDir(t)
	stdout, _, code = run(nil, "restore", "--from", file, "--data-dir", restored)
	if code != 0 || !strings.HasPrefix(stdout, "restored "+file+" into "+restored) {
		t.Fatalf("restore: exit %d, stdout %q", code, stdout)
	}
	p2 := startProcess(t, restored, freeAddr(t), freeAddr(t))
	req, _ := http.NewRequest("POST", p2.base+"/v1/events/batch", strings.NewReader(`{"events":[{"appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}}]}`))
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ingest with the restored key: %d", resp.StatusCode)
	}
}
