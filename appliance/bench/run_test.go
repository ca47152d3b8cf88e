package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// fakeAPI answers like the ingest API: it checks the key, un-gzips, decodes with the
// appliance's own decoders, validates, and answers accepted_count (batch, 200) or a status
// (single, 202) in the request's format. An id it saw before is answered "duplicate".
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	seen    map[string]bool
	reqs    int
	events  int
	status  func(n int) int // optional: the status of request n (1-based); 0 = normal
	onReq   func(n int)     // optional: called with each request's number
	invalid int
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, seen: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs++
	if f.onReq != nil {
		f.onReq(f.reqs)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-API-Key") != "k1" {
		http.Error(w, `{"error":"unknown or revoked API key"}`, http.StatusUnauthorized)
		return
	}
	if f.status != nil {
		if code := f.status(f.reqs); code != 0 {
			http.Error(w, `{"error":"slow down"}`, code)
			return
		}
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			f.t.Errorf("gzip body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	ctype := r.Header.Get("Content-Type")
	var evs []*causalityv1.EventEnvelope
	switch r.URL.Path {
	case "/v1/events/batch":
		req, err := event.DecodeBatch(ctype, body)
		if err != nil {
			f.t.Errorf("DecodeBatch: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		evs = req.GetEvents()
	case "/v1/events/ingest":
		req, err := event.DecodeSingle(ctype, body)
		if err != nil {
			f.t.Errorf("DecodeSingle: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		evs = []*causalityv1.EventEnvelope{req.GetEvent()}
	default:
		http.NotFound(w, r)
		return
	}
	v, _ := event.NewValidator()
	resp := &causalityv1.IngestEventBatchResponse{}
	for i, e := range evs {
		res := &causalityv1.EventResult{Index: int32(i), EventId: e.GetId(), Status: "accepted"}
		if err := v.Validate(e); err != nil {
			f.invalid++
		}
		if f.seen[e.GetId()] {
			res.Status = "duplicate"
		}
		f.seen[e.GetId()] = true
		resp.Results = append(resp.Results, res)
		resp.AcceptedCount++
	}
	f.events += len(evs)
	if r.URL.Path == "/v1/events/ingest" {
		out, ct, _ := event.EncodeResponse(ctype, &causalityv1.IngestEventResponse{EventId: evs[0].GetId(), Status: resp.Results[0].Status})
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusAccepted)
		w.Write(out)
		return
	}
	out, ct, _ := event.EncodeResponse(ctype, resp)
	w.Header().Set("Content-Type", ct)
	w.Write(out)
}

func (f *fakeAPI) counts() (reqs, events, ids int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs, f.events, len(f.seen)
}

func testConfig(url string) Config {
	return Config{
		Target: "http", URL: url, Key: "k1", App: "bench", Mode: "batch", BatchSize: 20,
		Concurrency: 4, Duration: 500 * time.Millisecond, Format: "json", UniqueIDs: true,
		Timeout: 10 * time.Second, Sync: "interval",
	}
}

func TestRunHTTPCountsMatchServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		format string
		gzip   bool
	}{
		{"batch json", "batch", "json", false},
		{"batch json gzip", "batch", "json", true},
		{"batch proto gzip", "batch", "proto", true},
		{"single json", "single", "json", false},
		{"single proto", "single", "proto", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeAPI(t)
			c := testConfig(srv.URL)
			c.Mode, c.Format, c.Gzip = tc.mode, tc.format, tc.gzip
			began := time.Now()
			rep, err := Run(context.Background(), c, io.Discard)
			took := time.Since(began)
			if err != nil {
				t.Fatal(err)
			}
			reqs, events, ids := f.counts()
			per := int64(c.eventsPerRequest())
			// Every request but the preflight was measured (no warmup).
			if rep.Requests != int64(reqs-1) || rep.Requests == 0 {
				t.Fatalf("report: %d requests; server saw %d (one is the preflight)", rep.Requests, reqs)
			}
			if rep.EventsSent != rep.Requests*per || rep.EventsAccepted != int64(events)-per {
				t.Errorf("events sent %d accepted %d; server took %d (minus %d of the preflight)", rep.EventsSent, rep.EventsAccepted, events, per)
			}
			if ids != events || rep.Duplicates != 0 || f.invalid != 0 {
				t.Errorf("server saw %d events with %d distinct ids, %d invalid; report %d duplicates", events, ids, f.invalid, rep.Duplicates)
			}
			ok := rep.Status["200"]
			if tc.mode == "single" {
				ok = rep.Status["202"]
			}
			if ok != rep.Requests || rep.Latency.Count != uint64(rep.Requests) || rep.FirstError != "" {
				t.Errorf("status %v, latency count %d, first error %q", rep.Status, rep.Latency.Count, rep.FirstError)
			}
			if rep.ElapsedSeconds < c.Duration.Seconds() || took < c.Duration || took > c.Duration+30*time.Second {
				t.Errorf("measured %.3fs, ran %s, for --duration %s", rep.ElapsedSeconds, took, c.Duration)
			}
			if rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
				t.Errorf("latency %+v", rep.Latency)
			}
		})
	}
}

