// Package config turns command-line flags and CAUSALITY_* environment variables into one
// validated Config. Flags win over the environment; the environment wins over defaults.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is everything `causality serve` needs to know. Zero values are never used directly:
// Parse fills defaults, Validate checks them.
type Config struct {
	DataDir       string
	HTTPAddr      string
	AdminPassword string
	LogLevel      slog.Level
	LogFormat     string // "text" or "json"

	// Bus.
	NATSURL        string // empty: embedded server
	NATSListen     string // empty: embedded server takes no TCP clients
	NATSSync       string // "interval" or "always"
	DedupWindow    time.Duration
	DedupMaxIDs    int
	StreamMaxAge   time.Duration
	StreamMaxBytes ByteSize

	// Store.
	DatabaseURL string // empty: embedded Postgres under DataDir
	PGBinaries  string // directory with bin/, lib/, share/ of PostgreSQL 17; empty: the bundled one

	// Ingest.
	MaxBodyBytes    ByteSize
	RateLimit       float64 // events per second per API key, 0: unlimited
	CORSOrigins     []string
	ShutdownTimeout time.Duration
	MemoryLimit     ByteSize // soft limit for the Go heap; 0: none
}

// Sync policies of the embedded JetStream file store.
const (
	SyncInterval = "interval" // flush to disk every couple of minutes: survives a killed process, not a power cut
	SyncAlways   = "always"   // fsync every write: survives a power cut, costs throughput
)

// EnvPrefix is put before the upper-cased flag name to find its environment variable.
const EnvPrefix = "CAUSALITY_"

// Parse reads the flags of `causality serve` from args and the environment (lookupEnv is
// os.LookupEnv outside tests), and validates the result. Usage errors are written to out.
func Parse(args []string, lookupEnv func(string) (string, bool), out io.Writer) (*Config, error) {
	var c Config
	fs := flag.NewFlagSet("causality serve", flag.ContinueOnError)
	fs.SetOutput(out)

	fs.StringVar(&c.DataDir, "data-dir", "./causality-data", "where JetStream files, the Postgres cluster and a local warehouse live")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "listen address of the ingest API, admin UI and API, /metrics, /healthz and /readyz")
	fs.StringVar(&c.AdminPassword, "admin-password", "", "set the admin password (with none ever set, the first start generates one and prints it once)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")

	fs.StringVar(&c.NATSURL, "nats-url", "", "external NATS server or cluster (empty: run an embedded server)")
	fs.StringVar(&c.NATSListen, "nats-listen", "", "let tools connect to the embedded NATS server at this address, e.g. 127.0.0.1:4222 (empty: in-process only)")
	fs.StringVar(&c.NATSSync, "nats-sync", SyncInterval, "embedded JetStream durability: interval (survives a killed process) or always (fsync every write, survives a power cut)")
	fs.DurationVar(&c.DedupWindow, "dedup-window", 2*time.Minute, "a repeated id or idempotency_key inside this window is answered duplicate and stored once")
	fs.IntVar(&c.DedupMaxIDs, "dedup-max-ids", 500_000, "most event ids the embedded JetStream remembers for dedup (about 120 bytes each); above it the window shortens to fit")
	fs.DurationVar(&c.StreamMaxAge, "stream-max-age", 7*24*time.Hour, "how long the EVENTS stream keeps events")
	c.StreamMaxBytes = 10 * GiB
	fs.Var(&c.StreamMaxBytes, "stream-max-bytes", "size limit of the EVENTS stream; when full, ingest answers 503 instead of dropping events")

	fs.StringVar(&c.DatabaseURL, "database-url", "", "external PostgreSQL, e.g. postgres://user:pass@host/db (empty: embedded Postgres under the data dir)")
	fs.StringVar(&c.PGBinaries, "pg-binaries", "", "directory holding bin/, lib/ and share/ of PostgreSQL 17, for a binary built without the bundled Postgres")

	c.MaxBodyBytes = 5 * MiB
	fs.Var(&c.MaxBodyBytes, "max-body-bytes", "largest ingest request body, after gzip decompression")
	fs.Float64Var(&c.RateLimit, "rate-limit", 100000, "events per second allowed per API key (0: unlimited)")
	origins := fs.String("cors-origins", "*", "comma-separated origins allowed to send events from a browser")
	c.MemoryLimit = 384 * MiB
	fs.Var(&c.MemoryLimit, "memory-limit", "soft memory limit of the Go runtime: above it garbage is collected more eagerly (0: none; the GOMEMLIMIT variable, when set, wins)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a stop may take to drain requests and flush")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if err := applyEnv(fs, lookupEnv); err != nil {
		return nil, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", *logLevel)
	}
	c.CORSOrigins = splitList(*origins)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// applyEnv sets every flag that was not given on the command line from its environment
// variable, so that flags win.
func applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable that sets a flag: CAUSALITY_ and the flag's name in
// upper case with dashes as underscores.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate checks the values and names the flag in every error.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http-addr", "%q is not host:port (e.g. :8080 or 127.0.0.1:8080)", c.HTTPAddr)
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		bad("admin-password", "must be at least 8 characters")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
	if c.NATSURL != "" {
		if _, err := url.Parse(c.NATSURL); err != nil {
			bad("nats-url", "%v", err)
		}
		if c.NATSListen != "" {
			bad("nats-listen", "only applies to the embedded server; drop it or --nats-url")
		}
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			bad("nats-listen", "%q is not host:port", c.NATSListen)
		}
	}
	if c.NATSSync != SyncInterval && c.NATSSync != SyncAlways {
		bad("nats-sync", "%q is not %s or %s", c.NATSSync, SyncInterval, SyncAlways)
	}
	if c.DedupWindow < time.Second {
		bad("dedup-window", "must be at least 1s")
	}
	if c.DedupMaxIDs < 10_000 {
		bad("dedup-max-ids", "must be at least 10000")
	}
	if c.StreamMaxAge < time.Minute {
		bad("stream-max-age", "must be at least 1m")
	}
	if c.DedupWindow > c.StreamMaxAge {
		bad("dedup-window", "must not be longer than --stream-max-age")
	}
	if c.StreamMaxBytes < MiB {
		bad("stream-max-bytes", "must be at least 1MiB")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("database-url", "want postgres://user:password@host:port/database")
		}
	}
	if c.MaxBodyBytes < 1024 {
		bad("max-body-bytes", "must be at least 1KiB")
	}
	if c.RateLimit < 0 {
		bad("rate-limit", "must not be negative")
	}
	if c.ShutdownTimeout < time.Second {
		bad("shutdown-timeout", "must be at least 1s")
	}
	return errors.Join(errs...)
}

// JetStreamDir is where the embedded NATS server keeps its file store.
func (c *Config) JetStreamDir() string { return filepath.Join(c.DataDir, "nats") }

// PostgresDir is where the embedded Postgres keeps binaries, cluster and logs.
func (c *Config) PostgresDir() string { return filepath.Join(c.DataDir, "postgres") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Logger builds the structured logger the flags ask for.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
