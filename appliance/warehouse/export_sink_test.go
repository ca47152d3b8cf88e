package warehouse

import "context"

// Internals the external sink tests (package warehouse_test, which may
// import localdest) reach through these.

const ModeDiskFull = modeDiskFull

// WriteIntent records a ledger intent as a flush would: files maps a data
// path to the stream sequences it holds. It returns the intent's path.
func WriteIntent(ctx context.Context, dest Destination, consumer, stream, name string, files map[string][]uint64) (string, error) {
	l := newLedger(dest, consumer, stream)
	var fs []intentFile
	for p, seqs := range files {
		fs = append(fs, intentFile{Path: p, Seqs: seqSetOf(seqs).encode()})
	}
	return l.path(name), l.write(ctx, name, fs)
}
