// Package webhooktest checks webhook signatures with the Standard Webhooks
// reference library for JavaScript (npm standardwebhooks), a verifier
// independent of the Go code that signs, so a test sees deliveries the way
// receivers built on that library will.
//
// It drives tools/webhookcheck/verify.mjs. The npm dependencies are
// installed on first use (npm ci, once per process, under a file lock shared
// by concurrently running test binaries).
//
// Without node on PATH the calling test is skipped, unless the environment
// variable CI is set, in which case it fails: CI must not silently lose the
// independent check.
package webhooktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Item is one delivery to verify.
type Item struct {
	Secret string
	Header http.Header // as the receiver got it
	Body   []byte      // must be UTF-8: the library verifies text
	// Now, when not zero, is the instant the library's clock reads while it
	// checks this item; it allows webhook-timestamp ±5 minutes from its
	// clock. Zero means the real clock.
	Now time.Time
}

// input is one line of verify.mjs's input.
type input struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Now     *int64            `json:"now,omitempty"`
}

// output is one line of verify.mjs's output.
type output struct {
	OK    *bool  `json:"ok"`
	Error string `json:"error"`
}

// VerifyWithNode verifies every item with new Webhook(secret).verify(body,
// headers) and returns, per item, nil or the library's error. Failures of
// the tool itself fail the test.
func VerifyWithNode(t testing.TB, items []Item) []error {
	t.Helper()
	tl := ensure(t)

	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for i, it := range items {
		if !utf8.Valid(it.Body) {
			// JSON would replace the invalid bytes and the library would
			// check a different body.
			t.Fatalf("webhooktest: item %d: body is not valid UTF-8", i)
		}
		line := input{Secret: it.Secret, Headers: make(map[string]string, len(it.Header)), Body: string(it.Body)}
		for k, vs := range it.Header {
			// Repeated fields joined as Node's HTTP server joins them.
			line.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
		if !it.Now.IsZero() {
			now := it.Now.Unix()
			line.Now = &now
		}
		if err := enc.Encode(line); err != nil {
			t.Fatalf("webhooktest: encode item %d: %v", i, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.node, tl.script)
	cmd.Dir = tl.dir
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("webhooktest: node verify.mjs: %v\n%s", err, stderr.Bytes())
	}

	errs := make([]error, 0, len(items))
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<24)
	for sc.Scan() {
		var out output
		if err := json.Unmarshal(sc.Bytes(), &out); err != nil || out.OK == nil {
			t.Fatalf("webhooktest: verify.mjs printed %q, want {\"ok\":...} (%v)", sc.Bytes(), err)
		}
		if *out.OK {
			errs = append(errs, nil)
		} else {
			errs = append(errs, errors.New(out.Error))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("webhooktest: read verify.mjs output: %v", err)
	}
	if len(errs) != len(items) {
		t.Fatalf("webhooktest: verify.mjs answered %d lines for %d items\n%s", len(errs), len(items), stderr.Bytes())
	}
	return errs
}

// tool is an installed webhookcheck.
type tool struct {
	node   string // node executable
	dir    string // tools/webhookcheck
	script string // tools/webhookcheck/verify.mjs
}

// The install happens once per test binary; this state is the memo of it.
var (
	installOnce sync.Once
	installed   tool
	installErr  error
	nodeMissing bool
)

// EnsureInstalled makes webhookcheck runnable: node on PATH and the npm
// dependencies installed in tools/webhookcheck (npm ci when missing or
// stale). It skips the test when node is not on PATH and CI is not set, and
// fails it otherwise.
func EnsureInstalled(t testing.TB) {
	t.Helper()
	ensure(t)
}

func ensure(t testing.TB) tool {
	t.Helper()
	installOnce.Do(func() { installed, installErr = install() })
	if installErr != nil {
		if nodeMissing && os.Getenv("CI") == "" {
			t.Skipf("webhooktest: %v (install Node.js 20+ to run the Standard Webhooks checks; with CI set this fails)", installErr)
		}
		t.Fatalf("webhooktest: %v", installErr)
	}
	return installed
}

func install() (tool, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		nodeMissing = true
		return tool{}, fmt.Errorf("node is not on PATH")
	}
	dir, err := findToolDir()
	if err != nil {
		return tool{}, err
	}
	tl := tool{node: node, dir: dir, script: filepath.Join(dir, "verify.mjs")}
	if ok, _ := upToDate(dir); ok {
		return tl, nil
	}

	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return tool{}, fmt.Errorf("open install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return tool{}, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// Another process may have installed while this one waited.
	ok, why := upToDate(dir)
	if ok {
		return tl, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return tool{}, fmt.Errorf("tools/webhookcheck needs npm ci (%s) but npm is not on PATH", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return tool{}, fmt.Errorf("npm ci in %s (%s): %v\n%s", dir, why, err, out)
	}
	if ok, why := upToDate(dir); !ok {
		return tool{}, fmt.Errorf("npm ci in %s succeeded but %s", dir, why)
	}
	return tl, nil
}

// upToDate reports whether node_modules holds the standardwebhooks version
// package-lock.json pins, and if not, why.
func upToDate(dir string) (bool, string) {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, err.Error()
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return false, "package-lock.json: " + err.Error()
	}
	const pkg = "node_modules/standardwebhooks"
	want := lock.Packages[pkg].Version
	if want == "" {
		return false, "package-lock.json does not pin standardwebhooks"
	}
	var have struct {
		Version string `json:"version"`
	}
	b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(pkg), "package.json"))
	if err != nil {
		return false, "standardwebhooks is not installed"
	}
	if err := json.Unmarshal(b, &have); err != nil || have.Version != want {
		return false, fmt.Sprintf("installed standardwebhooks is %q, package-lock.json pins %q", have.Version, want)
	}
	return true, ""
}

// findToolDir locates tools/webhookcheck: up from this source file (go test
// builds without -trimpath), else up from the working directory (go test
// runs in the package directory).
func findToolDir() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			cand := filepath.Join(d, "tools", "webhookcheck")
			if _, err := os.Stat(filepath.Join(cand, "verify.mjs")); err == nil {
				if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
					return cand, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("tools/webhookcheck not found above %v", starts)
}
