package appliance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// causalityBinary builds the real binary once per test run.
func causalityBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "causality-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "causality")
		out, err := exec.Command("go", "build", "-o", binPath, "..").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is `causality serve` running as its own process (and process group).
type proc struct {
	t         *testing.T
	cmd       *exec.Cmd
	base      string
	natsURL   string
	stdout    *bytes.Buffer
	exited    chan struct{}
	exitState *os.ProcessState
}

func startProcess(t *testing.T, dir, httpAddr, natsAddr string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dir, "--http-addr", httpAddr,
		"--admin-password", adminPassword, "--nats-listen", natsAddr, "--log-level", "warn"}, extra...)
	cmd := exec.Command(causalityBinary(t), args...)
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, base: "http://" + httpAddr, natsURL: "nats://" + natsAddr, stdout: &out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); p.exitState = cmd.ProcessState; close(p.exited) }()
	t.Cleanup(func() { p.signalGroup(syscall.SIGKILL); <-p.exited })
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("causality exited during start: %v\n%s", p.exitState, out.String())
		default:
		}
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("causality not ready after 90s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *proc) signalGroup(sig syscall.Signal) { _ = syscall.Kill(-p.cmd.Process.Pid, sig) }

// load sends batches of unique events until stop is closed and returns the ids the server
// acknowledged as stored.
func load(t *testing.T, base, key string, stop <-chan struct{}) (acked []string) {
	client := &http.Client{Timeout: 15 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return acked
		default:
		}
		prefix := fmt.Sprintf("k%d", n)
		req, _ := http.NewRequest("POST", base+"/v1/events/batch", bytes.NewReader(minimalBatch("shop", prefix, 100)))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			continue // the server died mid-request: nothing was promised
		}
		var body struct {
			Results []struct {
				EventID string `json:"eventId"`
				Status  string `json:"status"`
			} `json:"results"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			continue
		}
		for _, r := range body.Results {
			if r.Status == "accepted" || r.Status == "duplicate" {
				acked = append(acked, r.EventID)
			}
		}
	}
}

func adminCreateKey(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/admin/keys", strings.NewReader(`{"app_id":"shop","name":"crash"}`))
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct{ Key string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || k.Key == "" {
		t.Fatalf("create key: %d %v", resp.StatusCode, err)
	}
	return k.Key
}

// TestKillNineLosesNothing kills the real binary with SIGKILL under load, twice (the
// process alone, then its whole process group including Postgres), restarts it on the
// same data dir each time, and checks that every event acknowledged to a client is in the
// stream exactly once. A last round stops it with SIGTERM, which must drain and exit 0.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	dir := dataDir(t)
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	p := startProcess(t, dir, httpAddr, natsAddr)
	key := adminCreateKey(t, p.base)

	var acked []string
	rounds := []struct {
		name string
		stop func(p *proc)
	}{
		{"SIGKILL the process", func(p *proc) { _ = p.cmd.Process.Kill() }},
		{"SIGKILL the process group, Postgres included", func(p *proc) { p.signalGroup(syscall.SIGKILL) }},
		{"SIGTERM", func(p *proc) { _ = p.cmd.Process.Signal(syscall.SIGTERM) }},
	}
	for _, round := range rounds {
		stop := make(chan struct{})
		done := make(chan []string)
		go func() { done <- load(t, p.base, key, stop) }()
		time.Sleep(1500 * time.Millisecond)
		round.stop(p)
		select {
		case <-p.exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: process did not exit", round.name)
		}
		close(stop)
		got := <-done
		if len(got) == 0 {
			t.Fatalf("%s: no event was acknowledged before the stop", round.name)
		}
		acked = append(acked, got...)
		if round.name == "SIGTERM" {
			if code := p.exitState.ExitCode(); code != 0 {
				t.Fatalf("SIGTERM: exit code %d, want 0\n%s", code, p.stdout)
			}
		}
		t.Logf("%s: %d events acknowledged so far", round.name, len(acked))
		p = startProcess(t, dir, httpAddr, natsAddr)
	}

	stored := map[string]int{}
	for _, ev := range readStream(t, p.natsURL) {
		stored[ev.GetId()]++
	}
	for id, n := range stored {
		if n > 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	missing := 0
	for _, id := range acked {
		if stored[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are missing from the stream", missing, len(acked))
	}
}
