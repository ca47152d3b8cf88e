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

	"golang.org/x/crypto/acme"
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

	// Warehouse.
	WarehouseURL   string // file:///dir or s3://bucket/prefix; empty: <data-dir>/warehouse
	S3Endpoint     string // host:port; empty: AWS S3
	S3AccessKey    string
	S3SecretKey    string
	S3Region       string
	S3Insecure     bool   // plain HTTP
	S3Addressing   string // auto, path or virtual
	FlushInterval  time.Duration
	FlushMaxEvents int
	FlushMaxBytes  ByteSize
	CompactTarget  ByteSize      // 0: no compaction
	CompactAfter   time.Duration // an hour is compacted this long after it ended
	Retention      time.Duration // 0: keep forever

	// Reaction engine and webhooks.
	WebhookWorkers       int
	WebhookTimeout       time.Duration
	WebhookRetrySchedule []time.Duration // delay before each attempt; the first is usually 0
	WebhookDisableAfter  time.Duration
	WebhookAllowPrivate  bool

	// TLS on --http-addr (tls.go); none set: plain HTTP.
	TLSCert       string   // PEM certificate chain, with TLSKey
	TLSKey        string   // PEM private key
	TLSDomains    []string // certificates via ACME for these names; exclusive with TLSCert
	TLSEmail      string   // ACME account contact, optional
	ACMEDirectory string   // ACME directory URL
	ACMEHTTPAddr  string   // HTTP-01 challenges and the redirect to https, with TLSDomains; empty: none

	// CheckConfig asks for a dry run (check.go): check, report, exit; start nothing.
	// Parse leaves validation to Check then, which reports every problem at once.
	CheckConfig bool

	fromEnv  map[string]bool // flags whose value came from their environment variable
	settings []Setting       // every flag as Parse read it, secrets masked (settings.go)
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

	fs.StringVar(&c.WarehouseURL, "warehouse-url", "", "where the Parquet lake goes: file:///path or s3://bucket/prefix (empty: <data-dir>/warehouse)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 endpoint host:port for s3:// warehouses, e.g. 127.0.0.1:9000 for MinIO (empty: AWS S3)")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", "", "S3 access key id")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", "", "S3 secret key (prefer the CAUSALITY_S3_SECRET_KEY variable: flags show up in ps)")
	fs.StringVar(&c.S3Region, "s3-region", "", "S3 region (empty: us-east-1 or what the endpoint reports)")
	fs.BoolVar(&c.S3Insecure, "s3-insecure", false, "talk plain HTTP to --s3-endpoint (a MinIO on a private network), not HTTPS")
	fs.StringVar(&c.S3Addressing, "s3-addressing", "auto", "bucket addressing: auto, path (endpoint/bucket/key, MinIO and most S3-compatible stores) or virtual (bucket.endpoint/key)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", time.Minute, "longest an event waits before its Parquet file is written")
	fs.IntVar(&c.FlushMaxEvents, "flush-max-events", 500_000, "a partition's file is written when it holds this many events")
	c.FlushMaxBytes = 16 * MiB
	fs.Var(&c.FlushMaxBytes, "flush-max-bytes", "a partition's file is written when its events take this much memory; also bounds the memory of all open files together")
	c.CompactTarget = 64 * MiB
	fs.Var(&c.CompactTarget, "compact-target", "closed hours are compacted into files of about this size (0: no compaction); compaction needs about 1.4x this in memory")
	fs.DurationVar(&c.CompactAfter, "compact-after", time.Hour, "an hour partition is compacted this long after it ended (late events after that land in new small files, compacted on a later pass)")
	fs.DurationVar(&c.Retention, "retention", 0, "delete hour partitions older than this, e.g. 2160h for 90 days (0: keep forever)")
	fs.IntVar(&c.WebhookWorkers, "webhook-workers", 32, "webhook requests in flight at once")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", 10*time.Second, "longest one webhook request may take; slower answers count as failures")
	schedule := fs.String("webhook-retry-schedule", "0s,5s,5m,30m,2h,5h,10h", "delay before each attempt of a webhook delivery, counted from the failure before; after the last the delivery is dead")
	fs.DurationVar(&c.WebhookDisableAfter, "webhook-disable-after", 5*24*time.Hour, "a webhook endpoint failing this long without one success is disabled")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", false, "allow webhooks to loopback, private and link-local addresses (refused by default: a webhook URL must not reach into the server's own network)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, e.g. certbot's fullchain.pem; re-read when it changes (empty: plain HTTP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the PEM private key file of --tls-cert")
	domains := fs.String("tls-domain", "", "serve HTTPS with automatic certificates (ACME, Let's Encrypt) for these comma-separated names; needs ports 443 and 80 reachable from the internet")
	fs.StringVar(&c.TLSEmail, "tls-email", "", "contact address for the ACME account (expiry and problem notices), optional")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", acme.LetsEncryptURL, "ACME directory URL (Let's Encrypt production; e.g. its staging directory for trials)")
	fs.StringVar(&c.ACMEHTTPAddr, "acme-http-addr", ":80", "with --tls-domain: also listen here for ACME HTTP-01 challenges and redirect everything else to https (empty: don't)")
	fs.BoolVar(&c.CheckConfig, "check-config", false, "check the flags, environment, data dir, listen addresses and TLS files, print a report and exit (0: ok, 1: problems); starts nothing")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	onCommandLine := setFlags(fs)
	if err := applyEnv(fs, lookupEnv); err != nil {
		return nil, err
	}
	c.fromEnv = map[string]bool{}
	for name := range setFlags(fs) {
		c.fromEnv[name] = !onCommandLine[name]
	}
	c.settings = settingsOf(fs, c.fromEnv)
	c.TLSDomains = splitList(strings.ToLower(*domains))
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", *logLevel)
	}
	c.CORSOrigins = splitList(*origins)
	var err error
	if c.WebhookRetrySchedule, err = parseSchedule(*schedule); err != nil {
		return nil, fmt.Errorf("--webhook-retry-schedule: %w", err)
	}
	if c.CheckConfig {
		return &c, nil // Check validates, so that the dry run reports every problem at once
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// ErrUsage marks a command line that could not be read (an unknown flag, a value of the
// wrong form, a stray argument), as opposed to values that were read and are wrong; the
// command exits 2 for it.
var ErrUsage = errors.New("usage error")

type usageError struct{ err error }

func (u usageError) Error() string        { return u.err.Error() }
func (u usageError) Unwrap() error        { return u.err }
func (u usageError) Is(target error) bool { return target == ErrUsage }

// setFlags is the set of flags given a value so far.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// applyEnv sets every flag that was not given on the command line from its environment
// variable, so that flags win. --check-config is a command, not a setting: an environment
// file must not turn a service into a dry run.
func applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	given := setFlags(fs)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || f.Name == "check-config" {
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
	if c.AdminPassword != "" && len(c.AdminPassword) < MinAdminPasswordLength {
		bad("admin-password", "must be at least %d characters", MinAdminPasswordLength)
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
	c.validateWarehouse(bad)
	if c.WebhookWorkers < 1 || c.WebhookWorkers > 1024 {
		bad("webhook-workers", "must be between 1 and 1024")
	}
	if c.WebhookTimeout < 100*time.Millisecond || c.WebhookTimeout > 5*time.Minute {
		bad("webhook-timeout", "must be between 100ms and 5m")
	}
	if len(c.WebhookRetrySchedule) == 0 {
		bad("webhook-retry-schedule", "needs at least one attempt")
	}
	if c.WebhookDisableAfter < time.Minute {
		bad("webhook-disable-after", "must be at least 1m")
	}
	c.validateTLS(bad)
	return errors.Join(errs...)
}

// parseSchedule reads a comma-separated list of durations.
func parseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range splitList(s) {
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration like 5s, 5m or 2h", p)
		}
		if d < 0 || d > 7*24*time.Hour {
			return nil, fmt.Errorf("%s: each delay must be between 0 and 168h", p)
		}
		out = append(out, d)
	}
	if len(out) > 50 {
		return nil, errors.New("at most 50 attempts")
	}
	return out, nil
}

// validateWarehouse checks the warehouse flags.
func (c *Config) validateWarehouse(bad func(flag, format string, args ...any)) {
	w, err := c.Warehouse()
	if err != nil {
		bad("warehouse-url", "%v", err)
	}
	if w.Kind == WarehouseS3 {
		if (c.S3AccessKey == "") != (c.S3SecretKey == "") {
			bad("s3-access-key", "give both --s3-access-key and --s3-secret-key, or neither (then the AWS_* environment or instance credentials are used)")
		}
		if strings.Contains(c.S3Endpoint, "/") {
			bad("s3-endpoint", "%q should be host:port without a scheme (use --s3-insecure for plain HTTP)", c.S3Endpoint)
		}
	}
	switch c.S3Addressing {
	case "auto", "path", "virtual":
	default:
		bad("s3-addressing", "%q is not auto, path or virtual", c.S3Addressing)
	}
	if c.FlushInterval < 100*time.Millisecond || c.FlushInterval > time.Hour {
		bad("flush-interval", "must be between 100ms and 1h")
	}
	if c.FlushMaxEvents < 1 {
		bad("flush-max-events", "must be at least 1")
	}
	if c.FlushMaxBytes < MiB {
		bad("flush-max-bytes", "must be at least 1MiB")
	}
	if c.FlushMaxBytes > c.MemoryLimit/2 && c.MemoryLimit > 0 {
		bad("flush-max-bytes", "%s is more than half of --memory-limit %s; raise the limit or lower this", c.FlushMaxBytes, c.MemoryLimit)
	}
	if c.CompactTarget != 0 && c.CompactTarget < MiB {
		bad("compact-target", "must be 0 (off) or at least 1MiB")
	}
	if c.MemoryLimit > 0 && c.CompactTarget > c.MemoryLimit/3 {
		bad("compact-target", "%s needs about 1.4x that in memory, too much for --memory-limit %s; lower it or raise the limit", c.CompactTarget, c.MemoryLimit)
	}
	if c.CompactAfter < 0 {
		bad("compact-after", "must not be negative")
	}
	if c.Retention != 0 && c.Retention < 2*time.Hour {
		bad("retention", "must be 0 (off) or at least 2h")
	}
}

// Warehouse kinds.
const (
	WarehouseFile = "file"
	WarehouseS3   = "s3"
)

// WarehouseLocation is --warehouse-url taken apart.
type WarehouseLocation struct {
	Kind   string // WarehouseFile or WarehouseS3
	Dir    string // absolute directory, for file
	Bucket string // for s3
	Prefix string // key prefix without slashes at either end, for s3
}

// Warehouse parses --warehouse-url (empty: <data-dir>/warehouse).
func (c *Config) Warehouse() (WarehouseLocation, error) {
	if c.WarehouseURL == "" {
		dir, err := filepath.Abs(filepath.Join(c.DataDir, "warehouse"))
		return WarehouseLocation{Kind: WarehouseFile, Dir: dir}, err
	}
	u, err := url.Parse(c.WarehouseURL)
	if err != nil {
		return WarehouseLocation{}, fmt.Errorf("%q: %v", c.WarehouseURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return WarehouseLocation{}, fmt.Errorf("%q: want file:///absolute/path (three slashes)", c.WarehouseURL)
		}
		if !filepath.IsAbs(u.Path) {
			return WarehouseLocation{}, fmt.Errorf("%q: the path must be absolute, e.g. file:///var/lib/causality/warehouse", c.WarehouseURL)
		}
		return WarehouseLocation{Kind: WarehouseFile, Dir: filepath.Clean(u.Path)}, nil
	case "s3":
		if u.Host == "" {
			return WarehouseLocation{}, fmt.Errorf("%q: want s3://bucket or s3://bucket/prefix", c.WarehouseURL)
		}
		return WarehouseLocation{Kind: WarehouseS3, Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, nil
	}
	return WarehouseLocation{}, fmt.Errorf("%q: scheme must be file:// or s3://", c.WarehouseURL)
}

// JetStreamDir is where the embedded NATS server keeps its file store.
func (c *Config) JetStreamDir() string { return filepath.Join(c.DataDir, "nats") }

// PostgresDir is where the embedded Postgres keeps binaries, cluster and logs.
func (c *Config) PostgresDir() string { return filepath.Join(c.DataDir, "postgres") }

// ACMECacheDir is where automatic certificates and the ACME account key are kept.
func (c *Config) ACMECacheDir() string { return filepath.Join(c.DataDir, "acme") }

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
