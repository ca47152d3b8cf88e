// Package web holds the admin UI's templ components and its static assets (one small
// stylesheet, htmx and its server-sent-events extension, a few lines of script), embedded
// in the binary so that the UI works on a machine without internet. Handlers live in
// appliance/admin; this package only renders.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:generate go tool templ generate

//go:embed static
var static embed.FS

// Static serves the assets under /admin/static/. They change only with the binary, so
// browsers may keep them for a day.
func Static() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil { // the directory is embedded above
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// Page is what the layout needs to know about the page it frames.
type Page struct {
	Title   string
	Nav     string // the current navigation item, one of the Nav* names
	CSRF    string // the session's CSRF token; empty on the sign-in page
	Flash   string // a one-line confirmation shown at the top ("Rule saved.")
	Version string
}

// Navigation items.
const (
	NavOverview  = "overview"
	NavEvents    = "events"
	NavKeys      = "keys"
	NavRules     = "rules"
	NavWebhooks  = "webhooks"
	NavDetectors = "detectors"
	NavData      = "data"
	NavSettings  = "settings"
)

type navItem struct{ name, label, href string }

var navItems = []navItem{
	{NavOverview, "Overview", "/admin/"},
	{NavEvents, "Live events", "/admin/events"},
	{NavKeys, "Apps & keys", "/admin/keys"},
	{NavRules, "Rules", "/admin/rules"},
	{NavWebhooks, "Webhooks", "/admin/webhooks"},
	{NavDetectors, "Detectors", "/admin/detectors"},
	{NavData, "Data", "/admin/data"},
	{NavSettings, "Settings", "/admin/settings"},
}

// htmxHeaders makes htmx send the CSRF token with every request it makes.
func (p Page) htmxHeaders() string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": p.CSRF})
	return string(b)
}

// Field is one form input with its label, help and the error the server found in it.
type Field struct {
	Name        string
	Label       string
	Value       string
	Type        string // "text" when empty
	Help        string
	Error       string
	Placeholder string
	Required    bool
}

func (f Field) id() string { return "f-" + f.Name }

func (f Field) inputType() string {
	if f.Type == "" {
		return "text"
	}
	return f.Type
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
}
