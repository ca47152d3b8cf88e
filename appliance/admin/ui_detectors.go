package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/web"
)

// recentFirings is how many of a detector's firings its page shows.
const recentFirings = 20

// detectorsRoutes mounts the detectors pages in the signed-in group.
func (u *UI) detectorsRoutes(r chi.Router) {
	r.Get("/detectors", u.detectorList)
	r.Get("/detectors/new", u.detectorNew)
	r.Post("/detectors", u.detectorCreate)
	r.Get("/detectors/{id}", u.detectorShow)
	r.Post("/detectors/{id}", u.detectorUpdate)
	r.Get("/detectors/{id}/edit", u.detectorEdit)
	r.Post("/detectors/{id}/enable", u.detectorSetEnabled(true))
	r.Post("/detectors/{id}/disable", u.detectorSetEnabled(false))
	r.Post("/detectors/{id}/delete", u.detectorDelete)
}

// detectorSetting is one setting of a kind of detector: its key in the config JSON and
// how the form asks for it.
type detectorSetting struct {
	key         string
	label       string
	help        string
	number      byte // 'f' a number, 'i' a whole number, 0 text
	rows        int  // > 0: a text area
	options     []web.Option
	placeholder string
}

// detectorSettings are the settings of each kind, in the order of the form. Their meaning
// and defaults are detect.ParseConfig's; the help says them in words.
var detectorSettings = map[string][]detectorSetting{
	detect.KindThreshold: {
		{key: "value", label: "Value (CEL)", rows: 2, placeholder: "event.purchase_complete.total_cents",
			help: "A CEL expression of a number, computed from each matching event, with the variables of conditions (event, category, type), e.g. event.purchase_complete.total_cents."},
		{key: "min", label: "Minimum", number: 'f',
			help: "Fires when the value is below this. Empty: no lower bound."},
		{key: "max", label: "Maximum", number: 'f',
			help: "Fires when the value is above this. Empty: no upper bound. Set a minimum, a maximum or both."},
	},
	detect.KindRate: {
		{key: "max_per_minute", label: "Most events per minute", number: 'f', placeholder: "1000",
			help: "Fires when more matching events than this arrived in the last 60 seconds (a sliding window, kept per app). More than 0; decimals are allowed."},
	},
	detect.KindCount: {
		{key: "window_seconds", label: "Window (seconds)", number: 'i', placeholder: "3600",
			help: "How far back it counts: a sliding window of 1 to 604800 seconds (a week), kept per app. It slides in 60 steps, so a count may fall short by at most 1/60 of the window, never run high."},
		{key: "max_count", label: "Most events in the window", number: 'i', placeholder: "100",
			help: "Fires when more matching events than this arrived within the window. 0 fires on the first one."},
	},
	detect.KindBaseline: {
		{key: "interval_seconds", label: "Interval (seconds)", number: 'i',
			help: "Matching events are counted per interval of this length (default 60, at most 86400), and each closed interval is compared with the usual count. Intervals close on a timer, so a drop to zero fires at the end of the first empty one."},
		{key: "sensitivity", label: "Sensitivity (deviations)", number: 'f',
			help: "How far from the usual count an interval must be to fire, in deviations (default 3). Higher fires less often. The deviation is at least the square root of the usual count, so a very regular series does not fire on tiny changes."},
		{key: "direction", label: "Direction", options: []web.Option{
			{Value: detect.DirectionBoth, Label: "Spikes and drops"},
			{Value: detect.DirectionSpike, Label: "Spikes only: more events than usual"},
			{Value: detect.DirectionDrop, Label: "Drops only: fewer events than usual"},
		}, help: "Which departures from the usual count fire."},
		{key: "history_intervals", label: "History (intervals)", number: 'i',
			help: "How many recent intervals the usual count mostly remembers, as an exponentially weighted mean and deviation (default 30, 2 to 10000). Longer histories adapt more slowly to a new normal."},
		{key: "warmup_intervals", label: "Warm-up (intervals)", number: 'i',
			help: "Intervals it learns before it may fire at all (default 10, 1 to 10000)."},
		{key: "min_expected", label: "Minimum usual count", number: 'f',
			help: "No firing while the usual count per interval is below this (default 1), so that a quiet app does not fire on noise. 0 or more."},
	},
}

