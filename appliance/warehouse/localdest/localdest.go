// Package localdest keeps the lake in a local directory.
//
// Every write is a hidden temporary file (leading ".", and not ending in
// ".parquet", since DuckDB's glob does not skip hidden names), fsync'd,
// renamed to its final name and followed by an fsync of the directory, so a
// reader never sees half a file and a crash never leaves a visible partial
// one.
// Compaction swaps a whole partition directory in one renameat2(2)
// RENAME_EXCHANGE, so a reader listing it sees the old files or the new
// ones, never both and never neither.
package localdest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/causality-io/causality/appliance/warehouse/lake"
)

// stagingDir, under the root and beside events/, holds directories being
// prepared for a swap and partitions being deleted. Readers of events/
// never see it; leftovers of a crash are removed by New.
const stagingDir = "_staging"

// Dest is a lake rooted at a local directory.
type Dest struct {
	root string
	// dirLocks serialise writers of one directory against a Replace or
	// DeletePrefix of it: a file renamed into a partition after the
	// compactor prepared its replacement would otherwise vanish with the
	// old directory. Striped so the map never grows.
	dirLocks [64]sync.Mutex
}

var _ lake.Destination = (*Dest)(nil)

// New opens (creating if needed) a lake at root.
func New(root string) (*Dest, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("warehouse dir %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("create warehouse dir: %w", err)
	}
	// Nothing in the staging area survives a restart: a swap that did not
	// happen is retried by compaction; a deletion that did not finish is
	// finished here.
	if err := os.RemoveAll(filepath.Join(abs, stagingDir)); err != nil {
		return nil, fmt.Errorf("clean %s: %w", stagingDir, err)
	}
	return &Dest{root: abs}, nil
}

// Root is the absolute directory of the lake.
func (d *Dest) Root() string { return d.root }

func (d *Dest) String() string { return "file://" + d.root }

// abs maps a lake path to the file system, refusing paths that would leave
// the root.
func (d *Dest) abs(p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" || strings.Contains(p, "\\") {
		return "", fmt.Errorf("invalid lake path %q", p)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean[1:])), nil
}

func (d *Dest) lock(dir string) func() {
	h := fnv.New32a()
	h.Write([]byte(dir))
	mu := &d.dirLocks[h.Sum32()%uint32(len(d.dirLocks))]
	mu.Lock()
	return mu.Unlock
}

// Put writes data under p: temp file, fsync, rename, fsync of the directory.
func (d *Dest) Put(ctx context.Context, p string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full, err := d.abs(p)
	if err != nil {
		return err
	}
	dir := filepath.Dir(full)
	if err := d.mkdirAll(dir); err != nil {
		return err
	}
	defer d.lock(dir)()
	return writeFileDurable(dir, filepath.Base(full), data)
}

// writeFileDurable writes name in dir atomically and durably.
func writeFileDurable(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("create temp file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	final := filepath.Join(dir, name)
	if err = os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("rename into %s: %w", final, err)
	}
	return syncDir(dir)
}

// mkdirAll creates dir and its missing parents, fsyncing each parent so the
// new entries survive a power loss along with the files put in them.
func (d *Dest) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(d.root) {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// Get reads the object at p.
func (d *Dest) Get(ctx context.Context, p string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := d.abs(p)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", p, lake.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", p, err)
	}
	return data, nil
}

// List walks prefix (a directory) and returns its visible regular files.
// Each directory is read through one open descriptor and its files are
// stat'ed relative to it, so a directory swapped by Replace mid-listing is
// seen whole: old set or new set.
func (d *Dest) List(ctx context.Context, prefix string) ([]lake.Object, error) {
	base, err := d.abs(prefix)
	if err != nil {
		return nil, err
	}
	var out []lake.Object
	if err := d.walk(ctx, base, &out); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return out, nil
}

