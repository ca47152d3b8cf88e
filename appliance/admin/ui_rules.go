package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
	"github.com/causality-io/causality/web"
)

// RecentEvents reads the newest events of the stream, newest first, for the rule editor's
// Test; the appliance reads them from JetStream.
type RecentEvents interface {
	Recent(ctx context.Context, n int) ([]*causalityv1.EventEnvelope, error)
}

// Test runs against this many events unless the form asks for another of
// web.RuleTestSizes; the appliance reads at most maxTestEvents.
const (
	defaultTestEvents = 200
	maxTestEvents     = 1000
	recentTimeout     = 10 * time.Second
)

// rulesRoutes mounts the rules pages in the signed-in group.
func (u *UI) rulesRoutes(r chi.Router) {
	r.Get("/rules", u.rulesList)
	r.Get("/rules/new", u.ruleNew)
	r.Post("/rules/new", u.ruleCreate)
	r.Post("/rules/test", u.ruleTest)
	r.Get("/rules/{id}", u.ruleEdit)
	r.Post("/rules/{id}", u.ruleUpdate)
	r.Post("/rules/{id}/enabled", u.ruleSetEnabled)
	r.Post("/rules/{id}/delete", u.ruleDelete)
}

func (u *UI) rulesList(w http.ResponseWriter, r *http.Request) {
	rules, err := u.api.store.ListRules(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	names, err := u.ruleWebhookNames(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	rows := make([]web.RuleRow, len(rules))
	for i, rule := range rules {
		rows[i] = ruleRow(rule, names)
	}
	u.render(w, r, http.StatusOK, web.RulesPage(u.page(r, "Rules", web.NavRules), rows))
}

func (u *UI) ruleNew(w http.ResponseWriter, r *http.Request) {
	u.renderRuleForm(w, r, http.StatusOK, web.RuleForm{Values: web.RuleValues{Enabled: true, Priority: "0"}, TestN: defaultTestEvents})
}

func (u *UI) ruleEdit(w http.ResponseWriter, r *http.Request) {
	id, ok := u.ruleID(w, r)
	if !ok {
		return
	}
	rule, err := u.api.store.GetRule(r.Context(), id)
	if err != nil {
		u.ruleFailed(w, r, err)
		return
	}
	u.renderRuleForm(w, r, http.StatusOK, web.RuleForm{ID: id.String(), Values: ruleValues(rule), TestN: defaultTestEvents})
}

func (u *UI) ruleCreate(w http.ResponseWriter, r *http.Request) {
	form := ruleFormFromRequest(r, "")
	if r.PostForm.Get("action") == "test" {
		u.testInForm(w, r, form)
		return
	}
	in, ok := u.checkRuleForm(w, r, &form)
	if !ok {
		return
	}
	rule, err := u.api.store.CreateRule(r.Context(), in)
	if err != nil {
		u.ruleSaveFailed(w, r, form, err)
		return
	}
	u.log.Info("rule created", "rule_id", rule.ID, "name", rule.Name)
	redirectFlash(w, r, "/admin/rules", fmt.Sprintf("Rule “%s” created.", rule.Name))
}

func (u *UI) ruleUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := u.ruleID(w, r)
	if !ok {
		return
	}
	form := ruleFormFromRequest(r, id.String())
	if r.PostForm.Get("action") == "test" {
		u.testInForm(w, r, form)
		return
	}
	in, ok := u.checkRuleForm(w, r, &form)
	if !ok {
		return
	}
	rule, err := u.api.store.UpdateRule(r.Context(), id, in)
	if err != nil {
		u.ruleSaveFailed(w, r, form, err)
		return
	}
	u.log.Info("rule updated", "rule_id", rule.ID, "name", rule.Name, "enabled", rule.Enabled)
	redirectFlash(w, r, "/admin/rules", fmt.Sprintf("Rule “%s” saved.", rule.Name))
}

// ruleSetEnabled enables or disables a rule (the form says which, so that a repeated post
// does not flip it back). htmx gets the list's row to swap in; a plain form goes back to
// the list.
func (u *UI) ruleSetEnabled(w http.ResponseWriter, r *http.Request) {
	id, ok := u.ruleID(w, r)
	if !ok {
		return
	}
	enabled := r.PostFormValue("enabled") == "true"
	rule, err := u.api.store.SetRuleEnabled(r.Context(), id, enabled)
	if err != nil {
		u.ruleFailed(w, r, err)
		return
	}
	u.log.Info("rule updated", "rule_id", rule.ID, "name", rule.Name, "enabled", rule.Enabled)
	if r.Header.Get("HX-Request") != "" {
		names, err := u.ruleWebhookNames(r.Context())
		if err != nil {
			u.internal(w, r, err)
			return
		}
		u.render(w, r, http.StatusOK, web.RuleRowView(session(r.Context()).csrf, ruleRow(rule, names)))
		return
	}
	state := "disabled"
	if rule.Enabled {
		state = "enabled"
	}
	redirectFlash(w, r, "/admin/rules", fmt.Sprintf("Rule “%s” %s.", rule.Name, state))
}

func (u *UI) ruleDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := u.ruleID(w, r)
	if !ok {
		return
	}
	rule, err := u.api.store.GetRule(r.Context(), id)
	if err == nil {
		err = u.api.store.DeleteRule(r.Context(), id)
	}
	if err != nil {
		u.ruleFailed(w, r, err)
		return
	}
	u.log.Info("rule deleted", "rule_id", id, "name", rule.Name)
	redirectFlash(w, r, "/admin/rules", fmt.Sprintf("Rule “%s” deleted.", rule.Name))
}

