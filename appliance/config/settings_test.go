package config

import (
	"io"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	args := []string{"--admin-password", "flag-password-1", "--http-addr", "127.0.0.1:9090",
		"--database-url", "postgres://causality:db-pass@db:5432/causality?sslmode=disable&password=query-pass",
		"--nats-url", "nats://token-secret@nats1:4222,nats://user:nats-pass@nats2:4222",
		"--warehouse-url", "s3://lake/events", "--s3-access-key", "AKIAEXAMPLEKEYID"}
	c, err := Parse(args, env(map[string]string{"CAUSALITY_S3_SECRET_KEY": "s3-secret", "CAUSALITY_LOG_LEVEL": "debug", "CAUSALITY_HTTP_ADDR": ":1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	settings := c.Settings()
	byFlag := map[string]Setting{}
	for _, s := range settings {
		byFlag[s.Flag] = s
		for _, secret := range []string{"flag-password-1", "db-pass", "query-pass", "token-secret", "nats-pass", "s3-secret", "AKIAEXAMPLEKEYID"} {
			if strings.Contains(s.Value, secret) {
				t.Errorf("--%s shows %q: %q", s.Flag, secret, s.Value)
			}
		}
	}
	if _, listed := byFlag["check-config"]; listed {
		t.Error("--check-config is listed: it is a command, not a setting")
	}
	if len(settings) < 40 {
		t.Errorf("%d settings, want every flag", len(settings))
	}
	tests := []struct {
		flag, value, source string
	}{
		{"admin-password", "(set, hidden)", SourceFlag},
		{"s3-secret-key", "(set, hidden)", SourceEnv},
		{"http-addr", "127.0.0.1:9090", SourceFlag}, // the flag wins over the environment
		{"log-level", "debug", SourceEnv},
		{"data-dir", "./causality-data", SourceDefault},
		{"tls-cert", "", SourceDefault},
		{"database-url", "postgres://causality:xxxxx@db:5432/causality?password=xxxxx&sslmode=disable", SourceFlag},
		{"nats-url", "nats://xxxxx@nats1:4222,nats://user:xxxxx@nats2:4222", SourceFlag},
		{"s3-access-key", "AKIA…ID", SourceFlag},
	}
	for _, tt := range tests {
		s, ok := byFlag[tt.flag]
		if !ok {
			t.Errorf("--%s is not listed", tt.flag)
			continue
		}
		if s.Value != tt.value || s.Source != tt.source || s.Env != EnvName(tt.flag) || s.Usage == "" {
			t.Errorf("--%s: %+v, want value %q from %s", tt.flag, s, tt.value, tt.source)
		}
	}

	// The summary is what --check-config prints, masked the same way.
	e := c.Effective()
	if len(e.Settings) != len(settings) || len(e.Summary) == 0 {
		t.Fatalf("Effective: %d settings, %d summary lines", len(e.Settings), len(e.Summary))
	}
	report := c.report()
	for _, l := range e.Summary {
		if !strings.Contains(report, l.Name) || !strings.Contains(report, l.Value) {
			t.Errorf("summary line %q: %q is not in the report", l.Name, l.Value)
		}
		if strings.Contains(l.Value, "query-pass") || strings.Contains(l.Value, "db-pass") {
			t.Errorf("summary line %q shows a password: %q", l.Name, l.Value)
		}
	}

	// A Config that Parse did not make has no settings to list.
	if got := (&Config{}).Settings(); len(got) != 0 {
		t.Errorf("a bare Config lists %d settings", len(got))
	}
}
