package backup

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// ErrDamaged means the file is not a causality backup, or is one that was cut short or
// changed since it was written.
var ErrDamaged = errors.New("not a causality backup, or a damaged one")

// ErrNewerBackup means the backup was made by a newer causality than this binary.
var ErrNewerBackup = errors.New("backup made by a newer causality")

// archive is an open backup file whose manifest has been read and checked.
type archive struct {
	name     string
	zr       *zip.ReadCloser
	files    map[string]*zip.File
	manifest Manifest
}

// openArchive opens a backup and checks its manifest; verify checks the data too.
func openArchive(name string) (*archive, error) {
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrDamaged, name, fmt.Sprintf(format, args...))
	}
	zr, err := zip.OpenReader(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup file %s does not exist", name)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, damaged("%v (was the file cut short?)", err)
	}
	a := &archive{name: name, zr: zr, files: map[string]*zip.File{}}
	for _, f := range zr.File {
		a.files[f.Name] = f
	}
	mf := a.files[manifestName]
	if mf == nil {
		zr.Close()
		return nil, damaged("no %s in the archive", manifestName)
	}
	rc, err := mf.Open()
	if err == nil {
		err = json.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(&a.manifest)
		if _, cerr := io.Copy(io.Discard, rc); err == nil {
			err = cerr // the CRC is checked at the end
		}
		rc.Close()
	}
	if err != nil {
		zr.Close()
		return nil, damaged("read %s: %v", manifestName, err)
	}
	if err := a.manifest.check(); err != nil {
		zr.Close()
		if errors.Is(err, ErrNewerBackup) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, damaged("%s: %v", manifestName, err)
	}
	for _, t := range a.manifest.Tables {
		if a.files[t.File] == nil {
			zr.Close()
			return nil, damaged("%s is missing", t.File)
		}
	}
	return a, nil
}

func (a *archive) Close() error { return a.zr.Close() }

// verify reads every table's data and checks its size and SHA-256 against the manifest
// (zip checks its CRC on the way), so that a damaged backup is refused before anything is
// restored.
func (a *archive) verify() error {
	for _, t := range a.manifest.Tables {
		rc, err := a.open(t)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// open returns the table's data; reading it to the end fails unless size and SHA-256
// match the manifest.
func (a *archive) open(t Table) (io.ReadCloser, error) {
	rc, err := a.files[t.File].Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s: %v", ErrDamaged, a.name, t.File, err)
	}
	return &checkedReader{rc: rc, h: sha256.New(), t: t, archive: a.name}, nil
}

// checkedReader checks a table's data against its manifest entry at EOF.
type checkedReader struct {
	rc      io.ReadCloser
	h       hash.Hash
	n       int64
	t       Table
	archive string
}

func (r *checkedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: %s: %s: %v", ErrDamaged, r.archive, r.t.File, err)
	}
	if errors.Is(err, io.EOF) {
		if r.n != r.t.Bytes || hex.EncodeToString(r.h.Sum(nil)) != r.t.SHA256 {
			return n, fmt.Errorf("%w: %s: %s does not match its checksum in the manifest", ErrDamaged, r.archive, r.t.File)
		}
	}
	return n, err
}

func (r *checkedReader) Close() error { return r.rc.Close() }

// writeAtomically writes a file through a temporary one in the same directory (mode 0600:
// a backup holds webhook secrets and the admin password hash), fsyncs it and renames it
// into place. It returns the file's size.
func writeAtomically(name string, write func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	var size int64
	if err == nil {
		var info os.FileInfo
		if info, err = tmp.Stat(); err == nil {
			size = info.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return 0, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return size, nil
}