// detectorValues are a detector's fields as the form holds them.
type detectorValues struct {
	name, description, appID, category, eventType, condition, cooldown, subject string
	enabled                                                                     bool
	webhooks                                                                    []string
	config                                                                      map[string]string
}

// configStrings reads a config JSON object into the form's strings.
func configStrings(raw json.RawMessage) map[string]string {
	out := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return out
	}
	for k, v := range m {
		switch v := v.(type) {
		case json.Number:
			out[k] = v.String()
		case string:
			out[k] = v
		}
	}
	return out
}

// newDetectorValues are the values of the form of a new detector: enabled, the default
// cooldown, and the defaults of the kind's settings.
func newDetectorValues(kind string) detectorValues {
	v := detectorValues{enabled: true, cooldown: strconv.Itoa(defaultCooldown), config: map[string]string{}}
	if cfg, err := detect.ParseConfig(kind, nil); err == nil {
		v.config = configStrings(cfg.JSON())
	}
	return v
}

func storedDetectorValues(d store.Detector) detectorValues {
	v := detectorValues{name: d.Name, description: d.Description, appID: derefString(d.AppID),
		category: derefString(d.EventCategory), eventType: derefString(d.EventType), condition: d.Condition,
		cooldown: strconv.Itoa(d.CooldownSeconds), subject: derefString(d.PublishSubject), enabled: d.Enabled,
		config: configStrings(d.Config)}
	for _, id := range d.WebhookIDs {
		v.webhooks = append(v.webhooks, id.String())
	}
	return v
}

func postedDetectorValues(r *http.Request, kind string) detectorValues {
	v := detectorValues{name: r.PostFormValue("name"), description: r.PostFormValue("description"),
		appID: r.PostFormValue("app_id"), category: r.PostFormValue("event_category"),
		eventType: r.PostFormValue("event_type"), condition: r.PostFormValue("condition"),
		cooldown: r.PostFormValue("cooldown_seconds"), subject: r.PostFormValue("publish_subject"),
		enabled: r.PostFormValue("enabled") != "", webhooks: r.PostForm["webhook_ids"], config: map[string]string{}}
	for _, s := range detectorSettings[kind] {
		v.config[s.key] = r.PostFormValue("config." + s.key)
	}
	return v
}

