package pgembed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MajorVersion is the PostgreSQL major version this package ships and runs.
const MajorVersion = "17"

var (
	// ErrVersionMismatch means the data directory was created by another
	// PostgreSQL major version. Start changed nothing.
	ErrVersionMismatch = errors.New("embedded PostgreSQL: data directory of another major version")
	// ErrNoBinaries means there is no PostgreSQL to run: the binary was
	// built without a bundle and Options.BinariesDir is empty.
	ErrNoBinaries = errors.New("no PostgreSQL bundled")
)

// Options configure Start.
type Options struct {
	// Dir holds everything: binaries, the cluster, scratch space and
	// postgres.log, e.g. <data-dir>/postgres.
	Dir string
	// BinariesDir, when set (--pg-binaries), is a PostgreSQL 17 directory
	// with bin/, lib/ and share/ used instead of the embedded bundle.
	BinariesDir string
	// Logger gets lifecycle messages; PostgreSQL's own log lines go to
	// <Dir>/postgres.log. Nil discards them.
	Logger *slog.Logger
}

// Server is a running embedded PostgreSQL.
type Server struct {
	url      string
	dataDir  string
	logFile  string
	pid      int // the postmaster
	sup      *supervisorProcess
	logger   *slog.Logger
	stopping atomic.Bool
	stopOnce sync.Once
	stopErr  error
	wait     chan error
}

// layout names the files and directories under Options.Dir (see the
// package documentation).
type layout struct {
	dir, binaries, password, logFile string
	cluster, data, initMarker, run   string
}

func newLayout(dir string) layout {
	cluster := filepath.Join(dir, "cluster")
	return layout{
		dir:      dir,
		binaries: filepath.Join(dir, "binaries"),
		password: filepath.Join(dir, "password"),
		logFile:  filepath.Join(dir, "postgres.log"),
		cluster:  cluster,
		data:     filepath.Join(cluster, "data"),
		// Present while a first start creates the cluster: a cluster
		// found with it was left incomplete by an interrupted first start.
		initMarker: filepath.Join(cluster, "initialising"),
		run:        filepath.Join(cluster, "run"),
	}
}

// Start starts PostgreSQL under opts.Dir, initialising a cluster with
// database and user causality on first start, and returns once it accepts
// connections. The caller must Stop it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, bundleFS)
}

