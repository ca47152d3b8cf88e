package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
)

// webhookView is a webhook as the API shows it. Secret is set only in the answer to its
// creation: afterwards nobody can read it back, as with API keys.
type webhookView struct {
	ID             uuid.UUID         `json:"id"`
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Headers        map[string]string `json:"headers"`
	Secret         string            `json:"secret,omitempty"`
	Enabled        bool              `json:"enabled"`
	DisabledReason *string           `json:"disabled_reason"`
	FailingSince   *time.Time        `json:"failing_since"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

func viewWebhook(wh store.Webhook) webhookView {
	headers := wh.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	return webhookView{ID: wh.ID, Name: wh.Name, URL: wh.URL, Headers: headers, Enabled: wh.Enabled,
		DisabledReason: wh.DisabledReason, FailingSince: wh.FailingSince, CreatedAt: wh.CreatedAt, UpdatedAt: wh.UpdatedAt}
}

// webhookInput decodes and checks a webhook body, answering 400 itself when it is wrong.
func (a *API) webhookInput(w http.ResponseWriter, r *http.Request) (store.WebhookInput, bool) {
	var req webhookRequest
	if !decode(w, r, &req) {
		return store.WebhookInput{}, false
	}
	in, verr := validateWebhook(req, a.opts.WebhookAllowPrivate)
	if verr != nil {
		invalid(w, verr)
		return store.WebhookInput{}, false
	}
	return in, true
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	in, ok := a.webhookInput(w, r)
	if !ok {
		return
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		a.internal(w, err)
		return
	}
	wh, err := a.store.CreateWebhook(r.Context(), in, secret)
	if err != nil {
		a.internal(w, err)
		return
	}
	a.log.Info("webhook created", "webhook_id", wh.ID, "name", wh.Name)
	v := viewWebhook(wh)
	v.Secret = secret
	httpjson.Write(w, http.StatusCreated, v)
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	hooks, err := a.store.ListWebhooks(r.Context())
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]webhookView, len(hooks))
	for i, wh := range hooks {
		views[i] = viewWebhook(wh)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"webhooks": views})
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhook")
	if !ok {
		return
	}
	wh, err := a.store.GetWebhook(r.Context(), id)
	if err != nil {
		a.storeFailed(w, err, "webhook", id)
		return
	}
	httpjson.Write(w, http.StatusOK, viewWebhook(wh))
}

func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhook")
	if !ok {
		return
	}
	in, ok := a.webhookInput(w, r)
	if !ok {
		return
	}
	wh, err := a.store.UpdateWebhook(r.Context(), id, in)
	if err != nil {
		a.storeFailed(w, err, "webhook", id)
		return
	}
	a.log.Info("webhook updated", "webhook_id", wh.ID, "name", wh.Name, "enabled", wh.Enabled)
	httpjson.Write(w, http.StatusOK, viewWebhook(wh))
}

// deleteWebhook deletes a webhook and its deliveries and takes it out of every rule and
// detector that named it.
func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhook")
	if !ok {
		return
	}
	if err := a.store.DeleteWebhook(r.Context(), id); err != nil {
		a.storeFailed(w, err, "webhook", id)
		return
	}
	a.log.Info("webhook deleted", "webhook_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// testEvent is the body of a test delivery, shaped like every other delivery's.
type testEvent struct {
	Type      string        `json:"type"`
	Timestamp string        `json:"timestamp"`
	Data      testEventData `json:"data"`
}

type testEventData struct {
	WebhookID uuid.UUID `json:"webhook_id"`
	Message   string    `json:"message"`
}

// testWebhook queues a webhook.test delivery; the dispatcher sends it like any other, so
// its outcome shows in the deliveries list.
func (a *API) testWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhook")
	if !ok {
		return
	}
	body, err := json.Marshal(testEvent{
		Type:      store.DeliveryTypeTest,
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Data:      testEventData{WebhookID: id, Message: "Test event from Causality"},
	})
	if err != nil {
		a.internal(w, err)
		return
	}
	d, err := a.store.EnqueueTestDelivery(r.Context(), id, string(body))
	if err != nil {
		a.storeFailed(w, err, "webhook", id)
		return
	}
	a.log.Info("webhook test queued", "webhook_id", id, "delivery_id", d.ID)
	httpjson.Write(w, http.StatusAccepted, map[string]uuid.UUID{"delivery_id": d.ID})
}
