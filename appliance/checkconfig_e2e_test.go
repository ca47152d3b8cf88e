package appliance_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkConfig runs `causality serve --check-config` with args and extra environment
// variables (none of the caller's CAUSALITY_* leak in) and returns its exit code and output.
func checkConfig(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(causalityBinary(t), append([]string{"serve", "--check-config"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAUSALITY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestCheckConfigBinary runs the dry run through the real binary: a good configuration
// exits 0 with a report and leaves no data dir behind; problems exit 1 naming the flag or
// the environment variable; a command line that cannot be read exits 2.
func TestCheckConfigBinary(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	t.Run("good", func(t *testing.T) {
		code, stdout, stderr := checkConfig(t, []string{"CAUSALITY_ADMIN_PASSWORD=correct horse battery"},
			"--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--database-url", "postgres://causality:pg-s3cret@db:5432/causality")
		if code != 0 || !strings.HasPrefix(stdout, "config ok\n") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if strings.Contains(stdout, "pg-s3cret") || strings.Contains(stdout, "correct horse") {
			t.Fatalf("the report shows a secret:\n%s", stdout)
		}
		if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("--check-config created the data dir (stat: %v)", err)
		}
	})

	bad := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"busy http addr", nil, []string{"--data-dir", dataDir, "--http-addr", busy.Addr().String()},
			[]string{"--http-addr", "in use"}},
		{"busy http addr from the environment", []string{"CAUSALITY_HTTP_ADDR=" + busy.Addr().String()}, []string{"--data-dir", dataDir},
			[]string{"--http-addr (from CAUSALITY_HTTP_ADDR)"}},
		{"two problems, one a line", nil, []string{"--data-dir", dataDir, "--http-addr", busy.Addr().String(), "--tls-cert", filepath.Join(dataDir, "none.pem")},
			[]string{"causality: --tls-key", "causality: --http-addr"}},
		{"bad value", nil, []string{"--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--nats-sync", "sometimes"},
			[]string{"--nats-sync"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := checkConfig(t, tt.env, tt.args...)
			if code != 1 || strings.Contains(stdout, "config ok") {
				t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}

	t.Run("usage", func(t *testing.T) {
		if code, _, stderr := checkConfig(t, nil, "--no-such-flag"); code != 2 {
			t.Fatalf("exit %d, want 2\n%s", code, stderr)
		}
	})
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a check created the data dir (stat: %v)", err)
	}
}
