// Package ingest is the HTTP ingest API of WIRE.md: single and batch events, JSON or binary
// protobuf, optionally gzipped, authenticated by API key, validated, rate limited, and
// answered only after JetStream has stored them.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/metrics"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Statuses of an event in a response (WIRE.md).
const (
	StatusAccepted  = "accepted"
	StatusRejected  = "rejected"
	StatusDuplicate = "duplicate"
)

// publishTimeout bounds the wait for JetStream's acks; past it the client gets 503 and
// retries, which dedup makes safe.
const publishTimeout = 10 * time.Second

// Publisher stores events; *bus.Bus is the real one.
type Publisher interface {
	Publish(ctx context.Context, msgs []bus.Message) ([]bus.Result, error)
}

// Options configure the handler.
type Options struct {
	MaxBodyBytes int64
	CORSOrigins  []string
}

// Handler serves the ingest endpoints.
type Handler struct {
	keys      *apikey.Keyring
	pub       Publisher
	validator *event.Validator
	metrics   *metrics.Metrics
	log       *slog.Logger
	opts      Options
	now       func() time.Time
}

// New builds the handler.
func New(keys *apikey.Keyring, pub Publisher, validator *event.Validator, m *metrics.Metrics, log *slog.Logger, opts Options) *Handler {
	return &Handler{keys: keys, pub: pub, validator: validator, metrics: m, log: log, opts: opts, now: time.Now}
}

// Routes mounts POST /v1/events/ingest and /v1/events/batch, with CORS for browser apps.
// Keys travel in a header, never a cookie, so any origin may be allowed safely. The
// routes live in their own subrouter so that preflight OPTIONS requests reach CORS.
func (h *Handler) Routes(r chi.Router) {
	r.Route("/v1/events", func(r chi.Router) {
		r.Use(cors.Handler(cors.Options{
			AllowedOrigins: h.opts.CORSOrigins,
			AllowedMethods: []string{http.MethodPost},
			AllowedHeaders: []string{"Content-Type", "Content-Encoding", "X-API-Key", "Authorization"},
			ExposedHeaders: []string{"Retry-After"},
			MaxAge:         600,
		}))
		r.Post("/ingest", h.serveSingle)
		r.Post("/batch", h.serveBatch)
	})
}

// request is what every ingest call shares once authenticated and read.
type request struct {
	who      *apikey.Identity
	body     []byte
	ctype    string
	received time.Time
	release  func()
}

// begin authenticates, reads and un-gzips the body. On failure it has answered already.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request) (*request, bool) {
	key := apikey.FromHeaders(r.Header.Get("X-API-Key"), r.Header.Get("Authorization"))
	if key == "" {
		writeError(w, http.StatusUnauthorized, "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>")
		return nil, false
	}
	who, ok := h.keys.Lookup(key)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unknown or revoked API key")
		return nil, false
	}
	body, release, err := readBody(r, h.opts.MaxBodyBytes)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			writeError(w, he.code, he.msg)
		} else {
			writeError(w, http.StatusBadRequest, "could not read the request body")
		}
		return nil, false
	}
	now := h.now()
	who.MarkUsed(now)
	return &request{who: who, body: body, ctype: r.Header.Get("Content-Type"), received: now, release: release}, true
}

func (h *Handler) serveSingle(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r)
	if !ok {
		return
	}
	defer req.release()
	in, err := event.DecodeSingle(req.ctype, req.body)
	if err != nil {
		h.rejectBody(w, err, 1)
		return
	}
	ev := in.GetEvent()
	if !h.sameApp(w, req.who, ev) || !h.allow(w, req, 1) {
		return
	}
	if err := h.validator.Validate(ev); err != nil {
		h.metrics.EventsTotal.WithLabelValues(metrics.Rejected).Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	results, ok := h.store(w, r, []*causalityv1.EventEnvelope{ev}, req.received)
	if !ok {
		return
	}
	status := StatusAccepted
	if results[0].Duplicate {
		status = StatusDuplicate
	}
	h.count(status, 1)
	writeMessage(w, req.ctype, http.StatusAccepted, &causalityv1.IngestEventResponse{EventId: ev.GetId(), Status: status})
}

