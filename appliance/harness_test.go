package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance"
	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/pgembed"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestMain(m *testing.M) {
	// The embedded Postgres runs under a supervisor that re-executes this test binary.
	if pgembed.IsSupervisor() {
		os.Exit(pgembed.RunSupervisor())
	}
	os.Exit(m.Run())
}

const adminPassword = "correct horse battery"

// dataDir makes a data dir that the unprivileged Postgres account can reach when the tests
// run as root (t.TempDir is 0700).
func dataDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "data")
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testConfig is what `causality serve` would parse from no flags, pointed at a test dir.
func testConfig(t testing.TB, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]string{
		"--data-dir", dir,
		"--http-addr", "127.0.0.1:0",
		"--admin-password", adminPassword,
		"--nats-listen", freeAddr(t),
		"--shutdown-timeout", "20s",
	}, func(k string) (string, bool) {
		if k == "CAUSALITY_PG_BINARIES" { // lets a developer without the bundle point at binaries
			return os.LookupEnv(k)
		}
		return "", false
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// server is one running appliance under test.
type server struct {
	t    testing.TB
	app  *appliance.Appliance
	cfg  *config.Config
	base string
	out  *bytes.Buffer
}

func start(t testing.TB, cfg *config.Config) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := appliance.New(cfg, log, out)
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start appliance: %v", err)
	}
	s := &server{t: t, app: a, cfg: cfg, base: "http://" + a.Addr().String(), out: out}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.app.Stop(ctx); err != nil {
		s.t.Errorf("stop: %v", err)
	}
	s.app = nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// response is an HTTP answer with its body read.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", r.code, r.body)
	}
	return m
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

func (s *server) do(method, path string, body []byte, header map[string]string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (s *server) admin(method, path, body string) response {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.SetBasicAuth("admin", adminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// createKey makes an API key through the admin API and returns it.
func (s *server) createKey(app string, extra string) string {
	s.t.Helper()
	r := s.admin("POST", "/api/v1/admin/keys", fmt.Sprintf(`{"app_id":%q,"name":"test"%s}`, app, extra))
	if r.code != http.StatusCreated {
		s.t.Fatalf("create key: %s", r)
	}
	key, _ := r.json(s.t)["key"].(string)
	if key == "" {
		s.t.Fatalf("create key answered no key: %s", r)
	}
	return key
}

func (s *server) ingest(path, key, ctype string, body []byte) response {
	s.t.Helper()
	return s.do("POST", path, body, map[string]string{"X-API-Key": key, "Content-Type": ctype})
}

// stored reads every event in the EVENTS stream through the NATS listener, as a tool would.
func (s *server) stored() []*causalityv1.EventEnvelope {
	s.t.Helper()
	return readStream(s.t, "nats://"+s.cfg.NATSListen)
}

func readStream(t testing.TB, url string) []*causalityv1.EventEnvelope {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*causalityv1.EventEnvelope
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev causalityv1.EventEnvelope
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("stored message %s is not an EventEnvelope: %v", m.Subject(), err)
			}
			if m.Headers().Get(bus.HeaderReceivedAt) == "" {
				t.Errorf("stored message %s has no %s header", m.Subject(), bus.HeaderReceivedAt)
			}
			out = append(out, &ev)
		}
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d stored events before timeout", len(out), info.State.Msgs)
		}
	}
	return out
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
