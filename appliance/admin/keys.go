package admin

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/apikey"
	"github.com/causality-io/causality/appliance/httpjson"
	"github.com/causality-io/causality/appliance/store"
)

// appIDPattern keeps app ids usable in NATS subjects, warehouse paths and URLs unchanged.
var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

type createKeyRequest struct {
	AppID     string   `json:"app_id"`
	Name      string   `json:"name"`
	RateLimit *float64 `json:"rate_limit,omitempty"`
}

// keyView is a key as the API shows it; Key is set only in the answer to its creation.
type keyView struct {
	ID         uuid.UUID  `json:"id"`
	AppID      string     `json:"app_id"`
	Name       string     `json:"name"`
	Key        string     `json:"key,omitempty"`
	Prefix     string     `json:"prefix"`
	RateLimit  *float64   `json:"rate_limit"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

func viewKey(k store.APIKey) keyView {
	return keyView{ID: k.ID, AppID: k.AppID, Name: k.Name, Prefix: k.Prefix, RateLimit: k.RateLimit,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

func (req *createKeyRequest) validate() error {
	req.AppID, req.Name = strings.TrimSpace(req.AppID), strings.TrimSpace(req.Name)
	var errs []error
	if req.AppID == "" {
		errs = append(errs, errors.New("app_id: required"))
	} else if !appIDPattern.MatchString(req.AppID) {
		errs = append(errs, errors.New("app_id: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"))
	}
	if req.Name == "" {
		errs = append(errs, errors.New("name: required"))
	} else if len(req.Name) > 200 {
		errs = append(errs, errors.New("name: at most 200 characters"))
	}
	if req.RateLimit != nil && *req.RateLimit < 0 {
		errs = append(errs, errors.New("rate_limit: events per second, 0 (unlimited) or more"))
	}
	return errors.Join(errs...)
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if err := httpjson.Decode(r, 64<<10, &req); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := req.validate(); err != nil {
		httpjson.Error(w, http.StatusBadRequest, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	key, hash, prefix := apikey.Generate()
	k, err := a.store.CreateKey(r.Context(), store.NewAPIKey{AppID: req.AppID, Name: req.Name, Hash: hash, Prefix: prefix, RateLimit: req.RateLimit})
	if err != nil {
		a.internal(w, err)
		return
	}
	a.reloadKeys(r)
	a.log.Info("api key created", "key_id", k.ID, "app_id", k.AppID, "name", k.Name)
	v := viewKey(k)
	v.Key = key
	httpjson.Write(w, http.StatusCreated, v)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	includeRevoked, _ := strconv.ParseBool(r.URL.Query().Get("include_revoked"))
	keys, err := a.store.ListKeys(r.Context(), includeRevoked)
	if err != nil {
		a.internal(w, err)
		return
	}
	views := make([]keyView, len(keys))
	for i, k := range keys {
		views[i] = viewKey(k)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"keys": views})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "id: not a key id (a UUID)")
		return
	}
	if err := a.store.RevokeKey(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no api key with id %s", id))
			return
		}
		a.internal(w, err)
		return
	}
	a.reloadKeys(r)
	a.log.Info("api key revoked", "key_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// reloadKeys makes a change effective here at once; other instances follow the
// notification the store sent.
func (a *API) reloadKeys(r *http.Request) {
	if err := a.keys.Load(r.Context()); err != nil {
		a.log.Warn("reload api keys after change", "err", err)
	}
}
