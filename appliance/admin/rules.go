package admin

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// ruleView is a rule as the API shows it; null filters match any value, a null
// publish_subject means alerts.<app>.<rule id>.
type ruleView struct {
	ID             uuid.UUID   `json:"id"`
	Name           string      `json:"name"`
	Description    string      `json:"description"`
	AppID          *string     `json:"app_id"`
	EventCategory  *string     `json:"event_category"`
	EventType      *string     `json:"event_type"`
	Condition      string      `json:"condition"`
	WebhookIDs     []uuid.UUID `json:"webhook_ids"`
	PublishSubject *string     `json:"publish_subject"`
	Priority       int         `json:"priority"`
	Enabled        bool        `json:"enabled"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
}

func viewRule(r store.Rule) ruleView {
	return ruleView{ID: r.ID, Name: r.Name, Description: r.Description, AppID: r.AppID, EventCategory: r.EventCategory,
		EventType: r.EventType, Condition: r.Condition, WebhookIDs: idList(r.WebhookIDs), PublishSubject: r.PublishSubject,
		Priority: r.Priority, Enabled: r.Enabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// idList shows no ids as [] rather than null.
func idList(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// ruleInput decodes and checks a rule body, answering 400 itself when it is wrong.
func (a *API) ruleInput(w http.ResponseWriter, r *http.Request) (store.RuleInput, bool) {
	var req ruleRequest
	if !decode(w, r, &req) {
		return store.RuleInput{}, false
	}
	in, verr := validateRule(a.env, req)
	verr, ok := a.checkWebhooks(w, r, in.WebhookIDs, verr)
	if !ok {
		return store.RuleInput{}, false
	}
	if verr != nil {
		invalid(w, verr)
		return store.RuleInput{}, false
	}
	return in, true
}

func (a *API) createRule(w http.ResponseWriter, r *http.Request) {
	in, ok := a.ruleInput(w, r)
	if !ok {
		return
	}
	rule, err := a.store.CreateRule(r.Context(), in)
	if err != nil {
		a.storeFailed(w, err, "rule", uuid.Nil)
		return
	}
	a.log.Info("rule created", "rule_id", rule.ID, "name", rule.Name)
	httpjson.Write(w, http.StatusCreated, viewRule(rule))
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request) {
	rules, err := a.store.ListRules(r.Context())
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]ruleView, len(rules))
	for i, rule := range rules {
		views[i] = viewRule(rule)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"rules": views})
}

func (a *API) getRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "rule")
	if !ok {
		return
	}
	rule, err := a.store.GetRule(r.Context(), id)
	if err != nil {
		a.storeFailed(w, err, "rule", id)
		return
	}
	httpjson.Write(w, http.StatusOK, viewRule(rule))
}

func (a *API) updateRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "rule")
	if !ok {
		return
	}
	in, ok := a.ruleInput(w, r)
	if !ok {
		return
	}
	rule, err := a.store.UpdateRule(r.Context(), id, in)
	if err != nil {
		a.storeFailed(w, err, "rule", id)
		return
	}
	a.log.Info("rule updated", "rule_id", rule.ID, "name", rule.Name, "enabled", rule.Enabled)
	httpjson.Write(w, http.StatusOK, viewRule(rule))
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "rule")
	if !ok {
		return
	}
	if err := a.store.DeleteRule(r.Context(), id); err != nil {
		a.storeFailed(w, err, "rule", id)
		return
	}
	a.log.Info("rule deleted", "rule_id", id)
	w.WriteHeader(http.StatusNoContent)
}
