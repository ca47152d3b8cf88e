package localdest_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/causality-io/causality/appliance/warehouse/desttest"
	"github.com/causality-io/causality/appliance/warehouse/lake"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
)

func newDest(t *testing.T) *localdest.Dest {
	t.Helper()
	d, err := localdest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	desttest.Run(t, func(t *testing.T) lake.Destination { return newDest(t) })
}

func TestPutLeavesNoTempFiles(t *testing.T) {
	d := newDest(t)
	ctx := context.Background()
	if err := d.Put(ctx, "events/app_id=a/hour=1/x.parquet", []byte("data")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(d.Root(), "events/app_id=a/hour=1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "x.parquet" {
		t.Fatalf("directory holds %v, want only x.parquet", entries)
	}
}

func TestRejectsPathsLeavingTheRoot(t *testing.T) {
	d := newDest(t)
	for _, p := range []string{"", "/", `a\b`} {
		if err := d.Put(context.Background(), p, nil); err == nil {
			t.Errorf("Put(%q) accepted", p)
		}
	}
	// ".." is cleaned against the root: it cannot climb out of it.
	if err := d.Put(context.Background(), "../../escape", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "escape")); err != nil {
		t.Fatalf("../../escape did not stay under the root: %v", err)
	}
}

// Readers listing a partition while it is swapped see the old set or the
// new one, never a mix: the total they count is always the same.
func TestReplaceIsAtomicForListingReaders(t *testing.T) {
	d := newDest(t)
	ctx := context.Background()
	dir := "events/app_id=a/year=2026/month=1/day=1/hour=1"
	// Ten one-byte files are replaced by one ten-byte file, back and forth.
	var small []string
	for i := range 10 {
		name := string(rune('a'+i)) + ".parquet"
		small = append(small, name)
		if err := d.Put(ctx, dir+"/"+name, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			objs, err := d.List(ctx, dir)
			if err != nil {
				t.Error(err)
				return
			}
			var total int64
			for _, o := range objs {
				total += o.Size
			}
			reads.Add(1)
			if total != 10 {
				bad.Add(1)
			}
		}
	}()
	for i := range 200 {
		var err error
		if i%2 == 0 {
			err = d.Replace(ctx, dir, []lake.File{{Name: "big.parquet", Data: make([]byte, 10)}}, small)
		} else {
			files := make([]lake.File, len(small))
			for j, n := range small {
				files[j] = lake.File{Name: n, Data: []byte{1}}
			}
			err = d.Replace(ctx, dir, files, []string{"big.parquet"})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d listings saw a partial swap", bad.Load(), reads.Load())
	}
	objs, _ := d.List(ctx, dir)
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = filepath.Base(o.Path)
	}
	sort.Strings(names)
	if len(names) != 10 {
		t.Fatalf("after an even number of swaps the partition holds %v", names)
	}
	// Swapped-out content waits in _staging for slow readers, outside events/.
	all, err := d.List(ctx, "events")
	if err != nil || len(all) != 10 {
		t.Fatalf("events/ lists %d files (%v), want 10", len(all), err)
	}
}

func TestDeletePrefixRemovesThePartitionOnly(t *testing.T) {
	d := newDest(t)
	ctx := context.Background()
	for _, p := range []string{"events/a/hour=1/x.parquet", "events/a/hour=10/y.parquet"} {
		if err := d.Put(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeletePrefix(ctx, "events/a/hour=1"); err != nil {
		t.Fatal(err)
	}
	objs, err := d.List(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Path != "events/a/hour=10/y.parquet" {
		t.Fatalf("left %v", objs)
	}
}
