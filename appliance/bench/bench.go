// Package bench is `causality bench`: a load generator against a running server's ingest
// API, and the baseline it is judged against, a bare JetStream publish of the same events
// through the appliance's own bus code in an embedded server.
//
// It is built to stay out of the way of what it measures on a small machine: request
// bodies are encoded before the run (ids are patched into fixed-width slots), connections
// are kept alive, answers are scanned rather than decoded, and each worker keeps its own
// tallies. Latency goes into log-linear histograms (within 0.8%), and the report names the
// machine it ran on.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/causality-io/causality/appliance/event"
)

// Config is one run's settings (the flags of `causality bench`).
type Config struct {
	Target      string // http or jetstream
	URL         string
	Key         string
	App         string
	Mode        string // batch or single
	BatchSize   int
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Rate        float64 // requests/s over all workers; 0 = as fast as possible
	Format      string  // json or proto
	Gzip        bool
	UniqueIDs   bool
	Timeout     time.Duration
	Sync        string // jetstream target: interval or always
	StoreDir    string // jetstream target: where the stream lives; "" = a temp dir
	Readers     int    // jetstream target: explicit-ack consumers draining the stream
	RSSPID      int    // 0: none
	JSON        bool

	// ProgressEvery is the period of progress lines on stderr (5s; tests shorten it).
	ProgressEvery time.Duration
}

// Main runs `causality bench` with args (without the command name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := ParseFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	rep, err := Run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

// ParseFlags reads the flags; --key defaults to $CAUSALITY_BENCH_KEY. -h returns
// flag.ErrHelp after printing the usage.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: causality bench [flags]

Sends events to a running causality server (--target http) or, as a baseline, publishes
the same events to an embedded JetStream through the appliance's bus code (--target
jetstream), then prints throughput, latency percentiles and status counts.

