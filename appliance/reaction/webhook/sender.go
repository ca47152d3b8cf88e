package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults for Options.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultUserAgent = "causality-webhooks"
)

const (
	// maxResponse caps what Send reads of a response: enough for an error
	// message, never a receiver's whole page.
	maxResponse = 4 << 10
	// maxSnippet caps the response text quoted in Result.Err.
	maxSnippet = 200
)

// Options for a Sender.
type Options struct {
	// Timeout bounds a whole attempt, from dialing to reading the (capped)
	// response body; 0 means DefaultTimeout.
	Timeout time.Duration
	// AllowPrivate allows loopback, private (RFC 1918, RFC 4193 fc00::/7),
	// link-local, CGNAT (100.64.0.0/10), unspecified and multicast
	// destinations, which are refused otherwise.
	AllowPrivate bool
	// UserAgent is sent unless the request's own headers set one; empty
	// means DefaultUserAgent.
	UserAgent string
}

// Request is one delivery attempt.
type Request struct {
	URL string
	// Headers are user-configured extra headers. They cannot replace
	// Content-Type or any webhook-* header (compared case-insensitively),
	// nor the framing headers Host, Content-Length, Transfer-Encoding and
	// Connection; those are dropped.
	Headers   map[string]string
	MsgID     string    // webhook-id
	Timestamp time.Time // webhook-timestamp, sent as Unix seconds
	Body      []byte    // JSON
	Secret    string
}

// Result of one attempt.
type Result struct {
	StatusCode int  // 0 when no response arrived
	OK         bool // a 2xx status
	Latency    time.Duration
	// Err is nil when OK, else a short reason for a delivery log, such as
	// "timeout after 10s", "connection refused" or "HTTP 500: <body>". It
	// wraps the underlying error where there is one (errors.Is(Err,
	// context.DeadlineExceeded) holds for a timeout), and is a *RefusedError
	// for a destination refused by the private-address guard.
	Err error
}

// Sender delivers webhooks. It is safe for concurrent use and keeps one
// connection pool for all its requests, so create one and share it.
type Sender struct {
	client    *http.Client
	transport *http.Transport
	timeout   time.Duration
	userAgent string
}

// NewSender returns a Sender with its own connection pool.
func NewSender(o Options) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		// The check runs on the address being dialed, after resolution:
		// checking the name or a resolved address before dialing would
		// miss DNS rebinding.
		d.Control = refuseNonPublic
	}
	tr := &http.Transport{
		// No proxy from the environment: through a proxy the guard would
		// only see the proxy's address, and the proxy would reach
		// whatever the URL names.
		Proxy:             nil,
		DialContext:       d.DialContext,
		ForceAttemptHTTP2: true,
		// The dispatcher sends thousands of deliveries a second, often to
		// one receiver: keep enough idle connections per host that a
		// burst does not open (and TLS-handshake) new ones.
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			// A redirect could lead anywhere, including past what the
			// user saved and checked; it is reported, never followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: tr,
		timeout:   o.Timeout,
		userAgent: o.UserAgent,
	}
}

// CloseIdleConnections closes the pooled connections that are not in use,
// for shutdown.
func (s *Sender) CloseIdleConnections() { s.transport.CloseIdleConnections() }

// errTimedOut is the cause of an attempt's own deadline, to tell it from the
// caller's context ending. net/http returns the cause rather than
// context.DeadlineExceeded, so it wraps that for callers who check for it.
var errTimedOut = fmt.Errorf("webhook attempt timed out: %w", context.DeadlineExceeded)