func (d *Dest) walk(ctx context.Context, dir string, out *[]lake.Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil // vanished (retention, compaction) or never existed
	}
	if err != nil {
		return err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(d.root, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		if e.IsDir() {
			if err := d.walk(ctx, filepath.Join(dir, e.Name()), out); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(f.Fd()), e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("stat %s: %w", e.Name(), err)
		}
		*out = append(*out, lake.Object{
			Path:    filepath.ToSlash(filepath.Join(rel, e.Name())),
			Size:    st.Size,
			ModTime: time.Unix(st.Mtim.Unix()),
		})
	}
	return nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") }

// Delete removes files; missing ones are fine.
func (d *Dest) Delete(ctx context.Context, paths ...string) error {
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		full, err := d.abs(p)
		if err != nil {
			return err
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", p, err)
		}
		dirs[filepath.Dir(full)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Replace builds the new content of dir beside it in a hidden directory
// (hard links to the files that stay, plus add), then exchanges the two
// directories in one renameat2 call. Readers that list dir see either the
// old set or the new one. A file system without RENAME_EXCHANGE gets the
// best non-atomic order instead: add first, then remove.
func (d *Dest) Replace(ctx context.Context, dir string, add []lake.File, remove []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full, err := d.abs(dir)
	if err != nil {
		return err
	}
	if err := d.mkdirAll(full); err != nil {
		return err
	}
	defer d.lock(full)()

	drop := make(map[string]bool, len(remove))
	for _, name := range remove {
		drop[name] = true
	}
	parent := filepath.Dir(full)
	// Staged outside events/: DuckDB's glob reads hidden names too, and a
	// hidden directory beside hour=N would even break its partition
	// discovery. Same file system, so the exchange below still works.
	stageRoot := filepath.Join(d.root, stagingDir)
	if err := d.mkdirAll(stageRoot); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(stageRoot, "replace-")
	if err != nil {
		return fmt.Errorf("stage replacement of %s: %w", dir, err)
	}
	exchanged := false
	defer func() {
		if !exchanged {
			os.RemoveAll(stage)
		}
	}()

	entries, err := os.ReadDir(full)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if drop[e.Name()] || hidden(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Link(filepath.Join(full, e.Name()), filepath.Join(stage, e.Name())); err != nil {
			return fmt.Errorf("stage %s: %w", e.Name(), err)
		}
	}
	for _, f := range add {
		if err := writeFileDurable(stage, f.Name, f.Data); err != nil {
			return err
		}
	}
	if err := os.Chmod(stage, 0o750); err != nil {
		return fmt.Errorf("chmod %s: %w", stage, err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, full, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return replaceInPlace(full, add, remove)
	}
	if err != nil {
		return fmt.Errorf("swap %s: %w", dir, err)
	}
	exchanged = true
	if err := syncDir(parent); err != nil {
		return err
	}
	// The old content now sits in the staging area. It is removed later,
	// not now: a reader that opened the directory just before the swap may
	// still be listing it, and must see it whole. Its mtime starts the clock.
	now := time.Now()
	_ = os.Chtimes(stage, now, now)
	d.sweep(stageRoot, oldContentGrace)
	return nil
}

// oldContentGrace is how long swapped-out partition content is kept for
// readers that were listing it; far above any listing's duration.
const oldContentGrace = time.Minute

// sweep removes staging entries older than grace.
func (d *Dest) sweep(stageRoot string, grace time.Duration) {
	entries, err := os.ReadDir(stageRoot)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > grace {
			os.RemoveAll(filepath.Join(stageRoot, e.Name()))
		}
	}
}

func replaceInPlace(dir string, add []lake.File, remove []string) error {
	for _, f := range add {
		if err := writeFileDurable(dir, f.Name, f.Data); err != nil {
			return err
		}
	}
	for _, name := range remove {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return syncDir(dir)
}

// DeletePrefix removes the directory prefix. It is first renamed to a
// hidden name, so readers stop seeing the whole partition at once rather
// than file by file.
func (d *Dest) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full, err := d.abs(prefix)
	if err != nil {
		return err
	}
	defer d.lock(full)()
	trash := filepath.Join(d.root, stagingDir)
	if err := d.mkdirAll(trash); err != nil {
		return err
	}
	gone := filepath.Join(trash, fmt.Sprintf("deleted-%d", time.Now().UnixNano()))
	if err := os.Rename(full, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", prefix, err)
	}
	if err := syncDir(filepath.Dir(full)); err != nil {
		return err
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("delete %s: %w", prefix, err)
	}
	return nil
}

// Check reports whether the root exists and is writable.
func (d *Dest) Check(context.Context) error {
	if err := unix.Access(d.root, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("warehouse dir %s not writable: %w", d.root, err)
	}
	return nil
}