`)
		fs.PrintDefaults()
	}
	var rss string
	fs.StringVar(&c.Target, "target", "http", "what to load: http (a running server) or jetstream (bare embedded JetStream baseline)")
	fs.StringVar(&c.URL, "url", "http://localhost:8080", "base URL of the server")
	fs.StringVar(&c.Key, "key", getenv("CAUSALITY_BENCH_KEY"), "API key of the app, sent as X-API-Key (default $CAUSALITY_BENCH_KEY)")
	fs.StringVar(&c.App, "app", "bench", "app_id put in the events (the key's app)")
	fs.StringVar(&c.Mode, "mode", "batch", "batch (POST /v1/events/batch) or single (POST /v1/events/ingest, one event per request)")
	fs.IntVar(&c.BatchSize, "batch-size", 100, "events per batch request (1 to 1000)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "concurrent workers, each with its own connection")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to measure, after the warmup")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before measuring, not counted")
	fs.Float64Var(&c.Rate, "rate", 0, "target requests/s over all workers, on an open-loop schedule (latency counts from the scheduled time); 0 = as fast as possible")
	fs.StringVar(&c.Format, "format", "json", "body encoding: json or proto")
	fs.BoolVar(&c.Gzip, "gzip", false, "send bodies with Content-Encoding: gzip")
	fs.BoolVar(&c.UniqueIDs, "unique-ids", true, "give every event a fresh id; false repeats a fixed pool, so after its first pass every event is a duplicate")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&c.Sync, "sync", "interval", "jetstream target: interval or always (fsync every write, like serve --nats-sync=always)")
	fs.StringVar(&c.StoreDir, "store-dir", "", "jetstream target: directory for the stream (default: a new temp dir, removed after); put it on the disk of serve's --data-dir to compare like with like")
	fs.IntVar(&c.Readers, "readers", 0, "jetstream target: durable explicit-ack consumers that read and ack every event while the load runs, as the warehouse and reaction consumers do (2 gives the ceiling of the whole pipeline)")
	fs.StringVar(&rss, "rss-pid", "", "sample this process's RSS every second and its CPU while measuring (a pid, or self)")
	fs.BoolVar(&c.JSON, "json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (causality bench takes flags only)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch rss {
	case "":
	case "self":
		c.RSSPID = os.Getpid()
	default:
		pid, err := strconv.Atoi(rss)
		if err != nil || pid <= 0 {
			return c, fmt.Errorf("--rss-pid %q: want a process id or self", rss)
		}
		c.RSSPID = pid
	}
	c.ProgressEvery = 5 * time.Second
	if c.Target == "jetstream" {
		for _, name := range []string{"url", "key", "format", "gzip"} {
			if set[name] {
				return c, fmt.Errorf("--%s applies to --target http only (the jetstream target publishes binary envelopes in process)", name)
			}
		}
	} else {
		for _, name := range []string{"sync", "store-dir", "readers"} {
			if set[name] {
				return c, fmt.Errorf("--%s applies to --target jetstream only", name)
			}
		}
	}
	return c, c.Validate()
}

// Validate checks the settings; its errors name the flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Target {
	case "http":
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("--url %q: want http://host:port or https://host:port", c.URL)
		}
		if c.Key == "" {
			bad("--key is required for --target http (or set CAUSALITY_BENCH_KEY); create one in the admin UI under API keys")
		}
		if c.Format != "json" && c.Format != "proto" {
			bad("--format %q: want json or proto", c.Format)
		}
	case "jetstream":
		if c.Sync != "interval" && c.Sync != "always" {
			bad("--sync %q: want interval or always", c.Sync)
		}
		if c.Readers < 0 || c.Readers > 8 {
			bad("--readers %d: want 0 to 8", c.Readers)
		}
	default:
		bad("--target %q: want http or jetstream", c.Target)
	}
	if c.App == "" {
		bad("--app must not be empty")
	}
	if c.Mode != "batch" && c.Mode != "single" {
		bad("--mode %q: want batch or single", c.Mode)
	}
	if c.BatchSize < 1 || c.BatchSize > event.MaxBatchEvents {
		bad("--batch-size %d: want 1 to %d", c.BatchSize, event.MaxBatchEvents)
	}
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		bad("--concurrency %d: want 1 to 10000", c.Concurrency)
	}
	if c.Duration <= 0 {
		bad("--duration %s: must be positive", c.Duration)
	}
	if c.Warmup < 0 {
		bad("--warmup %s: must not be negative", c.Warmup)
	}
	if c.Rate < 0 {
		bad("--rate %g: must not be negative", c.Rate)
	}
	if c.Timeout <= 0 {
		bad("--timeout %s: must be positive", c.Timeout)
	}
	return errors.Join(errs...)
}

// eventsPerRequest is how many events one request carries.
func (c Config) eventsPerRequest() int {
	if c.Mode == "single" {
		return 1
	}
	return c.BatchSize
}

// poolBodies is how many distinct bodies to pre-build: enough for variety (about 8k
// events), bounded so that building them stays well under a second.
func (c Config) poolBodies() int {
	return min(max(8192/c.eventsPerRequest(), 8), 256)
}

// Run performs the benchmark and returns its report. Progress and notes go to logw. A
// cancelled ctx ends the run early; the report then covers what was measured.
func Run(ctx context.Context, c Config, logw io.Writer) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var rid [4]byte
	_, _ = rand.Read(rid[:])
	opts := bodyOptions{
		app: c.App, runID: hex.EncodeToString(rid[:]), single: c.Mode == "single",
		batchSize: c.BatchSize, bodies: c.poolBodies(), proto: c.Format == "proto",
		gzip: c.Gzip, unique: c.UniqueIDs,
	}
	gen := newEventGen(c.App, 1, time.Now())
	rep := &Report{
		Mode: c.Mode, EventsPerRequest: c.eventsPerRequest(), Concurrency: c.Concurrency,
		UniqueIDs: c.UniqueIDs, RateTarget: c.Rate, DurationSeconds: c.Duration.Seconds(),
		WarmupSeconds: c.Warmup.Seconds(), Machine: thisMachine(),
	}
	lc := loadConfig{
		duration: c.Duration, warmup: c.Warmup, rate: c.Rate,
		progressEvery: c.ProgressEvery, progress: logw,
	}
	var (
		senders []sender
		after   func() // runs after the load, before the report is final
	)
	switch c.Target {
	case "http":
		rep.Format, rep.Gzip = c.Format, c.Gzip
		built := time.Now()
		bodies, err := buildBodies(gen, opts)
		if err != nil {
			return nil, err
		}
		plain, wire := bodies.Sizes()
		rep.Body = &BodyInfo{Distinct: bodies.Len(), PlainBytes: plain, WireBytes: wire}
		fmt.Fprintf(logw, "bench: %d bodies of %d events built in %s (%d B each, %d B on the wire)\n",
			bodies.Len(), bodies.EventsPerBody(), time.Since(built).Round(time.Millisecond), plain, wire)
		path := "/v1/events/batch"
		if c.Mode == "single" {
			path = "/v1/events/ingest"
		}
		target := strings.TrimRight(c.URL, "/") + path
		rep.Target = target
		client := newHTTPClient(c.Concurrency, c.Timeout)
		defer client.CloseIdleConnections()
		reqCtx, cancel := graceful(ctx, interruptGrace)
		defer cancel()
		for range c.Concurrency {
			s, err := newHTTPSender(reqCtx, client, target, c.Key, bodies, c.Mode == "batch")
			if err != nil {
				return nil, err
			}
			senders = append(senders, s)
		}
		if err := preflight(senders[0].(*httpSender), target); err != nil {
			return nil, err
		}
		lc.statuses = len(httpStatuses)
		rep.statusNames = httpStatuses
	case "jetstream":
		rep.Target = "jetstream"
		rep.Format = "proto"
		dir := c.StoreDir
		if dir == "" {
			d, err := os.MkdirTemp("", "causality-bench-js-")
			if err != nil {
				return nil, fmt.Errorf("jetstream store: %w", err)
			}
			defer os.RemoveAll(d)
			dir = d
		}
		rep.Store = &StoreInfo{Dir: dir, FS: fsType(dir), Sync: c.Sync}
		log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
		b, err := openBus(ctx, dir, c.Sync == "always", log)
		if err != nil {
			return nil, fmt.Errorf("jetstream target: %w", err)
		}
		defer b.Close()
		msgs, err := buildMessages(gen, opts)
		if err != nil {
			return nil, err
		}
		pubCtx, cancel := graceful(ctx, interruptGrace)
		defer cancel()
		for range c.Concurrency {
			senders = append(senders, newJSSender(pubCtx, b, msgs, c.Timeout))
		}
		lc.statuses = len(jsStatuses)
		rep.statusNames = jsStatuses
		var watch *readerWatch
		if c.Readers > 0 {
			rd, err := startReaders(ctx, b, c.Readers)
			if err != nil {
				return nil, fmt.Errorf("jetstream target: %w", err)
			}
			defer rd.stop()
			watch = watchReaders(rd, c.Warmup)
		}
		after = func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if watch != nil {
				rep.Readers = watch.finish(context.WithoutCancel(ctx))
			}
			if st, err := b.State(sctx); err == nil {
				rep.Store.Messages, rep.Store.Bytes = st.Messages, st.Bytes
			}
		}
	}

	fmt.Fprintf(logw, "bench: %s, %d workers, warmup %s, then %s\n", rep.Target, c.Concurrency, c.Warmup, c.Duration)
	var sampler *rssSampler
	if c.RSSPID > 0 {
		var err error
		if sampler, err = startRSS(c.RSSPID, c.Warmup, time.Second); err != nil {
			return nil, err
		}
	}
	self := startCPUAfter(c.Warmup)
	res := runLoad(ctx, lc, senders)
	rep.ClientCPUCores = self.cores()
	if sampler != nil {
		rep.Process = sampler.finish()
	}
	if after != nil {
		after()
	}
	rep.fill(res)
	return rep, nil
}

// interruptGrace is how long requests in flight may take to finish after ^C.
const interruptGrace = 2 * time.Second

// graceful returns a context that ends grace after ctx does, so that requests in flight
// when the run is interrupted can still be answered and counted, but not hang the exit.
func graceful(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return c, func() { stop(); cancel() }
}

// startCPUAfter measures this process's CPU from the end of the warmup.
func startCPUAfter(warmup time.Duration) *lateCPU {
	l := &lateCPU{done: make(chan struct{})}
	go func() {
		time.Sleep(warmup)
		l.m = startCPU(os.Getpid())
		close(l.done)
	}()
	return l
}

type lateCPU struct {
	m    cpuMeter
	done chan struct{}
}

func (l *lateCPU) cores() float64 {
	select {
	case <-l.done:
		return l.m.cores()
	default: // interrupted during the warmup
		return 0
	}
}

// preflight sends one request before the run so that a wrong URL, key or app fails at once
// with the server's own message instead of as a wall of errors. Overload answers (429,
// 503) are what a benchmark may want to see, so they pass.
func preflight(s *httpSender, target string) error {
	o := s.send(1 << 62) // a body like any other; its ids come from the same counter
	switch o.status {
	case stTransport:
		return fmt.Errorf("POST %s: %s (is `causality serve` running there?)", target, o.err)
	case st429, st503:
		return nil
	}
	if !o.ok {
		return fmt.Errorf("POST %s: the server answered %s", target, o.err)
	}
	return nil
}