// ruleTest runs the form's condition and filters on the newest events for htmx: the answer
// is the result alone, swapped in below the form. It is 200 also when the condition does
// not compile (htmx swaps only successful answers); the result says what is wrong.
func (u *UI) ruleTest(w http.ResponseWriter, r *http.Request) {
	form := ruleFormFromRequest(r, "")
	test, _ := u.runRuleTest(r.Context(), form)
	u.render(w, r, http.StatusOK, web.RuleTestResult(test))
}

// testInForm is Test without JavaScript: the form again, as typed, with the result below
// it, and the condition's compile error inline (400) as saving would show it.
func (u *UI) testInForm(w http.ResponseWriter, r *http.Request, form web.RuleForm) {
	test, verr := u.runRuleTest(r.Context(), form)
	form.Test = &test
	status := http.StatusOK
	if verr != nil {
		setRuleErrors(&form, verr.Fields)
		status = http.StatusBadRequest
	}
	u.renderRuleForm(w, r, status, form)
}

// runRuleTest evaluates the form's filters and condition on the newest events as the
// reaction engine does, without saving anything. verr holds what keeps the test from
// running: a condition that does not compile or a filter that is not valid.
func (u *UI) runRuleTest(ctx context.Context, form web.RuleForm) (web.RuleTest, *ValidationError) {
	t := web.RuleTest{Requested: form.TestN}
	req, _ := ruleRequestFromValues(form.Values)
	in, all := validateRule(u.api.env, req)
	// Only what decides a match matters; a rule without a name yet can be tested.
	var verr *ValidationError
	if all != nil {
		for _, f := range all.Fields {
			switch f.Field {
			case "app_id", "event_category", "event_type", "condition":
				verr = verr.with(f)
			}
		}
	}
	if verr != nil {
		t.Problem = "Fix the rule's filters or condition first."
		for _, f := range verr.Fields {
			if t.Detail != "" {
				t.Detail += "\n"
			}
			t.Detail += ruleFieldError(f)
		}
		return t, verr
	}
	if u.opts.Events == nil {
		t.Problem = "The event stream cannot be read here, so there is nothing to test against."
		return t, nil
	}
	prg, err := u.api.env.Condition(in.Condition) // compiled above already: no error
	if err != nil {
		t.Problem = "The condition does not compile."
		t.Detail = err.Error()
		return t, nil
	}
	rctx, cancel := context.WithTimeout(ctx, recentTimeout)
	defer cancel()
	events, err := u.opts.Events.Recent(rctx, form.TestN)
	if err != nil {
		u.log.Warn("read recent events for a rule test", "err", err)
		t.Problem = "The newest events could not be read from the stream: " + err.Error()
		return t, nil
	}
	app, category, typ := ruleDeref(in.AppID), ruleDeref(in.EventCategory), ruleDeref(in.EventType)
	input := u.api.env.NewInput(nil, "", "")
	// The engine also skips the program when the condition's own top-level equalities
	// (type == "…") fail; CEL's && makes that skip change no result, so it is not
	// repeated here.
	for _, ev := range events {
		t.Scanned++
		evCategory, evType, ok := event.Kind(ev)
		if !ok {
			continue // no payload: the engine sets such an event aside unevaluated
		}
		if (app != "" && app != ev.GetAppId()) || (category != "" && category != evCategory) || (typ != "" && typ != evType) {
			continue
		}
		if prg != nil {
			input.Reset(ev, evCategory, evType)
			match, err := prg.Match(input)
			if err != nil {
				if t.Errors == 0 {
					t.FirstError = fmt.Sprintf("event %s: %v", ev.GetId(), err)
				}
				t.Errors++
				continue
			}
			if !match {
				continue
			}
		}
		t.Matched++
		if len(t.Matches) < web.MaxTestMatches {
			t.Matches = append(t.Matches, ruleTestMatch(ev, evCategory, evType))
		}
	}
	return t, nil
}

