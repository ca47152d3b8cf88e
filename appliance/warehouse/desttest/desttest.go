// Package desttest is the conformance suite every lake.Destination
// passes: what the sink, compaction and retention rely on, checked through
// the interface alone, so the local directory and S3 behave the same.
//
// A destination's own test calls Run with a constructor that returns an
// empty destination (a fresh directory, a fresh bucket or prefix):
//
//	func TestConformance(t *testing.T) {
//		desttest.Run(t, func(t *testing.T) lake.Destination { return newEmptyDest(t) })
//	}
package desttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/warehouse/lake"
)

// Run runs every conformance check as a subtest, each on a destination that
// newDest returns empty. newDest registers its own cleanup with t.
func Run(t *testing.T, newDest func(t *testing.T) lake.Destination) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, d lake.Destination)
	}{
		{"PutGetRoundTrip", testPutGet},
		{"PutOverwrites", testPutOverwrites},
		{"GetMissingIsNotFound", testGetMissing},
		{"ListRecursive", testListRecursive},
		{"ListHidesDotAndUnderscore", testListHidden},
		{"ListHiddenPrefixItself", testListHiddenPrefix},
		{"ListStopsAtElementBoundary", testListBoundary},
		{"ListReportsSizeAndTime", testListMeta},
		{"DeletePresentAndMissing", testDelete},
		{"ReplaceSwapsFiles", testReplace},
		{"DeletePrefixPartition", testDeletePrefix},
		{"Check", testCheck},
		{"HiveEscapedPaths", testEscapedPaths},
		{"String", testString},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newDest(t))
		})
	}
}

const (
	// A realistic partition, as the sink writes it.
	part = "events/app_id=shop/year=2026/month=11/day=7/hour=3"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, d lake.Destination, path string, data []byte) {
	t.Helper()
	if err := d.Put(ctx(t), path, data); err != nil {
		t.Fatalf("Put(%q): %v", path, err)
	}
}

func get(t *testing.T, d lake.Destination, path string) []byte {
	t.Helper()
	data, err := d.Get(ctx(t), path)
	if err != nil {
		t.Fatalf("Get(%q): %v", path, err)
	}
	return data
}

// list returns the listed paths, sorted.
func list(t *testing.T, d lake.Destination, prefix string) []string {
	t.Helper()
	objs, err := d.List(ctx(t), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	paths := make([]string, 0, len(objs))
	for _, o := range objs {
		paths = append(paths, o.Path)
	}
	slices.Sort(paths)
	return paths
}

func wantList(t *testing.T, d lake.Destination, prefix string, want ...string) {
	t.Helper()
	got := list(t, d, prefix)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q\nwant %q", prefix, got, want)
	}
}

func wantNotFound(t *testing.T, d lake.Destination, path string) {
	t.Helper()
	data, err := d.Get(ctx(t), path)
	if !errors.Is(err, lake.ErrNotFound) {
		t.Errorf("Get(%q) = %d bytes, %v; want an error wrapping lake.ErrNotFound", path, len(data), err)
	}
}

func testPutGet(t *testing.T, d lake.Destination) {
	// Binary data (a Parquet file is not text), an empty file, and one large
	// enough to take several network reads.
	big := bytes.Repeat([]byte("PAR1\x00\xff causality "), 200_000) // ~3.6 MB
	cases := []struct {
		name, path string
		data       []byte
	}{
		{"small", part + "/a.parquet", []byte("PAR1\x00\x01\x02\xffPAR1")},
		{"empty", part + "/empty.parquet", []byte{}},
		{"large", part + "/big.parquet", big},
		{"top-level", "top.bin", []byte("top")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			put(t, d, c.path, c.data)
			if got := get(t, d, c.path); !bytes.Equal(got, c.data) {
				t.Errorf("Get(%q) returned %d bytes that differ from the %d put", c.path, len(got), len(c.data))
			}
		})
	}
}

func testPutOverwrites(t *testing.T, d lake.Destination) {
	p := part + "/x.parquet"
	put(t, d, p, []byte("first version, longer than the second"))
	put(t, d, p, []byte("second"))
	if got := get(t, d, p); string(got) != "second" {
		t.Errorf("after overwrite Get = %q, want %q", got, "second")
	}
	wantList(t, d, part, p)
}

func testGetMissing(t *testing.T, d lake.Destination) {
	put(t, d, part+"/present.parquet", []byte("x"))
	wantNotFound(t, d, part+"/absent.parquet")
	wantNotFound(t, d, "events/app_id=nobody/year=2026/x.parquet")
}