func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r)
	if !ok {
		return
	}
	defer req.release()
	in, err := event.DecodeBatch(req.ctype, req.body)
	if err != nil {
		h.rejectBody(w, err, 1)
		return
	}
	events := in.GetEvents()
	for _, ev := range events {
		if !h.sameApp(w, req.who, ev) {
			return
		}
	}
	if !h.allow(w, req, len(events)) {
		return
	}

	resp := &causalityv1.IngestEventBatchResponse{Results: make([]*causalityv1.EventResult, len(events))}
	valid := make([]*causalityv1.EventEnvelope, 0, len(events))
	validIdx := make([]int, 0, len(events))
	for i, ev := range events {
		res := &causalityv1.EventResult{Index: int32(i)}
		resp.Results[i] = res
		if err := h.validator.Validate(ev); err != nil {
			res.Status, res.Error, res.EventId = StatusRejected, err.Error(), ev.GetId()
			resp.RejectedCount++
			continue
		}
		valid = append(valid, ev)
		validIdx = append(validIdx, i)
	}
	h.count(StatusRejected, int(resp.RejectedCount))

	if len(valid) > 0 {
		results, ok := h.store(w, r, valid, req.received)
		if !ok {
			return
		}
		dups := 0
		for j, pr := range results {
			res := resp.Results[validIdx[j]]
			res.EventId, res.Status = valid[j].GetId(), StatusAccepted
			if pr.Duplicate {
				res.Status = StatusDuplicate
				dups++
			}
		}
		// A duplicate is stored (once, earlier): the client must not resend it, so it counts
		// as accepted in the totals and is told apart only in its result.
		resp.AcceptedCount = int32(len(valid))
		h.count(StatusAccepted, len(valid)-dups)
		h.count(StatusDuplicate, dups)
	}
	writeMessage(w, req.ctype, http.StatusOK, resp)
}

// sameApp refuses an event addressed to an app other than the key's. An empty app_id is
// left for validation to name.
func (h *Handler) sameApp(w http.ResponseWriter, who *apikey.Identity, ev *causalityv1.EventEnvelope) bool {
	if app := ev.GetAppId(); app != "" && app != who.AppID {
		h.metrics.EventsTotal.WithLabelValues(metrics.Rejected).Inc()
		writeError(w, http.StatusForbidden, "app_id "+strconv.Quote(app)+" does not match the API key's app "+strconv.Quote(who.AppID)+"; nothing was stored")
		return false
	}
	return true
}

func (h *Handler) allow(w http.ResponseWriter, req *request, n int) bool {
	ok, wait := req.who.Allow(req.received, n)
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeError(w, http.StatusTooManyRequests, "rate limit of this API key exceeded; retry after the Retry-After seconds")
	return false
}

// store normalises valid events, publishes them and waits for JetStream. On failure it
// has answered already and reports false.
func (h *Handler) store(w http.ResponseWriter, r *http.Request, events []*causalityv1.EventEnvelope, received time.Time) ([]bus.Result, bool) {
	msgs, err := h.messages(events, received)
	if err != nil {
		h.internal(w, err)
		return nil, false
	}
	return h.publish(w, r, msgs)
}

// messages normalises events (server id and timestamp where missing) and encodes them.
func (h *Handler) messages(events []*causalityv1.EventEnvelope, received time.Time) ([]bus.Message, error) {
	msgs := make([]bus.Message, len(events))
	ms := received.UnixMilli()
	for i, ev := range events {
		event.Normalize(ev, received)
		data, err := proto.Marshal(ev)
		if err != nil {
			return nil, err
		}
		msgs[i] = bus.Message{
			Subject:    event.Subject(ev),
			Data:       data,
			MsgID:      event.DedupKey(ev), // scoped to the app and hashed to a fixed size
			ReceivedMs: ms,
		}
	}
	return msgs, nil
}

// publish stores msgs; on any failure it answers 503 and reports false. Events of the same
// request that were stored stay stored: a retry of the whole request is deduplicated by id.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, msgs []bus.Message) ([]bus.Result, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	results, err := h.pub.Publish(ctx, msgs)
	if err == nil {
		for _, res := range results {
			if res.Err != nil {
				err = res.Err
				break
			}
		}
	}
	if err == nil {
		return results, true
	}
	retry, msg := "1", "event bus unavailable; retry later"
	if errors.Is(err, bus.ErrFull) {
		retry, msg = "30", "event buffer is full (the stream reached its size limit); retry later"
	}
	h.log.Warn("publish events", "err", err, "events", len(msgs))
	w.Header().Set("Retry-After", retry)
	writeError(w, http.StatusServiceUnavailable, msg)
	return nil, false
}

func (h *Handler) rejectBody(w http.ResponseWriter, err error, n int) {
	h.count(StatusRejected, n)
	if errors.Is(err, event.ErrUnsupportedMediaType) {
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func (h *Handler) internal(w http.ResponseWriter, err error) {
	h.log.Error("ingest", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func (h *Handler) count(status string, n int) {
	if n > 0 {
		h.metrics.EventsTotal.WithLabelValues(status).Add(float64(n))
	}
}
