package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// The ledger is how a redelivered event is recognised as already written.
//
// Before the sink writes a flush's Parquet files it records an intent under
// LedgerDir: the final path of each file and the stream sequences it will
// hold. Then it writes the files, then acks the events. A crash anywhere in
// between leaves the intent behind. When JetStream redelivers those events,
// the sink reads the intents and, for every file that exists (files appear
// whole or not at all), treats its sequences as written: it acks them
// without writing them again. Sequences of a file that never appeared are
// written normally. So no event is lost (ack comes after the write) and
// none is written twice (the rewrite is skipped).
//
// Intents live beside the lake, not in it ("_" keeps Hive readers out), so
// that every process sharing the consumer and the bucket sees them. An
// intent is deleted once the consumer's ack floor has passed all its
// sequences and stayed there for ledgerGrace (see sink.go).
const LedgerDir = "_causality/ledger"

// intent is one flush's record, stored as JSON.
type intent struct {
	Version int `json:"v"`
	// Stream identifies the stream incarnation (name and creation time):
	// sequences of a deleted and re-created stream mean other events.
	Stream string       `json:"stream"`
	Files  []intentFile `json:"files"`
}

type intentFile struct {
	Path string `json:"path"`
	Seqs string `json:"seqs"` // seqSet.encode
}

const intentVersion = 1

// ledger reads and writes intents for one consumer of one stream.
type ledger struct {
	dest   Destination
	dir    string
	stream string
}

func newLedger(dest Destination, consumer, stream string) *ledger {
	return &ledger{dest: dest, dir: path.Join(LedgerDir, consumer), stream: stream}
}

func (l *ledger) path(name string) string { return path.Join(l.dir, name+".json") }

// write records an intent durably.
func (l *ledger) write(ctx context.Context, name string, files []intentFile) error {
	data, err := json.Marshal(intent{Version: intentVersion, Stream: l.stream, Files: files})
	if err != nil {
		return err
	}
	if err := l.dest.Put(ctx, l.path(name), data); err != nil {
		return fmt.Errorf("write ledger intent: %w", err)
	}
	return nil
}

// loadedIntent is an intent read back, with the sequences of the files
// that exist.
type loadedIntent struct {
	path    string
	maxSeq  uint64
	written seqSet // sequences in files that exist
	files   []string
	stale   bool // another stream incarnation: safe to delete
}

// load reads every intent and checks which of their files exist.
func (l *ledger) load(ctx context.Context) ([]loadedIntent, error) {
	objs, err := l.dest.List(ctx, l.dir)
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	present := map[string]map[string]bool{} // dir -> visible names, listed once
	exists := func(p string) (bool, error) {
		dir, name := path.Split(p)
		names, ok := present[dir]
		if !ok {
			listed, err := l.dest.List(ctx, strings.TrimSuffix(dir, "/"))
			if err != nil {
				return false, fmt.Errorf("list %s: %w", dir, err)
			}
			names = make(map[string]bool, len(listed))
			for _, o := range listed {
				if path.Dir(o.Path)+"/" == dir {
					names[path.Base(o.Path)] = true
				}
			}
			present[dir] = names
		}
		return names[name], nil
	}
	var out []loadedIntent
	for _, o := range objs {
		if !strings.HasSuffix(o.Path, ".json") {
			continue
		}
		data, err := l.dest.Get(ctx, o.Path)
		if errors.Is(err, ErrNotFound) {
			continue // collected by another process meanwhile
		}
		if err != nil {
			return nil, err
		}
		var in intent
		if err := json.Unmarshal(data, &in); err != nil || in.Version != intentVersion {
			return nil, fmt.Errorf("ledger intent %s is unreadable (version %d): %v", o.Path, in.Version, err)
		}
		li := loadedIntent{path: o.Path, stale: in.Stream != l.stream}
		for _, f := range in.Files {
			seqs, err := decodeSeqSet(f.Seqs)
			if err != nil {
				return nil, fmt.Errorf("ledger intent %s, file %s: %w", o.Path, f.Path, err)
			}
			li.maxSeq = max(li.maxSeq, seqs.max())
			li.files = append(li.files, f.Path)
			if li.stale {
				continue
			}
			ok, err := exists(f.Path)
			if err != nil {
				return nil, err
			}
			if ok {
				li.written = li.written.union(seqs)
			}
		}
		out = append(out, li)
	}
	return out, nil
}

// referenced returns the data files named by any intent. Compaction leaves
// them alone: merging one away would make its intent say "never written"
// and let a redelivery write its events a second time.
func (l *ledger) referenced(ctx context.Context) (map[string]bool, error) {
	objs, err := l.dest.List(ctx, l.dir)
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	out := map[string]bool{}
	for _, o := range objs {
		data, err := l.dest.Get(ctx, o.Path)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var in intent
		if err := json.Unmarshal(data, &in); err != nil {
			return nil, fmt.Errorf("ledger intent %s is unreadable: %w", o.Path, err)
		}
		for _, f := range in.Files {
			out[f.Path] = true
		}
	}
	return out, nil
}

func (l *ledger) delete(ctx context.Context, paths ...string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := l.dest.Delete(ctx, paths...); err != nil {
		return fmt.Errorf("delete ledger intents: %w", err)
	}
	return nil
}
