package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// httpError is a failure with the status code the client should see.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the body, un-gzipping it when Content-Encoding says so, refusing anything
// larger than limit bytes (compressed or not, so a small gzip bomb cannot blow up). The
// returned release gives the buffer back; the bytes are invalid after it.
func readBody(r *http.Request, limit int64) ([]byte, func(), error) {
	if r.ContentLength > limit {
		return nil, nil, tooLarge(limit)
	}
	var src io.Reader = http.MaxBytesReader(nil, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, bodyError(err, limit, "body is not valid gzip")
		}
		defer zr.Close()
		src = zr
	default:
		return nil, nil, &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported; send gzip or no encoding", enc)}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() {
		if buf.Cap() <= 8<<20 { // don't keep a rare huge buffer alive
			bufPool.Put(buf)
		}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	// One byte past the limit tells "exactly at the limit" from "over it".
	_, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	if err == nil && int64(buf.Len()) > limit {
		err = tooLarge(limit)
	}
	if err != nil {
		release()
		return nil, nil, bodyError(err, limit, "body is not valid gzip")
	}
	return buf.Bytes(), release, nil
}

func bodyError(err error, limit int64, gzipMsg string) error {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF):
		return &httpError{http.StatusBadRequest, gzipMsg}
	default:
		return &httpError{http.StatusBadRequest, "could not read the request body: " + err.Error()}
	}
}

func tooLarge(limit int64) error {
	return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes; split the batch", limit)}
}
