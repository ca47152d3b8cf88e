// Package browsertest drives the admin UI in a real headless Chromium (Debian's chromium
// package) through chromedp, for the appliance's browser tests.
//
// Tests find elements the way a person does: inputs by their label, buttons and links by
// their text, hidden inputs by their name. No CSS classes: a change of look must not break
// a test, a lost label must.
//
// Without a Chromium on PATH the tests skip, unless the environment variable CI is set:
// then they fail, so that CI cannot silently lose them (.ci/run installs chromium).
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ActionTimeout bounds one browser step (a navigation, a click and the page it loads, a
// wait for an element). It is generous: CI machines are small and busy.
const ActionTimeout = 45 * time.Second

// Desktop is the window size of every browser; Phone the viewport one test emulates.
var (
	Desktop = [2]int{1280, 900}
	Phone   = [2]int{390, 844}
)

// ExecPath finds the Chromium binary. It skips the test when there is none, or fails it
// when CI is set.
func ExecPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if p := "/usr/bin/chromium"; isExecutable(p) {
		return p
	}
	if os.Getenv("CI") == "" {
		t.Skip("browsertest: no chromium on PATH (apt-get install chromium to run the browser tests; with CI set this fails)")
	}
	t.Fatal("browsertest: no chromium on PATH, and CI is set: install Debian's chromium package")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Browser is one headless Chromium with one tab, pointed at an appliance.
type Browser struct {
	Base  string // the appliance's address, http://host:port
	ctx   context.Context
	shots string // where screenshots go

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	known   []KnownProblem
	seen    [][]string // per known problem, the messages it excused
}

// Start launches Chromium for the test: headless, a fresh temporary profile (chromedp makes
// one per browser and removes it), a 1280x900 window, and --no-sandbox only when running as
// root, where Chrome refuses to start without it. JavaScript dialogs (data-confirm) are
// accepted, and the pages' console messages and CSP violations are kept for CheckConsole.
func Start(t testing.TB, base string) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ExecPath(t)),
		chromedp.WindowSize(Desktop[0], Desktop[1]),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	out := &lockedBuffer{}
	opts = append(opts, chromedp.CombinedOutput(out))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &Browser{Base: strings.TrimRight(base, "/"), ctx: ctx, shots: screenshotDir(t)}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() && out.Len() > 0 {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first action starts the browser with a context that has no deadline: the
	// browser lives as long as the test; each later step has its own timeout.
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start chromium: %v\n%s", err, out.String())
		}
	case <-startCtx.Done():
		t.Fatalf("chromium did not start within a minute\n%s", out.String())
	}

	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	// Every document records the CSP violations it sees in the tab's sessionStorage (a
	// DevTools script, which the page's CSP does not govern), for CheckConsole.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder}); err != nil {
		t.Fatalf("install the CSP recorder: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// cspRecorder keeps each securitypolicyviolation event of a document in sessionStorage.
const cspRecorder = `document.addEventListener("securitypolicyviolation", (e) => {
	try {
		const list = JSON.parse(sessionStorage.getItem("browsertest.csp") || "[]");
		list.push(location.pathname + ": " + e.effectiveDirective + " blocked " + (e.blockedURI || "?") +
			(e.sourceFile ? " (from " + e.sourceFile.replace(location.origin, "") + ":" + e.lineNumber + ")" : ""));
		sessionStorage.setItem("browsertest.csp", JSON.stringify(list));
	} catch (_) {}
});`

// KnownProblem is a defect of a page that a browser test finds and that its page's owner
// has yet to fix: Problem logs it instead of failing the test.
type KnownProblem struct {
	Match *regexp.Regexp // matches the problem's message
	Fix   string         // where it is and what would fix it
}

// Known sets the problems the test tolerates for now.
func (b *Browser) Known(problems ...KnownProblem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.known = problems
	b.seen = make([][]string, len(problems))
}

// Problem fails the test with msg, unless msg is a known problem: then it is logged.
func (b *Browser) Problem(t testing.TB, msg string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range b.known {
		if k.Match.MatchString(msg) {
			b.seen[i] = append(b.seen[i], msg)
			return
		}
	}
	t.Error(msg)
}

// CheckKnown logs each known problem that happened, once, with what would fix it, and
// each that did not: fixed, so the test should no longer tolerate it.
func (b *Browser) CheckKnown(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range b.known {
		if seen := b.seen[i]; len(seen) > 0 {
			t.Logf("KNOWN PAGE PROBLEM (tolerated until fixed), seen %d times, first: %s\n\tfix: %s", len(seen), seen[0], k.Fix)
		} else {
			t.Logf("known page problem %q did not happen: remove it from the known problems", k.Match)
		}
	}
}

// CheckConsole reports every uncaught exception and every Content-Security-Policy
// violation the pages had as a Problem; other console errors are logged.
func (b *Browser) CheckConsole(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	msgs := append([]chromedp.ConsoleMessage(nil), b.console...)
	b.mu.Unlock()
	seen := map[string]int{}
	var order []chromedp.ConsoleMessage
	for _, m := range msgs {
		k := m.URL + "\x00" + m.Text
		if seen[k] == 0 {
			order = append(order, m)
		}
		seen[k]++
	}
	// What the recorder saw, in the tab's sessionStorage of the appliance's origin.
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	var recorded []string
	if raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("browsertest.csp") || "[]"`)); err != nil {
		t.Logf("read the CSP violations: %v", err)
	} else if err := json.Unmarshal([]byte(raw), &recorded); err != nil {
		t.Errorf("read the CSP violations: %v", err)
	}
	counts := map[string]int{}
	var violations []string
	for _, v := range recorded {
		if counts[v]++; counts[v] == 1 {
			violations = append(violations, v)
		}
	}
	for _, v := range violations {
		b.Problem(t, fmt.Sprintf("CSP violation (%d times): %s", counts[v], v))
	}
	for _, m := range order {
		n := seen[m.URL+"\x00"+m.Text]
		switch {
		case m.IsException():
			b.Problem(t, fmt.Sprintf("page exception at %s:%d (%d times): %s", m.URL, m.Line+1, n, m.Text))
		case strings.Contains(m.Text, "Content Security Policy"):
			b.Problem(t, fmt.Sprintf("CSP violation from %s (%d times): %s", strings.TrimPrefix(m.URL, b.Base), n, m.Text))
		case strings.HasPrefix(m.Text, "Failed to load resource"):
			// A page's own 4xx answer is a failed load too; the tests check those statuses
			// themselves. A stylesheet or script that fails to load is a problem.
			if strings.Contains(m.URL, "/static/") {
				b.Problem(t, fmt.Sprintf("asset %s (%d times): %s", strings.TrimPrefix(m.URL, b.Base), n, m.Text))
			}
		case m.Type == chromedp.ConsoleError:
			t.Logf("console error on %s (%d times): %s", m.URL, n, m.Text)
		}
	}
}

// On binds the browser to a (sub)test: its steps fail that test.
func (b *Browser) On(t testing.TB) *Page { return &Page{t: t, b: b} }

// Page is the browser's tab as one test drives it.
type Page struct {
	t testing.TB
	b *Browser
}

// T is the test the page reports to.
func (p *Page) T() testing.TB { return p.t }

// ctx is a context for one step.
func (p *Page) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.b.ctx, ActionTimeout)
}

// Do runs steps that return nothing, failing the test on an error.
func (p *Page) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("browser (on %s): %v", p.location(), err)
	}
}

// Run runs one step and returns its value, failing the test on an error.
func Run[T any](p *Page, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser (on %s): %v", p.location(), err)
	}
	return v
}

// Eval evaluates JavaScript in the page through DevTools (the page's CSP does not apply
// to it) and returns its value.
func Eval[T any](p *Page, js string) T {
	p.t.Helper()
	return Run(p, chromedp.Evaluate[T](js))
}

// location is the current URL, for error messages; never fails.
func (p *Page) location() string {
	ctx, cancel := context.WithTimeout(p.b.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// Location is the URL the tab shows, without the appliance's address.
func (p *Page) Location() string {
	p.t.Helper()
	return strings.TrimPrefix(Run(p, chromedp.Location()), p.b.Base)
}

// Open loads a path of the appliance (following redirects) and returns the final status.
func (p *Page) Open(path string) int64 {
	p.t.Helper()
	resp := Run(p, chromedp.NavigateResponse(p.b.Base+path))
	if resp == nil {
		p.t.Fatalf("open %s: no response", path)
	}
	return resp.Status
}

// Load runs steps that make the tab load a page (a click on a submit button), waits for
// the page, and returns its status (after redirects: post/redirect/get gives the GET's).
func (p *Page) Load(steps ...chromedp.Action[chromedp.Void]) int64 {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		p.t.Fatalf("browser (on %s): %v", p.location(), err)
	}
	if resp == nil {
		p.t.Fatalf("no page loaded (on %s)", p.location())
	}
	return resp.Status
}

// Press clicks a button by its text and returns the status of the page it loads.
func (p *Page) Press(text string) int64 {
	p.t.Helper()
	return p.Load(chromedp.Click(Button(text), chromedp.NodeVisible))
}

// Fill types a value into the input or textarea labelled label, replacing what was there.
func (p *Page) Fill(label, value string) {
	p.t.Helper()
	sel := Label(label)
	// Emptied in the page, not with chromedp's Clear (it fails on an empty textarea) or
	// SetValue (it fails to set an empty value); then typed key by key.
	p.Do(chromedp.WaitVisible(sel))
	Node[bool](p, sel, `(n.value = "", true)`)
	p.Do(chromedp.SendKeys(sel, value))
	if got := Run(p, chromedp.Value(sel)); got != value {
		p.t.Fatalf("typed %q into %q, which holds %q", value, label, got)
	}
}

// Choose picks the option with value in the select labelled label.
func (p *Page) Choose(label, value string) {
	p.t.Helper()
	sel := Label(label)
	p.Do(chromedp.WaitVisible(sel), chromedp.SetValue(sel, value))
	if got := Run(p, chromedp.Value(sel)); got != value {
		p.t.Fatalf("select %q: has no option %q (value is %q)", label, value, got)
	}
}

// Check ticks the checkbox labelled label (a click on its label, as a person does) unless
// it is ticked already.
func (p *Page) Check(label string) {
	p.t.Helper()
	if Node[bool](p, Label(label), `n.checked`) {
		return
	}
	p.Do(chromedp.Click(XPath(fmt.Sprintf(`//label[normalize-space(.)=%s]`, xpathString(label))), chromedp.NodeVisible))
	if !Node[bool](p, Label(label), `n.checked`) {
		p.t.Fatalf("checkbox %q is not ticked after a click on its label", label)
	}
}

// Node evaluates the JavaScript expression js with n bound to the first element the
// XPath selector sel finds (null when none), and returns its value.
func Node[T any](p *Page, sel chromedp.Search, js string) T {
	p.t.Helper()
	return Eval[T](p, fmt.Sprintf(`((n) => (%s))(document.evaluate(%s, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue)`,
		js, jsString(string(sel))))
}

// Value is the current value of the control labelled label.
func (p *Page) Value(label string) string {
	p.t.Helper()
	return Run(p, chromedp.Value(Label(label)))
}

// Text is the visible text of the first element sel finds (waiting until it is visible).
func (p *Page) Text(sel chromedp.Search) string {
	p.t.Helper()
	return strings.TrimSpace(Run(p, chromedp.Text(sel, chromedp.NodeVisible)))
}

// Visible waits until sel finds a visible element.
func (p *Page) Visible(sel chromedp.Search) {
	p.t.Helper()
	p.Do(chromedp.WaitVisible(sel))
}

// Has reports whether the XPath selector sel finds an element now, without waiting.
func (p *Page) Has(sel chromedp.Search) bool {
	p.t.Helper()
	return Node[bool](p, sel, `n !== null`)
}

// Click clicks what sel finds, for a click that loads no page.
func (p *Page) Click(sel chromedp.Search) {
	p.t.Helper()
	p.Do(chromedp.Click(sel, chromedp.NodeVisible))
}

// BodyText is the text of the page as a person reads it.
func (p *Page) BodyText() string {
	p.t.Helper()
	return Eval[string](p, `document.body.innerText`)
}

// HTML is the page's markup now.
func (p *Page) HTML() string {
	p.t.Helper()
	return Eval[string](p, `document.documentElement.outerHTML`)
}

// Reload loads the page again until cond holds for it, for state that changes outside the
// browser (a delivery's status). It fails the test after within, with cond's last message.
func (p *Page) Reload(within time.Duration, cond func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %v of reloading %s: %s", within, p.Location(), msg)
		}
		time.Sleep(250 * time.Millisecond) // between reloads, not an assertion
		if st := p.Load(chromedp.Reload()); st != 200 {
			p.t.Fatalf("reload %s: %d", p.Location(), st)
		}
	}
}

