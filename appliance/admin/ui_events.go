package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
	"github.com/causality-io/causality/web"
)

// LiveEvent is one event as the bus carries it: still in protobuf, so that a page that
// shows 20 events a second does not decode the thousands a second it skips.
type LiveEvent struct {
	Data     []byte    // a causality.v1.EventEnvelope
	Received time.Time // when ingest accepted it
}

// LiveSource tails the stored events for the live events page.
type LiveSource interface {
	// Subscribe calls fn with every event published on subject (a NATS subject under
	// "events.") from now on, until ctx ends or the appliance stops, and returns then.
	// It calls ready once the subscription is in place, so that "connected" is true when
	// the page says it. fn runs on the subscription's goroutine: it must not block.
	Subscribe(ctx context.Context, subject string, ready func(), fn func(LiveEvent)) error
}

// The live tail's bounds, per browser.
const (
	liveRate      = 20               // rows sent per second at most; the rest are skipped
	liveBuffer    = 64               // rows waiting for a slow browser before rows are dropped
	liveHeartbeat = 15 * time.Second // a comment line keeps proxies from closing a quiet stream
	liveWriteWait = 10 * time.Second // a browser that takes longer to accept a row is gone
	liveRecent    = 50               // events on the page as loaded
	liveScan      = 1000             // with a filter, the recent events are looked for among these
)

// EventFilter narrows the live events to an app and to a type or category.
type EventFilter struct {
	AppID string
	// Type is an event type (view, add_to_cart, a custom event's name) or a category
	// (screen, commerce, custom, ...).
	Type string
}

var categories = map[string]bool{
	event.CategoryUser: true, event.CategoryScreen: true, event.CategoryInteraction: true,
	event.CategoryCommerce: true, event.CategorySystem: true, event.CategoryCustom: true,
}

// Subject is the NATS subject that carries the events the filter matches, and possibly a
// few others (subject tokens are sanitised), which Match then leaves out.
func (f EventFilter) Subject() string {
	app := "*"
	if f.AppID != "" {
		app = strings.Split(event.Subject(&causalityv1.EventEnvelope{AppId: f.AppID}), ".")[1]
	}
	switch {
	case f.Type == "":
		return "events." + app + ".>"
	case categories[f.Type]:
		return "events." + app + "." + f.Type + ".>"
	}
	// The type token of a custom event is its sanitised name; built-in types need none.
	custom := &causalityv1.EventEnvelope{AppId: "a", Payload: &causalityv1.EventEnvelope_CustomEvent{
		CustomEvent: &causalityv1.CustomEvent{EventName: f.Type}}}
	return "events." + app + ".*." + strings.Split(event.Subject(custom), ".")[3]
}

// Match tells whether an event passes the filter.
func (f EventFilter) Match(ev *causalityv1.EventEnvelope) bool {
	if f.AppID != "" && ev.GetAppId() != f.AppID {
		return false
	}
	if f.Type == "" {
		return true
	}
	category, typ, _ := event.Kind(ev)
	return typ == f.Type || category == f.Type
}

