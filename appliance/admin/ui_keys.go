package admin

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/web"
)

// keysRoutes mounts the keys pages in the signed-in group.
func (u *UI) keysRoutes(r chi.Router) {
	r.Get("/keys", u.keysPage)
	r.Post("/keys", u.createKeyForm)
	r.Post("/keys/{id}/revoke", u.revokeKeyForm)
}

func (u *UI) keysPage(w http.ResponseWriter, r *http.Request) {
	u.renderKeys(w, r, http.StatusOK, keyForm("", "", ""), nil)
}

// keyForm is the create form holding the user's input.
func keyForm(appID, name, rateLimit string) web.KeyForm {
	return web.KeyForm{
		AppID: web.Field{Name: "app_id", Label: "App", Value: appID, Required: true, Placeholder: "shop",
			Help: "The app's id, as its events carry it in appId: letters, digits, - and _."},
		Name: web.Field{Name: "name", Label: "Key name", Value: name, Required: true, Placeholder: "web",
			Help: "Which client or environment uses it: web, ios, staging…"},
		RateLimit: web.Field{Name: "rate_limit", Label: "Rate limit (events/s)", Value: rateLimit, Placeholder: "server default",
			Help: "Events per second for this key. Empty: the server's --rate-limit; 0: unlimited."},
	}
}

// renderKeys shows the page; created is the key just made, shown this once.
func (u *UI) renderKeys(w http.ResponseWriter, r *http.Request, status int, form web.KeyForm, created *web.CreatedKey) {
	include, _ := strconv.ParseBool(r.URL.Query().Get("include_revoked"))
	keys, err := u.api.store.ListKeys(r.Context(), include)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	v := web.KeysView{IncludeRevoked: include, Form: form, Created: created}
	// Newest first within an app (the store's order), apps by name.
	slices.SortStableFunc(keys, func(a, b store.APIKey) int { return cmp.Compare(a.AppID, b.AppID) })
	for _, k := range keys {
		row := web.KeyRow{ID: k.ID.String(), AppID: k.AppID, Name: k.Name, Prefix: k.Prefix, RateLimit: rateLimitText(k.RateLimit),
			CreatedAt: k.CreatedAt, LastUsed: k.LastUsedAt, RevokedAt: k.RevokedAt}
		switch {
		case k.RevokedAt != nil:
			v.Revoked = append(v.Revoked, row)
		case len(v.Apps) > 0 && v.Apps[len(v.Apps)-1].AppID == k.AppID:
			v.Apps[len(v.Apps)-1].Keys = append(v.Apps[len(v.Apps)-1].Keys, row)
		default:
			v.Apps = append(v.Apps, web.KeyApp{AppID: k.AppID, Keys: []web.KeyRow{row}})
		}
	}
	u.render(w, r, status, web.KeysPage(u.page(r, "Apps & keys", web.NavKeys), v))
}

func rateLimitText(limit *float64) string {
	switch {
	case limit == nil:
		return "server default"
	case *limit == 0:
		return "unlimited"
	}
	return strconv.FormatFloat(*limit, 'f', -1, 64) + " events/s"
}

// createKeyForm checks the form as the JSON API checks its body and answers with the new
// key in the page itself (201), not through a redirect, so that the key never appears in
// a URL, a browser history or a log.
func (u *UI) createKeyForm(w http.ResponseWriter, r *http.Request) {
	appID, name, rateLimit := r.PostFormValue("app_id"), r.PostFormValue("name"), strings.TrimSpace(r.PostFormValue("rate_limit"))
	form := keyForm(appID, name, rateLimit)
	req := createKeyRequest{AppID: appID, Name: name}
	errs := map[string]string{}
	if rateLimit != "" {
		v, err := strconv.ParseFloat(rateLimit, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			errs["rate_limit"] = "a number of events per second, e.g. 50 or 0.5 (empty: the server default)"
		} else {
			req.RateLimit = &v
		}
	}
	for field, msg := range joinedFieldErrors(req.validate()) {
		if errs[field] == "" {
			errs[field] = msg
		}
	}
	if len(errs) > 0 {
		for _, f := range []*web.Field{&form.AppID, &form.Name, &form.RateLimit} {
			if msg := errs[f.Name]; msg != "" {
				f.Error = msg
				form.Errors = append(form.Errors, f.Label+": "+msg)
			}
		}
		u.renderKeys(w, r, http.StatusBadRequest, form, nil)
		return
	}

	key, hash, prefix := apikey.Generate()
	k, err := u.api.store.CreateKey(r.Context(), store.NewAPIKey{AppID: req.AppID, Name: req.Name, Hash: hash, Prefix: prefix, RateLimit: req.RateLimit})
	if err != nil {
		u.internal(w, r, err)
		return
	}
	u.api.reloadKeys(r)
	u.log.Info("api key created", "key_id", k.ID, "app_id", k.AppID, "name", k.Name)
	created := &web.CreatedKey{AppID: k.AppID, Name: k.Name, Key: key, Curl: u.ingestExample(r, k.AppID, key)}
	u.renderKeys(w, r, http.StatusCreated, keyForm("", "", ""), created)
}

// joinedFieldErrors takes apart the errors of createKeyRequest.validate, each
// "field: message", by field.
func joinedFieldErrors(err error) map[string]string {
	out := map[string]string{}
	if err == nil {
		return out
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		field, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			field, msg = "", e.Error()
		}
		out[field] = msg
	}
	return out
}

// hostPattern is what a Host header may be to be put into a shell command shown to the user.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.:\[\]-]+$`)

// ingestExample is a curl command sending one event with a new key, to the address the
// browser reached this appliance at.
func (u *UI) ingestExample(r *http.Request, appID, key string) string {
	scheme := "http"
	if r.TLS != nil || u.opts.SecureCookies {
		scheme = "https"
	}
	host := r.Host
	if !hostPattern.MatchString(host) {
		host = "localhost:8080"
	}
	body := fmt.Sprintf(`{"events":[{"appId":%q,"deviceId":"d-1","screenView":{"screenName":"Home"}}]}`, appID)
	return fmt.Sprintf("curl -H 'X-API-Key: %s' -H 'Content-Type: application/json' \\\n  -X POST %s://%s/v1/events/batch \\\n  -d '%s'", key, scheme, host, body)
}

func (u *UI) revokeKeyForm(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if err := u.api.store.RevokeKey(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			http.NotFound(w, r)
			return
		}
		u.internal(w, r, err)
		return
	}
	u.api.reloadKeys(r)
	u.log.Info("api key revoked", "key_id", id)
	redirectFlash(w, r, "/admin/keys", "Key revoked: events sent with it are refused from now on.")
}