func testListRecursive(t *testing.T, d lake.Destination) {
	files := []string{
		"events/app_id=shop/year=2026/month=11/day=7/hour=3/a.parquet",
		"events/app_id=shop/year=2026/month=11/day=7/hour=4/b.parquet",
		"events/app_id=shop/year=2026/month=12/day=1/hour=0/c.parquet",
		"events/app_id=blog/year=2025/month=1/day=31/hour=23/d.parquet",
		"other/e.bin",
	}
	for _, f := range files {
		put(t, d, f, []byte(f))
	}
	wantList(t, d, "events", files[:4]...)
	wantList(t, d, "events/app_id=shop", files[:3]...)
	wantList(t, d, "events/app_id=shop/year=2026/month=11", files[:2]...)
	wantList(t, d, "events/app_id=nobody")
	wantList(t, d, "nothing/here/at/all")
}

func testListHidden(t *testing.T, d lake.Destination) {
	visible := []string{
		"events/a/x.parquet",
		"events/a/b/y.parquet",
		"events/a/name_with_underscore.parquet", // "_" only counts at the start
		"events/a/dot.in.middle.parquet",
	}
	hiddenFiles := []string{
		"events/a/.tmp.parquet",            // upload in progress
		"events/_x/y",                      // hidden directory
		"events/a/_SUCCESS",                // marker file
		"events/a/.staging/deep/z.parquet", // hidden directory deeper down
		"_causality/ledger/seq-1",          // hidden at the root
	}
	for _, f := range append(slices.Clone(visible), hiddenFiles...) {
		put(t, d, f, []byte("data"))
	}
	wantList(t, d, "events", visible...)
	wantList(t, d, "events/a", visible...)
	// Hidden files are still there for Get; List only leaves them out.
	for _, f := range hiddenFiles {
		if got := get(t, d, f); string(got) != "data" {
			t.Errorf("Get(%q) = %q, want %q", f, got, "data")
		}
	}
}

func testListHiddenPrefix(t *testing.T, d lake.Destination) {
	// Hidden-ness counts only below the listed prefix: the sink's own
	// bookkeeping under "_causality" is listable by naming it.
	put(t, d, "_causality/ledger/seq-1", []byte("1"))
	put(t, d, "_causality/ledger/seq-2", []byte("2"))
	put(t, d, "_causality/ledger/.tmp-seq-3", []byte("3"))
	put(t, d, "_causality/ledger/old/_gone", []byte("4"))
	put(t, d, "_causality/other", []byte("5"))
	wantList(t, d, "_causality/ledger", "_causality/ledger/seq-1", "_causality/ledger/seq-2")
	wantList(t, d, "_causality", "_causality/ledger/seq-1", "_causality/ledger/seq-2", "_causality/other")
}

func testListBoundary(t *testing.T, d lake.Destination) {
	// A prefix is a directory: "hour=1" must not pick up "hour=10".
	base := "events/app_id=shop/year=2026/month=11/day=7"
	put(t, d, base+"/hour=1/a.parquet", []byte("1"))
	put(t, d, base+"/hour=10/b.parquet", []byte("10"))
	put(t, d, base+"/hour=1x", []byte("file beside the dir"))
	wantList(t, d, base+"/hour=1", base+"/hour=1/a.parquet")
	wantList(t, d, base+"/hour=10", base+"/hour=10/b.parquet")
}

func testListMeta(t *testing.T, d lake.Destination) {
	before := time.Now()
	p := part + "/sized.parquet"
	data := bytes.Repeat([]byte{7}, 12345)
	put(t, d, p, data)
	objs, err := d.List(ctx(t), part)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(objs) != 1 {
		t.Fatalf("List(%q) = %v, want one object", part, objs)
	}
	o := objs[0]
	if o.Path != p || o.Size != int64(len(data)) {
		t.Errorf("List(%q) = {Path: %q, Size: %d}, want {Path: %q, Size: %d}", part, o.Path, o.Size, p, len(data))
	}
	// Clocks and timestamp resolution differ (S3 keeps seconds, file
	// systems keep more), so only ask for a time near now.
	if o.ModTime.Before(before.Add(-time.Minute)) || o.ModTime.After(time.Now().Add(time.Minute)) {
		t.Errorf("ModTime = %v, want close to %v", o.ModTime, before)
	}
}

func testDelete(t *testing.T, d lake.Destination) {
	a, b, c := part+"/a.parquet", part+"/b.parquet", part+"/c.parquet"
	put(t, d, a, []byte("a"))
	put(t, d, b, []byte("b"))
	put(t, d, c, []byte("c"))

	if err := d.Delete(ctx(t), a, part+"/never-existed.parquet", b); err != nil {
		t.Fatalf("Delete of two present and one missing object: %v", err)
	}
	wantNotFound(t, d, a)
	wantNotFound(t, d, b)
	wantList(t, d, part, c)

	// Deleting again, and deleting nothing, is fine.
	if err := d.Delete(ctx(t), a); err != nil {
		t.Errorf("Delete of an already deleted object: %v", err)
	}
	if err := d.Delete(ctx(t)); err != nil {
		t.Errorf("Delete with no paths: %v", err)
	}
	if got := get(t, d, c); string(got) != "c" {
		t.Errorf("untouched object changed: %q", got)
	}
}