// Send POSTs r once, signed, and reports the outcome. It never follows
// redirects (a 3xx is a failure) and reads at most 4 KiB of the response,
// quoting a trimmed one-line snippet of it in Err for a non-2xx status.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := s.send(ctx, r)
	res.Latency = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, r Request) Result {
	sig, err := Sign(r.Secret, r.MsgID, r.Timestamp, r.Body)
	if err != nil {
		return Result{Err: err}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, errTimedOut)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself is shown next to the result already
		}
		return Result{Err: fmt.Errorf("invalid URL: %w", err)}
	}
	if err := checkSyntax(req.URL); err != nil {
		return Result{Err: err}
	}

	for k, v := range r.Headers {
		if !reservedHeader(k) {
			req.Header.Set(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", s.userAgent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, r.MsgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(r.Timestamp.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: s.describe(ctx, err)}
	}
	// Reading to EOF lets the connection go back to the pool; a response
	// longer than the cap costs its connection, which is the lesser evil.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()

	res := Result{StatusCode: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		// The status is the receiver's acknowledgement; a body that fails
		// to arrive after it does not make the delivery fail (a retry
		// would deliver twice).
		res.OK = true
	case code >= 300 && code <= 399:
		if loc, err := resp.Location(); err == nil {
			res.Err = fmt.Errorf("redirect to %s not followed", snippet([]byte(loc.String())))
		} else {
			res.Err = fmt.Errorf("HTTP %d: redirect without a Location not followed", code)
		}
	default:
		if sn := snippet(body); sn != "" {
			res.Err = fmt.Errorf("HTTP %d: %s", code, sn)
		} else {
			res.Err = fmt.Errorf("HTTP %d", code)
		}
	}
	return res
}

// reservedHeader reports whether a user header must not be sent because
// the Sender sets it: the signature headers (and the whole webhook-*
// namespace of the spec), Content-Type, and headers that frame the message.
func reservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Host", "Content-Length", "Transfer-Encoding", "Connection":
		return true
	}
	return len(name) >= len("webhook-") && strings.EqualFold(name[:len("webhook-")], "webhook-")
}

// failure is a short user-facing reason that still wraps its cause for
// errors.Is and errors.As.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

// describe turns a transport error into the short reason a delivery log
// shows, preferring typed checks over the text of the error.
func (s *Sender) describe(ctx context.Context, err error) error {
	fail := func(format string, args ...any) error {
		return &failure{msg: fmt.Sprintf(format, args...), err: err}
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, errTimedOut) {
			return fail("timeout after %v", s.timeout)
		}
		return fail("canceled: %v", cause)
	}

	var (
		refused  *RefusedError
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &refused):
		return refused
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("connection refused")
	case errors.Is(err, syscall.ECONNRESET):
		return fail("connection reset by receiver")
	case errors.Is(err, syscall.ENETUNREACH):
		return fail("network unreachable")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return fail("host unreachable")
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return fail("host %s not found", dnsErr.Name)
		case dnsErr.IsTimeout:
			return fail("DNS lookup of %s timed out", dnsErr.Name)
		}
		return fail("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &unknown):
		return fail("tls: certificate signed by unknown authority")
	case errors.As(err, &hostname):
		return fail("tls: %s", strings.TrimPrefix(hostname.Error(), "x509: "))
	case errors.As(err, &invalid):
		return fail("tls: %s", strings.TrimPrefix(invalid.Error(), "x509: "))
	case errors.As(err, &verify):
		return fail("tls: %s", strings.TrimPrefix(verify.Err.Error(), "x509: "))
	case errors.As(err, &record):
		return fail("tls: the receiver did not answer with TLS (is it plain http?)")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fail("connection closed by receiver without a response")
	case errors.As(err, &netErr) && netErr.Timeout():
		return fail("timeout: %v", unwrapURLError(err))
	}
	return fail("%v", unwrapURLError(err))
}

// unwrapURLError drops the `Post "<url>": ` that net/http puts in front of
// every error; the delivery log shows the URL already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is b as one line of printable text, at most maxSnippet runes.
func snippet(b []byte) string {
	var sb strings.Builder
	space, n := false, 0
	for len(b) > 0 && n < maxSnippet {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
			n++
		}
		space = false
		sb.WriteRune(r)
		n++
	}
	if len(bytes.TrimSpace(b)) > 0 {
		sb.WriteString("…")
	}
	return sb.String()
}