func start(ctx context.Context, opts Options, bundle fs.FS) (*Server, error) {
	begin := time.Now()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dir == "" {
		return nil, errors.New("embedded PostgreSQL: no directory given")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	// pg_ctl passes paths through /bin/sh in double quotes.
	if strings.ContainsAny(dir, "\"`$\\\n") {
		return nil, fmt.Errorf("embedded PostgreSQL: directory %q contains a character PostgreSQL's tools cannot quote (\" ` $ \\ or a newline): choose another --data-dir", dir)
	}
	l := newLayout(dir)

	// Before anything is created or changed.
	if err := checkDataVersion(l.data); err != nil {
		return nil, err
	}
	acct, err := postgresAccount()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(l, acct); err != nil {
		return nil, err
	}
	binaries, err := resolveBinaries(opts.BinariesDir, bundle, l.binaries, logger)
	if err != nil {
		return nil, err
	}
	if acct != nil {
		if err := checkReachable(filepath.Join(binaries, "bin"), acct, "put PostgreSQL elsewhere (--pg-binaries)"); err != nil {
			return nil, err
		}
	}
	if err := stopStalePostmaster(l.data, logger); err != nil {
		return nil, err
	}
	if err := prepareCluster(l, acct); err != nil {
		return nil, err
	}

	initialise, err := needsInit(l, logger)
	if err != nil {
		return nil, err
	}
	password, err := clusterPassword(l, initialise)
	if err != nil {
		return nil, err
	}
	cfg := supervisorConfig{
		Binaries: binaries,
		Data:     l.data,
		Runtime:  l.run,
		LogDir:   l.dir,
		LogFile:  l.logFile,
		Password: password,
	}
	if initialise {
		cfg.Fresh = true
		if err := writeMarker(l); err != nil {
			return nil, err
		}
		logger.Info("initialising database cluster...", "dir", l.data)
	}

	var (
		sup *supervisorProcess
		pid int
	)
	for attempt := 1; ; attempt++ {
		if attempt > 1 && initialise {
			// The failed attempt may have run initdb already; the
			// library would reuse that cluster without creating the
			// database. The marker is still there: start the cluster afresh.
			if err := stopStalePostmaster(l.data, logger); err != nil {
				return nil, err
			}
			if err := os.RemoveAll(l.data); err != nil {
				return nil, err
			}
		}
		if cfg.Port, err = freePort(); err != nil {
			return nil, err
		}
		if sup, err = spawnSupervisor(cfg, acct, l.cluster, logger); err != nil {
			return nil, err
		}
		var portInUse bool
		pid, portInUse, err = sup.waitReady(ctx)
		if err == nil {
			break
		}
		if !portInUse || attempt == 3 {
			return nil, fmt.Errorf("start embedded PostgreSQL (log: %s): %w", l.logFile, err)
		}
		logger.Warn("port taken while starting PostgreSQL; trying another", "port", cfg.Port)
	}
	if initialise {
		if err := os.Remove(l.initMarker); err != nil {
			sup.terminate(30 * time.Second)
			return nil, err
		}
		if err := syncDir(l.cluster); err != nil {
			sup.terminate(30 * time.Second)
			return nil, err
		}
	}
	if opts.BinariesDir == "" {
		removeOldBinaries(l.binaries, binaries, logger)
	}

	s := &Server{
		url:     connURL(password, int(cfg.Port)),
		dataDir: l.data,
		logFile: l.logFile,
		pid:     pid,
		sup:     sup,
		logger:  logger,
		wait:    make(chan error, 1),
	}
	go s.watch()
	logger.Info("PostgreSQL "+MajorVersion+" ready", "port", cfg.Port, "pid", pid,
		"elapsed", time.Since(begin).Round(time.Millisecond), "log", l.logFile)
	return s, nil
}

// URL is the connection URL:
// postgres://causality:<password>@127.0.0.1:<port>/causality?sslmode=disable.
func (s *Server) URL() string { return s.url }

// Wait returns a channel that receives exactly one value, then closes: nil
// when PostgreSQL stopped through Stop, an error when it (or its supervisor)
// died on its own, after which the appliance should stop.
func (s *Server) Wait() <-chan error { return s.wait }

func (s *Server) watch() {
	<-s.sup.done
	var err error
	if !s.stopping.Load() {
		err = fmt.Errorf("embedded PostgreSQL stopped unexpectedly: %s (log: %s)", s.sup.why(), s.logFile)
		s.logger.Error("embedded PostgreSQL stopped unexpectedly", "reason", s.sup.why(), "log", s.logFile)
	}
	s.wait <- err
	close(s.wait)
}

// Stop stops PostgreSQL (fast shutdown: open sessions are ended) and waits
// for it, at most until ctx is done, after which PostgreSQL is told to quit
// immediately. Calling it again returns the first result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	s.stopping.Store(true)
	select {
	case <-s.sup.done:
		// The supervisor is gone (killed?) and PostgreSQL may be orphaned.
		if alive(s.pid) && postgresIn(s.pid, s.dataDir) {
			return stopPostmaster(s.pid, s.dataDir)
		}
		return nil
	default:
	}
	_ = s.sup.stdin.Close()
	_ = s.sup.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.sup.done:
		if s.sup.err != nil {
			return fmt.Errorf("stop embedded PostgreSQL: %s (log: %s)", s.sup.why(), s.logFile)
		}
		s.logger.Info("PostgreSQL stopped")
		return nil
	case <-ctx.Done():
		s.sup.kill()
		if alive(s.pid) && postgresIn(s.pid, s.dataDir) {
			_ = syscall.Kill(s.pid, syscall.SIGQUIT) // immediate shutdown
		}
		return fmt.Errorf("stop embedded PostgreSQL: %w", ctx.Err())
	}
}

