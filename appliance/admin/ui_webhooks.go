package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/web"
)

// deliveryLogPage is how many deliveries one page of a webhook's log shows.
const deliveryLogPage = 50

// webhooksRoutes mounts the webhooks pages in the signed-in group.
func (u *UI) webhooksRoutes(r chi.Router) {
	r.Get("/webhooks", u.webhookList)
	r.Get("/webhooks/new", u.webhookNew)
	r.Post("/webhooks", u.webhookCreate)
	r.Get("/webhooks/{id}", u.webhookShow)
	r.Post("/webhooks/{id}", u.webhookUpdate)
	r.Get("/webhooks/{id}/deliveries", u.webhookDeliveries)
	r.Post("/webhooks/{id}/test", u.webhookTest)
	r.Post("/webhooks/{id}/delete", u.webhookDelete)
	r.Post("/deliveries/{id}/replay", u.deliveryReplay)
}

func (u *UI) webhookList(w http.ResponseWriter, r *http.Request) {
	hooks, err := u.api.store.ListWebhooks(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	counts, err := u.waitingDeliveries(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	rows := make([]web.WebhookRow, len(hooks))
	for i, wh := range hooks {
		c := counts[wh.ID]
		rows[i] = web.WebhookRow{ID: wh.ID.String(), Name: wh.Name, URL: wh.URL, Enabled: wh.Enabled,
			DisabledReason: derefString(wh.DisabledReason), FailingSince: derefTime(wh.FailingSince),
			Pending: c[store.DeliveryPending], Retrying: c[store.DeliveryRetrying], Dead: c[store.DeliveryDead]}
	}
	u.render(w, r, http.StatusOK, web.WebhooksPage(u.page(r, "Webhooks", web.NavWebhooks), rows))
}

// waitingDeliveries counts the deliveries of every webhook that are not done yet or died,
// by status. The status index keeps it cheap however many have succeeded.
func (u *UI) waitingDeliveries(ctx context.Context) (map[uuid.UUID]map[string]int64, error) {
	rows, err := u.api.store.Pool().Query(ctx, `SELECT webhook_id, status, count(*) FROM deliveries
		WHERE status IN ('pending', 'retrying', 'dead') GROUP BY webhook_id, status`)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]map[string]int64{}
	for rows.Next() {
		var id uuid.UUID
		var status string
		var n int64
		if err := rows.Scan(&id, &status, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		if out[id] == nil {
			out[id] = map[string]int64{}
		}
		out[id][status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	return out, nil
}

func (u *UI) webhookNew(w http.ResponseWriter, r *http.Request) {
	f := webhookFormFields("", "", "", true)
	u.render(w, r, http.StatusOK, web.NewWebhookPage(u.page(r, "New webhook", web.NavWebhooks), f))
}

// webhookFormFields is the form with its labels and help, holding the given values.
func webhookFormFields(name, rawURL, headers string, enabled bool) web.WebhookForm {
	return web.WebhookForm{
		Name: web.Field{Name: "name", Label: "Name", Value: name, Required: true,
			Help: "For people: shown in lists and in the rule and detector forms."},
		URL: web.Field{Name: "url", Label: "URL", Type: "url", Value: rawURL, Required: true,
			Placeholder: "https://hooks.example.com/causality",
			Help:        "The http:// or https:// address to POST events to. Loopback and private addresses are refused unless the appliance runs with --webhook-allow-private."},
		Headers: web.Field{Name: "headers", Label: "Extra headers", Value: headers,
			Placeholder: "Authorization: Bearer …",
			Help:        "Optional, one per line as Name: value, sent with every call. Content-Type and the webhook-id, webhook-timestamp and webhook-signature headers are set by Causality."},
		Enabled: enabled,
	}
}

// webhookFromForm reads and checks the posted form. It answers the form to show again,
// with the user's input and the errors next to their fields, and whether it is valid.
func (u *UI) webhookFromForm(r *http.Request, id string) (web.WebhookForm, store.WebhookInput, bool) {
	enabled := r.PostFormValue("enabled") != ""
	f := webhookFormFields(r.PostFormValue("name"), r.PostFormValue("url"), r.PostFormValue("headers"), enabled)
	f.ID = id
	headers, errs := parseHeaderLines(f.Headers.Value)
	in, verr := validateWebhook(webhookRequest{Name: f.Name.Value, URL: f.URL.Value, Headers: headers, Enabled: &enabled},
		u.api.opts.WebhookAllowPrivate)
	if verr != nil {
		errs = append(errs, verr.Fields...)
	}
	if len(errs) == 0 {
		return f, in, true
	}
	f.Errors = applyErrorsToFields(errs, &f.Name, &f.URL, &f.Headers)
	return f, in, false
}

// parseHeaderLines reads "Name: value" lines; a line that is not one, or a name given
// twice, is an error on the headers field naming the line. Blank lines are skipped.
func parseHeaderLines(text string) (map[string]string, []FieldError) {
	headers := map[string]string{}
	var errs []FieldError
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			errs = append(errs, FieldError{Field: "headers", Line: i + 1,
				Message: fmt.Sprintf("line %d: %q is not a header: write Name: value", i+1, strings.TrimSpace(line))})
		case headerIsSet(headers, name):
			errs = append(errs, FieldError{Field: "headers", Line: i + 1,
				Message: fmt.Sprintf("line %d: %s is given twice", i+1, name)})
		default:
			headers[name] = value
		}
	}
	return headers, errs
}

func headerIsSet(headers map[string]string, name string) bool {
	_, ok := headers[name]
	return ok
}

// headerLines shows stored headers as the form's "Name: value" lines, sorted by name.
func headerLines(h map[string]string) string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name + ": " + h[name] + "\n")
	}
	return b.String()
}

