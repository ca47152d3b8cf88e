package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/causality-io/causality/appliance/config"
)

// certCheckEvery is how often, at most, a handshake looks whether the certificate files
// changed (certbot and similar tools replace them in place or swap a symlink).
const certCheckEvery = 2 * time.Second

// httpsParts is TLS on --http-addr as the flags ask for it.
type httpsParts struct {
	mode     string            // what serves --http-addr: "http" or "https (…)", for log and banner
	config   *tls.Config       // nil: plain HTTP
	acme     *autocert.Manager // with --tls-domain
	acmeHTTP *http.Server      // --acme-http-addr: HTTP-01 challenges, redirect to https
}

// setupTLS prepares the TLS configuration of --http-addr: certificate files reloaded when
// they change, or certificates from ACME; nothing for plain HTTP.
func (a *Appliance) setupTLS() error {
	log := a.log.With("component", "tls")
	switch {
	case a.cfg.TLSCert != "":
		r, err := newCertReloader(a.cfg.TLSCert, a.cfg.TLSKey, certCheckEvery, log)
		if err != nil {
			return err
		}
		leaf := r.cert.Leaf
		if time.Now().After(leaf.NotAfter) {
			log.Warn("the tls certificate has expired; clients will refuse it", "cert", a.cfg.TLSCert, "not_after", leaf.NotAfter)
		}
		a.https.config = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
		a.https.mode = a.cfg.TLSMode(leaf.NotAfter)
	case len(a.cfg.TLSDomains) > 0:
		m := newACMEManager(a.cfg)
		c := m.TLSConfig() // answers TLS-ALPN-01 challenges on this listener too
		c.MinVersion = tls.VersionTLS12
		getCert := c.GetCertificate
		c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" { // a client that dialled an IP address, e.g. a health check
				hello.ServerName = a.cfg.TLSDomains[0]
			}
			return getCert(hello)
		}
		a.https.acme, a.https.config = m, c
		a.https.mode = a.cfg.TLSMode(time.Time{})
	default:
		a.https.mode = "http"
	}
	return nil
}

// newACMEManager is the certificate manager for --tls-domain: it asks --acme-directory for
// certificates for exactly the listed names (a handshake for any other name gets none, so
// nobody can make us request certificates for names of their choosing), and keeps them
// and the account key in <data-dir>/acme.
func newACMEManager(cfg *config.Config) *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cfg.ACMECacheDir()),
		HostPolicy: autocert.HostWhitelist(cfg.TLSDomains...),
		Email:      cfg.TLSEmail,
		Client:     &acme.Client{DirectoryURL: cfg.ACMEDirectory, UserAgent: "causality"},
	}
}

// startACMEHTTP serves --acme-http-addr when certificates come from ACME: the HTTP-01
// challenges, and a redirect to https for everything else.
func (a *Appliance) startACMEHTTP() error {
	if a.https.acme == nil || a.cfg.ACMEHTTPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.ACMEHTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --acme-http-addr %s: %w", a.cfg.ACMEHTTPAddr, err)
	}
	a.https.acmeHTTP = &http.Server{
		Handler:           acmeHTTPHandler(a.https.acme, a.cfg.TLSDomains, a.listener.Addr().String()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          httpErrorLog(a.log),
	}
	a.log.Info("serving acme challenges and the redirect to https", "addr", ln.Addr().String())
	go func() {
		if err := a.https.acmeHTTP.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			select {
			case a.httpDone <- fmt.Errorf("--acme-http-addr: %w", err):
			default: // the main server's failure is already reported
			}
		}
	}()
	return nil
}

func (a *Appliance) stopACMEHTTP(ctx context.Context) error {
	if a.https.acmeHTTP == nil {
		return nil
	}
	if err := a.https.acmeHTTP.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop --acme-http-addr: %w", err)
	}
	return nil
}

// acmeHTTPHandler answers HTTP-01 challenges and sends every other GET to the same path
// over https (served at httpsAddr), on one of our own names (never to a host a request
// made up).
func acmeHTTPHandler(m *autocert.Manager, domains []string, httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return m.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host = strings.ToLower(host); !slices.Contains(domains, host) {
			host = domains[0]
		}
		if port != "443" && port != "" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusFound)
	}))
}

// baseURL is where a person on this machine reaches --http-addr.
func (a *Appliance) baseURL() string {
	addr := a.listener.Addr().String()
	switch {
	case len(a.cfg.TLSDomains) > 0:
		host := a.cfg.TLSDomains[0]
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "443" {
			host = net.JoinHostPort(host, port)
		}
		return "https://" + host
	case a.cfg.TLSEnabled():
		return "https://" + displayHost(addr)
	}
	return "http://" + displayHost(addr)
}

// httpErrorLog sends the HTTP servers' own complaints to the log as warnings, except
// failed TLS handshakes: scanners and clients that do not trust the certificate make them
// all day long, so they are debug noise.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(logFunc(func(line string) {
		if strings.HasPrefix(line, "http: TLS handshake error") {
			l.Debug(line)
		} else {
			l.Warn(line)
		}
	}), "", 0)
}

type logFunc func(string)

func (f logFunc) Write(p []byte) (int, error) {
	f(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// certReloader serves a certificate from files and loads them again when they change, so
// a renewal needs no restart. A pair that does not load (say, the certificate written
// but not its key yet) is logged and the previous certificate kept.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  fileStamp // of the files cert came from
	failed  fileStamp // of the last pair that did not load, logged once
	checked time.Time
}

// fileStamp tells whether the files changed.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func newCertReloader(certFile, keyFile string, every time.Duration, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, every: every, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, flag, err := config.LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	r.cert, r.loaded, r.checked = &cert, stamp, time.Now()
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.every {
		r.checked = time.Now()
		r.reload()
	}
	return r.cert, nil
}

func (r *certReloader) reload() {
	stamp, err := r.stat()
	if err == nil && stamp == r.loaded {
		return
	}
	if err == nil {
		var cert tls.Certificate
		if cert, _, err = config.LoadKeyPair(r.certFile, r.keyFile); err == nil {
			r.cert, r.loaded, r.failed = &cert, stamp, fileStamp{}
			r.log.Info("tls certificate reloaded", "cert", r.certFile, "serial", cert.Leaf.SerialNumber.String(),
				"not_after", cert.Leaf.NotAfter)
			return
		}
	}
	if stamp != r.failed {
		r.failed = stamp
		r.log.Warn("tls certificate files changed but do not load; still serving the previous certificate",
			"cert", r.certFile, "key", r.keyFile, "err", err)
	}
}

// stat stamps both files; a stamp of a missing file is zero.
func (r *certReloader) stat() (fileStamp, error) {
	var s fileStamp
	ci, err1 := os.Stat(r.certFile)
	if err1 == nil {
		s.certMod, s.certSize = ci.ModTime(), ci.Size()
	}
	ki, err2 := os.Stat(r.keyFile)
	if err2 == nil {
		s.keyMod, s.keySize = ki.ModTime(), ki.Size()
	}
	if err1 != nil {
		return s, fmt.Errorf("--tls-cert: %w", err1)
	}
	if err2 != nil {
		return s, fmt.Errorf("--tls-key: %w", err2)
	}
	return s, nil
}
