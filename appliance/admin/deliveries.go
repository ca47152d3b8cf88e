package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// maxListLimit bounds the limit parameter of lists.
const maxListLimit = 1000

var deliveryStatuses = []string{store.DeliveryPending, store.DeliveryRetrying, store.DeliverySucceeded, store.DeliveryDead}

// deliveryView is a delivery as the API shows it. Body, the exact JSON sent, is left out
// of lists and shown for a single delivery.
type deliveryView struct {
	ID             uuid.UUID  `json:"id"`
	WebhookID      uuid.UUID  `json:"webhook_id"`
	Type           string     `json:"type"`
	SourceKey      string     `json:"source_key"`
	RuleID         *uuid.UUID `json:"rule_id"`
	DetectorID     *uuid.UUID `json:"detector_id"`
	AppID          *string    `json:"app_id"`
	EventID        *string    `json:"event_id"`
	Status         string     `json:"status"`
	Priority       int        `json:"priority"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  time.Time  `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LastLatencyMS  *int       `json:"last_latency_ms"`
	CreatedAt      time.Time  `json:"created_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	Body           *string    `json:"body,omitempty"`
}

func viewDelivery(d store.Delivery, withBody bool) deliveryView {
	v := deliveryView{ID: d.ID, WebhookID: d.WebhookID, Type: d.Type, SourceKey: d.SourceKey, RuleID: d.RuleID,
		DetectorID: d.DetectorID, AppID: d.AppID, EventID: d.EventID, Status: d.Status, Priority: d.Priority,
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastAttemptAt: d.LastAttemptAt,
		LastStatusCode: d.LastStatusCode, LastError: d.LastError, LastLatencyMS: d.LastLatencyMS,
		CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt}
	if withBody {
		v.Body = &d.Body
	}
	return v
}

// listQuery reads the parameters every list shares; a bad one is an error that names it.
func listQuery(q url.Values) (limit int, before *store.Cursor, err error) {
	limit = store.DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return 0, nil, fmt.Errorf("limit: %q is not a whole number from 1 to %d", s, maxListLimit)
		}
		limit = n
	}
	if s := q.Get("before"); s != "" {
		c, err := store.ParseCursor(s)
		if err != nil {
			return 0, nil, fmt.Errorf("before: %w (the \"next\" of the previous page)", err)
		}
		before = &c
	}
	return limit, before, nil
}

// nextCursor is the "next" of a list answer: the cursor of the page after a full one, ""
// after the last.
func nextCursor(n, limit int, last store.Cursor) string {
	if n < limit {
		return ""
	}
	return last.String()
}

// queryID reads an optional UUID parameter.
func queryID(q url.Values, name, what string) (*uuid.UUID, error) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a %s id (a UUID)", name, s, what)
	}
	return &id, nil
}

// listDeliveries answers the newest deliveries first; ?before=<the answer's "next"> pages
// back.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.DeliveryFilter
	var err error
	if f.Limit, f.Before, err = listQuery(q); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.WebhookID, err = queryID(q, "webhook_id", "webhook"); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Status = q.Get("status"); f.Status != "" && !slices.Contains(deliveryStatuses, f.Status) {
		httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not one of pending, retrying, succeeded, dead", f.Status))
		return
	}
	ds, err := a.store.ListDeliveries(r.Context(), f)
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]deliveryView, len(ds))
	var last store.Cursor
	for i, d := range ds {
		views[i] = viewDelivery(d, false)
		last = store.Cursor{At: d.CreatedAt, ID: d.ID}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"deliveries": views, "next": nextCursor(len(ds), f.Limit, last)})
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "delivery")
	if !ok {
		return
	}
	d, err := a.store.GetDelivery(r.Context(), id)
	if err != nil {
		a.storeFailed(w, err, "delivery", id)
		return
	}
	httpjson.Write(w, http.StatusOK, viewDelivery(d, true))
}

// replayDelivery sends a delivery again, whatever its status, with the same id and body
// (receivers that drop repeats by webhook-id drop it too).
func (a *API) replayDelivery(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "delivery")
	if !ok {
		return
	}
	d, err := a.store.ReplayDelivery(r.Context(), id)
	if err != nil {
		a.storeFailed(w, err, "delivery", id)
		return
	}
	a.log.Info("delivery replayed", "delivery_id", d.ID, "webhook_id", d.WebhookID)
	httpjson.Write(w, http.StatusAccepted, viewDelivery(d, true))
}
