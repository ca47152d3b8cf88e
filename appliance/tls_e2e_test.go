package appliance_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/internal/testcert"
)

// httpsClient trusts only the given certificates and opens a new connection (a full
// handshake) for every request, so that it sees a replaced certificate.
func httpsClient(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: true,
	}}
}

// httpsDo sends one request and returns the answer and the serial of the certificate the
// server showed.
func httpsDo(t *testing.T, c *http.Client, method, url, body string, header map[string]string) (response, *big.Int) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("%s %s was not answered over TLS", method, url)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}, resp.TLS.PeerCertificates[0].SerialNumber
}

// TestTLSWithCertificateFiles starts the appliance with --tls-cert/--tls-key and a
// self-signed certificate: health and ingest work over HTTPS, plain HTTP does not, old
// protocol versions are refused, and a renewed certificate is served without a restart.
func TestTLSWithCertificateFiles(t *testing.T) {
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "fullchain.pem"), filepath.Join(certDir, "privkey.pem")
	first, err := testcert.Write(certFile, keyFile, 1001)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dataDir(t))
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	base := "https://" + s.app.Addr().String()
	client := httpsClient(first)

	t.Run("banner says https", func(t *testing.T) {
		out := s.out.String()
		for _, want := range []string{base + "/healthz", "https (certificate from " + certFile + ", valid until "} {
			if !strings.Contains(out, want) {
				t.Errorf("banner lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("healthz over https", func(t *testing.T) {
		r, serial := httpsDo(t, client, "GET", base+"/healthz", "", nil)
		if r.code != http.StatusOK || serial.Int64() != 1001 {
			t.Fatalf("got %s with certificate serial %s", r, serial)
		}
	})

	t.Run("plain http to the https port fails", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.app.Addr().String() + "/healthz")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP answered %d, want 400 or an error", resp.StatusCode)
			}
		}
	})

	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(first)
		conn, err := tls.Dial("tcp", s.app.Addr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("ingest over https", func(t *testing.T) {
		r, _ := httpsDo(t, client, "POST", base+"/api/v1/admin/keys", `{"app_id":"shop","name":"tls"}`, map[string]string{
			"Authorization": basicAuth("admin", adminPassword), "Content-Type": "application/json"})
		if r.code != http.StatusCreated {
			t.Fatalf("create key: %s", r)
		}
		key, _ := r.json(t)["key"].(string)
		r, _ = httpsDo(t, client, "POST", base+"/v1/events/batch", string(minimalBatch("shop", "tls", 1)), map[string]string{
			"X-API-Key": key, "Content-Type": "application/json"})
		if r.code != http.StatusOK || r.json(t)["acceptedCount"] != 1.0 {
			t.Fatalf("ingest: %s", r)
		}
		found := false
		for _, ev := range s.stored() {
			found = found || ev.GetId() == "tls-0"
		}
		if !found {
			t.Fatal("the event sent over https is not in the stream")
		}
	})

	t.Run("renewed certificate is served without a restart", func(t *testing.T) {
		// A broken write first (certbot half done): the old certificate must stay.
		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // longer than the check interval
		if r, serial := httpsDo(t, client, "GET", base+"/healthz", "", nil); r.code != http.StatusOK || serial.Int64() != 1001 {
			t.Fatalf("with broken files: %s, serial %s; want the old certificate 1001", r, serial)
		}

		second, err := testcert.Write(certFile, keyFile, 2002)
		if err != nil {
			t.Fatal(err)
		}
		renewed := httpsClient(second) // trusts only the new certificate
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := renewed.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				if serial := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); resp.StatusCode != http.StatusOK || serial != 2002 {
					t.Fatalf("after renewal: %d, serial %d", resp.StatusCode, serial)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the new certificate was not served within 20s: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := client.Get(base + "/healthz"); err == nil {
			t.Fatal("a client trusting only the old certificate still connects")
		}
	})
}

func basicAuth(user, password string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// TestTLSWithACMEWiring starts the appliance with --tls-domain against a CA that answers
// nothing useful (there is no internet here): the appliance starts, says so, serves the
// challenge and redirect port, refuses handshakes it has no certificate for, and stops
// cleanly.
func TestTLSWithACMEWiring(t *testing.T) {
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such directory", http.StatusNotFound) // a 5xx would be retried for minutes
	}))
	defer ca.Close()
	cfg := testConfig(t, dataDir(t))
	cfg.TLSDomains = []string{"events.example.com"}
	cfg.ACMEDirectory = ca.URL + "/directory"
	cfg.ACMEHTTPAddr = freeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	_, port, _ := net.SplitHostPort(s.app.Addr().String())
	for _, want := range []string{"https://events.example.com:" + port + "/healthz", "automatic certificates for events.example.com via ACME"} {
		if !strings.Contains(s.out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, s.out)
		}
	}

	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+cfg.ACMEHTTPAddr+"/readyz?x=1", nil)
	req.Host = "events.example.com"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://events.example.com:" + port + "/readyz?x=1"; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("--acme-http-addr answered %d %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	dialer := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", s.app.Addr().String(), &tls.Config{ServerName: "events.example.com", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Fatal("a handshake succeeded without any certificate")
	}
}
