package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/causality-io/causality/appliance/datadir"
)

// Check is the dry run of `causality serve --check-config`: the validation Parse does, and
// what can be checked on this machine without starting anything: that the data dir exists
// or can be created and is writable and was not laid out by a newer causality than version
// (this binary's), that the listen addresses are free, that the TLS files
// load and the certificate is valid now, and that the external URLs parse. It never creates
// the data dir, starts Postgres or NATS, or connects anywhere; the only trace it leaves is
// a temporary file, removed at once. Every problem names its flag (and the environment
// variable when the value came from there).
func (c *Config) Check(version string) []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.flagName(flag), fmt.Sprintf(format, args...)))
	}
	if err := c.Validate(); err != nil {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, joined.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	if err := checkWritableDir(c.DataDir); err != nil {
		bad("data-dir", "%v", err)
	} else if err := datadir.Check(c.DataDir, version); err != nil {
		bad("data-dir", "%v", err)
	}
	if loc, err := c.Warehouse(); err == nil {
		switch {
		case loc.Kind == WarehouseFile && c.WarehouseURL != "":
			if err := checkWritableDir(loc.Dir); err != nil {
				bad("warehouse-url", "%v", err)
			}
		case loc.Kind == WarehouseS3:
			if err := s3utils.CheckValidBucketNameStrict(loc.Bucket); err != nil {
				bad("warehouse-url", "bucket %q: %v", loc.Bucket, err)
			}
		}
	}
	if err := checkListen(c.HTTPAddr); err != nil {
		bad("http-addr", "%v", err)
	}
	if len(c.TLSDomains) > 0 && c.ACMEHTTPAddr != "" {
		if err := checkListen(c.ACMEHTTPAddr); err != nil {
			bad("acme-http-addr", "%v", err)
		}
	}
	if c.NATSURL == "" && c.NATSListen != "" {
		if err := checkListen(c.NATSListen); err != nil {
			bad("nats-listen", "%v", err)
		}
	}
	if c.NATSURL != "" {
		if err := checkNATSURL(c.NATSURL); err != nil {
			bad("nats-url", "%v", err)
		}
	}
	if c.DatabaseURL != "" {
		if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
			// pgconn's message quotes the URL, password included.
			bad("database-url", "does not parse as a PostgreSQL URL (postgres://user:password@host:port/database)")
		}
	}
	if c.PGBinaries != "" && c.DatabaseURL == "" {
		if _, err := os.Stat(filepath.Join(c.PGBinaries, "bin", "postgres")); err != nil {
			bad("pg-binaries", "%s has no bin/postgres: want a PostgreSQL 17 directory with bin/, lib/ and share/", c.PGBinaries)
		}
	}
	if c.TLSCert != "" && c.TLSKey != "" {
		if cert, _, err := LoadKeyPair(c.TLSCert, c.TLSKey); err == nil && cert.Leaf != nil {
			now := time.Now()
			if now.After(cert.Leaf.NotAfter) {
				bad("tls-cert", "the certificate in %s expired on %s", c.TLSCert, cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
			} else if now.Before(cert.Leaf.NotBefore) {
				bad("tls-cert", "the certificate in %s is valid only from %s", c.TLSCert, cert.Leaf.NotBefore.UTC().Format(time.RFC3339))
			}
		}
	}
	return errs
}

// CheckAndReport runs Check for this binary's version. Without problems it writes "config ok" and the effective
// settings (secrets masked) to w and returns nil; else it returns the problems joined,
// one per line.
func (c *Config) CheckAndReport(w io.Writer, version string) error {
	if errs := c.Check(version); len(errs) > 0 {
		return errors.Join(errs...)
	}
	_, err := io.WriteString(w, c.report())
	return err
}

// report lists the settings that decide where things go and how they are reached.
func (c *Config) report() string {
	var b strings.Builder
	b.WriteString("config ok\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, l := range c.Summary() {
		fmt.Fprintf(tw, "  %s\t%s\n", l.Name, l.Value)
	}
	_ = tw.Flush()
	return b.String()
}

// SummaryLine is one line of Summary: a topic and what is in effect for it.
type SummaryLine struct {
	Name, Value string
}

