package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/reaction/webhook"
	"github.com/causality-io/causality/appliance/store"
)

// The checks here turn what a person submits (a JSON body now, a form of the admin UI
// later) into what the store saves, and say what is wrong field by field so that a form
// can show each message next to its input.

// FieldError is what is wrong with one field. Line and Column (1-based) locate the first
// problem in a CEL expression, for an editor; they are 0 for other fields.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// ValidationError lists every field that is wrong, in the order of the form.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, msg string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

// addExpr records a CEL compile error with its position; another error (none is expected)
// keeps its message.
func (e *ValidationError) addExpr(field string, err error) {
	var xe *expr.Error
	if errors.As(err, &xe) {
		e.Fields = append(e.Fields, FieldError{Field: field, Message: xe.Error(), Line: xe.Line, Column: xe.Column})
		return
	}
	e.add(field, err.Error())
}

// with adds fields to e, which may be nil; the answer is nil when there is nothing wrong.
func (e *ValidationError) with(fields ...FieldError) *ValidationError {
	if e == nil {
		if len(fields) == 0 {
			return nil
		}
		e = &ValidationError{}
	}
	e.Fields = append(e.Fields, fields...)
	return e
}

// orNil is nil when nothing was found wrong, so that callers can test `verr != nil`.
func (e *ValidationError) orNil() *ValidationError {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Limits of the fields people type.
const (
	maxNameLen        = 200
	maxDescriptionLen = 2000
	maxEventTypeLen   = 200
	maxSubjectLen     = 200
	maxURLLen         = 2000
	maxHeaders        = 20
	maxHeaderValueLen = 4096
	minPriority       = -1000
	maxPriority       = 1000
	maxCooldown       = 30 * 24 * 3600 // a month
	defaultCooldown   = 300
)

// eventCategories are the categories a filter may name (WIRE.md).
var eventCategories = []string{event.CategoryUser, event.CategoryScreen, event.CategoryInteraction,
	event.CategoryCommerce, event.CategorySystem, event.CategoryCustom}

// subjectPattern is a literal NATS subject: tokens of letters, digits, '_' and '-' joined
// by dots. Wildcards make no sense for publishing, and other characters would need escaping
// in every tool that subscribes.
var subjectPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// ruleRequest is a rule as submitted. Empty filters match any value.
type ruleRequest struct {
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	AppID          string   `json:"app_id"`
	EventCategory  string   `json:"event_category"`
	EventType      string   `json:"event_type"`
	Condition      string   `json:"condition"`
	WebhookIDs     []string `json:"webhook_ids"`
	PublishSubject string   `json:"publish_subject"`
	Priority       int      `json:"priority"`
	Enabled        *bool    `json:"enabled"` // absent: true
}

// detectorRequest is a detector as submitted.
type detectorRequest struct {
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	AppID           string          `json:"app_id"`
	EventCategory   string          `json:"event_category"`
	EventType       string          `json:"event_type"`
	Condition       string          `json:"condition"`
	Kind            string          `json:"kind"`
	Config          json.RawMessage `json:"config"`
	CooldownSeconds *int            `json:"cooldown_seconds"` // absent: 300
	WebhookIDs      []string        `json:"webhook_ids"`
	PublishSubject  string          `json:"publish_subject"`
	Enabled         *bool           `json:"enabled"` // absent: true
}

// webhookRequest is a webhook as submitted.
type webhookRequest struct {
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Enabled *bool             `json:"enabled"` // absent: true
}

// validateRule checks a rule, compiling its condition with env. Whether its webhooks
// exist is checkWebhooksExist's job, which needs the database.
func validateRule(env *expr.Env, req ruleRequest) (store.RuleInput, *ValidationError) {
	var v ValidationError
	in := store.RuleInput{
		Name:        checkName(&v, req.Name),
		Description: checkDescription(&v, req.Description),
		Priority:    req.Priority,
		Enabled:     orTrue(req.Enabled),
	}
	in.AppID, in.EventCategory, in.EventType = checkFilters(&v, req.AppID, req.EventCategory, req.EventType)
	in.Condition = checkCondition(&v, env, req.Condition)
	in.WebhookIDs = checkWebhookIDs(&v, req.WebhookIDs)
	in.PublishSubject = checkSubject(&v, req.PublishSubject)
	if req.Priority < minPriority || req.Priority > maxPriority {
		v.add("priority", fmt.Sprintf("from %d to %d (higher runs first)", minPriority, maxPriority))
	}
	return in, v.orNil()
}

// validateDetector checks a detector: its settings with detect.ParseConfig (stored
// normalised, defaults filled in), a threshold's value and the condition with env.
func validateDetector(env *expr.Env, req detectorRequest) (store.DetectorInput, *ValidationError) {
	var v ValidationError
	in := store.DetectorInput{
		Name:            checkName(&v, req.Name),
		Description:     checkDescription(&v, req.Description),
		Kind:            req.Kind,
		CooldownSeconds: defaultCooldown,
		Enabled:         orTrue(req.Enabled),
	}
	in.AppID, in.EventCategory, in.EventType = checkFilters(&v, req.AppID, req.EventCategory, req.EventType)
	in.Condition = checkCondition(&v, env, req.Condition)
	if !isObjectOrAbsent(req.Config) {
		v.add("config", "must be a JSON object of the settings of the kind")
	} else if cfg, err := detect.ParseConfig(req.Kind, req.Config); err != nil {
		v.Fields = append(v.Fields, configErrors(err)...)
	} else {
		in.Config = cfg.JSON()
		if cfg.Threshold != nil {
			if _, err := env.Number(cfg.Threshold.Value); err != nil {
				v.addExpr("config.value", err)
			}
		}
	}
	if req.CooldownSeconds != nil {
		in.CooldownSeconds = *req.CooldownSeconds
		if in.CooldownSeconds < 0 || in.CooldownSeconds > maxCooldown {
			v.add("cooldown_seconds", fmt.Sprintf("from 0 to %d (30 days): how long after firing it stays quiet", maxCooldown))
		}
	}
	in.WebhookIDs = checkWebhookIDs(&v, req.WebhookIDs)
	in.PublishSubject = checkSubject(&v, req.PublishSubject)
	return in, v.orNil()
}

// isObjectOrAbsent reports whether raw is a JSON object, null or nothing; ParseConfig's
// message for anything else would name Go types.
func isObjectOrAbsent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || t[0] == '{' || string(t) == "null"
}

