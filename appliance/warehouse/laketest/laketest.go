// Package laketest lets tests read an event lake with DuckDB, an engine
// independent of the code that wrote it, so a test checks the lake the way
// its users will read it (DESIGN.md, "Warehouse (contract)").
//
// It drives tools/lakecheck, a small Node.js script around DuckDB's Node API,
// which defines a view
//
//	events = read_parquet('<root>/events/**/*.parquet', hive_partitioning = true)
//
// over a local lake root and prints the rows of one query as JSON lines.
// The npm dependencies are installed on first use (npm ci, once per process,
// under a file lock shared by concurrently running test binaries).
//
// Without node on PATH the calling test is skipped, unless the environment
// variable CI is set, in which case it fails: CI must not silently lose the
// lake checks.
//
// Values in returned rows: integers of every width are int64 (json.Number
// for a HUGEINT beyond int64), other numbers float64 (NaN and ±Inf are the
// strings "NaN", "Infinity", "-Infinity"), DECIMAL a string, timestamps
// ISO 8601 strings in UTC ("2026-11-07T03:04:05.678Z", see TimeOf), booleans
// bool, NULL nil, lists []any and structs map[string]any.
package laketest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/internal/nodetool"
)

// ErrEmptyLake is returned (wrapped) by Run when no Parquet file is visible
// under <root>/events and the query reads the events view: DuckDB refuses to
// define a view over a glob that matches nothing.
var ErrEmptyLake = errors.New("laketest: the lake has no visible Parquet file")

// Autocast chooses DuckDB's hive_types_autocast for the partition columns.
type Autocast int

const (
	// AutocastDefault leaves DuckDB's default (on: integer-looking
	// partition values are typed as integers).
	AutocastDefault Autocast = iota
	// AutocastOn passes hive_types_autocast = true.
	AutocastOn
	// AutocastOff passes hive_types_autocast = false: every partition
	// column is VARCHAR.
	AutocastOff
)

// Options tunes a query; the zero value is what Query uses.
type Options struct {
	Autocast Autocast
	// HiveTypes, when set, is passed as DuckDB's hive_types option, e.g.
	// "{'app_id': VARCHAR}": without it DuckDB types an app_id whose values
	// all look like integers as BIGINT.
	HiveTypes string
	// Timeout bounds one query, including DuckDB's start; 0 means 2 minutes.
	Timeout time.Duration
}

// exitEmpty is lakecheck's exit status for an empty lake.
const exitEmpty = 3

// Query runs sql over the lake at root (the directory holding events/) and
// returns its rows. Any error, including an empty lake, fails the test with
// DuckDB's message.
func Query(t testing.TB, root, sql string) []map[string]any {
	t.Helper()
	return QueryWith(t, root, sql, Options{})
}

// QueryWith is Query with options.
func QueryWith(t testing.TB, root, sql string, opts Options) []map[string]any {
	t.Helper()
	rows, err := Run(t, root, sql, opts)
	if err != nil {
		t.Fatalf("laketest: query failed: %v\nSQL: %s", err, sql)
	}
	return rows
}

// Run is QueryWith returning the error instead of failing the test, for tests
// that expect a query to fail. It still skips or fails the test when the
// tooling itself (node, npm ci) is missing or broken.
func Run(t testing.TB, root, sql string, opts Options) ([]map[string]any, error) {
	t.Helper()
	tool := ensure(t)
	args := []string{tool.Script}
	switch opts.Autocast {
	case AutocastOn:
		args = append(args, "--autocast")
	case AutocastOff:
		args = append(args, "--no-autocast")
	}
	if opts.HiveTypes != "" {
		args = append(args, "--hive-types", opts.HiveTypes)
	}
	args = append(args, "--", root, "-")

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool.Node, args...)
	cmd.Dir = tool.Dir
	cmd.Stdin = strings.NewReader(sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exit *exec.ExitError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("lakecheck timed out after %v: %s", timeout, msg)
		case errors.As(err, &exit) && exit.ExitCode() == exitEmpty:
			return nil, fmt.Errorf("%w: %s", ErrEmptyLake, msg)
		default:
			return nil, fmt.Errorf("lakecheck: %v: %s", err, msg)
		}
	}
	return decodeRows(stdout.Bytes())
}

// decodeRows parses lakecheck's JSON lines.
func decodeRows(out []byte) ([]map[string]any, error) {
	var rows []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<30)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		var row map[string]any
		if err := d.Decode(&row); err != nil {
			return nil, fmt.Errorf("lakecheck printed a line that is not a JSON object: %v: %.200s", err, line)
		}
		rows = append(rows, normalize(row).(map[string]any))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read lakecheck output: %w", err)
	}
	return rows, nil
}

// normalize turns json.Number into int64 (integers that fit) or float64
// (the rest), keeping a json.Number only for integers beyond int64.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if !strings.ContainsAny(x.String(), ".eE") {
			return x // integer wider than int64 (HUGEINT, UBIGINT)
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	default:
		return v
	}
}

// Count is the number of rows in the lake; 0 for a lake with no visible file.
func Count(t testing.TB, root string) int {
	t.Helper()
	rows, err := Run(t, root, "SELECT count(*) AS n FROM events", Options{})
	if errors.Is(err, ErrEmptyLake) {
		return 0
	}
	if err != nil {
		t.Fatalf("laketest: count: %v", err)
	}
	n, ok := rows[0]["n"].(int64)
	if !ok {
		t.Fatalf("laketest: count(*) came back as %T %v", rows[0]["n"], rows[0]["n"])
	}
	return int(n)
}

// IDs is every id in the lake, sorted, duplicates kept (a duplicate is
// exactly what a test of exactly-once delivery wants to see); nil for a lake
// with no visible file.
func IDs(t testing.TB, root string) []string {
	t.Helper()
	rows, err := Run(t, root, "SELECT id FROM events ORDER BY id", Options{})
	if errors.Is(err, ErrEmptyLake) {
		return nil
	}
	if err != nil {
		t.Fatalf("laketest: ids: %v", err)
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		id, ok := r["id"].(string)
		if !ok {
			t.Fatalf("laketest: id came back as %T %v", r["id"], r["id"])
		}
		ids = append(ids, id)
	}
	// DuckDB's ORDER BY on VARCHAR is by byte value, as sort.Strings is;
	// sort again so the contract does not hang on a collation setting.
	sort.Strings(ids)
	return ids
}

// Columns maps each column of the events view (file columns and partition
// columns) to its DuckDB type name, e.g. "VARCHAR", "BIGINT",
// "TIMESTAMP WITH TIME ZONE".
func Columns(t testing.TB, root string, opts Options) map[string]string {
	t.Helper()
	rows := QueryWith(t, root, "DESCRIBE events", opts)
	cols := make(map[string]string, len(rows))
	for _, r := range rows {
		name, _ := r["column_name"].(string)
		typ, _ := r["column_type"].(string)
		cols[name] = typ
	}
	return cols
}

// TimeOf parses a timestamp value as lakecheck prints it.
func TimeOf(t testing.TB, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("laketest: timestamp came back as %T %v, want an ISO string", v, v)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("laketest: timestamp %q: %v", s, err)
	}
	return ts
}

// spec is the Node.js tool behind this package.
var spec = nodetool.Spec{Dir: "lakecheck", Script: "lakecheck.mjs", Package: "@duckdb/node-api", Purpose: "the DuckDB lake checks"}

// EnsureInstalled makes lakecheck runnable: node on PATH and its npm dependencies
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
