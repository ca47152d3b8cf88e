package appliance_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/warehouse/laketest"
)

// TestKillNineWarehouseExactlyOnce kills the real binary again and again
// under load, at random moments and with files flushed every 200ms, so that
// some kills land between a Parquet file becoming visible and its events
// being acknowledged. After a last clean restart it waits for the sink to
// catch up and has DuckDB read the lake: every event the stream holds is in
// the lake exactly once, and so is every event acknowledged to a client.
func TestKillNineWarehouseExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	laketest.EnsureInstalled(t)
	dir := dataDir(t)
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	flags := []string{"--flush-interval", "200ms", "--flush-max-events", "700"}
	p := startProcess(t, dir, httpAddr, natsAddr, flags...)
	key := adminCreateKey(t, p.base)

	const rounds = 6
	p, acked := killUnderLoad(t, p, key, rounds, func() *proc { return startProcess(t, dir, httpAddr, natsAddr, flags...) })
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}
	t.Logf("%d events acknowledged across %d kills", len(acked), rounds)

	// Events a killed run held unacknowledged come back after the ack wait
	// (2 x flush interval + 1 min), so catching up can take that long.
	waitLagZero(t, p.base, 3*time.Minute)

	root := filepath.Join(dir, "warehouse")
	inLake := map[string]int{}
	for _, id := range laketest.IDs(t, root) {
		inLake[id]++
	}
	for id, n := range inLake {
		if n != 1 {
			t.Errorf("event %s is in the lake %d times", id, n)
		}
	}
	stream := readStream(t, p.natsURL)
	for _, ev := range stream {
		if inLake[ev.GetId()] == 0 {
			t.Errorf("event %s is in the stream but not in the lake", ev.GetId())
		}
	}
	if len(inLake) != len(stream) {
		t.Errorf("lake holds %d distinct events, stream %d", len(inLake), len(stream))
	}
	missing := 0
	for _, id := range acked {
		if inLake[id] != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are not in the lake exactly once", missing, len(acked))
	}
	// Some kill must have hit the window the ledger exists for, or this
	// test proves less than it claims; report how often it did.
	t.Logf("redelivered events recognised as already written: %v", metric(t, p.base, "causality_warehouse_redelivered_skipped_total"))
}

// waitLagZero polls /metrics until the warehouse has written everything.
func waitLagZero(t *testing.T, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		lag := metric(t, base, "causality_warehouse_consumer_lag")
		buffered := metric(t, base, "causality_warehouse_buffered_events")
		if lag == 0 && buffered == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("warehouse lag %v, buffered %v after %s", lag, buffered, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// metric reads one unlabelled-or-single-series value from /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// With the warehouse unreachable the appliance still starts and takes
// events (they wait in the stream), and /readyz says what is wrong.
func TestUnreachableWarehouseDegradesButIngests(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.WarehouseURL = "s3://lake/events"
	cfg.S3Endpoint = freeAddr(t) // nothing listens there
	cfg.S3Insecure = true
	cfg.S3AccessKey, cfg.S3SecretKey = "causality", "causality-secret"
	cfg.FlushInterval = 200 * time.Millisecond
	s := start(t, cfg)
	key := s.createKey("shop", "")
	if r := s.ingest("/v1/events/batch", key, "application/json", minimalBatch("shop", "degraded", 10)); r.code != http.StatusOK {
		t.Fatalf("ingest with the warehouse down: %s", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.do("GET", "/readyz", nil, nil)
		body := r.json(t)
		checks, _ := body["checks"].(map[string]any)
		if r.code == http.StatusOK && body["status"] == "degraded" && strings.Contains(fmt.Sprint(checks["warehouse"]), "failing since") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never reported the warehouse: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lag := metric(t, s.base, "causality_warehouse_consumer_lag"); lag != 10 {
		t.Errorf("warehouse lag %v, want the 10 events kept in the stream", lag)
	}
}

// killUnderLoad sends batches of events to p while killing it with SIGKILL at random
// moments, rounds times (the process alone, then its whole group with Postgres, in turn),
// restarting it on the same data dir after each kill. It returns the restarted process and
// the ids of every event acknowledged to the client.
func killUnderLoad(t *testing.T, p *proc, key string, rounds int, restart func() *proc) (*proc, []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(rounds)))
	var acked []string
	for round := range rounds {
		stop := make(chan struct{})
		done := make(chan []string)
		go func() { done <- load(t, p.base, key, stop) }()
		time.Sleep(time.Duration(700+rng.IntN(1500)) * time.Millisecond)
		if round%2 == 0 {
			_ = p.cmd.Process.Kill()
		} else {
			p.signalGroup(syscall.SIGKILL) // Postgres too
		}
		select {
		case <-p.exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: process did not exit", round)
		}
		close(stop)
		acked = append(acked, <-done...)
		p = restart()
	}
	return p, acked
}