// detectorForm is the form of a detector of kind holding v, with every webhook to choose
// from.
func (u *UI) detectorForm(ctx context.Context, id, kind string, v detectorValues) (web.DetectorForm, error) {
	hooks, err := u.api.store.ListWebhooks(ctx)
	if err != nil {
		return web.DetectorForm{}, err
	}
	f := web.DetectorForm{
		ID: id, Kind: kind, Enabled: v.enabled,
		Name: web.Field{Name: "name", Label: "Name", Value: v.name, Required: true,
			Help: "For people: shown in lists, in the anomaly's webhook body and on NATS."},
		Description: web.Field{Name: "description", Label: "Description", Value: v.description,
			Help: "Optional: what a firing means and what to do about it."},
		AppID: web.Field{Name: "app_id", Label: "App", Value: v.appID, Placeholder: "every app",
			Help: "Only events of this app id; empty for every app. Counts and baselines are kept per app either way."},
		EventCategory: web.Field{Name: "event_category", Label: "Category", Value: v.category,
			Help: "Only events of this category."},
		Categories: append([]web.Option{{Value: "", Label: "Any category"}}, detectorCategoryOptions()...),
		EventType: web.Field{Name: "event_type", Label: "Event type", Value: v.eventType, Placeholder: "every type",
			Help: "Only events of this type, e.g. checkout_start or a custom event's name; empty for every type."},
		Condition: web.Field{Name: "condition", Label: "Condition (CEL)", Value: v.condition,
			Placeholder: `event.purchase_complete.currency == "EUR"`,
			Help:        "Optional: only events for which this CEL expression is true are counted (variables event, category, type, as in rules). Empty counts every event the filters above let through."},
		Cooldown: web.Field{Name: "cooldown_seconds", Label: "Cooldown (seconds)", Type: "number", Value: v.cooldown,
			Help: fmt.Sprintf("After it fires for an app, further firings for that app are held back this long (default %d, five minutes; 0 to %d, 30 days).", defaultCooldown, maxCooldown)},
		PublishSubject: web.Field{Name: "publish_subject", Label: "NATS subject", Value: v.subject,
			Placeholder: "anomalies.<app>.<detector id>",
			Help:        "Optional: where firings are published on NATS; empty for anomalies.<app>.<detector id>. Not under events. or $."},
	}
	for _, s := range detectorSettings[kind] {
		c := web.DetectorConfigField{Field: web.Field{Name: "config." + s.key, Label: s.label, Value: v.config[s.key],
			Help: s.help, Placeholder: s.placeholder}, Rows: s.rows, Options: s.options}
		if s.number != 0 {
			c.Type = "number"
		}
		f.Config = append(f.Config, c)
	}
	for _, wh := range hooks {
		f.Webhooks = append(f.Webhooks, web.DetectorWebhook{ID: wh.ID.String(), Name: wh.Name,
			Checked: slices.Contains(v.webhooks, wh.ID.String())})
	}
	return f, nil
}

func detectorCategoryOptions() []web.Option {
	out := make([]web.Option, len(eventCategories))
	for i, c := range eventCategories {
		out[i] = web.Option{Value: c, Label: c}
	}
	return out
}

// detectorInputFromForm checks the posted detector of kind with the API's checks, its
// settings gathered into the config JSON. It answers the form to show (the user's input,
// each error next to its field) and whether the input is valid; err is a failure of the
// database.
func (u *UI) detectorInputFromForm(r *http.Request, id, kind string) (web.DetectorForm, store.DetectorInput, bool, error) {
	v := postedDetectorValues(r, kind)
	var errs []FieldError
	flagged := map[string]bool{} // fields whose input could not be read as what they hold
	req := detectorRequest{Name: v.name, Description: v.description, AppID: v.appID, EventCategory: v.category,
		EventType: v.eventType, Condition: v.condition, Kind: kind, WebhookIDs: v.webhooks,
		PublishSubject: v.subject, Enabled: &v.enabled}
	if s := strings.TrimSpace(v.cooldown); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, FieldError{Field: "cooldown_seconds", Message: "a whole number of seconds"})
			flagged["cooldown_seconds"] = true
		} else {
			req.CooldownSeconds = &n
		}
	}
	cfg := map[string]any{}
	for _, s := range detectorSettings[kind] {
		raw := strings.TrimSpace(v.config[s.key])
		if raw == "" { // the default, or missing: ParseConfig says which
			continue
		}
		field := "config." + s.key
		switch s.number {
		case 'f':
			n, err := strconv.ParseFloat(raw, 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				errs = append(errs, FieldError{Field: field, Message: "a number, such as 12 or 2.5"})
				flagged[field] = true
				continue
			}
			cfg[s.key] = n
		case 'i':
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				errs = append(errs, FieldError{Field: field, Message: "a whole number, such as 60"})
				flagged[field] = true
				continue
			}
			cfg[s.key] = n
		default:
			cfg[s.key] = raw
		}
	}
	var err error
	if req.Config, err = json.Marshal(cfg); err != nil {
		return web.DetectorForm{}, store.DetectorInput{}, false, err
	}
	in, verr := validateDetector(u.api.env, req)
	if verr != nil {
		for _, fe := range verr.Fields {
			if !flagged[fe.Field] { // "required" after "not a number" would only confuse
				errs = append(errs, fe)
			}
		}
	}
	missing, err := checkWebhooksExist(r.Context(), u.api.store, in.WebhookIDs)
	if err != nil {
		return web.DetectorForm{}, store.DetectorInput{}, false, err
	}
	errs = append(errs, missing...)
	f, err := u.detectorForm(r.Context(), id, kind, v)
	if err != nil {
		return web.DetectorForm{}, store.DetectorInput{}, false, err
	}
	if len(errs) == 0 {
		return f, in, true, nil
	}
	setDetectorFormErrors(&f, errs)
	return f, in, false, nil
}