var ruleEventJSON = protojson.MarshalOptions{Multiline: true, Indent: "  "}

func ruleTestMatch(ev *causalityv1.EventEnvelope, category, typ string) web.RuleTestMatch {
	m := web.RuleTestMatch{AppID: ev.GetAppId(), Category: category, Type: typ, ID: ev.GetId()}
	if ms := ev.GetTimestampMs(); ms != 0 {
		m.Time = time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	if b, err := ruleEventJSON.Marshal(ev); err == nil {
		m.JSON = string(b)
	} else {
		m.JSON = "(cannot be shown: " + err.Error() + ")"
	}
	return m
}

// checkRuleForm validates the form with the JSON API's checks. When something is wrong it
// shows the form again with the errors inline (400) and returns false.
func (u *UI) checkRuleForm(w http.ResponseWriter, r *http.Request, form *web.RuleForm) (store.RuleInput, bool) {
	req, fieldErrs := ruleRequestFromValues(form.Values)
	in, verr := validateRule(u.api.env, req)
	missing, err := checkWebhooksExist(r.Context(), u.api.store, in.WebhookIDs)
	if err != nil {
		u.internal(w, r, err)
		return store.RuleInput{}, false
	}
	verr = verr.with(fieldErrs...).with(missing...)
	if verr != nil {
		setRuleErrors(form, verr.Fields)
		u.renderRuleForm(w, r, http.StatusBadRequest, *form)
		return store.RuleInput{}, false
	}
	return in, true
}

// ruleSaveFailed answers a failed create or update: the form again when webhooks were
// deleted meanwhile, 404 when the rule was, else 500.
func (u *UI) ruleSaveFailed(w http.ResponseWriter, r *http.Request, form web.RuleForm, err error) {
	var mw *store.MissingWebhooksError
	if errors.As(err, &mw) {
		setRuleErrors(&form, missingWebhookErrors(mw.IDs))
		u.renderRuleForm(w, r, http.StatusBadRequest, form)
		return
	}
	u.ruleFailed(w, r, err)
}

// ruleFailed answers a failed store call about one rule: 404 when it does not exist.
func (u *UI) ruleFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		u.ruleNotFound(w, r)
		return
	}
	u.internal(w, r, err)
}

func (u *UI) ruleNotFound(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusNotFound, web.RuleNotFoundPage(u.page(r, "No such rule", web.NavRules)))
}

// ruleID is the rule id in the path; one that is no UUID names no rule.
func (u *UI) ruleID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		u.ruleNotFound(w, r)
		return uuid.Nil, false
	}
	return id, true
}

// renderRuleForm shows the form with the webhooks to choose from.
func (u *UI) renderRuleForm(w http.ResponseWriter, r *http.Request, status int, form web.RuleForm) {
	hooks, err := u.api.store.ListWebhooks(r.Context())
	if err != nil {
		u.internal(w, r, err)
		return
	}
	form.Webhooks = make([]web.RuleWebhook, len(hooks))
	for i, h := range hooks {
		form.Webhooks[i] = web.RuleWebhook{ID: h.ID.String(), Name: h.Name, Enabled: h.Enabled}
	}
	title := "New rule"
	if form.ID != "" {
		title = "Edit rule “" + form.Values.Name + "”"
		if form.Values.Name == "" {
			title = "Edit rule"
		}
	}
	u.render(w, r, status, web.RuleFormPage(u.page(r, title, web.NavRules), form))
}

