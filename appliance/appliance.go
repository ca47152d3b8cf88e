// Package appliance starts the components of `causality serve` in order and stops them in
// reverse: Postgres, the configuration store, NATS JetStream, then HTTP.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/causality-io/causality/appliance/admin"
	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/ingest"
	"github.com/causality-io/causality/appliance/metrics"
	"github.com/causality-io/causality/appliance/pgembed"
	"github.com/causality-io/causality/appliance/reaction"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/appliance/warehouse"
)

// keyReloadEvery is the safety net behind LISTEN/NOTIFY for key changes made elsewhere.
const keyReloadEvery = 30 * time.Second

// Appliance is one running `causality serve`.
type Appliance struct {
	cfg  *config.Config
	log  *slog.Logger
	dest warehouse.Destination
	sink *warehouse.Sink
	out  io.Writer // where the startup banner goes

	metrics  *metrics.Metrics
	pg       *pgembed.Server // nil with --database-url
	store    *store.Store
	bus      *bus.Bus
	keys     *apikey.Keyring
	http     *http.Server
	listener net.Listener

	expr          *expr.Env
	reaction      *reactionParts
	reactionClock reaction.Clock // nil: the wall clock

	// Background loops (key refresh, dedup cap) run on bgCtx and stop together, before
	// the bus closes.
	bgCtx          context.Context
	stopBackground context.CancelFunc
	background     sync.WaitGroup

	httpDone  chan error
	startedAt time.Time
}

// tuneGC bounds the heap by the memory limit instead of by its growth: most of the heap
// under load is JetStream's dedup index, which is live, so collecting at every doubling
// (GOGC=100) costs CPU and tail latency while the limit alone keeps RSS in check. GOGC and
// GOMEMLIMIT in the environment win.
func (a *Appliance) tuneGC() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set || a.cfg.MemoryLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(a.cfg.MemoryLimit))
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
}

// startDedupCap bounds the memory of the embedded server's duplicate window.
func (a *Appliance) startDedupCap() {
	d := &bus.DedupCap{
		Bus: a.bus, MaxIDs: a.cfg.DedupMaxIDs, Configured: a.cfg.DedupWindow,
		MinWindow: 10 * time.Second, Every: 2 * time.Second, Log: a.log.With("component", "bus"),
		OnChange: func(w time.Duration) { a.metrics.DedupWindow.Set(w.Seconds()) },
	}
	a.background.Go(func() { d.Run(a.bgCtx) })
}

// New prepares an appliance; nothing runs until Start.
func New(cfg *config.Config, log *slog.Logger, out io.Writer) *Appliance {
	return &Appliance{cfg: cfg, log: log, out: out, metrics: metrics.New()}
}

// Run starts everything, waits for ctx to end, then stops everything.
func (a *Appliance) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	// A part that dies on its own stops the whole appliance with an error, so that a
	// supervisor (systemd) restarts it rather than it limping on.
	var died error
	select {
	case <-ctx.Done():
		a.log.Info("stopping", "reason", context.Cause(ctx))
	case err := <-a.httpDone:
		died = fmt.Errorf("http server stopped: %w", err)
	case err := <-a.postgresDied():
		died = fmt.Errorf("embedded postgres stopped unexpectedly: %w", err)
	}
	if died != nil {
		a.log.Error("stopping", "err", died)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(died, a.Stop(stopCtx))
}

func (a *Appliance) postgresDied() <-chan error {
	if a.pg == nil {
		return nil
	}
	return a.pg.Wait()
}

// Start brings the components up in dependency order. On failure it stops what it started.
func (a *Appliance) Start(ctx context.Context) (err error) {
	a.startedAt = time.Now()
	a.tuneGC()
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
			defer cancel()
			_ = a.Stop(stopCtx)
		}
	}()
	// Others may pass through (not list): the embedded Postgres runs as an unprivileged
	// account when we are root and must reach its directory below this one.
	if err := os.MkdirAll(a.cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	dbURL := a.cfg.DatabaseURL
	if dbURL == "" {
		a.pg, err = pgembed.Start(ctx, pgembed.Options{Dir: a.cfg.PostgresDir(), BinariesDir: a.cfg.PGBinaries, Logger: a.log.With("component", "postgres")})
		if err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		dbURL = a.pg.URL()
	}
	if a.store, err = store.Open(ctx, dbURL, a.log.With("component", "store")); err != nil {
		return err
	}
	passwords, generated, err := admin.NewPasswords(ctx, a.store, a.cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	a.keys = apikey.NewKeyring(a.store, a.cfg.RateLimit, a.log.With("component", "apikey"))
	if err := a.keys.Load(ctx); err != nil {
		return err
	}
	a.bgCtx, a.stopBackground = context.WithCancel(context.WithoutCancel(ctx))
	a.background.Go(func() { a.keys.Run(a.bgCtx, keyReloadEvery) })

	a.bus, err = bus.Open(ctx, bus.Options{
		URL:         a.cfg.NATSURL,
		StoreDir:    a.cfg.JetStreamDir(),
		Listen:      a.cfg.NATSListen,
		SyncAlways:  a.cfg.NATSSync == config.SyncAlways,
		DedupWindow: a.cfg.DedupWindow,
		MaxAge:      a.cfg.StreamMaxAge,
		MaxBytes:    int64(a.cfg.StreamMaxBytes),
		Logger:      a.log.With("component", "bus"),
	})
	if err != nil {
		return err
	}
	a.metrics.RegisterStream(a.bus)
	if a.bus.Embedded() {
		a.startDedupCap()
	}

	if err := a.startWarehouse(ctx); err != nil {
		return err
	}
	if a.expr, err = expr.NewEnv(); err != nil {
		return err
	}
	if err := a.startReaction(ctx); err != nil {
		return err
	}

	validator, err := event.NewValidator()
	if err != nil {
		return fmt.Errorf("event validator: %w", err)
	}
	ing := ingest.New(a.keys, a.bus, validator, a.metrics, a.log.With("component", "ingest"),
		ingest.Options{MaxBodyBytes: int64(a.cfg.MaxBodyBytes), CORSOrigins: a.cfg.CORSOrigins})
	api := admin.NewAPI(a.store, a.keys, passwords, a.expr, admin.Options{WebhookAllowPrivate: a.cfg.WebhookAllowPrivate, Engine: a.reaction.engine}, a.log.With("component", "admin"))
	if err := a.startHTTP(a.routes(ing, api)); err != nil {
		return err
	}
	a.banner(generated)
	return nil
}

func (a *Appliance) startHTTP(h http.Handler) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr %s: %w", a.cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.httpDone = make(chan error, 1)
	go func() {
		if err := a.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.httpDone <- err
		}
	}()
	return nil
}

// Addr is the address HTTP listens on (useful with --http-addr :0).
func (a *Appliance) Addr() net.Addr { return a.listener.Addr() }

// Stop stops in reverse order of Start: HTTP first (in-flight requests finish and get
// their acks), then the key refresher, the bus, the store and Postgres. It stops only
// what was started, so it is safe after a failed Start.
func (a *Appliance) Stop(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http: %w", err))
		}
	}
	// Ingest has stopped: the sink writes what it holds and the reaction engine records
	// its matches before the bus goes.
	if err := a.stopWarehouse(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.stopReaction(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.stopBackground != nil {
		a.stopBackground()
		a.background.Wait()
	}
	if a.bus != nil {
		a.bus.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
	if a.pg != nil {
		if err := a.pg.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w", err))
		}
	}
	a.log.Info("stopped")
	return errors.Join(errs...)
}