// setDetectorFormErrors puts each error next to its field, those about the webhooks and
// the settings as a whole where the form shows them, and sums them up above the form.
func setDetectorFormErrors(f *web.DetectorForm, errs []FieldError) {
	webhooks := web.Field{Name: "webhook_ids", Label: "Webhooks"}
	config := web.Field{Name: "config", Label: "Settings"}
	kind := web.Field{Name: "kind", Label: "Kind"}
	// In the order of the form, so that the summary reads top to bottom.
	fields := []*web.Field{&f.Name, &f.Description, &f.AppID, &f.EventCategory, &f.EventType, &f.Condition, &kind, &config}
	for i := range f.Config {
		fields = append(fields, &f.Config[i].Field)
	}
	fields = append(fields, &f.Cooldown, &webhooks, &f.PublishSubject)
	f.Errors = applyErrorsToFields(errs, fields...)
	f.WebhooksError = webhooks.Error
	f.ConfigError = strings.TrimPrefix(config.Error+"\n"+kind.Error, "\n")
}

func (u *UI) detectorList(w http.ResponseWriter, r *http.Request) {
	ds, err := u.api.store.ListDetectors(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	last, err := u.lastFirings(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	rows := make([]web.DetectorRow, len(ds))
	for i, d := range ds {
		rows[i] = web.DetectorRow{ID: d.ID.String(), Name: d.Name, Kind: d.Kind, Filters: detectorFilters(d),
			Enabled: d.Enabled, LastFired: last[d.ID]}
	}
	u.render(w, r, http.StatusOK, web.DetectorsPage(u.page(r, "Anomaly detectors", web.NavDetectors), rows))
}

// lastFirings is when each detector last fired, for any app. Firings are few (each app's
// are held back by the cooldown), so one pass over them is cheap.
func (u *UI) lastFirings(ctx context.Context) (map[uuid.UUID]time.Time, error) {
	rows, err := u.api.store.Pool().Query(ctx, `SELECT detector_id, max(fired_at) FROM anomalies GROUP BY detector_id`)
	if err != nil {
		return nil, fmt.Errorf("last firings: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]time.Time{}
	for rows.Next() {
		var id uuid.UUID
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("last firings: %w", err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last firings: %w", err)
	}
	return out, nil
}

// detectorFilters says in words which events a detector counts.
func detectorFilters(d store.Detector) []string {
	var out []string
	if d.AppID != nil {
		out = append(out, "app "+*d.AppID)
	} else {
		out = append(out, "every app")
	}
	if d.EventCategory != nil {
		out = append(out, "category "+*d.EventCategory)
	}
	if d.EventType != nil {
		out = append(out, "type "+*d.EventType)
	}
	if c := strings.TrimSpace(d.Condition); c != "" {
		if r := []rune(c); len(r) > 80 {
			c = string(r[:79]) + "…"
		}
		out = append(out, "if "+c)
	}
	if len(out) == 1 {
		out = append(out, "every event")
	}
	return out
}

func (u *UI) detectorNew(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	p := u.page(r, "New detector", web.NavDetectors)
	switch {
	case kind == "":
		u.render(w, r, http.StatusOK, web.DetectorKindsPage(p, ""))
		return
	case !slices.Contains(detect.Kinds, kind):
		u.render(w, r, http.StatusBadRequest, web.DetectorKindsPage(p, fmt.Sprintf("%q is not a kind of detector: choose one below.", kind)))
		return
	}
	f, err := u.detectorForm(r.Context(), "", kind, newDetectorValues(kind))
	if err != nil {
		u.internal(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, web.DetectorFormPage(p, f))
}

func (u *UI) detectorCreate(w http.ResponseWriter, r *http.Request) {
	kind := r.PostFormValue("kind")
	p := u.page(r, "New detector", web.NavDetectors)
	if !slices.Contains(detect.Kinds, kind) {
		u.render(w, r, http.StatusBadRequest, web.DetectorKindsPage(p, fmt.Sprintf("%q is not a kind of detector: choose one below.", kind)))
		return
	}
	f, in, ok, err := u.detectorInputFromForm(r, "", kind)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	if ok {
		var d store.Detector
		d, err = u.api.store.CreateDetector(r.Context(), in)
		if err == nil {
			u.log.Info("detector created", "detector_id", d.ID, "name", d.Name, "kind", d.Kind)
			redirectFlash(w, r, detectorUIPath(d.ID), "Detector created.")
			return
		}
		if !u.missingWebhooks(&f, err) {
			u.internal(w, r, err)
			return
		}
	}
	u.render(w, r, http.StatusBadRequest, web.DetectorFormPage(p, f))
}

// missingWebhooks shows on the form that webhooks it named were deleted after they were
// checked; false when err is another failure.
func (u *UI) missingWebhooks(f *web.DetectorForm, err error) bool {
	var mw *store.MissingWebhooksError
	if !errors.As(err, &mw) {
		return false
	}
	setDetectorFormErrors(f, missingWebhookErrors(mw.IDs))
	return true
}

func detectorUIPath(id uuid.UUID) string { return "/admin/detectors/" + id.String() }

// detectorByPath loads the detector of the {id} in the path, answering 404 itself when
// there is none.
func (u *UI) detectorByPath(w http.ResponseWriter, r *http.Request) (store.Detector, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		http.Error(w, "No such detector.", http.StatusNotFound)
		return store.Detector{}, false
	}
	d, err := u.api.store.GetDetector(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "No such detector: it may have been deleted.", http.StatusNotFound)
		return store.Detector{}, false
	case err != nil:
		u.internal(w, r, err)
		return store.Detector{}, false
	}
	return d, true
}

func (u *UI) detectorEdit(w http.ResponseWriter, r *http.Request) {
	d, ok := u.detectorByPath(w, r)
	if !ok {
		return
	}
	f, err := u.detectorForm(r.Context(), d.ID.String(), d.Kind, storedDetectorValues(d))
	if err != nil {
		u.internal(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, web.DetectorFormPage(u.page(r, "Edit "+d.Name, web.NavDetectors), f))
}

// detectorUpdate saves the edit form. The kind stays the detector's: its settings are
// another form.
func (u *UI) detectorUpdate(w http.ResponseWriter, r *http.Request) {
	d, ok := u.detectorByPath(w, r)
	if !ok {
		return
	}
	f, in, ok, err := u.detectorInputFromForm(r, d.ID.String(), d.Kind)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	if ok {
		var saved store.Detector
		saved, err = u.api.store.UpdateDetector(r.Context(), d.ID, in)
		switch {
		case err == nil:
			u.log.Info("detector updated", "detector_id", saved.ID, "name", saved.Name, "kind", saved.Kind, "enabled", saved.Enabled)
			redirectFlash(w, r, detectorUIPath(saved.ID), "Detector saved.")
			return
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, "No such detector: it may have been deleted.", http.StatusNotFound)
			return
		case !u.missingWebhooks(&f, err):
			u.internal(w, r, err)
			return
		}
	}
	u.render(w, r, http.StatusBadRequest, web.DetectorFormPage(u.page(r, "Edit "+d.Name, web.NavDetectors), f))
}

// detectorSetEnabled turns a detector on or off, keeping every other field as it is now.
func (u *UI) detectorSetEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := u.detectorByPath(w, r)
		if !ok {
			return
		}
		_, err := u.api.store.SetDetectorEnabled(r.Context(), d.ID, enabled)
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, "No such detector: it may have been deleted.", http.StatusNotFound)
			return
		case err != nil:
			u.internal(w, r, err)
			return
		}
		u.log.Info("detector updated", "detector_id", d.ID, "name", d.Name, "kind", d.Kind, "enabled", enabled)
		flash := "Detector disabled."
		if enabled {
			flash = "Detector enabled."
		}
		redirectFlash(w, r, detectorUIPath(d.ID), flash)
	}
}

