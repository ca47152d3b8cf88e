package appliance

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/internal/testcert"
)

func acmeConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--data-dir", "/var/lib/causality",
		"--tls-domain", "events.example.com,www.example.com", "--tls-email", "ops@example.com"}, args...),
		func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSACMEManager checks what can be checked of ACME without a CA: where certificates
// are cached, which names it would ask for, and which directory it talks to.
func TestTLSACMEManager(t *testing.T) {
	m := newACMEManager(acmeConfig(t, "--acme-directory", "https://acme-staging-v02.api.letsencrypt.org/directory"))
	if dir, ok := m.Cache.(autocert.DirCache); !ok || string(dir) != "/var/lib/causality/acme" {
		t.Errorf("cache %#v, want DirCache /var/lib/causality/acme", m.Cache)
	}
	ctx := context.Background()
	for _, host := range []string{"events.example.com", "www.example.com"} {
		if err := m.HostPolicy(ctx, host); err != nil {
			t.Errorf("policy refuses %s: %v", host, err)
		}
	}
	for _, host := range []string{"example.com", "evil.example.net", "localhost", "127.0.0.1", ""} {
		if err := m.HostPolicy(ctx, host); err == nil {
			t.Errorf("policy accepts %q", host)
		}
	}
	if m.Client.DirectoryURL != "https://acme-staging-v02.api.letsencrypt.org/directory" || m.Email != "ops@example.com" || m.Prompt == nil {
		t.Errorf("client %s, email %s", m.Client.DirectoryURL, m.Email)
	}
	if d := newACMEManager(acmeConfig(t)).Client.DirectoryURL; d != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("default directory %s", d)
	}
}

// TestTLSACMERedirect: --acme-http-addr answers challenges (here: none pending, 404) and
// sends the rest to https on one of our names.
func TestTLSACMERedirect(t *testing.T) {
	tests := []struct {
		httpAddr, method, target, host string
		code                           int
		location                       string
	}{
		{":443", "GET", "/v1/events/batch?x=1", "events.example.com", http.StatusFound, "https://events.example.com/v1/events/batch?x=1"},
		{":443", "GET", "/", "WWW.example.com:80", http.StatusFound, "https://www.example.com/"},
		{":443", "GET", "/admin/", "attacker.example.net", http.StatusFound, "https://events.example.com/admin/"},
		{":8443", "HEAD", "/healthz", "www.example.com", http.StatusFound, "https://www.example.com:8443/healthz"},
		{":443", "POST", "/v1/events/batch", "events.example.com", http.StatusBadRequest, ""},
		{":443", "GET", "/.well-known/acme-challenge/abc", "events.example.com", http.StatusNotFound, ""},
		{":443", "GET", "/.well-known/acme-challenge/abc", "attacker.example.net", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		cfg := acmeConfig(t, "--http-addr", tt.httpAddr)
		cfg.DataDir = t.TempDir()
		h := acmeHTTPHandler(newACMEManager(cfg), cfg.TLSDomains, tt.httpAddr)
		req := httptest.NewRequest(tt.method, "http://"+tt.host+tt.target, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.code || w.Header().Get("Location") != tt.location {
			t.Errorf("%s %s%s (https on %s): %d %q, want %d %q", tt.method, tt.host, tt.target, tt.httpAddr,
				w.Code, w.Header().Get("Location"), tt.code, tt.location)
		}
	}
}

// TestTLSCertReloader: a changed pair is served after the check interval; a broken one is
// not, and the previous certificate stays.
func TestTLSCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := testcert.Write(certFile, keyFile, 1); err != nil {
		t.Fatal(err)
	}
	const every = 20 * time.Millisecond
	r, err := newCertReloader(certFile, keyFile, every, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		time.Sleep(2 * every)
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 1 {
		t.Fatalf("after a broken write: serial %d, want the old 1", s)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 1 {
		t.Fatalf("with the key missing: serial %d, want the old 1", s)
	}
	if _, err := testcert.Write(certFile, keyFile, 2); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 2 {
		t.Fatalf("after the renewal: serial %d, want 2", s)
	}
	if _, err := newCertReloader(filepath.Join(dir, "nope.crt"), keyFile, every, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a missing certificate file was accepted at start")
	}
}
