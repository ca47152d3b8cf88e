package warehouse

import (
	"context"
	"encoding/json"
	"path"
)

// Internals the external compaction tests (package warehouse_test, which
// may import localdest) reach through these.

var (
	PartitionHourEnd = partitionHourEnd
	NewRowWriter     = newRowWriter
)

// NewCompactionLedger is the ledger of a sink consumer "warehouse" of
// stream incarnation "EVENTS@1".
func NewCompactionLedger(dest Destination) *ledger {
	return newLedger(dest, "warehouse", "EVENTS@1")
}

// WriteCompactionIntent records an intent naming paths (each holding two
// made-up stream sequences), as a flush does before writing them.
func WriteCompactionIntent(ctx context.Context, l *ledger, name string, paths ...string) error {
	files := make([]intentFile, len(paths))
	for i, p := range paths {
		files[i] = intentFile{Path: p, Seqs: seqSetOf([]uint64{uint64(2*i + 1), uint64(2*i + 2)}).encode()}
	}
	return l.write(ctx, name, files)
}

// PlanCompaction does what a pass does before it stores its manifest:
// merges the files names of dir, and returns the outputs and the manifest
// (path and body) the pass would store.
func PlanCompaction(ctx context.Context, dest Destination, dir string, names []string, target int64) ([]File, string, []byte, error) {
	inputs := make([]Object, len(names))
	for i, name := range names {
		inputs[i] = Object{Path: path.Join(dir, name)}
	}
	id := compactionID(dir, names, nil)
	outs, _, err := mergeFiles(ctx, dest, inputs, "c-"+id, target, EncodeOptions{}, "")
	if err != nil {
		return nil, "", nil, err
	}
	m := compactManifest{Version: manifestVersion, Dir: dir, Inputs: names}
	for _, f := range outs {
		m.Outputs = append(m.Outputs, f.Name)
	}
	data, err := json.Marshal(m)
	return outs, path.Join(CompactionDir, id+".json"), data, err
}