// query is the filter as URL parameters, for the stream's URL and the page's links.
func (f EventFilter) query() string {
	q := url.Values{}
	if f.AppID != "" {
		q.Set("app", f.AppID)
	}
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// eventsForm reads and checks the filter; the fields carry the input and its errors.
func eventsForm(q url.Values) (EventFilter, web.EventsForm, bool) {
	f := EventFilter{AppID: strings.TrimSpace(q.Get("app")), Type: strings.TrimSpace(q.Get("type"))}
	form := web.EventsForm{
		App: web.Field{Name: "app", Label: "App", Value: f.AppID, Placeholder: "any app",
			Help: "The app id, exactly."},
		Type: web.Field{Name: "type", Label: "Type or category", Value: f.Type, Placeholder: "any type",
			Help: "An event type (view, add_to_cart, a custom event's name) or a category (user, screen, interaction, commerce, system, custom)."},
	}
	if f.AppID != "" && !appIDPattern.MatchString(f.AppID) {
		form.App.Error = "1 to 64 letters, digits, '-' or '_', starting with a letter or digit."
	}
	if len(f.Type) > 128 || !utf8.ValidString(f.Type) || strings.IndexFunc(f.Type, unicode.IsControl) >= 0 {
		form.Type.Error = "At most 128 characters, without control characters."
	}
	for _, fld := range []web.Field{form.App, form.Type} {
		if fld.Error != "" {
			form.Errors = append(form.Errors, fld.Label+": "+fld.Error)
		}
	}
	return f, form, len(form.Errors) == 0
}

// eventsRoutes mounts the live events page and its stream in the signed-in group.
func (u *UI) eventsRoutes(r chi.Router) {
	r.Get("/events", u.eventsPage)
	r.Get("/events/stream", u.eventsStream)
}

// eventsPage lists the latest events, filtered; with JavaScript, new ones arrive over the
// stream at the top of the list.
func (u *UI) eventsPage(w http.ResponseWriter, r *http.Request) {
	f, form, ok := eventsForm(r.URL.Query())
	v := web.EventsView{Form: form}
	if !ok {
		u.render(w, r, http.StatusBadRequest, web.EventsPage(u.page(r, "Live events", web.NavEvents), v))
		return
	}
	if u.opts.Live != nil {
		v.StreamURL = "/admin/events/stream" + f.query()
	}
	v.Events, v.Note = u.recentEvents(r.Context(), f)
	u.render(w, r, http.StatusOK, web.EventsPage(u.page(r, "Live events", web.NavEvents), v))
}

// recentEvents are the newest events that pass the filter, newest first, with a line
// saying what the list is.
func (u *UI) recentEvents(ctx context.Context, f EventFilter) ([]web.EventLine, string) {
	if u.opts.Events == nil {
		return nil, "Recent events are not available here."
	}
	n := liveRecent
	if f != (EventFilter{}) {
		n = liveScan
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	evs, err := u.opts.Events.Recent(ctx, n)
	if err != nil {
		u.log.Warn("recent events", "err", err)
		return nil, "The recent events could not be read: " + err.Error()
	}
	var lines []web.EventLine
	for _, ev := range evs {
		if len(lines) == liveRecent {
			break
		}
		if f.Match(ev) {
			lines = append(lines, eventLine(ev, time.Time{}))
		}
	}
	switch {
	case len(lines) == 0 && f != (EventFilter{}):
		return nil, fmt.Sprintf("None of the last %d events stored matches the filter; new ones appear here as they arrive.", len(evs))
	case len(lines) == 0:
		return nil, "No events stored yet; they appear here as they arrive."
	case f != (EventFilter{}):
		return lines, fmt.Sprintf("The %d newest matching events among the last %d stored, newest first; new ones appear at the top as they arrive.", len(lines), len(evs))
	}
	return lines, fmt.Sprintf("The %d newest events, newest first; new ones appear at the top as they arrive.", len(lines))
}

// eventLine is an event as a row of the list; received is zero when unknown.
func eventLine(ev *causalityv1.EventEnvelope, received time.Time) web.EventLine {
	category, typ, _ := event.Kind(ev)
	at := time.UnixMilli(ev.GetTimestampMs())
	if ev.GetTimestampMs() <= 0 {
		at = received
	}
	return web.EventLine{Time: at, AppID: ev.GetAppId(), Kind: category + "/" + typ, ID: ev.GetId(), JSON: eventJSON(ev)}
}

// eventJSON is the event in the wire format's JSON, indented the same way every time
// (protojson varies its spacing on purpose).
func eventJSON(ev *causalityv1.EventEnvelope) string {
	b, err := protojson.Marshal(ev)
	if err != nil {
		return "(cannot be shown as JSON: " + err.Error() + ")"
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// eventsStream sends new events as server-sent events: each one a table row (event
// "event") and, when it changes, a status line (event "status") that says how many were
// skipped or dropped. It ends with event "close" when the appliance stops.
func (u *UI) eventsStream(w http.ResponseWriter, r *http.Request) {
	f, _, ok := eventsForm(r.URL.Query())
	if !ok {
		http.Error(w, "bad filter: app must be an app id, type at most 128 characters", http.StatusBadRequest)
		return
	}
	if u.opts.Live == nil {
		http.Error(w, "live events are not available here", http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var skipped, dropped atomic.Int64
	queue := make(chan LiveEvent, liveBuffer)
	limit := rate.NewLimiter(liveRate, liveRate)
	ended := make(chan error, 1)
	subscribed := make(chan struct{})
	go func() {
		ended <- u.opts.Live.Subscribe(ctx, f.Subject(), func() { close(subscribed) }, func(e LiveEvent) {
			if !limit.Allow() {
				skipped.Add(1)
				return
			}
			select {
			case queue <- e:
			default:
				dropped.Add(1)
			}
		})
	}()

	s := &sseWriter{w: w, rc: rc}
	connected := false
	select {
	case <-subscribed:
		connected = true
	case err := <-ended:
		ended <- err // the loop below says why
	case <-ctx.Done():
		return
	}
	if connected {
		s.send(ctx, "status", web.EventsStatus("Connected: new events appear at the top as they arrive."))
	}
	s.retry(5 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var shownSkipped, shownDropped int64
	for s.err == nil {
		select {
		case <-ctx.Done():
			return
		case err := <-ended:
			if ctx.Err() != nil {
				return // the browser went away
			}
			msg := "The appliance is stopping: live updates ended. Reload the page once it is back."
			if err != nil {
				u.log.Warn("live events", "err", err)
				msg = "Live updates failed: " + err.Error() + ". Reload the page to try again."
			}
			s.send(ctx, "status", web.EventsStatus(msg))
			s.send(ctx, "close", web.EventsStatus("closed"))
			return
		case e := <-queue:
			ev := &causalityv1.EventEnvelope{}
			if err := proto.Unmarshal(e.Data, ev); err != nil || !f.Match(ev) {
				continue // not an event, or a sanitised subject that matched another app or type
			}
			s.send(ctx, "event", web.EventRow(eventLine(ev, e.Received)))
		case <-tick.C:
			sk, dr := skipped.Load(), dropped.Load()
			if sk != shownSkipped || dr != shownDropped {
				shownSkipped, shownDropped = sk, dr
				s.send(ctx, "status", web.EventsStatus(liveStatus(sk, dr)))
			} else if time.Since(s.last) >= liveHeartbeat {
				s.comment("keep-alive")
			}
		}
	}
}

// liveStatus says how much of the stream the browser did not get.
func liveStatus(skipped, dropped int64) string {
	var b strings.Builder
	b.WriteString("Connected.")
	if skipped > 0 {
		fmt.Fprintf(&b, " Showing at most %d events a second: %d more were skipped since the page was loaded.", liveRate, skipped)
	}
	if dropped > 0 {
		fmt.Fprintf(&b, " %d were dropped because this browser did not keep up.", dropped)
	}
	return b.String()
}

// sseWriter writes server-sent events, each flushed at once, within a deadline.
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	buf  bytes.Buffer
	last time.Time
	err  error
}

// send writes an event whose data is a rendered component.
func (s *sseWriter) send(ctx context.Context, name string, c templ.Component) {
	var html bytes.Buffer
	if err := c.Render(ctx, &html); err != nil {
		s.err = err
		return
	}
	s.buf.Reset()
	s.buf.WriteString("event: " + name + "\n")
	// A line break ends a field: each line of the data goes in a data field of its own
	// (the browser joins them again), and a carriage return, also a line break, is dropped.
	for line := range bytes.SplitSeq(html.Bytes(), []byte("\n")) {
		s.buf.WriteString("data: ")
		s.buf.Write(bytes.ReplaceAll(line, []byte("\r"), nil))
		s.buf.WriteByte('\n')
	}
	s.buf.WriteByte('\n')
	s.write()
}

func (s *sseWriter) retry(d time.Duration) {
	s.buf.Reset()
	fmt.Fprintf(&s.buf, "retry: %d\n\n", d.Milliseconds())
	s.write()
}

func (s *sseWriter) comment(text string) {
	s.buf.Reset()
	s.buf.WriteString(": " + text + "\n\n")
	s.write()
}

func (s *sseWriter) write() {
	if s.err != nil {
		return
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(liveWriteWait))
	if _, s.err = s.w.Write(s.buf.Bytes()); s.err == nil {
		s.err = s.rc.Flush()
	}
	s.last = time.Now()
}
