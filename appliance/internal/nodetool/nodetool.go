// Package nodetool installs and finds the small Node.js programs under tools/ that tests
// use as independent checkers (DuckDB for the lake, the standardwebhooks library for
// signatures). Each is installed with `npm ci` once per test binary, when its node_modules
// does not hold the version its package-lock.json pins; concurrent test binaries (go test
// ./... runs them in parallel) serialise on a lock file in the tool's directory.
//
// Without node on PATH the calling test is skipped, unless the environment variable CI is
// set, in which case it fails: CI must not silently lose these checks.
package nodetool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Spec names a tool.
type Spec struct {
	Dir     string // its directory under tools/, e.g. "lakecheck"
	Script  string // the script in it that tests run, e.g. "lakecheck.mjs"
	Package string // the npm dependency whose installed version proves the install
	Purpose string // what the tests lose without it, for the skip message
}

// Tool is an installed tool.
type Tool struct {
	Node   string // the node executable
	Dir    string // tools/<Dir>: run the script from here
	Script string // the script's path
}

type result struct {
	tool Tool
	err  error
}

var (
	mu   sync.Mutex
	done = map[string]result{}
)

// errNoNode means node is not on PATH: a test skips then, outside CI.
var errNoNode = errors.New("node is not on PATH")

// Ensure returns the installed tool, installing it first when needed.
func Ensure(t testing.TB, s Spec) Tool {
	t.Helper()
	mu.Lock()
	r, ok := done[s.Dir]
	if !ok {
		r.tool, r.err = install(s)
		done[s.Dir] = r
	}
	mu.Unlock()
	if r.err != nil {
		if errors.Is(r.err, errNoNode) && os.Getenv("CI") == "" {
			t.Skipf("%s: %v (install Node.js 20+ to run %s; with CI set this fails)", s.Dir, r.err, s.Purpose)
		}
		t.Fatalf("%s: %v", s.Dir, r.err)
	}
	return r.tool
}

func install(s Spec) (Tool, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return Tool{}, errNoNode
	}
	dir, err := findDir(s)
	if err != nil {
		return Tool{}, err
	}
	tl := Tool{Node: node, Dir: dir, Script: filepath.Join(dir, s.Script)}
	if ok, _ := upToDate(dir, s.Package); ok {
		return tl, nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Tool{}, fmt.Errorf("open install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return Tool{}, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway

	// Another process may have installed while this one waited.
	ok, why := upToDate(dir, s.Package)
	if ok {
		return tl, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return Tool{}, fmt.Errorf("tools/%s needs npm ci (%s) but npm is not on PATH", s.Dir, why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return Tool{}, fmt.Errorf("npm ci in %s (%s): %v\n%s", dir, why, err, out)
	}
	if ok, why := upToDate(dir, s.Package); !ok {
		return Tool{}, fmt.Errorf("npm ci in %s succeeded but %s", dir, why)
	}
	return tl, nil
}

// upToDate reports whether node_modules holds the version of pkg that package-lock.json
// pins, and if not, why.
func upToDate(dir, pkg string) (bool, string) {
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
	key := "node_modules/" + pkg
	want := lock.Packages[key].Version
	if want == "" {
		return false, "package-lock.json does not pin " + pkg
	}
	var have struct {
		Version string `json:"version"`
	}
	b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(key), "package.json"))
	if err != nil {
		return false, pkg + " is not installed"
	}
	if err := json.Unmarshal(b, &have); err != nil || have.Version != want {
		return false, fmt.Sprintf("installed %s is %q, package-lock.json pins %q", pkg, have.Version, want)
	}
	return true, ""
}

// findDir locates tools/<Dir>: up from this source file (go test builds without
// -trimpath), else up from the working directory (go test runs in the package directory).
func findDir(s Spec) (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			cand := filepath.Join(d, "tools", s.Dir)
			if _, err := os.Stat(filepath.Join(cand, s.Script)); err == nil {
				if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
					return cand, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("tools/%s not found above %v", s.Dir, starts)
}
