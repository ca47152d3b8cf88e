package reaction

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Event types of webhook bodies and alerts.
const (
	TypeRuleMatched     = "rule.matched"
	TypeAnomalyDetected = "anomaly.detected"
)

// envelope is the body of every webhook call and NATS alert (Standard Webhooks' shape).
type envelope struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

type detectorRef struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	Kind string    `json:"kind"`
}

type anomalyData struct {
	Anomaly  anomalyView     `json:"anomaly"`
	Detector detectorRef     `json:"detector"`
	Event    json.RawMessage `json:"event,omitempty"`
}

type anomalyView struct {
	ID       uuid.UUID      `json:"id"`
	AppID    string         `json:"app_id"`
	FiredAt  time.Time      `json:"fired_at"`
	Message  string         `json:"message"`
	Observed *float64       `json:"observed"`
	Expected *float64       `json:"expected"`
	Details  map[string]any `json:"details,omitempty"`
}

// appendRuleMatched renders the body of a rule match,
//
//	{"type":"rule.matched","timestamp":…,"data":{"rule":{"id","name","priority"},"app_id":…,"event":{…}}}
//
// by hand because this runs for every match on the hot path, and encoding/json would
// validate and compact the event's JSON once more.
func appendRuleMatched(b []byte, r *rule, app string, at time.Time, event json.RawMessage) []byte {
	b = append(b, `{"type":"`+TypeRuleMatched+`","timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":{"rule":{"id":"`...)
	b = append(b, r.id.String()...)
	b = append(b, `","name":`...)
	b = appendJSONString(b, r.name)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(r.priority), 10)
	b = append(b, `},"app_id":`...)
	b = appendJSONString(b, app)
	b = append(b, `,"event":`...)
	b = append(b, event...)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // a string always marshals
		return append(b, `""`...)
	}
	return append(b, q...)
}

// eventJSON renders an event as its ingest API accepts it (protojson, lowerCamelCase).
func eventJSON(ev *causalityv1.EventEnvelope) json.RawMessage {
	b, err := protojson.Marshal(ev)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}

// finite turns NaN and infinities, which JSON cannot carry, into null.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// marshalBody renders a body. Details that JSON cannot carry (NaN) are dropped rather than
// losing the notification.
func marshalBody(e envelope) []byte {
	b, err := json.Marshal(e)
	if err == nil {
		return b
	}
	if d, ok := e.Data.(anomalyData); ok {
		d.Anomaly.Details = nil
		e.Data = d
		if b, err = json.Marshal(e); err == nil {
			return b
		}
	}
	b, _ = json.Marshal(envelope{Type: e.Type, Timestamp: e.Timestamp, Data: map[string]string{"error": "unrenderable: " + err.Error()}})
	return b
}
