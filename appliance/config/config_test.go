package config

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
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
