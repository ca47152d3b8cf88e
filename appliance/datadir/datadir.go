// Package datadir records what laid out a data directory, in <data-dir>/datadir.json, so
// that a binary refuses a directory of a newer format before it starts anything in it.
//
// Format 1 is nats/ (JetStream file store), postgres/ (the embedded PostgreSQL 17 cluster)
// and warehouse/ (the local Parquet lake). Data dirs made before the file existed have
// the same layout and count as format 1. A change of layout that an older binary would
// misread bumps Format; the binary that bumps it converts older dirs when it starts.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Format is the data dir format this binary writes and reads.
const Format = 1

// FileName is the record's name inside the data dir.
const FileName = "datadir.json"

// ErrNewer means the data dir was laid out by a newer causality; nothing was changed.
var ErrNewer = errors.New("data dir of a newer format")

// Info is the content of datadir.json.
type Info struct {
	Format int `json:"format"`
	// WrittenBy is the causality version that last started on the dir (or restored it).
	WrittenBy string `json:"written_by"`
	// SchemaVersion is the configuration database's schema version at that start; 0
	// with an external database that was not read.
	SchemaVersion int       `json:"schema_version,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Read returns the record of dir; ok is false when there is none.
func Read(dir string) (info Info, ok bool, err error) {
	name := filepath.Join(dir, FileName)
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, err
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Format <= 0 {
		return Info{}, false, fmt.Errorf("%s is damaged (%q): it should be JSON with a positive \"format\"; "+
			"if this dir was made by causality, fix the file or delete it (a dir without it counts as format 1)", name, truncate(b, 80))
	}
	return info, true, nil
}

// Check refuses a data dir whose format is newer than this binary's, naming the version
// that wrote it; binary is this binary's version, for the message. A dir without a
// record, or one that does not exist yet, passes.
func Check(dir, binary string) error {
	info, ok, err := Read(dir)
	if err != nil || !ok {
		return err
	}
	if info.Format > Format {
		return fmt.Errorf("%w: %s was last used by causality %s and has data dir format %d; this binary (%s) knows format %d. "+
			"Run causality %s or newer on it, or restore a backup taken with this version into an empty data dir (nothing was changed)",
			ErrNewer, dir, info.WrittenBy, info.Format, binary, Format, info.WrittenBy)
	}
	return nil
}

// Record writes datadir.json for this binary: format Format, written by binary, at the
// given schema version. The file is replaced whole (temporary file, fsync, rename).
func Record(dir, binary string, schemaVersion int) error {
	b, err := json.MarshalIndent(Info{Format: Format, WrittenBy: binary, SchemaVersion: schemaVersion, UpdatedAt: time.Now().UTC().Truncate(time.Second)}, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, FileName)
	tmp := name + ".tmp"
	if err := writeSynced(tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeSynced(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
