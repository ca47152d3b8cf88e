package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrLocked means another causality process (a serve, backup or restore) uses the data dir.
var ErrLocked = errors.New("data dir in use by another causality process")

// lockName is the file whose flock marks the data dir as in use. The kernel drops the lock
// when its holder exits, however it exits, so a leftover file means nothing.
const lockName = "datadir.lock"

// Lock is a held data dir lock.
type Lock struct{ f *os.File }

// TryLock takes the lock of dir (which must exist) without waiting, and writes holder
// (e.g. "causality serve") and this process's id into the file for the message another
// process gets. Two appliances on one data dir would stop each other's PostgreSQL; a
// backup uses the lock to know whether it may start PostgreSQL itself.
func TryLock(dir, holder string) (*Lock, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 200)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(b[:n]))
			if who == "" {
				who = "holder unknown"
			}
			return nil, fmt.Errorf("%w: %s (%s)", ErrLocked, dir, who)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	info := fmt.Sprintf("pid %d, %s, since %s\n", os.Getpid(), holder, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is safe on a nil Lock.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
