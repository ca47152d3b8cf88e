package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Status names of the HTTP target, in report order.
var httpStatuses = []string{"200", "202", "4xx", "429", "503", "other", "transport"}

const (
	st200 = iota
	st202
	st4xx
	st429
	st503
	stOther
	stTransport
)

// newHTTPClient returns a client holding one keep-alive connection per worker. It asks for
// no response compression, so answers cost the server and the client nothing extra.
func newHTTPClient(concurrency int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // a benchmark goes straight to the server
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
			WriteBufferSize:     64 << 10,
			ReadBufferSize:      64 << 10,
		},
	}
}

// httpSender posts bodies from a BodySet to one endpoint.
type httpSender struct {
	client *http.Client
	base   *http.Request // URL and headers shared by every request of this worker, read only
	bodies *BodySet
	batch  bool
	proto  bool
	resp   bytes.Buffer
	events int
}

func newHTTPSender(ctx context.Context, client *http.Client, url, key string, bodies *BodySet, batch bool) (*httpSender, error) {
	base, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--url %s: %w", url, err)
	}
	base.Header.Set("Content-Type", bodies.ContentType)
	base.Header.Set("X-API-Key", key)
	base.Header.Set("User-Agent", "causality-bench")
	if bodies.Gzip {
		base.Header.Set("Content-Encoding", "gzip")
	}
	return &httpSender{
		client: client, base: base, bodies: bodies, batch: batch,
		proto:  bodies.ContentType != "application/json",
		events: bodies.EventsPerBody(),
	}, nil
}

func (s *httpSender) send(seq uint64) outcome {
	body := s.bodies.Body(seq)
	req := new(http.Request)
	*req = *s.base
	req.Body = body
	req.ContentLength = int64(body.Len())
	resp, err := s.client.Do(req)
	if err != nil {
		return outcome{status: stTransport, err: err.Error(), backoff: true}
	}
	s.resp.Reset()
	_, err = s.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return outcome{status: stTransport, err: "read response: " + err.Error(), backoff: true}
	}
	return s.judge(resp.StatusCode, s.resp.Bytes())
}

// judge turns an answer into an outcome: for a batch the accepted events are the answer's
// accepted_count, for a single event 1 when its status is accepted or duplicate.
func (s *httpSender) judge(code int, body []byte) outcome {
	o := outcome{status: stOther}
	switch {
	case code == http.StatusOK:
		o.status = st200
	case code == http.StatusAccepted:
		o.status = st202
	case code == http.StatusTooManyRequests:
		o.status = st429
	case code == http.StatusServiceUnavailable:
		o.status = st503
	case code >= 400 && code < 500:
		o.status = st4xx
	}
	want := http.StatusAccepted
	if s.batch {
		want = http.StatusOK
	}
	if code != want {
		o.err = strconv.Itoa(code) + " " + snippet(body)
		return o
	}
	var ok bool
	if s.batch {
		o.accepted, o.dups, ok = parseBatchResponse(body, s.proto)
	} else {
		o.accepted, o.dups, ok = parseSingleResponse(body, s.proto)
	}
	if !ok {
		o.err = fmt.Sprintf("%d with an answer the bench cannot read: %s", code, snippet(body))
		return o
	}
	o.ok = true
	return o
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b[:min(len(b), 200)]))
	if len(b) > 200 {
		s += "..."
	}
	return s
}

// parseBatchResponse reads accepted_count and counts results with status "duplicate" in an
// IngestEventBatchResponse, without decoding it into messages: a batch answer lists every
// event, and unmarshalling it per request would cost the client more than the server
// spends writing it.
func parseBatchResponse(b []byte, proto bool) (accepted, dups int, ok bool) {
	if !proto {
		// protojson writes fields in number order; accepted_count (1) comes first.
		v, ok := jsonInt(b, `"acceptedCount"`)
		if !ok {
			if v, ok = jsonInt(b, `"accepted_count"`); !ok {
				return 0, 0, false
			}
		}
		return v, bytes.Count(b, []byte(`"duplicate"`)), true
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, 0, false
			}
			accepted, ok = int(int32(v)), true
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			res, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, 0, false
			}
			if bytes.Equal(protoBytes(res, 3), duplicate) {
				dups++
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, false
			}
			b = b[n:]
		}
	}
	// accepted_count 0 is absent from the binary form.
	return accepted, dups, true
}

// parseSingleResponse reads the status of an IngestEventResponse.
func parseSingleResponse(b []byte, proto bool) (accepted, dups int, ok bool) {
	var status string
	if proto {
		status = string(protoBytes(b, 2))
	} else {
		switch {
		case bytes.Contains(b, []byte(`"accepted"`)):
			status = "accepted"
		case bytes.Contains(b, []byte(`"duplicate"`)):
			status = "duplicate"
		}
	}
	switch status {
	case "accepted":
		return 1, 0, true
	case "duplicate":
		return 1, 1, true
	}
	return 0, 0, false
}

var duplicate = []byte("duplicate")

// protoBytes returns bytes field num of the message in b (nil if absent or malformed).
func protoBytes(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil
			}
			return v
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil
		}
		b = b[l:]
	}
	return nil
}

// jsonInt reads the integer after key (a quoted JSON name) in b. protojson may write the
// number bare or, for 64-bit fields, quoted; either is read.
func jsonInt(b []byte, key string) (int, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return 0, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n\"")
	v, digits := 0, 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
		digits++
	}
	return v, digits > 0
}
