package warehouse

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/compress"
)

// DefaultRowGroupRows bounds a row group by rows. Event rows are a few
// hundred bytes before compression, so 1M rows is on the order of 100+ MB
// uncompressed and tens of MB on disk: large enough that engines scan
// long sequential runs and prune by row-group statistics, small enough that
// the encoder's buffered row group stays bounded in memory.
const DefaultRowGroupRows int64 = 1_000_000

// EncodeOptions tunes WriteParquet. The zero value is the production default.
type EncodeOptions struct {
	// RowGroupRows is the maximum number of rows per row group;
	// 0 means DefaultRowGroupRows.
	RowGroupRows int64
	// Compression is the codec for every column; nil means zstd, which
	// gives the smallest files at an encode cost well within budget and is
	// read by every engine we target.
	Compression compress.Codec
	// CreatedBy names the writer in the file footer; "" leaves parquet-go's.
	CreatedBy string
}

// WriteParquet writes rows as one complete Parquet file to w, with the
// schema of Row. It does not close w: the caller owns durability (fsync,
// rename, upload completion).
func WriteParquet(w io.Writer, rows []Row, opts EncodeOptions) error {
	pw := newRowWriter(w, opts)
	if _, err := pw.Write(rows); err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}
