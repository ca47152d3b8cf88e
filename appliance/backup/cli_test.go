package backup

import (
	"bytes"
	"errors"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

func TestCommandLine(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDatabase(t)
	openStore(t, src)
	fill(t, src)
	dst := pgtest.NewDatabase(t)
	file := filepath.Join(t.TempDir(), "b.zip")
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}

	var stdout, stderr bytes.Buffer
	// The database from the environment, as serve reads it.
	if err := BackupMain(t.Context(), []string{"--to", file}, "v1.2.3", env(map[string]string{"CAUSALITY_DATABASE_URL": src}), &stdout, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	if !regexp.MustCompile(`^backup written to ` + regexp.QuoteMeta(file) + ` \(\d+ bytes, schema version \d+\)\n$`).MatchString(stdout.String()) {
		t.Errorf("backup stdout = %q", stdout.String())
	}
	if !strings.HasPrefix(stderr.String(), "causality backup: ") {
		t.Errorf("backup progress = %q", stderr.String())
	}
	if m := readManifest(t, file); m.CausalityVersion != "v1.2.3" {
		t.Errorf("manifest names causality %q, want v1.2.3", m.CausalityVersion)
	}

	// The flag wins over the environment (which points at the non-empty source).
	stdout.Reset()
	stderr.Reset()
	err := RestoreMain(t.Context(), []string{"--from", file, "--database-url", dst}, "v1.2.3", env(map[string]string{"CAUSALITY_DATABASE_URL": src}), &stdout, &stderr)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr.String())
	}
	if !regexp.MustCompile(`^restored ` + regexp.QuoteMeta(file) + ` into the database at --database-url \(\d+ tables, \d+ rows, schema version \d+\)\n$`).MatchString(stdout.String()) {
		t.Errorf("restore stdout = %q", stdout.String())
	}

	noEnv := env(nil)
	for _, tt := range []struct {
		name string
		run  func() error
		want string
	}{
		{"backup without --to", func() error { return BackupMain(t.Context(), nil, "v", noEnv, &stdout, &stderr) }, "--to: required"},
		{"restore without --from", func() error { return RestoreMain(t.Context(), nil, "v", noEnv, &stdout, &stderr) }, "--from: required"},
		{"stray argument", func() error {
			return BackupMain(t.Context(), []string{"--to", file, "now"}, "v", noEnv, &stdout, &stderr)
		}, `unexpected argument "now"`},
		{"unknown flag", func() error { return RestoreMain(t.Context(), []string{"--form", file}, "v", noEnv, &stdout, &stderr) }, "flag provided but not defined"},
	} {
		if err := tt.run(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := BackupMain(t.Context(), []string{"-h"}, "v", noEnv, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h = %v, want flag.ErrHelp", err)
	}
}