// applyErrorsToFields puts each error next to the field of its name (several on one field
// go on separate lines) and answers the summary shown above the form: every message with
// the label of its field, in the order of fields (the form's), others last.
func applyErrorsToFields(errs []FieldError, fields ...*web.Field) []string {
	byName := make(map[string]*web.Field, len(fields))
	order := make(map[string]int, len(fields))
	for i, f := range fields {
		byName[f.Name] = f
		order[f.Name] = i + 1
	}
	errs = slices.Clone(errs)
	slices.SortStableFunc(errs, func(a, b FieldError) int {
		oa, ob := order[a.Field], order[b.Field]
		if oa == 0 {
			oa = len(fields) + 1
		}
		if ob == 0 {
			ob = len(fields) + 1
		}
		return oa - ob
	})
	summary := make([]string, 0, len(errs))
	for _, e := range errs {
		label := e.Field
		if f := byName[e.Field]; f != nil {
			if f.Error != "" {
				f.Error += "\n"
			}
			f.Error += e.Message
			label = f.Label
		}
		first, _, _ := strings.Cut(e.Message, "\n")
		summary = append(summary, label+": "+first)
	}
	return summary
}

func (u *UI) webhookCreate(w http.ResponseWriter, r *http.Request) {
	f, in, ok := u.webhookFromForm(r, "")
	if !ok {
		u.render(w, r, http.StatusBadRequest, web.NewWebhookPage(u.page(r, "New webhook", web.NavWebhooks), f))
		return
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		u.internal(w, r, err)
		return
	}
	wh, err := u.api.store.CreateWebhook(r.Context(), in, secret)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	u.log.Info("webhook created", "webhook_id", wh.ID, "name", wh.Name)
	// The secret is shown in this answer only: never in a URL, never on a later page.
	p := u.page(r, "Webhook "+wh.Name, web.NavWebhooks)
	p.Flash = "Webhook created."
	v, ok := u.webhookView(w, r, wh, nil)
	if !ok {
		return
	}
	v.Secret = secret
	u.render(w, r, http.StatusCreated, web.WebhookPage(p, v))
}

