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
	"github.com/causality-io/causality/appliance/datadir"
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
	// version is the binary's, recorded in the data dir's datadir.json.
	version string
	lock    *datadir.Lock // held from Start to the end of Stop

	metrics  *metrics.Metrics
	pg       *pgembed.Server // nil with --database-url
	store    *store.Store
	bus      *bus.Bus
	keys     *apikey.Keyring
	http     *http.Server
	listener net.Listener
	https    httpsParts // TLS on the listener (tls.go)

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
	return &Appliance{cfg: cfg, log: log, out: out, metrics: metrics.New(), version: "dev"}
}

// WithVersion names the binary's version, which Start records in the data dir.
func (a *Appliance) WithVersion(v string) *Appliance {
	a.version = v
	return a
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
	// A data dir laid out by a newer binary is refused before anything is created in it.
	if err := datadir.Check(a.cfg.DataDir, a.version); err != nil {
		return err
	}
	// Others may pass through (not list): the embedded Postgres runs as an unprivileged
	// account when we are root and must reach its directory below this one.
	if err := os.MkdirAll(a.cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// A second appliance on the same dir would stop this one's PostgreSQL as a leftover.
	if a.lock, err = datadir.TryLock(a.cfg.DataDir, "causality serve"); err != nil {
		return fmt.Errorf("%w: stop it first, or give this one another --data-dir", err)
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
	// Only now, with the schema accepted and migrated: a refused start leaves the record alone.
	if err := a.recordDataDir(ctx); err != nil {
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
	ui := admin.NewUI(api, admin.UIOptions{SecureCookies: a.cfg.TLSEnabled(), Version: a.version, Overview: a.startOverview(),
		Config: a.cfg.Effective(), PasswordFromFlag: a.cfg.AdminPassword != "", Events: a,
		Live: a.liveEvents(), Warehouse: a.warehouseInfo()})
	if err := a.startHTTP(a.routes(ing, api, ui)); err != nil {
		return err
	}
	a.banner(generated)
	return nil
}

func (a *Appliance) startHTTP(h http.Handler) error {
	if err := a.setupTLS(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr %s: %w", a.cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.log.Info("serving", "addr", ln.Addr().String(), "protocol", a.https.mode)
	a.http = &http.Server{
		Handler:           h,
		TLSConfig:         a.https.config,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          httpErrorLog(a.log),
	}
	a.httpDone = make(chan error, 1)
	go func() {
		serve := a.http.Serve
		if a.https.config != nil {
			serve = func(ln net.Listener) error { return a.http.ServeTLS(ln, "", "") } // certificates from TLSConfig
		}
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.httpDone <- err
		}
	}()
	return a.startACMEHTTP()
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
	if err := a.stopACMEHTTP(ctx); err != nil {
		errs = append(errs, err)
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
	a.lock.Unlock()
	a.log.Info("stopped")
	return errors.Join(errs...)
}

// recordDataDir writes datadir.json: this binary's data dir format and version.
func (a *Appliance) recordDataDir(ctx context.Context) error {
	schema, err := store.SchemaVersion(ctx, a.store.Pool())
	if err != nil {
		return err
	}
	if err := datadir.Record(a.cfg.DataDir, a.version, schema); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}
