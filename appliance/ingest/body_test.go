package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// failingReader fails the test if anything reads from it.
type failingReader struct{ read bool }

func (f *failingReader) Read([]byte) (int, error) {
	f.read = true
	return 0, errors.New("the body should not have been read")
}

// brokenReader gives a few bytes, then fails as a dropped connection does.
type brokenReader struct{ done bool }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("connection reset by peer")
	}
	b.done = true
	return copy(p, "{\"ev"), nil
}

func TestReadBody(t *testing.T) {
	const limit = 1024
	atLimit := bytes.Repeat([]byte("a"), limit)
	overLimit := bytes.Repeat([]byte("a"), limit+1)
	payload := []byte(`{"event_id":"e1"}`)
	gz := gzipped(t, payload)

	truncated := gz[:len(gz)-6] // stream cut before the end
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-8] ^= 0xff // the trailer's CRC-32 no longer matches
	withJunk := append(bytes.Clone(gz), "junk"...)
	// A bomb: under the limit on the wire, 512 times the limit once inflated.
	bomb := gzipped(t, make([]byte, 512*limit))
	if len(bomb) >= limit {
		t.Fatalf("the bomb is %d bytes compressed, want under the limit %d", len(bomb), limit)
	}
	// Incompressible data just under the limit grows past it when gzipped.
	random := make([]byte, limit-8)
	_, _ = rand.Read(random)
	bigGzip := gzipped(t, random)
	if len(bigGzip) <= limit {
		t.Fatalf("gzipped random data is %d bytes, want over the limit %d", len(bigGzip), limit)
	}

	tests := []struct {
		name     string
		body     []byte
		encoding string
		unknown  bool // send without Content-Length, as a chunked request does
		want     []byte
		wantCode int // 0: success
	}{
		{name: "plain", body: payload, want: payload},
		{name: "plain without Content-Length", body: payload, unknown: true, want: payload},
		{name: "empty", body: nil, want: []byte{}},
		{name: "identity", body: payload, encoding: "identity", want: payload},
		{name: "identity, odd case and spaces", body: payload, encoding: " Identity ", want: payload},
		{name: "gzip", body: gz, encoding: "gzip", want: payload},
		{name: "x-gzip", body: gz, encoding: "x-gzip", want: payload},
		{name: "GZIP upper case", body: gz, encoding: "GZIP", want: payload},
		{name: "gzip without Content-Length", body: gz, encoding: "gzip", unknown: true, want: payload},
		{name: "br unsupported", body: payload, encoding: "br", wantCode: http.StatusUnsupportedMediaType},
		{name: "deflate unsupported", body: payload, encoding: "deflate", wantCode: http.StatusUnsupportedMediaType},
		{name: "two encodings unsupported", body: gz, encoding: "gzip, br", wantCode: http.StatusUnsupportedMediaType},
		{name: "gzip header but plain body", body: payload, encoding: "gzip", wantCode: http.StatusBadRequest},
		{name: "gzip of nothing at all", body: nil, encoding: "gzip", wantCode: http.StatusBadRequest},
		{name: "truncated gzip", body: truncated, encoding: "gzip", wantCode: http.StatusBadRequest},
		{name: "gzip with a bad checksum", body: badCRC, encoding: "gzip", wantCode: http.StatusBadRequest},
		{name: "gzip followed by junk", body: withJunk, encoding: "gzip", wantCode: http.StatusBadRequest},
		{name: "exactly the limit", body: atLimit, want: atLimit},
		{name: "exactly the limit without Content-Length", body: atLimit, unknown: true, want: atLimit},
		{name: "one byte over the limit", body: overLimit, wantCode: http.StatusRequestEntityTooLarge},
		{name: "one byte over without Content-Length", body: overLimit, unknown: true, wantCode: http.StatusRequestEntityTooLarge},
		{name: "gzip inflating to exactly the limit", body: gzipped(t, atLimit), encoding: "gzip", want: atLimit},
		{name: "gzip inflating to one byte over", body: gzipped(t, overLimit), encoding: "gzip", wantCode: http.StatusRequestEntityTooLarge},
		{name: "gzip bomb", body: bomb, encoding: "gzip", unknown: true, wantCode: http.StatusRequestEntityTooLarge},
		{name: "gzip larger than the limit itself", body: bigGzip, encoding: "gzip", unknown: true, wantCode: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/events/batch", bytes.NewReader(tt.body))
			if tt.encoding != "" {
				r.Header.Set("Content-Encoding", tt.encoding)
			}
			if tt.unknown {
				r.ContentLength = -1
			}
			got, release, err := readBody(r, limit)
			if tt.wantCode != 0 {
				checkHTTPError(t, err, tt.wantCode)
				if got != nil || release != nil {
					t.Errorf("failed read returned %d bytes and release=%v, want nothing", len(got), release != nil)
				}
				return
			}
			if err != nil {
				t.Fatalf("readBody: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("body = %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
			if release == nil {
				t.Fatal("release is nil")
			}
			release()
		})
	}
}

func checkHTTPError(t *testing.T, err error, code int) {
	t.Helper()
	var he *httpError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v (%T), want an *httpError with status %d", err, err, code)
	}
	if he.code != code {
		t.Fatalf("status = %d (%q), want %d", he.code, he.msg, code)
	}
	if he.msg == "" {
		t.Fatal("error without a message")
	}
	if code == http.StatusRequestEntityTooLarge && !strings.Contains(he.msg, "1024") {
		t.Errorf("message %q does not say the limit", he.msg)
	}
}

// A declared Content-Length over the limit is refused without reading a byte, so a client
// announcing a huge upload is turned away at once.
func TestReadBodyContentLengthRefusedBeforeReading(t *testing.T) {
	for _, encoding := range []string{"", "gzip"} {
		t.Run("encoding="+encoding, func(t *testing.T) {
			body := &failingReader{}
			r := httptest.NewRequest(http.MethodPost, "/", body)
			r.ContentLength = 1025
			r.Header.Set("Content-Length", strconv.Itoa(1025))
			if encoding != "" {
				r.Header.Set("Content-Encoding", encoding)
			}
			_, _, err := readBody(r, 1024)
			checkHTTPError(t, err, http.StatusRequestEntityTooLarge)
			if body.read {
				t.Error("the body was read although Content-Length was over the limit")
			}
		})
	}
}

// A connection that breaks mid-body is a client problem (400), not a server error.
func TestReadBodyBrokenConnection(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(&brokenReader{}))
	r.ContentLength = -1
	_, _, err := readBody(r, 1024)
	checkHTTPError(t, err, http.StatusBadRequest)
}

// Buffers go back to a pool: a second read must not see the first one's bytes.
func TestReadBodyReusedBufferIsClean(t *testing.T) {
	first := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("a long first body"))
	b1, release, err := readBody(first, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != "a long first body" {
		t.Fatalf("first body = %q", b1)
	}
	release()
	second := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("short"))
	b2, release, err := readBody(second, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if string(b2) != "short" {
		t.Fatalf("second body = %q, want %q", b2, "short")
	}
}