// configTypeError is how detect.ParseConfig words a setting of the wrong JSON type:
// "config: max_per_minute: must be a float64, not a JSON string".
var configTypeError = regexp.MustCompile(`^([a-z_]+): (must be .*)$`)

// configErrors splits detect.ParseConfig's error, one "field: message" per line, into
// field errors, so that "config.max_per_minute" lands next to its input.
func configErrors(err error) []FieldError {
	var out []FieldError
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line == "" {
			continue
		}
		field, msg, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(field, " \"") {
			field, msg = "config", line
		}
		if m := configTypeError.FindStringSubmatch(msg); field == "config" && m != nil {
			field, msg = "config."+m[1], m[2]
		}
		out = append(out, FieldError{Field: field, Message: msg})
	}
	return out
}

// validateWebhook checks a webhook; allowPrivate lets its URL point at loopback and
// private addresses (--webhook-allow-private).
func validateWebhook(req webhookRequest, allowPrivate bool) (store.WebhookInput, *ValidationError) {
	var v ValidationError
	in := store.WebhookInput{
		Name:    checkName(&v, req.Name),
		URL:     strings.TrimSpace(req.URL),
		Headers: map[string]string{},
		Enabled: orTrue(req.Enabled),
	}
	switch {
	case in.URL == "":
		v.add("url", "required: the http:// or https:// address to POST events to")
	case len(in.URL) > maxURLLen:
		v.add("url", fmt.Sprintf("at most %d characters", maxURLLen))
	default:
		if err := webhook.CheckURL(in.URL, allowPrivate); err != nil {
			v.add("url", err.Error())
		}
	}
	if len(req.Headers) > maxHeaders {
		v.add("headers", fmt.Sprintf("at most %d headers, not %d", maxHeaders, len(req.Headers)))
	}
	// Sorted, so that the messages come in the same order every time.
	names := make([]string, 0, len(req.Headers))
	for name := range req.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := map[string]string{}
	for _, name := range names {
		value := req.Headers[name]
		lower := strings.ToLower(name)
		switch {
		case !isToken(name):
			v.add("headers", fmt.Sprintf("%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", name))
		case reservedHeaders[lower]:
			v.add("headers", fmt.Sprintf("%s is set by Causality on every delivery and cannot be overridden", name))
		case seen[lower] != "":
			v.add("headers", fmt.Sprintf("%s and %s are the same header (names ignore case)", seen[lower], name))
		case !isHeaderValue(value):
			v.add("headers", fmt.Sprintf("the value of %s must not contain line breaks or other control characters", name))
		case len(value) > maxHeaderValueLen:
			v.add("headers", fmt.Sprintf("the value of %s is longer than %d bytes", name, maxHeaderValueLen))
		}
		seen[lower] = name
		in.Headers[name] = value
	}
	return in, v.orNil()
}