func TestRunHTTPRateIsOpenLoop(t *testing.T) {
	f, srv := newFakeAPI(t)
	c := testConfig(srv.URL)
	c.Rate, c.Duration, c.Warmup = 100, time.Second, 200*time.Millisecond
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _, _ := f.counts()
	// The schedule holds exactly 100 requests in the measured second and 20 in the warmup;
	// each is either sent or, if the workers fell behind, counted as backlog.
	if rep.Requests+rep.Backlog != 100 || rep.Requests == 0 {
		t.Fatalf("requests %d + backlog %d, want 100 scheduled", rep.Requests, rep.Backlog)
	}
	// The warmup's 20 were sent too (unless a stall pushed some past the end) but not counted.
	if warm := int64(reqs) - 1 - rep.Requests; warm < 0 || warm > 20 {
		t.Errorf("server saw %d requests: preflight, %d measured and %d more, want at most the 20 of the warmup", reqs, rep.Requests, warm)
	}
	if rep.Service == nil || rep.Service.Count != rep.Latency.Count {
		t.Errorf("with a rate the service time is reported too: %+v", rep.Service)
	}
}

func TestRunHTTPWarmupNotCounted(t *testing.T) {
	f, srv := newFakeAPI(t)
	c := testConfig(srv.URL)
	c.Warmup, c.Duration, c.Rate = 300*time.Millisecond, 300*time.Millisecond, 200
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _, _ := f.counts()
	// 60 requests are due in the warmup and 60 in the window; only the window's count.
	if warm := int64(reqs) - 1 - rep.Requests; warm <= 0 || warm > 60 || rep.Requests+rep.Backlog != 60 {
		t.Errorf("server %d requests, report %d + backlog %d; want 1 + up to 60 warmup + measured of 60", reqs, rep.Requests, rep.Backlog)
	}
}

func TestRunHTTPCountsErrorStatuses(t *testing.T) {
	f, srv := newFakeAPI(t)
	f.status = func(n int) int {
		switch {
		case n == 1:
			return 0 // the preflight
		case n%3 == 0:
			return http.StatusTooManyRequests
		case n%3 == 1:
			return http.StatusServiceUnavailable
		}
		return 0
	}
	c := testConfig(srv.URL)
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Status
	if s["429"] == 0 || s["503"] == 0 || s["200"] == 0 || s["429"]+s["503"]+s["200"] != rep.Requests {
		t.Fatalf("status %v over %d requests", s, rep.Requests)
	}
	if rep.EventsAccepted != s["200"]*int64(c.BatchSize) || rep.Latency.Count != uint64(s["200"]) {
		t.Errorf("accepted %d, latency samples %d, for %d answers 200", rep.EventsAccepted, rep.Latency.Count, s["200"])
	}
	if !strings.Contains(rep.FirstError, "slow down") {
		t.Errorf("first error %q", rep.FirstError)
	}
}

