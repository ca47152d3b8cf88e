package admin

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// serveUI serves c's API with a UI built with opts instead of the default one, on a new
// server (so sign in afterwards). readTimeout is the server's, as the appliance sets one.
func (c *uiClient) serveUI(opts UIOptions, readTimeout time.Duration) {
	c.t.Helper()
	r := chi.NewRouter()
	c.api.Routes(r)
	opts.Version = "test"
	NewUI(c.api, opts).Routes(r)
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	c.t.Cleanup(srv.Close)
	c.srv = srv
}

// fakeLive is a LiveSource the test publishes to, as NATS would deliver.
type fakeLive struct {
	mu     sync.Mutex
	subs   map[int]fakeSub
	next   int
	joined chan string // the subject of every new subscription
	left   chan struct{}
	stop   chan struct{} // closing it ends every subscription, as an appliance stop does
}

type fakeSub struct {
	subject string
	fn      func(LiveEvent)
}

func newFakeLive() *fakeLive {
	return &fakeLive{subs: map[int]fakeSub{}, joined: make(chan string, 10), left: make(chan struct{}, 10), stop: make(chan struct{})}
}

func (f *fakeLive) Subscribe(ctx context.Context, subject string, ready func(), fn func(LiveEvent)) error {
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = fakeSub{subject, fn}
	f.mu.Unlock()
	ready()
	f.joined <- subject
	defer func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
		f.left <- struct{}{}
	}()
	select {
	case <-ctx.Done():
	case <-f.stop:
	}
	return nil
}

// publish delivers ev to every subscription, whatever its subject (the handler must
// still leave out what its filter does not match).
func (f *fakeLive) publish(t *testing.T, ev *causalityv1.EventEnvelope) {
	t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.subs {
		s.fn(LiveEvent{Data: data, Received: time.Now()})
	}
}

func screenView(id, app, screen string) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{Id: id, AppId: app, DeviceId: "d-1", TimestampMs: time.Now().UnixMilli(),
		Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: screen}}}
}

func customEvent(id, app, name string) *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{Id: id, AppId: app, DeviceId: "d-1", TimestampMs: time.Now().UnixMilli(),
		Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{EventName: name}}}
}

// sseStream reads server-sent events from a response.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	ch   chan sseEvent
}

type sseEvent struct{ name, data string }

func (c *uiClient) openStream(path string) *sseStream {
	c.t.Helper()
	resp, err := c.client.Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	s := &sseStream{t: c.t, resp: resp, ch: make(chan sseEvent, 1000)}
	go func() {
		defer close(s.ch)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || len(data) > 0 {
					ev.data = strings.Join(data, "\n")
					s.ch <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return s
}

// next returns the next event named name, skipping others; ok is false if the stream
// ended or nothing came in time.
func (s *sseStream) next(name string, wait time.Duration) (sseEvent, bool) {
	s.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev, open := <-s.ch:
			if !open {
				return sseEvent{}, false
			}
			if ev.name == name {
				return ev, true
			}
		case <-deadline:
			return sseEvent{}, false
		}
	}
}

// recentEvents is a RecentEvents with fixed events, newest first.
type recentEvents []*causalityv1.EventEnvelope

func (r recentEvents) Recent(_ context.Context, n int) ([]*causalityv1.EventEnvelope, error) {
	return r[:min(n, len(r))], nil
}

func TestUIEventsPage(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	recent := recentEvents{
		customEvent("ev-4", "shop", "coupon_applied"),
		screenView("ev-3", "blog", "Home"),
		screenView("ev-2", "shop", "Cart"),
		screenView("ev-1", "shop", "Home"),
	}
	c.serveUI(UIOptions{Events: recent, Live: newFakeLive()}, 0)

	// Without a session: to sign in, the page and its stream alike.
	for _, path := range []string{"/admin/events", "/admin/events/stream"} {
		if resp, _ := c.get(path); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/signin") {
			t.Errorf("%s without a session: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	c.signIn()

	resp, page := c.get("/admin/events")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events page: %d", resp.StatusCode)
	}
	for _, want := range []string{"<h1>Live events</h1>", `aria-current="page">Live events`, `hx-ext="sse"`,
		`sse-connect="/admin/events/stream"`, `sse-swap="event"`, "ev-1", "ev-2", "ev-3", "ev-4", "screen/view", "custom/coupon_applied",
		"&#34;screenName&#34;: &#34;Cart&#34;", "The 4 newest events"} {
		if !strings.Contains(page, want) {
			t.Errorf("events page lacks %q", want)
		}
	}
	if strings.Index(page, "ev-4") > strings.Index(page, "ev-1") {
		t.Error("the newest event is not listed first")
	}

	// A filter: kept in the form and in the stream's URL, and applied to the list.
	resp, page = c.get("/admin/events?app=shop&type=view")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("filtered events page: %d", resp.StatusCode)
	}
	for _, want := range []string{`name="app" type="text" value="shop"`, `name="type" type="text" value="view"`,
		`sse-connect="/admin/events/stream?app=shop&amp;type=view"`, "ev-1", "ev-2", "among the last 4 stored"} {
		if !strings.Contains(page, want) {
			t.Errorf("filtered page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"ev-3", "ev-4"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("filtered page lists %s", unwanted)
		}
	}
	// A category filters too.
	if _, page = c.get("/admin/events?type=custom"); !strings.Contains(page, "ev-4") || strings.Contains(page, "ev-1") {
		t.Error("the category filter custom does not list exactly the custom event")
	}

	// A bad filter: 400, the error next to the field, the input kept, no stream.
	resp, page = c.get("/admin/events?app=no+such%2Fapp&type=view")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad filter: %d, want 400", resp.StatusCode)
	}
	for _, want := range []string{`value="no such/app"`, `id="f-app-error"`, "starting with a letter or digit", `aria-invalid="true"`} {
		if !strings.Contains(page, want) {
			t.Errorf("bad-filter page lacks %q", want)
		}
	}
	if strings.Contains(page, "sse-connect") {
		t.Error("a bad filter still connects the stream")
	}
	if resp, _ := c.get("/admin/events/stream?app=no+such%2Fapp"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stream with a bad filter: %d, want 400", resp.StatusCode)
	}
}

