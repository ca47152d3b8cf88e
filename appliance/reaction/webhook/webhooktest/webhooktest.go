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
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/causality-io/causality/appliance/internal/nodetool"
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
	cmd := exec.CommandContext(ctx, tl.Node, tl.Script)
	cmd.Dir = tl.Dir
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

// spec is the Node.js tool behind this package.
var spec = nodetool.Spec{Dir: "webhookcheck", Script: "verify.mjs", Package: "standardwebhooks", Purpose: "the Standard Webhooks checks"}

// EnsureInstalled makes webhookcheck runnable: node on PATH and its npm dependencies
// installed (see appliance/internal/nodetool). It skips the test when node is not on
// PATH and CI is not set, and fails it otherwise.
func EnsureInstalled(t testing.TB) {
	t.Helper()
	nodetool.Ensure(t, spec)
}

func ensure(t testing.TB) nodetool.Tool {
	t.Helper()
	return nodetool.Ensure(t, spec)
}
