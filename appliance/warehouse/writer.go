package warehouse

import (
	"io"

	"github.com/parquet-go/parquet-go"
)

// newRowWriter returns a streaming Parquet writer of Row to w, configured
// exactly as WriteParquet configures its writer (same codec, row group
// bound and created-by), so a file written row batch by row batch (the
// compactor's outputs) is indistinguishable from one written in one call.
// TestRowWriterMatchesWriteParquet holds the two to the same bytes.
//
// The caller writes, calls Flush to close a row group early if it wants,
// and must Close to get the footer; nothing closes w.
func newRowWriter(w io.Writer, opts EncodeOptions) *parquet.GenericWriter[Row] {
	return parquet.NewGenericWriter[Row](w, rowWriterOptions(opts)...)
}

// rowWriterOptions mirrors the option list built in WriteParquet (encode.go).
func rowWriterOptions(opts EncodeOptions) []parquet.WriterOption {
	rg := opts.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	codec := opts.Compression
	if codec == nil {
		codec = &parquet.Zstd
	}
	wopts := []parquet.WriterOption{
		parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(rg),
	}
	if opts.CreatedBy != "" {
		wopts = append(wopts, parquet.CreatedBy(opts.CreatedBy, "", ""))
	}
	return wopts
}