func (u *UI) detectorDelete(w http.ResponseWriter, r *http.Request) {
	d, ok := u.detectorByPath(w, r)
	if !ok {
		return
	}
	if err := u.api.store.DeleteDetector(r.Context(), d.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		u.internal(w, r, err)
		return
	}
	u.log.Info("detector deleted", "detector_id", d.ID)
	redirectFlash(w, r, "/admin/detectors", "Detector "+d.Name+" deleted.")
}

func (u *UI) detectorShow(w http.ResponseWriter, r *http.Request) {
	d, ok := u.detectorByPath(w, r)
	if !ok {
		return
	}
	hooks, err := u.api.store.ListWebhooks(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	firings, err := u.api.store.ListAnomalies(r.Context(), store.AnomalyFilter{DetectorID: &d.ID, Limit: recentFirings})
	if err != nil {
		u.internal(w, r, err)
		return
	}
	v := web.DetectorView{ID: d.ID.String(), Name: d.Name, Kind: d.Kind, Description: d.Description,
		Enabled: d.Enabled, Filters: detectorFilters(d), Settings: detectorSettingsText(d),
		Cooldown: cooldownText(d.CooldownSeconds), State: u.detectorStateView(d)}
	for _, wh := range hooks {
		if slices.Contains(d.WebhookIDs, wh.ID) {
			v.Webhooks = append(v.Webhooks, wh.Name)
		}
	}
	if d.PublishSubject != nil {
		v.Subject = *d.PublishSubject
	} else {
		v.Subject = "anomalies.<app>." + d.ID.String()
	}
	for _, an := range firings {
		v.Firings = append(v.Firings, web.FiringRow{At: an.FiredAt, AppID: an.AppID, Message: an.Message,
			Observed: an.Observed, Expected: an.Expected})
	}
	u.render(w, r, http.StatusOK, web.DetectorPage(u.page(r, "Detector "+d.Name, web.NavDetectors), v))
}

// detectorSettingsText lists the settings of a detector with the labels of its form.
func detectorSettingsText(d store.Detector) []web.Option {
	cfg := configStrings(d.Config)
	var out []web.Option
	for _, s := range detectorSettings[d.Kind] {
		val, ok := cfg[s.key]
		if !ok || val == "" {
			continue
		}
		for _, o := range s.options {
			if o.Value == val {
				val = o.Label
			}
		}
		out = append(out, web.Option{Value: val, Label: s.label})
	}
	return out
}

func cooldownText(seconds int) string {
	if seconds == 0 {
		return "none: it may fire again at once"
	}
	s := (time.Duration(seconds) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s + " after a firing, per app"
}

// detectorStateView is the detector's live state as the engine of this process holds it
// (the JSON API's detectorState).
func (u *UI) detectorStateView(d store.Detector) web.DetectorStateView {
	st := u.api.detectorState(d.ID)
	if st == nil {
		return web.DetectorStateView{}
	}
	v := web.DetectorStateView{Available: true, Live: st.Live}
	if d.Kind == detect.KindBaseline {
		if cfg, err := detect.ParseConfig(d.Kind, d.Config); err == nil {
			v.Warmup = cfg.Baseline.WarmupIntervals
		}
	}
	for _, a := range st.Apps {
		s := web.DetectorAppState{AppID: a.AppID, WindowCount: a.WindowCount, Mean: a.Mean, Deviation: a.Deviation,
			Intervals: a.Intervals, LastValue: a.LastValue}
		if a.LastFiredAt != nil {
			s.LastFired = *a.LastFiredAt
		}
		v.Apps = append(v.Apps, s)
	}
	return v
}