func TestUIEventsWithoutSources(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	c.signIn()
	resp, page := c.get("/admin/events")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Recent events are not available here.") || strings.Contains(page, "sse-connect") {
		t.Errorf("events page without sources: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/admin/events/stream"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("stream without a source: %d, want 404", resp.StatusCode)
	}
}

func TestUIEventsStream(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	live := newFakeLive()
	// A read timeout far shorter than the test: the stream must outlive it.
	c.serveUI(UIOptions{Live: live}, 300*time.Millisecond)
	c.signIn()

	s := c.openStream("/admin/events/stream?app=shop&type=view")
	if s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %q", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	select {
	case subject := <-live.joined:
		if subject != "events.shop.*.view" {
			t.Errorf("subscribed to %q, want events.shop.*.view", subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not subscribe")
	}
	if st, ok := s.next("status", 5*time.Second); !ok || !strings.Contains(st.data, "Connected") {
		t.Fatalf("first status: %+v %v", st, ok)
	}

	time.Sleep(time.Second) // past the read timeout
	live.publish(t, screenView("ev-other-app", "blog", "Home"))
	live.publish(t, customEvent("ev-other-type", "shop", "view_x"))
	live.publish(t, screenView("ev-wanted", "shop", "Cart"))
	ev, ok := s.next("event", 5*time.Second)
	if !ok {
		t.Fatal("no event arrived after publishing")
	}
	for _, want := range []string{"<tr>", "ev-wanted", "shop", "screen/view", "&#34;screenName&#34;: &#34;Cart&#34;", "<details>"} {
		if !strings.Contains(ev.data, want) {
			t.Errorf("event row lacks %q:\n%s", want, ev.data)
		}
	}
	if strings.Contains(ev.data, "ev-other") {
		t.Errorf("a filtered-out event came first:\n%s", ev.data)
	}

	// A burst: at most about 20 rows a second, and a status saying the rest were skipped.
	for i := range 300 {
		live.publish(t, screenView("burst-"+string(rune('a'+i%26)), "shop", "Home"))
	}
	st, ok := s.next("status", 5*time.Second)
	if !ok || !strings.Contains(st.data, "more were skipped") {
		t.Fatalf("no status about skipped events: %+v %v", st, ok)
	}
	rows := 0
	for {
		if _, ok := s.next("event", 300*time.Millisecond); !ok {
			break
		}
		rows++
	}
	if rows > 2*liveRate {
		t.Errorf("%d rows of a 300-event burst reached the browser, want at most about %d", rows, liveRate)
	}

	// The appliance stops: the stream says so, closes, and ends.
	close(live.stop)
	if st, ok := s.next("status", 5*time.Second); !ok || !strings.Contains(st.data, "stopping") {
		t.Errorf("no status about the stop: %+v", st)
	}
	if _, ok := s.next("close", 5*time.Second); !ok {
		t.Error("no close event")
	}
	if _, ok := s.next("anything", 5*time.Second); ok {
		t.Error("the stream goes on after close")
	}
}

func TestUIEventsStreamEndsWhenTheBrowserLeaves(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	live := newFakeLive()
	c.serveUI(UIOptions{Live: live}, 0)
	c.signIn()
	s := c.openStream("/admin/events/stream")
	if subject := <-live.joined; subject != "events.*.>" {
		t.Errorf("unfiltered stream subscribed to %q", subject)
	}
	s.resp.Body.Close()
	select {
	case <-live.left:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription outlived the browser")
	}
}

func TestEventFilterSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f    EventFilter
		want string
	}{
		{EventFilter{}, "events.*.>"},
		{EventFilter{AppID: "shop"}, "events.shop.>"},
		{EventFilter{Type: "commerce"}, "events.*.commerce.>"},
		{EventFilter{AppID: "shop", Type: "add_to_cart"}, "events.shop.*.add_to_cart"},
		{EventFilter{Type: "signed up.now*"}, "events.*.*.signed_up_now_"},
	} {
		if got := tc.f.Subject(); got != tc.want {
			t.Errorf("%+v: subject %q, want %q", tc.f, got, tc.want)
		}
	}
	ev := customEvent("x", "shop", "signed up.now*")
	if !(EventFilter{Type: "signed up.now*"}).Match(ev) || (EventFilter{Type: "signed_up_now_"}).Match(ev) {
		t.Error("Match does not compare the type exactly")
	}
}

func TestLiveStatus(t *testing.T) {
	t.Parallel()
	if got := liveStatus(0, 0); got != "Connected." {
		t.Errorf("nothing lost: %q", got)
	}
	got := liveStatus(120, 7)
	for _, want := range []string{"at most 20 events a second", "120 more were skipped", "7 were dropped because this browser did not keep up"} {
		if !strings.Contains(got, want) {
			t.Errorf("status %q lacks %q", got, want)
		}
	}
}
