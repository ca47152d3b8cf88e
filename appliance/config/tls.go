package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

// TLSEnabled reports whether --http-addr serves HTTPS (so that, e.g., cookies can be Secure).
func (c *Config) TLSEnabled() bool { return c.TLSCert != "" || len(c.TLSDomains) > 0 }

// TLSMode says what serves --http-addr, as the startup log and banner show it: "http",
// "https (certificate from FILE, valid until DATE)" or "https (automatic certificates for
// DOMAINS via ACME)". notAfter is the end of the certificate file's validity.
func (c *Config) TLSMode(notAfter time.Time) string {
	switch {
	case c.TLSCert != "":
		return fmt.Sprintf("https (certificate from %s, valid until %s)", c.TLSCert, notAfter.UTC().Format("2006-01-02 15:04 UTC"))
	case len(c.TLSDomains) > 0:
		return fmt.Sprintf("https (automatic certificates for %s via ACME)", strings.Join(c.TLSDomains, ", "))
	}
	return "http"
}

// validateTLS checks the TLS flags; with --tls-cert it loads the pair, so a typo or a key
// that does not belong to the certificate stops the start rather than the first handshake.
func (c *Config) validateTLS(bad func(flag, format string, args ...any)) {
	if c.TLSCert != "" && c.TLSKey == "" {
		bad("tls-key", "--tls-cert needs its private key file too")
	}
	if c.TLSKey != "" && c.TLSCert == "" {
		bad("tls-cert", "--tls-key needs its certificate file too")
	}
	if c.TLSCert != "" && c.TLSKey != "" {
		if _, flag, err := LoadKeyPair(c.TLSCert, c.TLSKey); err != nil {
			bad(flag, "%v", err)
		}
	}
	if len(c.TLSDomains) == 0 {
		return
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		bad("tls-domain", "automatic certificates and --tls-cert/--tls-key exclude each other; give one or the other")
	}
	for _, d := range c.TLSDomains {
		if err := checkDomain(d); err != nil {
			bad("tls-domain", "%q %v", d, err)
		}
	}
	if c.TLSEmail != "" {
		if a, err := mail.ParseAddress(c.TLSEmail); err != nil || a.Address != c.TLSEmail {
			bad("tls-email", "%q is not an email address like ops@example.com", c.TLSEmail)
		}
	}
	if u, err := url.Parse(c.ACMEDirectory); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("acme-directory", "%q is not an http(s) URL", c.ACMEDirectory)
	}
	if c.ACMEHTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.ACMEHTTPAddr); err != nil {
			bad("acme-http-addr", "%q is not host:port (e.g. :80), or empty for none", c.ACMEHTTPAddr)
		} else if c.ACMEHTTPAddr == c.HTTPAddr {
			bad("acme-http-addr", "must differ from --http-addr (it answers plain HTTP)")
		}
	}
}

// LoadKeyPair loads a PEM certificate (chain) and its private key. An error says what is
// wrong and flag names the option to fix: "tls-cert" or "tls-key".
func LoadKeyPair(certFile, keyFile string) (cert tls.Certificate, flag string, err error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return cert, "tls-cert", err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return cert, "tls-key", err
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err == nil {
		return cert, "", nil
	}
	// Which file is wrong: the certificate, if it holds no certificate at all.
	for rest := certPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return cert, "tls-cert", fmt.Errorf("%s holds no PEM certificate (want e.g. certbot's fullchain.pem)", certFile)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, perr := x509.ParseCertificate(block.Bytes); perr != nil {
			return cert, "tls-cert", fmt.Errorf("%s: %v", certFile, perr)
		}
		return cert, "tls-key", fmt.Errorf("%s is not the private key of %s: %v", keyFile, certFile, err)
	}
}

// checkDomain accepts a DNS name an ACME CA can issue a certificate for through HTTP-01 or
// TLS-ALPN-01: no wildcard, no IP address, no port or scheme.
func checkDomain(name string) error {
	switch {
	case strings.Contains(name, "://") || strings.ContainsAny(name, "/:"):
		return errors.New("is not a bare host name (no scheme, port or path)")
	case strings.HasPrefix(name, "*."):
		return errors.New("is a wildcard; ACME issues those only through DNS challenges, which are not supported")
	case net.ParseIP(name) != nil:
		return errors.New("is an IP address; ACME needs a DNS name")
	case len(name) > 253:
		return errors.New("is longer than 253 characters")
	case !strings.Contains(strings.Trim(name, "."), "."):
		return errors.New("is not a public DNS name (e.g. events.example.com)")
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("has an empty, too long or dash-edged label %q", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("has %q; write international names in their xn-- form", r)
			}
		}
	}
	return nil
}