func (u *UI) ruleWebhookNames(ctx context.Context) (map[uuid.UUID]string, error) {
	hooks, err := u.api.store.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[uuid.UUID]string, len(hooks))
	for _, h := range hooks {
		names[h.ID] = h.Name
	}
	return names, nil
}

// ruleFormFromRequest reads the posted form as typed.
func ruleFormFromRequest(r *http.Request, id string) web.RuleForm {
	_ = r.ParseForm() // a body that does not parse leaves the fields empty: the checks say so
	f := r.PostForm
	n, err := strconv.Atoi(f.Get("test_n"))
	if err != nil || n <= 0 {
		n = defaultTestEvents
	}
	return web.RuleForm{
		ID: id,
		Values: web.RuleValues{
			Name: f.Get("name"), Description: f.Get("description"),
			AppID: f.Get("app_id"), EventCategory: f.Get("event_category"), EventType: f.Get("event_type"),
			Condition: f.Get("condition"), WebhookIDs: f["webhook_ids"], PublishSubject: f.Get("publish_subject"),
			Priority: f.Get("priority"), Enabled: f.Get("enabled") == "on",
		},
		TestN: min(n, maxTestEvents),
	}
}

// ruleRequestFromValues turns the form into what validateRule checks; a priority that is
// no number is an error of its own.
func ruleRequestFromValues(v web.RuleValues) (ruleRequest, []FieldError) {
	var errs []FieldError
	priority := 0
	if s := strings.TrimSpace(v.Priority); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, FieldError{Field: "priority", Message: fmt.Sprintf("a whole number from %d to %d (higher runs first)", minPriority, maxPriority)})
		}
		priority = p
	}
	enabled := v.Enabled
	return ruleRequest{
		Name: v.Name, Description: v.Description, AppID: v.AppID, EventCategory: v.EventCategory, EventType: v.EventType,
		Condition: v.Condition, WebhookIDs: v.WebhookIDs, PublishSubject: v.PublishSubject, Priority: priority, Enabled: &enabled,
	}, errs
}

// setRuleErrors puts each error next to its field; several on one field go on separate lines.
func setRuleErrors(form *web.RuleForm, fields []FieldError) {
	if form.Errors == nil {
		form.Errors = map[string]string{}
	}
	for _, f := range fields {
		msg := ruleFieldMessage(f)
		if old := form.Errors[f.Field]; old != "" {
			msg = old + "\n" + msg
		}
		form.Errors[f.Field] = msg
	}
}

// ruleFieldMessage is an error as shown under its field. A CEL error says where it is
// ("line 1, column 24") above CEL's own picture of the line with a caret under the place.
func ruleFieldMessage(f FieldError) string {
	if f.Line <= 0 {
		return f.Message
	}
	msg := strings.TrimPrefix(f.Message, fmt.Sprintf("%d:%d: ", f.Line, f.Column))
	return fmt.Sprintf("Line %d, column %d: %s", f.Line, f.Column, msg)
}

// ruleFieldError is an error with its field's name, for the test result.
func ruleFieldError(f FieldError) string {
	return strings.ReplaceAll(f.Field, "_", " ") + ": " + ruleFieldMessage(f)
}

func ruleValues(r store.Rule) web.RuleValues {
	ids := make([]string, len(r.WebhookIDs))
	for i, id := range r.WebhookIDs {
		ids[i] = id.String()
	}
	return web.RuleValues{
		Name: r.Name, Description: r.Description, AppID: ruleDeref(r.AppID), EventCategory: ruleDeref(r.EventCategory),
		EventType: ruleDeref(r.EventType), Condition: r.Condition, WebhookIDs: ids, PublishSubject: ruleDeref(r.PublishSubject),
		Priority: strconv.Itoa(r.Priority), Enabled: r.Enabled,
	}
}

func ruleRow(r store.Rule, names map[uuid.UUID]string) web.RuleRow {
	row := web.RuleRow{ID: r.ID.String(), Name: r.Name, AppID: ruleDeref(r.AppID), Category: ruleDeref(r.EventCategory),
		Type: ruleDeref(r.EventType), Condition: r.Condition, Priority: r.Priority, Enabled: r.Enabled}
	for _, id := range r.WebhookIDs {
		name, ok := names[id]
		if !ok {
			name = id.String()
		}
		row.Webhooks = append(row.Webhooks, name)
	}
	return row
}

func ruleDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