// reservedHeaders are set by the dispatcher (the Standard Webhooks signature and what
// describes the body) or by Go's HTTP client; a user's value would break the delivery or
// its signature. Lower case.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "user-agent": true, "host": true,
	"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
}

// isToken reports whether s is an HTTP token (RFC 9110, 5.6.2), what a header name is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// isHeaderValue refuses CR and LF (they would split the request into more headers) and the
// other control characters Go's client refuses to send, all but the tab.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func checkName(v *ValidationError, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		v.add("name", "required")
	case utf8.RuneCountInString(name) > maxNameLen:
		v.add("name", fmt.Sprintf("at most %d characters", maxNameLen))
	}
	return name
}

func checkDescription(v *ValidationError, d string) string {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > maxDescriptionLen {
		v.add("description", fmt.Sprintf("at most %d characters", maxDescriptionLen))
	}
	return d
}

// checkFilters checks the app, category and type a rule or detector is limited to; an
// empty one matches any value and is stored as NULL.
func checkFilters(v *ValidationError, appID, category, typ string) (*string, *string, *string) {
	appID, category, typ = strings.TrimSpace(appID), strings.TrimSpace(category), strings.TrimSpace(typ)
	if appID != "" && !appIDPattern.MatchString(appID) {
		v.add("app_id", "1 to 64 letters, digits, '-' or '_', starting with a letter or digit (or empty for every app)")
	}
	if category != "" && !slices.Contains(eventCategories, category) {
		v.add("event_category", fmt.Sprintf("%q is not one of %s (or empty for every category)", category, strings.Join(eventCategories, ", ")))
	}
	if utf8.RuneCountInString(typ) > maxEventTypeLen {
		v.add("event_type", fmt.Sprintf("at most %d characters", maxEventTypeLen))
	}
	return emptyNil(appID), emptyNil(category), emptyNil(typ)
}

// checkCondition compiles a condition; a blank one matches every event and is stored as "".
func checkCondition(v *ValidationError, env *expr.Env, src string) string {
	if strings.TrimSpace(src) == "" {
		return ""
	}
	if _, err := env.Condition(src); err != nil {
		v.addExpr("condition", err)
	}
	return src
}

// checkWebhookIDs parses the ids; whether they exist is checked against the database.
func checkWebhookIDs(v *ValidationError, raw []string) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(raw))
	for _, s := range raw {
		id, err := uuid.Parse(strings.TrimSpace(s))
		switch {
		case err != nil:
			v.add("webhook_ids", fmt.Sprintf("%q is not a webhook id (a UUID)", s))
		case slices.Contains(ids, id):
			v.add("webhook_ids", fmt.Sprintf("%s is listed twice", id))
		default:
			ids = append(ids, id)
		}
	}
	return ids
}

// webhookFinder is the part of the store checkWebhooksExist needs.
type webhookFinder interface {
	MissingWebhooks(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error)
}

// checkWebhooksExist names each of ids that is no webhook.
func checkWebhooksExist(ctx context.Context, f webhookFinder, ids []uuid.UUID) ([]FieldError, error) {
	missing, err := f.MissingWebhooks(ctx, ids)
	if err != nil {
		return nil, err
	}
	return missingWebhookErrors(missing), nil
}

func missingWebhookErrors(ids []uuid.UUID) []FieldError {
	out := make([]FieldError, len(ids))
	for i, id := range ids {
		out[i] = FieldError{Field: "webhook_ids", Message: fmt.Sprintf("no webhook %s", id)}
	}
	return out
}

// checkSubject checks where matches are published instead of the default subject; empty
// means the default and is stored as NULL.
func checkSubject(v *ValidationError, subject string) *string {
	subject = strings.TrimSpace(subject)
	switch {
	case subject == "":
		return nil
	case len(subject) > maxSubjectLen:
		v.add("publish_subject", fmt.Sprintf("at most %d characters", maxSubjectLen))
	case strings.HasPrefix(subject, "$"):
		v.add("publish_subject", "subjects starting with $ are NATS system subjects; choose another")
	case strings.ContainsAny(subject, "*>"):
		v.add("publish_subject", "must be one literal subject: no wildcards (* or >)")
	case !subjectPattern.MatchString(subject):
		v.add("publish_subject", "tokens of letters, digits, '_' or '-' joined by dots, e.g. alerts.shop.big_orders")
	case subject == "events" || strings.HasPrefix(subject, "events."):
		v.add("publish_subject", `subjects under "events." feed the event stream: what is published there would be stored as incoming events; choose another`)
	}
	return &subject
}

func emptyNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orTrue(b *bool) bool { return b == nil || *b }