// webhookView is the page of a stored webhook, with form as the form to show (nil: the
// stored settings) and the delivery log the query asks for. It answers the request itself
// and returns false when the query is wrong or the database fails.
func (u *UI) webhookView(w http.ResponseWriter, r *http.Request, wh store.Webhook, form *web.WebhookForm) (web.WebhookView, bool) {
	v := web.WebhookView{Name: wh.Name, Enabled: wh.Enabled, DisabledReason: derefString(wh.DisabledReason),
		FailingSince: derefTime(wh.FailingSince)}
	if form != nil {
		v.Form = *form
	} else {
		v.Form = webhookFormFields(wh.Name, wh.URL, headerLines(wh.Headers), wh.Enabled)
		v.Form.ID = wh.ID.String()
	}
	log, msg, err := u.deliveryLog(r, wh.ID)
	switch {
	case err != nil:
		u.internal(w, r, err)
		return v, false
	case msg != "":
		http.Error(w, msg, http.StatusBadRequest)
		return v, false
	}
	v.Log = log
	return v, true
}

// deliveryLog reads one page of a webhook's deliveries as the query asks (?status=,
// ?before=); a wrong parameter is a message for the person, not an error.
func (u *UI) deliveryLog(r *http.Request, id uuid.UUID) (web.DeliveryLog, string, error) {
	q := r.URL.Query()
	l := web.DeliveryLog{WebhookID: id.String(), Status: q.Get("status"), Before: q.Get("before")}
	if s := session(r.Context()); s != nil {
		l.CSRF = s.csrf
	}
	if l.Status != "" && !slices.Contains(deliveryStatuses, l.Status) {
		return l, fmt.Sprintf("status: %q is not one of pending, retrying, succeeded, dead", l.Status), nil
	}
	f := store.DeliveryFilter{WebhookID: &id, Status: l.Status, Limit: deliveryLogPage}
	if l.Before != "" {
		c, err := store.ParseCursor(l.Before)
		if err != nil {
			return l, "before: " + err.Error(), nil
		}
		f.Before = &c
	}
	ds, err := u.api.store.ListDeliveries(r.Context(), f)
	if err != nil {
		return l, "", err
	}
	l.Rows = make([]web.DeliveryRow, len(ds))
	for i, d := range ds {
		l.Rows[i] = web.DeliveryRow{ID: d.ID.String(), Type: d.Type, Status: d.Status, Attempts: d.Attempts,
			StatusCode: d.LastStatusCode, LastError: derefString(d.LastError), LatencyMS: d.LastLatencyMS,
			NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt}
	}
	if len(ds) == deliveryLogPage {
		last := ds[len(ds)-1]
		l.Older = store.Cursor{At: last.CreatedAt, ID: last.ID}.String()
	}
	return l, "", nil
}

// webhookByPath loads the webhook of the {id} in the path, answering 404 itself when
// there is none.
func (u *UI) webhookByPath(w http.ResponseWriter, r *http.Request) (store.Webhook, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		http.Error(w, "No such webhook.", http.StatusNotFound)
		return store.Webhook{}, false
	}
	wh, err := u.api.store.GetWebhook(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "No such webhook: it may have been deleted.", http.StatusNotFound)
		return store.Webhook{}, false
	case err != nil:
		u.internal(w, r, err)
		return store.Webhook{}, false
	}
	return wh, true
}

func (u *UI) webhookShow(w http.ResponseWriter, r *http.Request) {
	wh, ok := u.webhookByPath(w, r)
	if !ok {
		return
	}
	v, ok := u.webhookView(w, r, wh, nil)
	if !ok {
		return
	}
	u.render(w, r, http.StatusOK, web.WebhookPage(u.page(r, "Webhook "+wh.Name, web.NavWebhooks), v))
}

