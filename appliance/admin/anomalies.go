package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// anomalyView is an anomaly as the API shows it.
type anomalyView struct {
	ID         uuid.UUID       `json:"id"`
	DetectorID uuid.UUID       `json:"detector_id"`
	AppID      string          `json:"app_id"`
	Kind       string          `json:"kind"`
	DedupKey   string          `json:"dedup_key"`
	FiredAt    time.Time       `json:"fired_at"`
	Message    string          `json:"message"`
	Observed   *float64        `json:"observed"`
	Expected   *float64        `json:"expected"`
	Details    json.RawMessage `json:"details"`
	EventID    *string         `json:"event_id"`
}

func viewAnomaly(an store.Anomaly) anomalyView {
	details := an.Details
	if len(details) == 0 {
		details = json.RawMessage(`{}`)
	}
	return anomalyView{ID: an.ID, DetectorID: an.DetectorID, AppID: an.AppID, Kind: an.Kind, DedupKey: an.DedupKey,
		FiredAt: an.FiredAt, Message: an.Message, Observed: an.Observed, Expected: an.Expected, Details: details,
		EventID: an.EventID}
}

// listAnomalies answers the newest anomalies first; ?before=<the answer's "next"> pages
// back.
func (a *API) listAnomalies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.AnomalyFilter
	var err error
	if f.Limit, f.Before, err = listQuery(q); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.DetectorID, err = queryID(q, "detector_id", "detector"); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.AppID = q.Get("app_id"); f.AppID != "" && !appIDPattern.MatchString(f.AppID) {
		httpjson.Error(w, http.StatusBadRequest, "app_id: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")
		return
	}
	as, err := a.store.ListAnomalies(r.Context(), f)
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]anomalyView, len(as))
	var last store.Cursor
	for i, an := range as {
		views[i] = viewAnomaly(an)
		last = store.Cursor{At: an.FiredAt, ID: an.ID}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"anomalies": views, "next": nextCursor(len(as), f.Limit, last)})
}
