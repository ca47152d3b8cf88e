package appliance_test

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/warehouse/laketest"
)

// uiBrowser is a browser without JavaScript signed in to the admin UI.
type uiBrowser struct {
	t      *testing.T
	base   string
	client *http.Client
}

var signinToken = regexp.MustCompile(`name="signin_csrf" value="([^"]+)"`)

func signInUI(t *testing.T, s *server) *uiBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &uiBrowser{t: t, base: s.base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	_, page := b.get("/admin/signin")
	m := signinToken.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no signin_csrf on the sign-in page:\n%s", page)
	}
	resp, err := b.client.PostForm(s.base+"/admin/signin", url.Values{"signin_csrf": {m[1]}, "password": {adminPassword}, "next": {"/admin/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("sign in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return b
}

func (b *uiBrowser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.client.Get(b.base + path)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// stat reads the value of a stat on the overview ("Accepted" -> "3").
func stat(t *testing.T, page, label string) string {
	t.Helper()
	re := regexp.MustCompile(`<div class="label">` + regexp.QuoteMeta(label) + `</div><div class="value">([^<]*)</div>(?:<div class="note">([^<]*)</div>)?`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no stat %q on the overview:\n%s", label, page)
	}
	return strings.TrimSpace(m[1] + " | " + m[2])
}

func value(t *testing.T, page, label string) string {
	t.Helper()
	v, _, _ := strings.Cut(stat(t, page, label), " | ")
	return v
}

// TestUIOverviewLiveEventsAndData runs the overview, the live events page and the data
// page against a real appliance: numbers that follow ingest, an event tailed over
// server-sent events, the lake's partitions, and a stop that ends open streams at once.
func TestUIOverviewLiveEventsAndData(t *testing.T) {
	cfg := testConfig(t, dataDir(t))
	cfg.FlushInterval = 200 * time.Millisecond
	s := start(t, cfg)
	key := s.createKey("shop", "")
	b := signInUI(t, s)

	// Before any event: zeros, and today is known to be empty.
	code, page := b.get("/admin/overview/stats")
	if code != http.StatusOK {
		t.Fatalf("overview stats: %d", code)
	}
	for label, want := range map[string]string{"Accepted": "0", "Events today": "0", "Deliveries pending": "0"} {
		if got := value(t, page, label); got != want {
			t.Errorf("before ingest, %s = %q, want %q", label, got, want)
		}
	}

	// Three events stored, one rejected, one sent again (a duplicate).
	body := []byte(`{"events":[
		{"id":"ov-1","appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}},
		{"id":"ov-2","appId":"shop","deviceId":"d-1","addToCart":{"productId":"sku-1","quantity":1,"priceCents":"100","currency":"USD"}},
		{"id":"ov-3","appId":"shop","deviceId":"d-1","customEvent":{"eventName":"coupon_applied"}},
		{"id":"ov-bad","appId":"shop","deviceId":"","screenView":{"screenName":"Home"}}]}`)
	if r := s.ingest("/v1/events/batch", key, "application/json", body); r.code != http.StatusOK || !strings.Contains(string(r.body), `"acceptedCount":3`) {
		t.Fatalf("ingest: %s", r)
	}
	if r := s.ingest("/v1/events/batch", key, "application/json", []byte(`{"events":[{"id":"ov-1","appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}}]}`)); r.code != http.StatusOK {
		t.Fatalf("ingest again: %s", r)
	}

	// The overview page and its fragment reflect them; the warehouse catches up and says
	// when it last wrote.
	code, page = b.get("/admin/")
	if code != http.StatusOK || !strings.Contains(page, `hx-get="/admin/overview/stats"`) {
		t.Fatalf("overview: %d", code)
	}
	for label, want := range map[string]string{"Accepted": "3", "Rejected": "1", "Duplicates": "1", "Events today": "3", "Stream": "3 events"} {
		if got := value(t, page, label); got != want {
			t.Errorf("%s = %q, want %q", label, got, want)
		}
	}
	if got := value(t, page, "Last hour"); got == "0.00/s" {
		t.Errorf("the last hour's rate is %s after three events", got)
	}
	if got := stat(t, page, "Disk free"); !strings.Contains(got, "on the data dir") || strings.HasPrefix(got, "0 B") {
		t.Errorf("disk free: %q", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, page = b.get("/admin/overview/stats")
		if value(t, page, "Warehouse lag") == "0" && value(t, page, "Reaction lag") == "0" && value(t, page, "Last Parquet file") != "not yet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the warehouse did not catch up: warehouse lag %s, reaction lag %s, last file %s",
				value(t, page, "Warehouse lag"), value(t, page, "Reaction lag"), stat(t, page, "Last Parquet file"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := stat(t, page, "Last Parquet file"); !strings.Contains(got, "ago | file://") {
		t.Errorf("last Parquet file: %q, want a time and the destination", got)
	}
	if strings.Contains(page, `role="alert"`) {
		t.Errorf("the overview warns of something:\n%s", page)
	}

	// Live events: the page lists what is stored; a new event arrives over the stream.
	code, page = b.get("/admin/events?app=shop")
	if code != http.StatusOK || !strings.Contains(page, "ov-3") || !strings.Contains(page, "custom/coupon_applied") ||
		!strings.Contains(page, `sse-connect="/admin/events/stream?app=shop"`) {
		t.Fatalf("events page: %d\n%s", code, page)
	}
	resp, err := b.client.Get(s.base + "/admin/events/stream?app=shop")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: %d %q", resp.StatusCode, ct)
	}
	events := make(chan string, 100) // "name: data"
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var name string
		var data []string
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "" && name != "":
				events <- name + ": " + strings.Join(data, "\n")
				name, data = "", nil
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended before %q", prefix)
				}
				if strings.HasPrefix(ev, prefix) {
					return ev
				}
			case <-timeout:
				t.Fatalf("no %q on the stream", prefix)
			}
		}
	}
	next("status: Connected")
	if r := s.ingest("/v1/events/ingest", key, "application/json", []byte(`{"event":{"id":"live-1","appId":"shop","deviceId":"d-2","screenView":{"screenName":"Live"}}}`)); r.code != http.StatusAccepted {
		t.Fatalf("ingest live event: %s", r)
	}
	row := next("event: ")
	for _, want := range []string{"live-1", "screen/view", "&#34;screenName&#34;: &#34;Live&#34;"} {
		if !strings.Contains(row, want) {
			t.Errorf("live row lacks %q:\n%s", want, row)
		}
	}

	// Data: the day's partition of shop, and snippets for this lake.
	loc, err := cfg.Warehouse()
	if err != nil {
		t.Fatal(err)
	}
	code, page = b.get("/admin/data")
	if code != http.StatusOK {
		t.Fatalf("data page: %d", code)
	}
	for _, want := range []string{"<td>shop</td>", time.Now().UTC().Format("2006-01-02"), "file://" + loc.Dir,
		"local.location=" + loc.Dir, "CREATE TABLE IF NOT EXISTS causality.causality.events",
		fmt.Sprintf("read_parquet(&#39;%s/events/**/*.parquet&#39;", loc.Dir)} {
		if !strings.Contains(page, want) {
			t.Errorf("data page lacks %q", want)
		}
	}

	// The DuckDB snippet, copied from the page, reads the lake as it is.
	t.Run("DuckDBSnippetReadsTheLake", func(t *testing.T) {
		m := regexp.MustCompile(`(?s)<pre id="snippet-duckdb">(.*?)</pre>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no DuckDB snippet on the data page")
		}
		rows, err := laketest.Run(t, loc.Dir, html.UnescapeString(m[1]), laketest.Options{})
		if err != nil {
			t.Fatalf("the DuckDB snippet fails: %v\n%s", err, html.UnescapeString(m[1]))
		}
		events := 0
		for _, r := range rows {
			if r["app_id"] != "shop" {
				t.Errorf("row of another app: %v", r)
			}
			n, _ := strconv.Atoi(fmt.Sprint(r["events"]))
			events += n
		}
		if events < 3 {
			t.Errorf("the snippet counts %d events, want at least the 3 written: %v", events, rows)
		}
	})

	// A stop ends the open stream at once, with a last status and a close event, instead
	// of HTTP's shutdown waiting for it until its timeout.
	stopped := make(chan error, 1)
	began := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stopped <- s.app.Stop(ctx)
	}()
	next("status: The appliance is stopping")
	next("close: ")
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
	s.app = nil
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("stop took %s with a live stream open", d)
	}
}