// checkDataVersion refuses a data directory made by another major version:
// the library would wipe and re-initialise it.
func checkDataVersion(data string) error {
	b, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == MajorVersion {
		return nil
	}
	return fmt.Errorf("%w: %s was created by PostgreSQL %s, and this causality binary ships PostgreSQL %s. Nothing was changed. "+
		"To move the data over, run `causality backup` with the causality binary that ran this data dir and `causality restore` with this one into a new --data-dir (README, Upgrades); "+
		"or dump it with PostgreSQL %s (pg_dumpall) and restore it into a fresh --data-dir, or upgrade the directory with pg_upgrade; "+
		"see https://www.postgresql.org/docs/%s/upgrading.html. Or keep running PostgreSQL %s yourself and pass --database-url",
		ErrVersionMismatch, data, v, MajorVersion, v, MajorVersion, v)
}

// needsInit reports whether the cluster is still to be created. A data
// directory that exists but holds no cluster is refused, never overwritten,
// unless the marker says an earlier first start of ours made it and was
// interrupted.
func needsInit(l layout, logger *slog.Logger) (bool, error) {
	if _, err := os.Stat(l.initMarker); err == nil {
		logger.Warn("removing the incomplete cluster of an interrupted first start", "dir", l.data)
		return true, os.RemoveAll(l.data)
	}
	if _, err := os.Stat(filepath.Join(l.data, "PG_VERSION")); err == nil {
		return false, nil
	}
	entries, err := os.ReadDir(l.data)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("embedded PostgreSQL: %s is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away to start afresh", l.data)
	}
	return true, os.Remove(l.data)
}

// writeMarker durably records that the cluster is being created.
func writeMarker(l layout) error {
	if err := os.WriteFile(l.initMarker, []byte("initdb in progress; removed once the cluster is complete\n"), 0o644); err != nil {
		return err
	}
	return syncDir(l.cluster)
}

// clusterPassword returns the password of user causality: a new random one
// when the cluster is about to be created, else the stored one.
func clusterPassword(l layout, initialise bool) (string, error) {
	if !initialise {
		b, err := os.ReadFile(l.password)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("embedded PostgreSQL: the password file %s is missing, so the cluster in %s cannot be opened: restore the file", l.password, l.data)
		}
		if err != nil {
			return "", err
		}
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("embedded PostgreSQL: the password file %s is empty", l.password)
		}
		return pw, nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw)
	tmp := l.password + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(pw + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.password)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", l.password, err)
	}
	return pw, syncDir(l.dir)
}

// prepareDir creates Dir. When PostgreSQL runs as another account, that
// account must be able to pass through Dir and every directory above it.
func prepareDir(l layout, acct *account) error {
	mode := os.FileMode(0o700)
	if acct != nil {
		mode = 0o711
	}
	if err := os.MkdirAll(l.dir, mode); err != nil {
		return fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	if acct == nil {
		return nil
	}
	if err := os.Chmod(l.dir, mode); err != nil {
		return err
	}
	return checkReachable(l.dir, acct, "choose a data directory outside it, e.g. --data-dir /var/lib/causality")
}

// prepareCluster creates cluster/ and an empty run/, and hands them and
// postgres.log to the account PostgreSQL runs as.
func prepareCluster(l layout, acct *account) error {
	if err := os.MkdirAll(l.cluster, 0o700); err != nil {
		return err
	}
	if err := os.RemoveAll(l.run); err != nil {
		return err
	}
	if err := os.Mkdir(l.run, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(l.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if acct == nil {
		return nil
	}
	if err := os.Lchown(l.run, int(acct.uid), int(acct.gid)); err != nil {
		return err
	}
	if err := os.Lchown(l.logFile, int(acct.uid), int(acct.gid)); err != nil {
		return err
	}
	return chownTree(l.cluster, acct)
}

// freePort picks a port on 127.0.0.1 that is free right now.
func freePort() (uint32, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("embedded PostgreSQL: find a free port: %w", err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port), nil
}