// webhookDeliveries is the delivery log alone for htmx's refresh; a browser without it
// gets the whole page.
func (u *UI) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") == "" {
		u.webhookShow(w, r)
		return
	}
	wh, ok := u.webhookByPath(w, r)
	if !ok {
		return
	}
	v, ok := u.webhookView(w, r, wh, nil)
	if !ok {
		return
	}
	u.render(w, r, http.StatusOK, web.DeliveryLogFragment(v.Log))
}

func (u *UI) webhookUpdate(w http.ResponseWriter, r *http.Request) {
	wh, ok := u.webhookByPath(w, r)
	if !ok {
		return
	}
	f, in, ok := u.webhookFromForm(r, wh.ID.String())
	if !ok {
		v, ok := u.webhookView(w, r, wh, &f)
		if !ok {
			return
		}
		u.render(w, r, http.StatusBadRequest, web.WebhookPage(u.page(r, "Webhook "+wh.Name, web.NavWebhooks), v))
		return
	}
	updated, err := u.api.store.UpdateWebhook(r.Context(), wh.ID, in)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "No such webhook: it may have been deleted.", http.StatusNotFound)
		return
	case err != nil:
		u.internal(w, r, err)
		return
	}
	u.log.Info("webhook updated", "webhook_id", updated.ID, "name", updated.Name, "enabled", updated.Enabled)
	flash := "Webhook saved."
	if updated.Enabled && !wh.Enabled {
		flash = "Webhook saved and enabled: its waiting deliveries will be sent."
	}
	redirectFlash(w, r, webhookUIPath(updated.ID), flash)
}

func webhookUIPath(id uuid.UUID) string { return "/admin/webhooks/" + id.String() }

func (u *UI) webhookDelete(w http.ResponseWriter, r *http.Request) {
	wh, ok := u.webhookByPath(w, r)
	if !ok {
		return
	}
	err := u.api.store.DeleteWebhook(r.Context(), wh.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // gone already: what was asked
		u.internal(w, r, err)
		return
	}
	u.log.Info("webhook deleted", "webhook_id", wh.ID)
	redirectFlash(w, r, "/admin/webhooks", "Webhook "+wh.Name+" deleted.")
}

// webhookTest queues a webhook.test delivery with the body the JSON API sends; the
// dispatcher sends it like any other, and it shows in the log.
func (u *UI) webhookTest(w http.ResponseWriter, r *http.Request) {
	wh, ok := u.webhookByPath(w, r)
	if !ok {
		return
	}
	body, err := json.Marshal(testEvent{
		Type:      store.DeliveryTypeTest,
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Data:      testEventData{WebhookID: wh.ID, Message: "Test event from Causality"},
	})
	if err != nil {
		u.internal(w, r, err)
		return
	}
	d, err := u.api.store.EnqueueTestDelivery(r.Context(), wh.ID, string(body))
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "No such webhook: it may have been deleted.", http.StatusNotFound)
		return
	case err != nil:
		u.internal(w, r, err)
		return
	}
	u.log.Info("webhook test queued", "webhook_id", wh.ID, "delivery_id", d.ID)
	flash := "Test event queued."
	if !wh.Enabled {
		flash = "Test event queued; it waits until the webhook is enabled."
	}
	redirectFlash(w, r, webhookUIPath(wh.ID), flash)
}

// deliveryReplay makes a delivery due again now, whatever its status, and goes back to
// its webhook's log (with the status filter the log had).
func (u *UI) deliveryReplay(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		http.Error(w, "No such delivery.", http.StatusNotFound)
		return
	}
	d, err := u.api.store.ReplayDelivery(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "No such delivery: its webhook may have been deleted.", http.StatusNotFound)
		return
	case err != nil:
		u.internal(w, r, err)
		return
	}
	u.log.Info("delivery replayed", "delivery_id", d.ID, "webhook_id", d.WebhookID)
	back := webhookUIPath(d.WebhookID)
	if s := r.PostFormValue("status"); slices.Contains(deliveryStatuses, s) {
		back += "?" + url.Values{"status": {s}}.Encode()
	}
	redirectFlash(w, r, back, "Delivery replayed: it is due now.")
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
