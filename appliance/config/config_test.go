package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/internal/testcert"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./causality-data" || c.HTTPAddr != ":8080" || c.NATSSync != SyncInterval ||
		c.DedupWindow != 2*time.Minute || c.StreamMaxAge != 7*24*time.Hour || c.StreamMaxBytes != 10*GiB {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	c, err := Parse([]string{"--http-addr", "127.0.0.1:9000"}, env(map[string]string{
		"CAUSALITY_HTTP_ADDR":        "127.0.0.1:7000",
		"CAUSALITY_DATA_DIR":         "/var/lib/causality",
		"CAUSALITY_STREAM_MAX_BYTES": "1GiB",
		"CAUSALITY_CORS_ORIGINS":     "https://a.example, https://b.example",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9000" {
		t.Errorf("flag should win, got %s", c.HTTPAddr)
	}
	if c.DataDir != "/var/lib/causality" {
		t.Errorf("env should set data dir, got %s", c.DataDir)
	}
	if c.StreamMaxBytes != GiB {
		t.Errorf("stream max bytes = %v", c.StreamMaxBytes)
	}
	if strings.Join(c.CORSOrigins, "|") != "https://a.example|https://b.example" {
		t.Errorf("cors origins = %q", c.CORSOrigins)
	}
}

func TestParseErrorsNameTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad addr", []string{"--http-addr", "8080"}, nil, "--http-addr"},
		{"bad sync", []string{"--nats-sync", "sometimes"}, nil, "--nats-sync"},
		{"short password", []string{"--admin-password", "abc"}, nil, "--admin-password"},
		{"dedup longer than age", []string{"--dedup-window", "48h", "--stream-max-age", "24h"}, nil, "--dedup-window"},
		{"tiny stream", []string{"--stream-max-bytes", "100KiB"}, nil, "--stream-max-bytes"},
		{"bad db url", []string{"--database-url", "mysql://x"}, nil, "--database-url"},
		{"listen with external nats", []string{"--nats-url", "nats://h:4222", "--nats-listen", "127.0.0.1:4222"}, nil, "--nats-listen"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"bad env value", nil, map[string]string{"CAUSALITY_DEDUP_WINDOW": "soon"}, "CAUSALITY_DEDUP_WINDOW"},
		{"stray argument", []string{"now"}, nil, "unexpected argument"},
		{"relative warehouse", []string{"--warehouse-url", "file://lake"}, nil, "--warehouse-url"},
		{"warehouse path not absolute", []string{"--warehouse-url", "file:lake"}, nil, "--warehouse-url"},
		{"warehouse scheme", []string{"--warehouse-url", "gs://bucket"}, nil, "--warehouse-url"},
		{"s3 without bucket", []string{"--warehouse-url", "s3:///prefix"}, nil, "--warehouse-url"},
		{"half s3 credentials", []string{"--warehouse-url", "s3://b", "--s3-access-key", "k"}, nil, "--s3-access-key"},
		{"s3 endpoint with scheme", []string{"--warehouse-url", "s3://b", "--s3-endpoint", "http://minio:9000"}, nil, "--s3-endpoint"},
		{"s3 addressing", []string{"--s3-addressing", "dns"}, nil, "--s3-addressing"},
		{"flush interval", []string{"--flush-interval", "10ms"}, nil, "--flush-interval"},
		{"flush bytes above memory", []string{"--flush-max-bytes", "300MiB"}, nil, "--flush-max-bytes"},
		{"compact target", []string{"--compact-target", "1KiB"}, nil, "--compact-target"},
		{"retention too short", []string{"--retention", "1h"}, nil, "--retention"},
		{"retry schedule not durations", []string{"--webhook-retry-schedule", "0s,5 minutes"}, nil, "--webhook-retry-schedule"},
		{"retry schedule negative", []string{"--webhook-retry-schedule", "0s,-5s"}, nil, "--webhook-retry-schedule"},
		{"retry schedule empty", []string{"--webhook-retry-schedule", " , "}, nil, "--webhook-retry-schedule"},
		{"webhook timeout", []string{"--webhook-timeout", "1ms"}, nil, "--webhook-timeout"},
		{"webhook workers", []string{"--webhook-workers", "0"}, nil, "--webhook-workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestWebhookRetrySchedule(t *testing.T) {
	c, err := Parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}
	if !slices.Equal(c.WebhookRetrySchedule, want) {
		t.Errorf("default schedule %v, want %v", c.WebhookRetrySchedule, want)
	}
	c, err = Parse(nil, env(map[string]string{"CAUSALITY_WEBHOOK_RETRY_SCHEDULE": "0s, 1m,1h"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{0, time.Minute, time.Hour}; !slices.Equal(c.WebhookRetrySchedule, want) {
		t.Errorf("schedule from the environment %v, want %v", c.WebhookRetrySchedule, want)
	}
}

func TestWarehouseLocation(t *testing.T) {
	tests := []struct {
		args []string
		want WarehouseLocation
	}{
		{[]string{"--data-dir", "/var/lib/causality"}, WarehouseLocation{Kind: WarehouseFile, Dir: "/var/lib/causality/warehouse"}},
		{[]string{"--warehouse-url", "file:///srv/lake/"}, WarehouseLocation{Kind: WarehouseFile, Dir: "/srv/lake"}},
		{[]string{"--warehouse-url", "s3://events"}, WarehouseLocation{Kind: WarehouseS3, Bucket: "events"}},
		{[]string{"--warehouse-url", "s3://events/prod/lake/"}, WarehouseLocation{Kind: WarehouseS3, Bucket: "events", Prefix: "prod/lake"}},
	}
	for _, tt := range tests {
		c, err := Parse(tt.args, env(nil), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		got, err := c.Warehouse()
		if err != nil || got != tt.want {
			t.Errorf("%v: Warehouse() = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := Parse([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-nats-sync") {
		t.Fatalf("err %v, usage %q", err, out.String())
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"1024", 1024}, {"64MiB", 64 * MiB}, {"10GB", 10_000_000_000}, {"512k", 512 * KiB}, {"1.5GiB", 3 * GiB / 2}, {" 2 gib ", 2 * GiB},
	}
	for _, tt := range tests {
		var b ByteSize
		if err := b.Set(tt.in); err != nil || b != tt.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tt.in, b, err, tt.want)
		}
	}
	for _, bad := range []string{"", "lots", "-1MiB", "MiB"} {
		var b ByteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	if s := (64 * MiB).String(); s != "64MiB" {
		t.Errorf("String = %s", s)
	}
}

// tlsPair writes a self-signed certificate and its key into dir.
func tlsPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if _, err := testcert.Write(certFile, keyFile, 1); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	cert, key := tlsPair(t, dir, "a")
	_, otherKey := tlsPair(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	t.Run("plain http by default", func(t *testing.T) {
		c, err := Parse(nil, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.TLSEnabled() || c.TLSMode(time.Time{}) != "http" || c.ACMEHTTPAddr != ":80" || c.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" {
			t.Fatalf("TLS defaults: enabled %v, mode %q, %+v", c.TLSEnabled(), c.TLSMode(time.Time{}), c)
		}
	})
	t.Run("certificate files", func(t *testing.T) {
		c, err := Parse([]string{"--tls-cert", cert, "--tls-key", key}, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		until := time.Date(2027, 2, 5, 12, 0, 0, 0, time.UTC)
		if want := "https (certificate from " + cert + ", valid until 2027-02-05 12:00 UTC)"; !c.TLSEnabled() || c.TLSMode(until) != want {
			t.Fatalf("enabled %v, mode %q, want %q", c.TLSEnabled(), c.TLSMode(until), want)
		}
	})
	t.Run("domains from the environment", func(t *testing.T) {
		c, err := Parse([]string{"--data-dir", "/var/lib/causality"}, env(map[string]string{
			"CAUSALITY_TLS_DOMAIN": "Events.Example.com, www.example.com", "CAUSALITY_TLS_EMAIL": "ops@example.com"}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !c.TLSEnabled() || !slices.Equal(c.TLSDomains, []string{"events.example.com", "www.example.com"}) ||
			c.ACMECacheDir() != "/var/lib/causality/acme" {
			t.Fatalf("domains %q, cache %s", c.TLSDomains, c.ACMECacheDir())
		}
		if want := "https (automatic certificates for events.example.com, www.example.com via ACME)"; c.TLSMode(time.Time{}) != want {
			t.Fatalf("mode %q, want %q", c.TLSMode(time.Time{}), want)
		}
	})

	tests := []struct {
		name string
		args []string
		want []string // each must be in the error
	}{
		{"cert without key", []string{"--tls-cert", cert}, []string{"--tls-key", "private key"}},
		{"key without cert", []string{"--tls-key", key}, []string{"--tls-cert"}},
		{"missing cert file", []string{"--tls-cert", missing, "--tls-key", key}, []string{"--tls-cert", "no such file"}},
		{"missing key file", []string{"--tls-cert", cert, "--tls-key", missing}, []string{"--tls-key", "no such file"}},
		{"garbage cert file", []string{"--tls-cert", garbage, "--tls-key", key}, []string{"--tls-cert", "no PEM certificate"}},
		{"garbage key file", []string{"--tls-cert", cert, "--tls-key", garbage}, []string{"--tls-key", "not the private key"}},
		{"key of another certificate", []string{"--tls-cert", cert, "--tls-key", otherKey}, []string{"--tls-key", "not the private key"}},
		{"domain with cert", []string{"--tls-domain", "events.example.com", "--tls-cert", cert, "--tls-key", key}, []string{"--tls-domain", "exclude"}},
		{"domain with scheme", []string{"--tls-domain", "https://events.example.com"}, []string{"--tls-domain", "bare host name"}},
		{"domain with port", []string{"--tls-domain", "events.example.com:443"}, []string{"--tls-domain", "bare host name"}},
		{"wildcard domain", []string{"--tls-domain", "*.example.com"}, []string{"--tls-domain", "wildcard"}},
		{"ip address", []string{"--tls-domain", "203.0.113.7"}, []string{"--tls-domain", "IP address"}},
		{"single label", []string{"--tls-domain", "localhost"}, []string{"--tls-domain", "public DNS name"}},
		{"bad character", []string{"--tls-domain", "events.example.com,bad_name.example.com"}, []string{"--tls-domain", `"bad_name.example.com"`}},
		{"dash-edged label", []string{"--tls-domain", "-events.example.com"}, []string{"--tls-domain", "label"}},
		{"bad email", []string{"--tls-domain", "events.example.com", "--tls-email", "ops at example"}, []string{"--tls-email"}},
		{"bad acme directory", []string{"--tls-domain", "events.example.com", "--acme-directory", "letsencrypt"}, []string{"--acme-directory"}},
		{"acme http addr", []string{"--tls-domain", "events.example.com", "--acme-http-addr", "80"}, []string{"--acme-http-addr"}},
		{"acme http addr is the https one", []string{"--tls-domain", "events.example.com", "--http-addr", ":443", "--acme-http-addr", ":443"}, []string{"--acme-http-addr", "differ"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(nil), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--dedup-window", "soon"}, {"now"}} {
		if _, err := Parse(args, env(nil), io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: error %v is not a usage error", args, err)
		}
	}
	for _, args := range [][]string{{"--http-addr", "8080"}, {"--tls-cert", "x.pem"}} {
		if _, err := Parse(args, env(nil), io.Discard); err == nil || errors.Is(err, ErrUsage) {
			t.Errorf("%q: error %v should be a config problem, not usage", args, err)
		}
	}
	if _, err := Parse(nil, env(map[string]string{"CAUSALITY_DEDUP_WINDOW": "soon"}), io.Discard); err == nil || errors.Is(err, ErrUsage) {
		t.Errorf("a bad environment value is a config problem, got %v", err)
	}
}

func TestCheckConfigIsNotReadFromTheEnvironment(t *testing.T) {
	c, err := Parse(nil, env(map[string]string{"CAUSALITY_CHECK_CONFIG": "true"}), io.Discard)
	if err != nil || c.CheckConfig {
		t.Fatalf("CAUSALITY_CHECK_CONFIG turned a serve into a dry run: %v %v", c, err)
	}
	c, err = Parse([]string{"--check-config"}, env(nil), io.Discard)
	if err != nil || !c.CheckConfig {
		t.Fatalf("--check-config: %v %v", c, err)
	}
}
