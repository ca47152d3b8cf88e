// Package bus runs or connects to NATS JetStream, sets up the EVENTS stream and its durable
// consumers, and publishes events with acknowledgement.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names shared with the rest of the appliance and with users' tools (DESIGN.md, NATS contract).
const (
	StreamName        = "EVENTS"
	SubjectPrefix     = "events"
	WarehouseConsumer = "warehouse"
	ReactionConsumer  = "reaction"
)

// Options configure Open.
type Options struct {
	// URL of an external NATS server; empty runs an embedded one storing under StoreDir.
	URL      string
	StoreDir string
	// Listen lets tools reach the embedded server over TCP (host:port); empty: in-process only.
	Listen string
	// SyncAlways makes the embedded file store fsync every write instead of on an interval.
	SyncAlways bool

	DedupWindow time.Duration
	MaxAge      time.Duration
	MaxBytes    int64

	Logger *slog.Logger
}

// Bus is a connection to JetStream with the EVENTS stream in place.
type Bus struct {
	srv    *server.Server // nil with an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
}

// Open starts the embedded server (or connects to opts.URL), then creates or updates the
// stream and the durable consumers.
func Open(ctx context.Context, opts Options) (*Bus, error) {
	b := &Bus{log: opts.Logger}
	var err error
	if opts.URL == "" {
		if b.srv, err = startEmbedded(opts); err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect("", nats.InProcessServer(b.srv), nats.Name("causality"), nats.MaxReconnects(-1))
	} else {
		b.nc, err = nats.Connect(opts.URL, nats.Name("causality"), nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(false),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { b.log.Warn("nats disconnected", "err", err) }),
			nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }))
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to nats %s: %w", orEmbedded(opts.URL), err)
	}
	// The async window bounds how many publishes wait for acks at once across all requests.
	b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.setup(ctx, opts); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func orEmbedded(url string) string {
	if url == "" {
		return "(embedded)"
	}
	return url
}

func startEmbedded(opts Options) (*server.Server, error) {
	so := &server.Options{
		ServerName: "causality",
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: opts.SyncAlways,
		DontListen: opts.Listen == "",
		NoSigs:     true,
		// The stream limit is ours to enforce with discard-new; leave the server its default
		// account limits (a share of memory and disk) as the outer fence.
	}
	if opts.Listen != "" {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", opts.Listen, err)
		}
		so.Host = host
		if so.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(&slogAdapter{log: opts.Logger.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not become ready in 30s (store %s)", opts.StoreDir)
	}
	return srv, nil
}

func (b *Bus) setup(ctx context.Context, opts Options) error {
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Causality events, one message per event (binary causality.v1.EventEnvelope)",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      opts.MaxAge,
		MaxBytes:    opts.MaxBytes,
		// Our idempotency mechanism: a repeated Nats-Msg-Id inside this window is dropped.
		Duplicates: opts.DedupWindow,
		// Lets tools read single events by sequence without going through a consumer.
		AllowDirect: true,
	}
	s, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	b.stream = s
	for _, name := range []string{WarehouseConsumer, ReactionConsumer} {
		if _, err := b.EnsureConsumer(ctx, jetstream.ConsumerConfig{Durable: name}); err != nil {
			return err
		}
	}
	return nil
}

// EnsureConsumer creates or updates a durable pull consumer on EVENTS with explicit acks.
// Components that read the stream call it with their own ack wait and limits.
func (b *Bus) EnsureConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	if cfg.Name == "" {
		cfg.Name = cfg.Durable
	}
	c, err := b.stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// JetStream gives components the JetStream API for their own consumers.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn is the core NATS connection (alerts, anomalies).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// ClientURL is where tools can connect: the external URL, the embedded listener, or "" when
// the embedded server takes no TCP clients.
func (b *Bus) ClientURL() string {
	if b.srv == nil {
		return b.nc.ConnectedUrlRedacted()
	}
	if b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// Embedded reports whether the server runs in this process.
func (b *Bus) Embedded() bool { return b.srv != nil }

// Check tells whether the bus can take writes now: connected and the stream answering.
func (b *Bus) Check(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats: %w", ErrUnavailable)
	}
	if _, err := b.stream.Info(ctx); err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	return nil
}

// StreamState is what operators watch: how much the stream holds.
type StreamState struct {
	Messages uint64
	Bytes    uint64
	MaxBytes int64
}

// State reads the stream's current size.
func (b *Bus) State(ctx context.Context) (StreamState, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return StreamState{}, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	return StreamState{Messages: info.State.Msgs, Bytes: info.State.Bytes, MaxBytes: info.Config.MaxBytes}, nil
}

// Close drains the connection (in-flight publishes get their acks) and stops the embedded
// server, which flushes the file store.
func (b *Bus) Close() {
	if b.nc != nil {
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
		}
		for b.nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Errors a caller branches on.
var (
	// ErrFull means the stream refused the write because it reached its limits.
	ErrFull = errors.New("event stream is full")
	// ErrUnavailable means JetStream did not answer: disconnected, no responders, timeout.
	ErrUnavailable = errors.New("event bus unavailable")
)

// classify maps publish errors onto ErrFull and ErrUnavailable, keeping the cause.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10077 store failed (max bytes/msgs with discard new); 10023 insufficient resources.
		if apiErr.ErrorCode == 10077 || apiErr.ErrorCode == 10023 || apiErr.Code == 503 {
			return fmt.Errorf("%w: %v", ErrFull, err)
		}
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
