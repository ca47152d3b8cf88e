package trino_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/laketest"
	"github.com/causality-io/causality/appliance/warehouse/trino"
)

// TestDDLMatchesFileSchema checks the DDL against the schema of a real file
// as another engine (DuckDB) reads it, not against the Go struct alone.
func TestDDLMatchesFileSchema(t *testing.T) {
	root := t.TempDir()
	p := warehouse.Partition{AppID: "shop", Year: 2026, Month: 11, Day: 7, Hour: 3}
	path := filepath.Join(root, filepath.FromSlash(p.Path()), "part-1.parquet")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := warehouse.WriteParquet(f, []warehouse.Row{{ID: "e1"}}, warehouse.EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	duck := laketest.Columns(t, root, laketest.Options{})

	// The Trino type that reads each DuckDB type of a Parquet column.
	trinoFor := map[string]string{
		"VARCHAR":                  "varchar",
		"BIGINT":                   "bigint",
		"INTEGER":                  "integer",
		"BOOLEAN":                  "boolean",
		"TIMESTAMP WITH TIME ZONE": "timestamp(3)", // millis, isAdjustedToUTC
	}
	cols, err := trino.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		dt, ok := duck[c.Name]
		if !ok {
			t.Errorf("DDL column %s is not in the file", c.Name)
			continue
		}
		if trinoFor[dt] != c.Type {
			t.Errorf("column %s: file type %s (DuckDB), DDL type %s", c.Name, dt, c.Type)
		}
		delete(duck, c.Name)
	}
	for _, pc := range trino.PartitionColumns {
		if _, ok := duck[pc.Name]; !ok {
			t.Errorf("partition column %s is not in the path", pc.Name)
		}
		delete(duck, pc.Name)
	}
	if len(duck) != 0 {
		t.Errorf("file columns missing from the DDL: %v", duck)
	}
}