// Summary describes, secrets masked, the settings that decide where things go and how
// they are reached: what --check-config prints and the admin UI's settings page shows.
func (c *Config) Summary() []SummaryLine {
	var lines []SummaryLine
	line := func(name, format string, args ...any) {
		lines = append(lines, SummaryLine{name, fmt.Sprintf(format, args...)})
	}

	dataDir, _ := filepath.Abs(c.DataDir)
	if _, err := os.Stat(dataDir); err == nil {
		line("data dir", "%s", dataDir)
	} else {
		line("data dir", "%s (created at the first start)", dataDir)
	}
	var notAfter time.Time
	if c.TLSCert != "" {
		if cert, _, err := LoadKeyPair(c.TLSCert, c.TLSKey); err == nil && cert.Leaf != nil {
			notAfter = cert.Leaf.NotAfter
		}
	}
	line("http", "%s, %s", c.HTTPAddr, c.TLSMode(notAfter))
	if len(c.TLSDomains) > 0 {
		challenges := "TLS-ALPN-01 on --http-addr"
		if c.ACMEHTTPAddr != "" {
			challenges += ", HTTP-01 and redirect to https on " + c.ACMEHTTPAddr
		}
		line("acme", "%s; %s; cache %s", c.ACMEDirectory, challenges, filepath.Join(dataDir, "acme"))
	}
	if c.AdminPassword != "" {
		line("admin password", "set (%s)", c.origin("admin-password"))
	} else {
		line("admin password", "not given: the stored one stays (the first start generates one and prints it once)")
	}
	switch {
	case c.NATSURL != "":
		line("nats", "external %s", maskURLs(c.NATSURL))
	case c.NATSListen != "":
		line("nats", "embedded, %s; tools connect to %s; sync %s", filepath.Join(dataDir, "nats"), c.NATSListen, c.NATSSync)
	default:
		line("nats", "embedded, %s; in-process only; sync %s", filepath.Join(dataDir, "nats"), c.NATSSync)
	}
	line("stream", "keeps %s, at most %s; dedup window %s", c.StreamMaxAge, c.StreamMaxBytes, c.DedupWindow)
	if c.DatabaseURL != "" {
		line("postgres", "external %s", maskURLs(c.DatabaseURL))
	} else {
		line("postgres", "embedded, %s", filepath.Join(dataDir, "postgres"))
	}
	if loc, err := c.Warehouse(); err == nil && loc.Kind == WarehouseS3 {
		endpoint := c.S3Endpoint
		if endpoint == "" {
			endpoint = "AWS S3"
		}
		creds := "from the AWS environment or instance role"
		if c.S3AccessKey != "" {
			creds = "access key " + maskMiddle(c.S3AccessKey) + ", secret key set"
		}
		line("warehouse", "s3://%s/%s at %s; %s", loc.Bucket, loc.Prefix, endpoint, creds)
	} else {
		line("warehouse", "%s", loc.Dir)
	}
	retention := "kept forever"
	if c.Retention > 0 {
		retention = "deleted after " + c.Retention.String()
	}
	line("files", "cut every %s, %d events or %s; partitions %s", c.FlushInterval, c.FlushMaxEvents, c.FlushMaxBytes, retention)
	line("memory limit", "%s", c.MemoryLimit)
	line("log", "%s, %s", strings.ToLower(c.LogLevel.String()), c.LogFormat)
	return lines
}

// flagName is how a problem names a flag: --name, and its environment variable when the
// value came from there.
func (c *Config) flagName(name string) string {
	if c.fromEnv[name] {
		return fmt.Sprintf("--%s (from %s)", name, EnvName(name))
	}
	return "--" + name
}

func (c *Config) origin(name string) string {
	if c.fromEnv[name] {
		return "from " + EnvName(name)
	}
	return "--" + name
}

// checkWritableDir checks that dir is a writable directory, or, when it does not exist,
// that its nearest existing parent is one (so it can be created). It creates nothing but a
// temporary file, which it removes.
func checkWritableDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	info, err := os.Stat(abs)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s is not a directory", abs)
		}
		if err := probeWrite(abs); err != nil {
			return fmt.Errorf("%s is not writable: %v", abs, err)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(abs)
	for {
		info, err := os.Stat(parent)
		if err == nil {
			if !info.IsDir() {
				return fmt.Errorf("%s cannot be created: %s is not a directory", abs, parent)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || parent == filepath.Dir(parent) {
			return fmt.Errorf("%s cannot be created: %v", abs, err)
		}
		parent = filepath.Dir(parent)
	}
	if err := probeWrite(parent); err != nil {
		return fmt.Errorf("%s does not exist and cannot be created: %s is not writable: %v", abs, parent, err)
	}
	return nil
}

// probeWrite creates and removes a temporary file in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".causality-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// checkListen binds addr for a moment.
func checkListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("%s is in use right now (another causality, or another server?)", addr)
		case errors.Is(err, syscall.EACCES):
			return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE, e.g. AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit)", addr)
		}
		return fmt.Errorf("cannot listen on %s: %v", addr, err)
	}
	return ln.Close()
}

// checkNATSURL checks a comma-separated list of NATS server URLs as nats.Connect takes it.
func checkNATSURL(s string) error {
	for _, raw := range splitList(s) {
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s does not parse", maskURLs(raw))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%s: scheme must be nats://, tls://, ws:// or wss://", maskURLs(raw))
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%s has no host", maskURLs(raw))
		}
	}
	return nil
}

// maskURLs hides passwords and tokens in a comma-separated list of URLs, in the user
// part and in query parameters (postgres://host/db?password=...).
func maskURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx") // a bare token
			}
		}
		if u.RawQuery != "" {
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil {
				parts[i] = "(unparsable URL)"
				continue
			}
			for name := range q {
				if isSecretName(name) {
					q.Set(name, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// maskMiddle shows the first and last few characters of an identifier.
func maskMiddle(s string) string {
	if len(s) <= 8 {
		return "xxxxx"
	}
	return s[:4] + "…" + s[len(s)-2:]
}
