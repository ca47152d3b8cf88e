package admin

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/web"
)

// settingsRoutes mounts the settings pages in the signed-in group.
func (u *UI) settingsRoutes(r chi.Router) {
	r.Get("/settings", u.settingsPage)
	r.Post("/settings/password", u.changePassword)
}

func (u *UI) settingsPage(w http.ResponseWriter, r *http.Request) {
	u.renderSettings(w, r, http.StatusOK, passwordForm())
}

// passwordForm is the change-password form; it never holds a password typed before.
func passwordForm() web.PasswordForm {
	return web.PasswordForm{
		Current: web.Field{Name: "current_password", Label: "Current password", Type: "password", Required: true},
		New: web.Field{Name: "new_password", Label: "New password", Type: "password", Required: true,
			Help: fmt.Sprintf("At least %d characters.", config.MinAdminPasswordLength)},
		Confirm: web.Field{Name: "confirm_password", Label: "New password, again", Type: "password", Required: true},
	}
}

func (u *UI) renderSettings(w http.ResponseWriter, r *http.Request, status int, form web.PasswordForm) {
	v := web.SettingsView{Password: form}
	for _, l := range u.opts.Config.Summary {
		v.Summary = append(v.Summary, web.ConfigLine{Name: l.Name, Value: l.Value})
	}
	if u.opts.PasswordFromFlag {
		v.PasswordSource = "--admin-password"
	}
	for _, s := range u.opts.Config.Settings {
		v.Settings = append(v.Settings, web.ConfigSetting{Flag: s.Flag, Env: s.Env, Value: s.Value, Usage: s.Usage, Source: s.Source})
		if u.opts.PasswordFromFlag && s.Flag == "admin-password" && s.Source == config.SourceEnv {
			v.PasswordSource = s.Env
		}
	}
	u.render(w, r, status, web.SettingsPage(u.page(r, "Settings", web.NavSettings), v))
}

// changePassword sets a new admin password. The current one must be given, and a wrong
// one counts against the budget of failed sign-ins, so that a session left open cannot
// be used to guess it. Every other session is signed out.
func (u *UI) changePassword(w http.ResponseWriter, r *http.Request) {
	current, next, confirm := r.PostFormValue("current_password"), r.PostFormValue("new_password"), r.PostFormValue("confirm_password")
	form := passwordForm()
	status := http.StatusBadRequest
	switch {
	case next == "":
		form.New.Error = "required"
	case len(next) < config.MinAdminPasswordLength:
		form.New.Error = fmt.Sprintf("at least %d characters", config.MinAdminPasswordLength)
	}
	if next != "" && confirm != next {
		form.Confirm.Error = "does not match the new password"
	}
	if current == "" {
		form.Current.Error = "required"
	} else {
		// As at sign-in: a token is taken before the slow check, a right password gives it back.
		res := u.api.auth.failures.Reserve()
		switch {
		case res.Delay() > 0:
			res.Cancel()
			w.Header().Set("Retry-After", "1")
			form.Current.Error = "too many failed attempts: wait a moment, then try again"
			status = http.StatusTooManyRequests
		case !u.api.auth.passwords.Check(current):
			u.log.Warn("admin password change with a wrong current password refused", "remote", r.RemoteAddr)
			form.Current.Error = "wrong password"
		default:
			res.Cancel()
		}
	}
	for _, f := range []web.Field{form.Current, form.New, form.Confirm} {
		if f.Error != "" {
			form.Errors = append(form.Errors, f.Label+": "+f.Error)
		}
	}
	if len(form.Errors) > 0 {
		u.renderSettings(w, r, status, form)
		return
	}

	if err := u.api.auth.passwords.Set(r.Context(), next); err != nil {
		u.internal(w, r, err)
		return
	}
	if err := u.api.store.DeleteOtherSessions(r.Context(), session(r.Context()).tokenHash); err != nil {
		u.internal(w, r, fmt.Errorf("password changed, but signing out the other sessions failed: %w", err))
		return
	}
	u.log.Info("admin password changed; other sessions signed out", "remote", r.RemoteAddr)
	redirectFlash(w, r, "/admin/settings", "Password changed. Every other session was signed out; the admin API takes the new password too.")
}
