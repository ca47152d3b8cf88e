package pgembed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the unprivileged user PostgreSQL runs as when the appliance
// runs as root. A nil *account means "run as the caller".
type account struct {
	name     string
	uid, gid uint32
}

// runAsCandidates are tried in order when the appliance runs as root: a
// dedicated system user if the machine has one, else nobody.
var runAsCandidates = []string{"causality", "nobody"}

// postgresAccount picks the account PostgreSQL runs as: nil when the caller
// is not root.
func postgresAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range runAsCandidates {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root and this machine has neither a user causality nor a user nobody to run it as: " +
		"create one (useradd --system --no-create-home causality), or run causality as an unprivileged user")
}

// credential is what the supervisor process runs with; no supplementary
// groups, so nothing of root's is inherited.
func (a *account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: []uint32{}}
}

func (a *account) String() string {
	return fmt.Sprintf("%s (uid %d)", a.name, a.uid)
}

// checkReachable fails unless the account can walk down to path: every
// directory on the way must be searchable (x) for it. Only mode bits are
// considered, which is what a default system relies on. elsewhere tells the
// user how to choose another place.
func checkReachable(path string, a *account, elsewhere string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	for dir := real; ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !a.canSearch(info) {
			return fmt.Errorf("PostgreSQL cannot run as root, so it runs as user %s, and that user cannot enter %s (mode %v, owner uid %d): "+
				"%s, or let other users through with `chmod o+x %s`",
				a, dir, info.Mode().Perm(), ownerOf(info), elsewhere, dir)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

func (a *account) canSearch(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := info.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case st.Gid == a.gid:
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

func ownerOf(info fs.FileInfo) uint32 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// chownTree hands root and everything below it to the account. It walks the
// tree only when root is not the account's yet, and chowns root last, so an
// interrupted walk is redone at the next start. Symlinks are not followed.
func chownTree(root string, a *account) error {
	info, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if owned(info, a) {
		return nil
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if owned(info, a) {
			return nil
		}
		return os.Lchown(p, int(a.uid), int(a.gid))
	})
	if err != nil {
		return fmt.Errorf("hand %s to user %s: %w", root, a, err)
	}
	return os.Lchown(root, int(a.uid), int(a.gid))
}

func owned(info fs.FileInfo, a *account) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == a.uid && st.Gid == a.gid
}
