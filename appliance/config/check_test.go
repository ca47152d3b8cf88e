package config

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkArgs is a good configuration: a data dir that does not exist yet under a temp dir,
// and a port the kernel picks.
func checkArgs(t *testing.T) (dataDir string, args []string) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	return dataDir, []string{"--data-dir", dataDir, "--http-addr", "127.0.0.1:0"}
}

func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// unwritableDir is a directory this process cannot create files in, or "" when chmod does
// not stop it (running as root).
func unwritableDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return ""
	}
	return dir
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		// setup returns flags and environment to add to a good configuration, and may
		// change the files after Parse through after.
		setup func(t *testing.T, dataDir string) (args []string, env map[string]string, after func())
		want  []string // each must appear in one problem; none: no problems
	}{
		{"good config, data dir to be created", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return nil, nil, nil
		}, nil},
		{"good config, data dir exists", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			if err := os.Mkdir(dataDir, 0o711); err != nil {
				t.Fatal(err)
			}
			return nil, nil, nil
		}, nil},
		{"good config with TLS files and a local warehouse elsewhere", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			cert, key := tlsPair(t, t.TempDir(), "site")
			return []string{"--tls-cert", cert, "--tls-key", key, "--warehouse-url", "file://" + filepath.Join(t.TempDir(), "lake")}, nil, nil
		}, nil},
		{"unwritable data dir parent", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			locked := unwritableDir(t)
			if locked == "" {
				t.Skip("chmod 0500 does not stop this user (root) from writing")
			}
			return []string{"--data-dir", filepath.Join(locked, "causality", "data")}, nil, nil
		}, []string{"--data-dir", "cannot be created", "not writable"}},
		{"unwritable data dir", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			locked := unwritableDir(t)
			if locked == "" {
				t.Skip("chmod 0500 does not stop this user (root) from writing")
			}
			return []string{"--data-dir", locked}, nil, nil
		}, []string{"--data-dir", "not writable"}},
		{"data dir is a file", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			if err := os.WriteFile(dataDir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, nil, nil
		}, []string{"--data-dir", "not a directory"}},
		{"data dir below a file", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			if err := os.WriteFile(dataDir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"--data-dir", filepath.Join(dataDir, "sub")}, nil, nil
		}, []string{"--data-dir", "not a directory"}},
		{"data dir of a newer format", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			if err := os.MkdirAll(dataDir, 0o711); err != nil {
				t.Fatal(err)
			}
			rec := `{"format": 99, "written_by": "v9.0.0", "updated_at": "2026-11-27T00:00:00Z"}`
			if err := os.WriteFile(filepath.Join(dataDir, "datadir.json"), []byte(rec), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, nil, nil
		}, []string{"--data-dir", "v9.0.0", "format 99", "nothing was changed"}},
		{"damaged data dir record", func(t *testing.T, dataDir string) ([]string, map[string]string, func()) {
			if err := os.MkdirAll(dataDir, 0o711); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dataDir, "datadir.json"), []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, nil, nil
		}, []string{"--data-dir", "datadir.json is damaged"}},
		{"busy http addr", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--http-addr", busyAddr(t)}, nil, nil
		}, []string{"--http-addr", "in use"}},
		{"busy http addr from the environment", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return nil, map[string]string{"CAUSALITY_HTTP_ADDR": busyAddr(t)}, nil
		}, []string{"--http-addr (from CAUSALITY_HTTP_ADDR)", "in use"}},
		{"busy nats listen addr", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--nats-listen", busyAddr(t)}, nil, nil
		}, []string{"--nats-listen", "in use"}},
		{"TLS file missing", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			cert, key := tlsPair(t, t.TempDir(), "site")
			return []string{"--tls-cert", cert, "--tls-key", key}, nil, func() { os.Remove(key) }
		}, []string{"--tls-key", "no such file"}},
		{"bad bucket name", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--warehouse-url", "s3://Bad_Bucket/lake"}, nil, nil
		}, []string{"--warehouse-url", "Bad_Bucket"}},
		{"nats url scheme", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--nats-url", "nats://a:4222,http://b:4222"}, nil, nil
		}, []string{"--nats-url", "scheme"}},
		{"database url that pgx refuses", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--database-url", "postgres://u:s3cret@db:99999/causality"}, nil, nil
		}, []string{"--database-url"}},
		{"pg binaries without postgres", func(t *testing.T, _ string) ([]string, map[string]string, func()) {
			return []string{"--pg-binaries", t.TempDir()}, nil, nil
		}, []string{"--pg-binaries", "bin/postgres"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			extra, environment, after := tt.setup(t, dataDir)
			vars := map[string]string{"CAUSALITY_HTTP_ADDR": "127.0.0.1:0"}
			for k, v := range environment {
				vars[k] = v
			}
			c, err := Parse(append([]string{"--data-dir", dataDir}, extra...), env(vars), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if after != nil {
				after()
			}
			problems := c.Check("test")
			if len(tt.want) == 0 {
				if len(problems) > 0 {
					t.Fatalf("problems in a good config: %v", errors.Join(problems...))
				}
				if _, err := os.Stat(dataDir); tt.name == "good config, data dir to be created" && !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the check created the data dir (stat: %v)", err)
				}
				return
			}
			for _, p := range problems {
				if containsAll(p.Error(), tt.want) {
					return
				}
			}
			t.Fatalf("no problem mentions all of %q; got %v", tt.want, problems)
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestCheckLeavesNoTrace(t *testing.T) {
	dataDir, args := checkArgs(t)
	if err := os.Mkdir(dataDir, 0o711); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(args, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if problems := c.Check("test"); len(problems) > 0 {
		t.Fatal(problems)
	}
	for _, dir := range []string{dataDir, filepath.Dir(dataDir)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if dir == dataDir && len(entries) != 0 || dir != dataDir && len(entries) != 1 {
			t.Errorf("%s holds %v after the check", dir, entries)
		}
	}
}

func TestCheckReport(t *testing.T) {
	_, args := checkArgs(t)
	c, err := Parse(append(args,
		"--database-url", "postgres://causality:pg-s3cret@db.internal:5432/causality",
		"--nats-url", "nats://app:nats-s3cret@nats1:4222,nats://tok3n@nats2:4222",
		"--warehouse-url", "s3://events/lake", "--s3-access-key", "AKIAEXAMPLEKEY123", "--s3-secret-key", "s3-s3cret",
	), env(map[string]string{"CAUSALITY_ADMIN_PASSWORD": "admin-s3cret"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := c.CheckAndReport(&out, "test"); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Log("\n" + report)
	if !strings.HasPrefix(report, "config ok\n") {
		t.Fatalf("report does not start with config ok:\n%s", report)
	}
	for _, want := range []string{"127.0.0.1:0, http", "db.internal:5432", "nats1:4222", "s3://events/lake", "AKIA", "from CAUSALITY_ADMIN_PASSWORD"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, secret := range []string{"s3cret", "tok3n", "AKIAEXAMPLEKEY123"} {
		if strings.Contains(report, secret) {
			t.Errorf("report shows %q", secret)
		}
	}

	c.HTTPAddr = busyAddr(t)
	out.Reset()
	err = c.CheckAndReport(&out, "test")
	if err == nil || !strings.Contains(err.Error(), "--http-addr") || out.Len() != 0 {
		t.Fatalf("a problem should be returned and nothing reported: err %v, report %q", err, out.String())
	}
}
