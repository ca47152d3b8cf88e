package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// detectorView is a detector as the API shows it, its config with every default filled
// in; a null publish_subject means anomalies.<app>.<detector id>.
type detectorView struct {
	ID              uuid.UUID       `json:"id"`
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	AppID           *string         `json:"app_id"`
	EventCategory   *string         `json:"event_category"`
	EventType       *string         `json:"event_type"`
	Condition       string          `json:"condition"`
	Kind            string          `json:"kind"`
	Config          json.RawMessage `json:"config"`
	CooldownSeconds int             `json:"cooldown_seconds"`
	WebhookIDs      []uuid.UUID     `json:"webhook_ids"`
	PublishSubject  *string         `json:"publish_subject"`
	Enabled         bool            `json:"enabled"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

func viewDetector(d store.Detector) detectorView {
	return detectorView{ID: d.ID, Name: d.Name, Description: d.Description, AppID: d.AppID,
		EventCategory: d.EventCategory, EventType: d.EventType, Condition: d.Condition, Kind: d.Kind, Config: d.Config,
		CooldownSeconds: d.CooldownSeconds, WebhookIDs: idList(d.WebhookIDs), PublishSubject: d.PublishSubject,
		Enabled: d.Enabled, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// detectorInput decodes and checks a detector body, answering 400 itself when it is wrong.
func (a *API) detectorInput(w http.ResponseWriter, r *http.Request) (store.DetectorInput, bool) {
	var req detectorRequest
	if !decode(w, r, &req) {
		return store.DetectorInput{}, false
	}
	in, verr := validateDetector(a.env, req)
	verr, ok := a.checkWebhooks(w, r, in.WebhookIDs, verr)
	if !ok {
		return store.DetectorInput{}, false
	}
	if verr != nil {
		invalid(w, verr)
		return store.DetectorInput{}, false
	}
	return in, true
}

func (a *API) createDetector(w http.ResponseWriter, r *http.Request) {
	in, ok := a.detectorInput(w, r)
	if !ok {
		return
	}
	d, err := a.store.CreateDetector(r.Context(), in)
	if err != nil {
		a.storeFailed(w, err, "detector", uuid.Nil)
		return
	}
	a.log.Info("detector created", "detector_id", d.ID, "name", d.Name, "kind", d.Kind)
	httpjson.Write(w, http.StatusCreated, viewDetector(d))
}

func (a *API) listDetectors(w http.ResponseWriter, r *http.Request) {
	ds, err := a.store.ListDetectors(r.Context())
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]detectorView, len(ds))
	for i, d := range ds {
		views[i] = viewDetector(d)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"detectors": views})
}

func (a *API) getDetector(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "detector")
	if !ok {
		return
	}
	d, err := a.store.GetDetector(r.Context(), id)
	if err != nil {
		a.storeFailed(w, err, "detector", id)
		return
	}
	httpjson.Write(w, http.StatusOK, struct {
		detectorView
		State *detectorState `json:"state,omitempty"`
	}{viewDetector(d), a.detectorState(d.ID)})
}

// detectorState is a detector's live state as the engine of this process holds it.
type detectorState struct {
	// Live is false when another process runs the engine: the apps are then unknown here.
	Live bool           `json:"live"`
	Apps []appStateView `json:"apps"`
}

type appStateView struct {
	AppID       string     `json:"app_id"`
	WindowCount float64    `json:"window_count"`
	Mean        float64    `json:"mean"`
	Deviation   float64    `json:"deviation"`
	Intervals   int        `json:"intervals"`
	LastFiredAt *time.Time `json:"last_fired_at"`
	LastValue   float64    `json:"last_value"`
}

func (a *API) detectorState(id uuid.UUID) *detectorState {
	if a.opts.Engine == nil {
		return nil
	}
	st := &detectorState{Live: a.opts.Engine.Running(), Apps: []appStateView{}}
	if !st.Live {
		return st
	}
	for _, s := range a.opts.Engine.DetectorStatus(id.String()) {
		v := appStateView{AppID: s.AppID, WindowCount: s.WindowCount, Mean: s.Mean, Deviation: s.Deviation,
			Intervals: s.Intervals, LastValue: s.LastValue}
		if !s.LastFiredAt.IsZero() {
			t := s.LastFiredAt.UTC()
			v.LastFiredAt = &t
		}
		st.Apps = append(st.Apps, v)
	}
	return st
}

func (a *API) updateDetector(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "detector")
	if !ok {
		return
	}
	in, ok := a.detectorInput(w, r)
	if !ok {
		return
	}
	d, err := a.store.UpdateDetector(r.Context(), id, in)
	if err != nil {
		a.storeFailed(w, err, "detector", id)
		return
	}
	a.log.Info("detector updated", "detector_id", d.ID, "name", d.Name, "kind", d.Kind, "enabled", d.Enabled)
	httpjson.Write(w, http.StatusOK, viewDetector(d))
}

func (a *API) deleteDetector(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "detector")
	if !ok {
		return
	}
	if err := a.store.DeleteDetector(r.Context(), id); err != nil {
		a.storeFailed(w, err, "detector", id)
		return
	}
	a.log.Info("detector deleted", "detector_id", id)
	w.WriteHeader(http.StatusNoContent)
}
