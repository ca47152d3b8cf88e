package pgembed

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A postmaster outlives the supervisor when the supervisor is killed with
// SIGKILL (or the whole appliance is, and the supervisor's parent-death
// SIGTERM arrives too late). The next start finds it through the lock file
// postmaster.pid and stops it, after checking that the PID really is a
// PostgreSQL working in this data directory: its executable is named
// postgres and its working directory is the data directory (the postmaster
// and all its children chdir there).

// stopStalePostmaster stops a PostgreSQL left running on dataDir. It
// returns nil when none runs.
func stopStalePostmaster(dataDir string, logger *slog.Logger) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	pid, err := readPostmasterPID(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !alive(pid) {
		return nil // PostgreSQL replaces a lock file whose process is gone
	}
	if !postgresIn(pid, dataDir) {
		// The PID now belongs to some other process (typical after a reboot
		// in a container). PostgreSQL would take it for a running postmaster
		// and refuse to start, so remove the stale lock file, unless some
		// PostgreSQL process still works in this data directory.
		if pids := postgresProcessesIn(dataDir); len(pids) > 0 {
			return fmt.Errorf("PostgreSQL processes %v still use %s: stop them, then start causality again", pids, dataDir)
		}
		logger.Warn("removing a stale postmaster.pid", "file", pidFile, "pid", pid)
		return os.Remove(pidFile)
	}
	logger.Warn("stopping a PostgreSQL left running by an earlier run", "pid", pid, "data_dir", dataDir)
	return stopPostmaster(pid, dataDir)
}

// stopPostmaster asks a postmaster for a fast shutdown (SIGINT: abort
// sessions, checkpoint, exit), then for an immediate one (SIGQUIT: crash
// recovery at next start), then kills it.
func stopPostmaster(pid int, dataDir string) error {
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{
		{syscall.SIGINT, 15 * time.Second},
		{syscall.SIGQUIT, 5 * time.Second},
		{syscall.SIGKILL, 5 * time.Second},
	}
	for _, s := range steps {
		if err := syscall.Kill(pid, s.sig); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		deadline := time.Now().Add(s.wait)
		for time.Now().Before(deadline) {
			if !alive(pid) {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("PostgreSQL (pid %d) on %s does not stop", pid, dataDir)
}

// readPostmasterPID reads the first line of postmaster.pid.
func readPostmasterPID(dataDir string) (int, error) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: bad PID %q", f.Name(), line)
	}
	return pid, nil
}

// alive reports whether pid runs (a zombie does not count: its parent may
// never reap it when that parent is the appliance running as PID 1).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// postgresIn reports whether pid is a PostgreSQL process working in dataDir.
func postgresIn(pid int, dataDir string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "postgres" {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(dataDir)
	return err == nil && cwd == want
}

// postgresProcessesIn lists the PostgreSQL processes working in dataDir.
func postgresProcessesIn(dataDir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if postgresIn(pid, dataDir) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