func testReplace(t *testing.T, d lake.Destination) {
	// Compaction: three small files become one, a fourth is left alone.
	small := []string{"s1.parquet", "s2.parquet", "s3.parquet"}
	for _, n := range small {
		put(t, d, part+"/"+n, []byte(n))
	}
	put(t, d, part+"/keep.parquet", []byte("keep"))
	sibling := "events/app_id=shop/year=2026/month=11/day=7/hour=4/s1.parquet"
	put(t, d, sibling, []byte("other hour"))

	add := []lake.File{{Name: "compacted-1.parquet", Data: []byte("s1+s2+s3")}}
	if err := d.Replace(ctx(t), part, add, small); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	wantList(t, d, part, part+"/compacted-1.parquet", part+"/keep.parquet")
	if got := get(t, d, part+"/compacted-1.parquet"); string(got) != "s1+s2+s3" {
		t.Errorf("added file = %q", got)
	}
	if got := get(t, d, part+"/keep.parquet"); string(got) != "keep" {
		t.Errorf("untouched file = %q", got)
	}
	if got := get(t, d, sibling); string(got) != "other hour" {
		t.Errorf("same name in another dir = %q, want it untouched", got)
	}
	for _, n := range small {
		wantNotFound(t, d, part+"/"+n)
	}

	// Only adding, only removing, and removing a name that is already gone.
	if err := d.Replace(ctx(t), part, []lake.File{{Name: "compacted-2.parquet", Data: []byte("2")}}, nil); err != nil {
		t.Fatalf("Replace with nothing to remove: %v", err)
	}
	if err := d.Replace(ctx(t), part, nil, []string{"compacted-1.parquet", "s1.parquet"}); err != nil {
		t.Fatalf("Replace with nothing to add: %v", err)
	}
	wantList(t, d, part, part+"/compacted-2.parquet", part+"/keep.parquet")
}

func testDeletePrefix(t *testing.T, d lake.Destination) {
	day := "events/app_id=shop/year=2026/month=11/day=7"
	gone := []string{
		day + "/hour=1/a.parquet",
		day + "/hour=1/b.parquet",
		day + "/hour=1/.tmp.parquet", // hidden files go too
		day + "/hour=1/_x/y",
	}
	kept := []string{
		day + "/hour=10/c.parquet", // shares the string prefix "hour=1"
		day + "/hour=1x",
		day + "/hour=2/d.parquet",
		"events/app_id=blog/year=2026/month=11/day=7/hour=1/e.parquet",
	}
	for _, f := range append(slices.Clone(gone), kept...) {
		put(t, d, f, []byte(f))
	}
	if err := d.DeletePrefix(ctx(t), day+"/hour=1"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	for _, f := range gone {
		wantNotFound(t, d, f)
	}
	wantList(t, d, day+"/hour=1")
	wantList(t, d, "events", kept...)
	for _, f := range kept {
		if got := get(t, d, f); string(got) != f {
			t.Errorf("Get(%q) = %q after deleting a sibling prefix", f, got)
		}
	}
	// A prefix with nothing under it is fine.
	if err := d.DeletePrefix(ctx(t), day+"/hour=23"); err != nil {
		t.Errorf("DeletePrefix of an empty prefix: %v", err)
	}
}

func testCheck(t *testing.T, d lake.Destination) {
	if err := d.Check(ctx(t)); err != nil {
		t.Errorf("Check on a working destination: %v", err)
	}
}

func testEscapedPaths(t *testing.T, d lake.Destination) {
	// Partition values are escaped the Hive way, so "%" and other
	// characters that URLs care about appear in paths literally.
	cases := []string{
		"events/app_id=a%2Fb/year=2026/x.parquet",
		"events/app_id=a%3Db%25c/year=2026/x.parquet",
		"events/app_id=with space/year=2026/x.parquet",
		"events/app_id=plus+and&amp/year=2026/x.parquet",
		"events/app_id=caf\u00e9/year=2026/x.parquet",
		"events/app_id=__HIVE_DEFAULT_PARTITION__/year=2026/x.parquet",
	}
	for i, p := range cases {
		put(t, d, p, []byte(fmt.Sprint(i)))
	}
	for i, p := range cases {
		if got := get(t, d, p); string(got) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, want %q", p, got, fmt.Sprint(i))
		}
	}
	wantList(t, d, "events", cases...)
	wantList(t, d, "events/app_id=a%2Fb", cases[0])
	if err := d.Delete(ctx(t), cases[0]); err != nil {
		t.Fatalf("Delete(%q): %v", cases[0], err)
	}
	wantNotFound(t, d, cases[0])
	if err := d.DeletePrefix(ctx(t), "events/app_id=a%3Db%25c"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	wantNotFound(t, d, cases[1])
	wantList(t, d, "events", cases[2:]...)
}

func testString(t *testing.T, d lake.Destination) {
	s := d.String()
	if strings.TrimSpace(s) == "" {
		t.Errorf("String() is empty; logs need a name for the destination")
	}
}