func TestRunHTTPPreflightFails(t *testing.T) {
	_, srv := newFakeAPI(t)
	c := testConfig(srv.URL)
	c.Key = "wrong"
	_, err := Run(context.Background(), c, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("err = %v, want the server's 401 message", err)
	}
	srv.Close()
	c.Key = "k1"
	if _, err := Run(context.Background(), c, io.Discard); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("err = %v, want a hint that no server runs there", err)
	}
}

func TestRunHTTPInterrupted(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onReq = func(n int) {
		if n == 20 {
			cancel() // like ^C in the middle of a run
		}
	}
	c := testConfig(srv.URL)
	c.Duration = time.Hour
	done := make(chan struct{})
	var rep *Report
	var err error
	go func() {
		defer close(done)
		rep, err = Run(ctx, c, io.Discard)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s of its context's end")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Requests < 18 { // every answered request counts, in flight included
		t.Fatalf("interrupted %v, %d requests", rep.Interrupted, rep.Requests)
	}
}

func TestProgressAndReport(t *testing.T) {
	_, srv := newFakeAPI(t)
	c := testConfig(srv.URL)
	c.ProgressEvery = 100 * time.Millisecond
	c.RSSPID = 0
	var logw bytes.Buffer
	rep, err := Run(context.Background(), c, &syncWriter{w: &logw})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logw.String(), "events/s") {
		t.Errorf("no progress line in %q", logw.String())
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"machine: ", "p99.9", "429: 0", "transport: 0", "requests "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestParseResponses(t *testing.T) {
	resp := &causalityv1.IngestEventBatchResponse{AcceptedCount: 3, RejectedCount: 1, Results: []*causalityv1.EventResult{
		{Index: 0, EventId: "a", Status: "accepted"}, {Index: 1, EventId: "b", Status: "duplicate"},
		{Index: 2, EventId: "c", Status: "rejected", Error: "device_id: must not be empty"}, {Index: 3, EventId: "d", Status: "duplicate"},
	}}
	for _, ct := range []string{event.ContentTypeJSON, event.ContentTypeProtobuf} {
		body, _, err := event.EncodeResponse(ct, resp)
		if err != nil {
			t.Fatal(err)
		}
		acc, dups, ok := parseBatchResponse(body, ct != event.ContentTypeJSON)
		if !ok || acc != 3 || dups != 2 {
			t.Errorf("%s: accepted %d dups %d ok %v", ct, acc, dups, ok)
		}
		zero, _, _ := event.EncodeResponse(ct, &causalityv1.IngestEventBatchResponse{RejectedCount: 2})
		if acc, _, ok := parseBatchResponse(zero, ct != event.ContentTypeJSON); !ok || acc != 0 {
			t.Errorf("%s: zero accepted read as %d, %v", ct, acc, ok)
		}
		single, _, _ := event.EncodeResponse(ct, &causalityv1.IngestEventResponse{EventId: "x", Status: "duplicate"})
		if acc, dups, ok := parseSingleResponse(single, ct != event.ContentTypeJSON); !ok || acc != 1 || dups != 1 {
			t.Errorf("%s single: %d %d %v", ct, acc, dups, ok)
		}
	}
	if _, _, ok := parseBatchResponse([]byte(`{"error":"x"}`), false); ok {
		t.Error("an error body parsed as a batch answer")
	}
}

func TestParseFlags(t *testing.T) {
	env := func(k string) string {
		if k == "CAUSALITY_BENCH_KEY" {
			return "from-env"
		}
		return ""
	}
	c, err := ParseFlags([]string{"--mode", "single", "--rate", "2000", "--rss-pid", "self"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Key != "from-env" || c.Mode != "single" || c.Rate != 2000 || c.RSSPID == 0 || c.BatchSize != 100 || !c.UniqueIDs {
		t.Errorf("config %+v", c)
	}
	if _, err := ParseFlags([]string{"-h"}, env, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for args, want := range map[string]string{
		"--batch-size 0":                 "--batch-size",
		"--target jetstream --gzip":      "--gzip applies",
		"--mode many":                    "--mode",
		"--url ftp://x":                  "--url",
		"--target kafka":                 "--target",
		"--sync always":                  "--sync applies",
		"--target jetstream --sync none": "--sync",
	} {
		if _, err := ParseFlags(strings.Fields(args), env, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to name %s", args, err, want)
		}
	}
	if _, err := ParseFlags(nil, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Errorf("no key: %v", err)
	}
	if err := Main(context.Background(), []string{"--help"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Main --help: %v", err)
	}
}

func TestRunJetStream(t *testing.T) {
	c := Config{
		Target: "jetstream", App: "bench", Mode: "batch", BatchSize: 50, Concurrency: 2,
		Duration: time.Second, Timeout: 10 * time.Second, UniqueIDs: true, Sync: "interval",
		StoreDir: t.TempDir(),
	}
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsAccepted == 0 || rep.Status["acked"] != rep.Requests || rep.Duplicates != 0 {
		t.Fatalf("accepted %d, status %v, %d requests, %d duplicates, first error %q", rep.EventsAccepted, rep.Status, rep.Requests, rep.Duplicates, rep.FirstError)
	}
	if rep.Store == nil || rep.Store.Messages != uint64(rep.EventsAccepted) {
		t.Errorf("stream holds %+v, want the %d accepted events", rep.Store, rep.EventsAccepted)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Logf("\n%s", out.String())
}

func TestRunJetStreamWithReaders(t *testing.T) {
	c := Config{
		Target: "jetstream", App: "bench", Mode: "batch", BatchSize: 50, Concurrency: 2,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Timeout: 10 * time.Second,
		UniqueIDs: true, Sync: "interval", StoreDir: t.TempDir(), Readers: 2,
	}
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rd := rep.Readers
	if rd == nil || rd.Count != 2 || rd.Error != "" {
		t.Fatalf("readers %+v", rd)
	}
	// The readers must have kept pace with a good part of the load, and the stream's own
	// consumer records must show every stored event read and acknowledged by both.
	if rd.EventsPerSec < rep.EventsPerSec/4 {
		t.Errorf("slowest reader %.0f events/s against %.0f published", rd.EventsPerSec, rep.EventsPerSec)
	}
	b, err := openBus(context.Background(), c.StoreDir, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{"bench-reader-1", "bench-reader-2"} {
		cons, err := b.JetStream().Consumer(context.Background(), bus.StreamName, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != rep.Store.Messages || info.NumAckPending != 0 || info.NumPending != 0 {
			t.Errorf("%s: ack floor %d, %d unacknowledged, %d unread; stream has %d", name, info.AckFloor.Stream, info.NumAckPending, info.NumPending, rep.Store.Messages)
		}
	}
	if _, err := ParseFlags([]string{"--url", "http://x", "--key", "k", "--readers", "2"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "--readers") {
		t.Errorf("--readers with the http target: %v", err)
	}
}

func TestRunJetStreamRepeatedIDsAreDuplicates(t *testing.T) {
	c := Config{
		Target: "jetstream", App: "bench", Mode: "single", BatchSize: 1, Concurrency: 2,
		Duration: 500 * time.Millisecond, Rate: 1000, Timeout: 10 * time.Second, Sync: "interval",
		StoreDir: t.TempDir(), UniqueIDs: false,
	}
	rep, err := Run(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The pool holds 256 events and up to 500 publishes are scheduled: whatever went past
	// the pool was a duplicate, and the stream stored each event once.
	if rep.Store.Messages > 256 || rep.Store.Messages != uint64(rep.EventsAccepted-rep.Duplicates) {
		t.Errorf("stream %d messages; accepted %d of which %d duplicates", rep.Store.Messages, rep.EventsAccepted, rep.Duplicates)
	}
}
