// Package miniotest runs a real MinIO server for tests: a separate process
// on 127.0.0.1, on a free port, with its data in a temporary directory,
// stopped when the test ends. S3 code is tested against the real protocol
// (signing, multipart, listing pagination, errors) rather than a fake.
//
// The server binary is found, in order, at $CAUSALITY_MINIO, as "minio" on
// PATH, or in $(go env GOPATH)/bin. When it is missing a test skips, saying
// how to install it, except under CI (the CI environment variable set),
// where it fails, so a CI run can't pass by silently testing nothing.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the MinIO server release the tests are run with; MINIO_VERSION
// in the Makefile must name the same one (a test checks). MinIO publishes
// no semver tags to the Go module proxy, so this is a pseudo-version of a
// commit on its master branch.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Install is the command that installs the server where Start finds it.
const Install = "make minio (that is: go install github.com/minio/minio@" + Version + ")"

// readyTimeout bounds how long a start may take; MinIO needs about a
// second, but on two cores shared with a -race build it can be slower.
const readyTimeout = time.Minute

// Server is one MinIO process with its data directory. Stop and Start stop
// and start it again on the same port and data, for outage tests.
type Server struct {
	// Endpoint is host:port for S3 clients (plain HTTP).
	Endpoint string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey string
	SecretKey string

	bin      string
	dataDir  string
	certsDir string
	logPath  string
	buckets  atomic.Int64

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a MinIO server for the rest of t and returns it ready. It skips
// t (or fails it under CI) when the binary is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBinary(t)
	dir := t.TempDir()
	s := &Server{
		AccessKey: "causality-test",
		SecretKey: randomHex(16),
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		certsDir:  filepath.Join(dir, "certs"),
		logPath:   filepath.Join(dir, "minio.log"),
	}
	// Registered after t.TempDir, so it runs before the directory is
	// removed: MinIO must have stopped writing into it by then.
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("minio log (%s):\n%s", s.logPath, s.logTail())
		}
	})

	// A port found free can be taken before MinIO binds it; try again
	// with another.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		s.Endpoint, err = freeAddr()
		if err != nil {
			t.Fatalf("miniotest: find a free port: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("miniotest: %v", err)
	return nil
}

// Start starts the server again after Stop, on the same port and data
// directory, and waits until it is ready; it fails t if it can't.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	// The port was ours a moment ago, but a closing socket can hold it
	// briefly; retry for a few seconds instead of picking another port,
	// which clients configured with Endpoint would not follow.
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = s.start(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("miniotest: restart: %v", err)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s) and waits for it
// to exit. The data stays for Start. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Running reports whether the server process is up (started and not
// stopped, and not exited on its own).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Client returns an S3 client for the server with root credentials, for
// setting up or inspecting buckets behind the code under test.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		t.Fatalf("miniotest: client: %v", err)
	}
	return c
}

// Bucket creates a bucket and returns its name. An empty name picks a new
// unique one ("test-1", "test-2", ...), so each test can have its own.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = "test-" + strconv.FormatInt(s.buckets.Add(1), 10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("miniotest: create bucket %q: %v", name, err)
	}
	return name
}

// start launches the process on s.Endpoint and waits for readiness.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("server is already running")
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	fmt.Fprintf(logFile, "---- %s start on %s\n", time.Now().Format(time.RFC3339Nano), s.Endpoint)

	cmd := exec.Command(s.bin, "server",
		"--address", s.Endpoint,
		"--certs-dir", s.certsDir, // not ~/.minio/certs: nothing outside the test's directory
		"--quiet",
		s.dataDir)
	cmd.Env = append(withoutMinioEnv(os.Environ()),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", // no web console, and so no second port
		"MINIO_UPDATE=off",  // never reach out for updates
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	if err := s.waitReady(done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("minio on %s: %w\nlog:\n%s", s.Endpoint, err, s.logTail())
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls until MinIO serves S3 requests, the process exits, or
// readyTimeout passes. /minio/health/ready answers 200 a moment before the
// object layer is up (S3 calls then fail with "Server not initialized
// yet"), so once it does, a ListBuckets call must succeed too.
func (s *Server) waitReady(exited <-chan struct{}) error {
	httpClient := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.Endpoint + "/minio/health/ready"
	s3, err := minio.New(s.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		MaxRetries: 1, // this loop does the retrying
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		var resp *http.Response
		resp, err = httpClient.Get(url)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("%s: %s", url, resp.Status)
			if resp.StatusCode == http.StatusOK {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = s3.ListBuckets(ctx)
				cancel()
				if err == nil {
					return nil
				}
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v (last: %v)", readyTimeout, err)
		}
	}
}

// logTail returns the end of the server's log, for failure messages.
func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const tailBytes = 8 << 10
	if len(data) > tailBytes {
		data = data[len(data)-tailBytes:]
	}
	return string(data)
}

// findBinary locates the MinIO server or skips/fails t.
func findBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CAUSALITY_MINIO"); p != "" {
		if isExecutable(p) {
			return p
		}
		// An explicit setting that is wrong is a mistake, not a missing
		// optional tool.
		t.Fatalf("miniotest: CAUSALITY_MINIO=%s is not an executable file", p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if gopath := goPath(); gopath != "" {
		if p := filepath.Join(gopath, "bin", "minio"); isExecutable(p) {
			return p
		}
	}
	msg := "miniotest: MinIO server not found (looked at $CAUSALITY_MINIO, PATH and $(go env GOPATH)/bin); install it with: " + Install
	if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// goPath is the first entry of `go env GOPATH`, or of $GOPATH or ~/go when
// the go command can't be run.
func goPath() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return filepath.SplitList(p)[0]
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.SplitList(p)[0]
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go")
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// withoutMinioEnv drops MINIO_* variables from the caller's environment so
// a developer's own MinIO settings (volumes, KMS, ...) can't leak in.
func withoutMinioEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIO_") {
			out = append(out, kv)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
