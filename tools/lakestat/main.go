// Command lakestat summarises a local lake from the Parquet footers alone:
// files, rows and bytes, in total and per partition depth. scripts/bench.sh
// uses it to check that every accepted event is visible and to report bytes
// per event on disk.
//
//	go run ./tools/lakestat <warehouse dir>
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lakestat <warehouse dir>")
		os.Exit(2)
	}
	var files, rows, size int64
	partitions := map[string]bool{}
	root := filepath.Join(os.Args[1], "events")
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".parquet") || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		pf, err := parquet.OpenFile(f, info.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		files++
		rows += pf.NumRows()
		size += info.Size()
		partitions[filepath.Dir(p)] = true
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lakestat:", err)
		os.Exit(1)
	}
	perRow := 0.0
	if rows > 0 {
		perRow = float64(size) / float64(rows)
	}
	fmt.Printf("rows %d files %d partitions %d bytes %d bytes/row %.1f\n", rows, files, len(partitions), size, perRow)
}
