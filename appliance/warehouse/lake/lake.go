// Package lake is the contract between the warehouse sink and where the
// lake is kept (a local directory, an S3 bucket). It is a leaf package so
// that destinations and the sink's tests can import each other's sides.
package lake

import (
	"context"
	"errors"
	"time"
)

// Destination is where the lake lives: a local directory or an S3 bucket.
// Paths are slash-separated and relative to the destination's root
// (for example "events/app_id=shop/year=2026/month=11/day=7/hour=3/x.parquet").
//
// Implementations must make Put atomic for readers: a reader listing the
// lake sees either the complete object under its final name or nothing. That
// is what lets the sink acknowledge to JetStream right after Put returns.
type Destination interface {
	// Put stores data under path durably (fsync'd, or the upload completed)
	// and atomically, replacing any object already there.
	Put(ctx context.Context, path string, data []byte) error
	// Get reads a whole object. A missing object is ErrNotFound.
	Get(ctx context.Context, path string) ([]byte, error)
	// List returns every visible object under prefix (recursively), in no
	// particular order. Hidden objects (a path element starting with "." or
	// "_" below prefix) are left out, as Hive readers leave them out.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes objects; missing ones are not an error.
	Delete(ctx context.Context, paths ...string) error
	// Replace makes add visible in dir and removes remove from it (the
	// compaction swap); File.Name and the remove entries are names relative
	// to dir. Local directories do it atomically for readers that list dir;
	// S3 has no multi-object atomicity, so there add becomes visible first
	// and remove is deleted right after.
	Replace(ctx context.Context, dir string, add []File, remove []string) error
	// DeletePrefix removes every object under prefix (retention drops a
	// whole partition this way). Local directories make the partition
	// disappear at once.
	DeletePrefix(ctx context.Context, prefix string) error
	// Check reports whether the destination is reachable and writable
	// enough to be worth retrying against; it is cheap.
	Check(ctx context.Context) error
	// String names the destination for logs and metrics (no secrets).
	String() string
}

// Object is one listed object.
type Object struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// File is a named object body for Replace; Name is relative to the dir.
type File struct {
	Name string
	Data []byte
}

// ErrNotFound is returned by Get for an object that does not exist.
var ErrNotFound = errors.New("lake: object not found")