// Screenshot writes the whole page to testdata/out/screenshots/<name>.png.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	png := Run(p, chromedp.FullScreenshot(100))
	path := filepath.Join(p.b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("write screenshot: %v", err)
	}
	p.t.Logf("screenshot %s", path)
	return path
}

// Phone emulates a phone's viewport (390x844, touch, mobile) until the returned func
// restores the desktop window.
func (p *Page) Phone() (restore func()) {
	p.t.Helper()
	p.Do(chromedp.EmulateViewport(int64(Phone[0]), int64(Phone[1]), chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	return func() { p.Do(chromedp.ResetViewport()) }
}

// Overflows reports whether the page is wider than the viewport (a phone would scroll
// sideways), with the widest element's description when it is.
func (p *Page) Overflows() (bool, string) {
	p.t.Helper()
	type result struct {
		Over  bool   `json:"over"`
		Width int    `json:"width"`
		What  string `json:"what"`
	}
	r := Eval[result](p, `(() => {
		const vw = document.documentElement.clientWidth;
		const over = document.documentElement.scrollWidth > vw + 1;
		let what = "";
		// An element inside a box that scrolls or clips sideways (a table in .table-wrap)
		// does not widen the page.
		// An absolutely positioned element is clipped only by boxes from its containing
		// block up (its offsetParent).
		const clipped = (el) => {
			let a = getComputedStyle(el).position === "absolute" ? el.offsetParent : el.parentElement;
			for (; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
				if (getComputedStyle(a).overflowX !== "visible") return true;
			}
			return false;
		};
		if (over) {
			for (const el of document.body.querySelectorAll("*")) {
				const r = el.getBoundingClientRect();
				if (r.right > vw + 1 && getComputedStyle(el).position !== "fixed" && !clipped(el)) {
					what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).split(" ").join(".") : "") +
						" (right edge " + Math.round(r.right) + "px)";
					break;
				}
			}
			if (what === "") { // text wider than its box (a long word): the innermost such box
				for (const el of document.body.querySelectorAll("*")) {
					const r = el.getBoundingClientRect();
					if (r.left + el.scrollWidth > vw + 1 && getComputedStyle(el).overflowX === "visible" && !clipped(el)) {
						what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).split(" ").join(".") : "") +
							" (its content is " + el.scrollWidth + "px wide: " + JSON.stringify(el.textContent.trim().slice(0, 60)) + ")";
					}
				}
			}
			if (what === "") { // nothing obvious: name the widest element
				let right = 0;
				for (const el of document.body.querySelectorAll("*")) {
					const r = el.getBoundingClientRect();
					if (r.right > right) {
						right = r.right;
						what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).split(" ").join(".") : "") +
							" (right edge " + Math.round(r.right) + "px)";
					}
				}
			}
		}
		return {over, width: document.documentElement.scrollWidth, what};
	})()`)
	return r.Over, fmt.Sprintf("page is %dpx wide: %s", r.Width, r.What)
}

// Selectors, found as a person finds things. XPath through DevTools' search; label and
// text are compared with their whitespace normalised.

// Label selects the control a <label> with this text names (by its for= attribute).
func Label(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[@id=//label[normalize-space(.)=%s]/@for]`, xpathString(text)))
}

// Button selects a button by its text, in the page's content (not its header).
func Button(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//main//button[normalize-space(.)=%s]`, xpathString(text)))
}

// Link selects a link by its text.
func Link(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//a[normalize-space(.)=%s]`, xpathString(text)))
}

// Named selects an element by its name= attribute.
func Named(tag, name string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//%s[@name=%s]`, tag, xpathString(name)))
}

// XPath is a selector written as XPath.
func XPath(x string) chromedp.Search { return chromedp.Search(x) }

// xpathString quotes s as an XPath 1.0 string literal (which has no escapes).
func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, `'`) {
		return `'` + s + `'`
	}
	parts := strings.Split(s, `"`)
	return `concat("` + strings.Join(parts, `", '"', "`) + `")`
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshotDir is testdata/out/screenshots at the module's root (git-ignored).
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("browsertest: no go.mod above the working directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "testdata", "out", "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// lockedBuffer collects Chromium's output from its goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // enough to diagnose
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
