package warehouse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	. "github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
)

// The lake's clock in these tests: 2026-11-07 12:30 UTC.
var cxNow = time.Date(2026, 11, 7, 12, 30, 0, 0, time.UTC)

func cxClock() time.Time { return cxNow }

// cxHour is the partition of app "shop" at hour h of 2026-11-07.
func cxHour(h int) string {
	return Partition{AppID: "shop", Year: 2026, Month: 11, Day: 7, Hour: h}.Path()
}

// cxRows makes n rows with distinct ids that carry tag (so rows of
// different files never share an id) and every column set to something
// row-specific, so a value moved to the wrong row is noticed.
func cxRows(seed uint64, tag string, n int) []Row {
	rnd := rand.New(rand.NewPCG(seed, 7))
	kinds := []string{"screen.view", "interaction.button_tap", "checkout_abandoned", "commerce.purchase_complete"}
	rows := make([]Row, n)
	for i := range rows {
		ts := cxNow.Add(-3*time.Hour).UnixMilli() + rnd.Int64N(3_600_000)
		k := kinds[rnd.IntN(len(kinds))]
		cat, typ, _ := strings.Cut(k, ".")
		rows[i] = Row{
			ID:             fmt.Sprintf("%012x-%s-%06d", rnd.Uint64()>>16, tag, i),
			DeviceID:       fmt.Sprintf("device-%05d", rnd.IntN(5000)),
			TimestampMs:    ts,
			CorrelationID:  fmt.Sprintf("sess-%d", rnd.IntN(100000)),
			EventCategory:  cat,
			EventType:      typ,
			Platform:       []string{"ios", "android", "web"}[rnd.IntN(3)],
			OSVersion:      []string{"18.1", "14", "131"}[rnd.IntN(3)],
			AppVersion:     "4.2." + fmt.Sprint(rnd.IntN(4)),
			BuildNumber:    fmt.Sprint(400 + rnd.IntN(30)),
			DeviceModel:    []string{"iPhone16,2", "Pixel 8", "SM-S918B"}[rnd.IntN(3)],
			Manufacturer:   []string{"Apple", "Google", "samsung"}[rnd.IntN(3)],
			ScreenWidth:    int32(300 + rnd.IntN(1500)),
			ScreenHeight:   int32(600 + rnd.IntN(2000)),
			Locale:         []string{"en_US", "de_DE"}[rnd.IntN(2)],
			Timezone:       "Europe/Berlin",
			NetworkType:    []string{"wifi", "cellular_4g", ""}[rnd.IntN(3)],
			Carrier:        []string{"", "Vodafone"}[rnd.IntN(2)],
			IsJailbroken:   rnd.IntN(50) == 0,
			IsEmulator:     rnd.IntN(40) == 0,
			SDKVersion:     "1.8.0",
			PayloadJSON:    fmt.Sprintf(`{"screen_name":"s%d","value":%d}`, rnd.IntN(40), rnd.IntN(1_000_000)),
			EventTime:      ts,
			ReceivedAt:     ts + rnd.Int64N(5000),
			EventName:      k,
			IdempotencyKey: fmt.Sprintf("idem-%x", rnd.Uint32()),
		}
	}
	return rows
}

func cxSortByID(rows []Row) []Row {
	slices.SortStableFunc(rows, func(a, b Row) int { return strings.Compare(a.ID, b.ID) })
	return rows
}

func cxEncode(t testing.TB, rows []Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteParquet(&buf, rows, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cxPut stores rows, sorted by id as the sink writes them, as dir/name.
// Test set-up needs no durability, so on a local lake it skips the
// fsyncs of Put, which dominate the tests' time on slow disks.
func cxPut(t testing.TB, dest Destination, dir, name string, rows []Row) {
	t.Helper()
	data := cxEncode(t, cxSortByID(slices.Clone(rows)))
	if ld, ok := dest.(*localdest.Dest); ok {
		full := filepath.Join(ld.Root(), filepath.FromSlash(dir))
		if err := os.MkdirAll(full, 0o750); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(full, ".tmp-"+name)
		if err := os.WriteFile(tmp, data, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(full, name)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := dest.Put(context.Background(), path.Join(dir, name), data); err != nil {
		t.Fatal(err)
	}
}

func cxDecode(t testing.TB, data []byte) []Row {
	t.Helper()
	r := parquet.NewGenericReader[Row](bytes.NewReader(data))
	defer r.Close()
	rows := make([]Row, r.NumRows())
	n, err := r.Read(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return rows[:n]
}

// cxFiles reads every visible file directly in dir: name -> rows.
func cxFiles(t testing.TB, dest Destination, dir string) map[string][]Row {
	t.Helper()
	ctx := context.Background()
	objs, err := dest.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]Row{}
	for _, o := range objs {
		if path.Dir(o.Path) != dir {
			continue
		}
		if !strings.HasSuffix(o.Path, ".parquet") {
			out[path.Base(o.Path)] = nil
			continue
		}
		data, err := dest.Get(ctx, o.Path)
		if err != nil {
			t.Fatal(err)
		}
		out[path.Base(o.Path)] = cxDecode(t, data)
	}
	return out
}

// cxAllRows is every row in dir, sorted by id; it fails the test if an id
// appears twice.
func cxAllRows(t testing.TB, dest Destination, dir string) []Row {
	t.Helper()
	var rows []Row
	for _, rs := range cxFiles(t, dest, dir) {
		rows = append(rows, rs...)
	}
	cxSortByID(rows)
	for i := 1; i < len(rows); i++ {
		if rows[i].ID == rows[i-1].ID {
			t.Fatalf("id %s appears more than once in %s", rows[i].ID, dir)
		}
	}
	return rows
}

func cxLake(t testing.TB) *localdest.Dest {
	t.Helper()
	d, err := localdest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func cxManifests(t testing.TB, dest Destination) []Object {
	t.Helper()
	objs, err := dest.List(context.Background(), CompactionDir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestPartitionHourEnd(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want string // RFC 3339, "" = not a partition
	}{
		{"events/app_id=shop/year=2026/month=11/day=7/hour=3", "2026-11-07T04:00:00Z"},
		{"events/app_id=shop/year=2026/month=12/day=31/hour=23", "2027-01-01T00:00:00Z"},
		{"events/app_id=a%2Fb/year=2026/month=2/day=28/hour=0", "2026-02-28T01:00:00Z"},
		{"events/app_id=shop/year=2026/month=11/day=31/hour=3", ""},
		{"events/app_id=shop/year=2026/month=13/day=1/hour=3", ""},
		{"events/app_id=shop/year=2026/month=11/day=7/hour=24", ""},
		{"events/app_id=shop/year=2026/month=11/day=7/hour=-1", ""},
		{"events/app_id=shop/year=2026/month=11/day=7/hour=+1", ""},
		{"events/app_id=shop/year=2026/month=11/day=7", ""},
		{"events/app_id=shop/year=2026/month=11/day=7/hour=3/x", ""},
		{"events/app_id=/year=2026/month=11/day=7/hour=3", ""},
		{"other/app_id=shop/year=2026/month=11/day=7/hour=3", ""},
		{"events/app_id=shop/year=2026/month=11/hour=7/day=3", ""},
	} {
		end, ok := PartitionHourEnd(tc.dir)
		got := ""
		if ok {
			got = end.Format(time.RFC3339)
		}
		if got != tc.want {
			t.Errorf("PartitionHourEnd(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

func TestRowWriterMatchesWriteParquet(t *testing.T) {
	rows := cxSortByID(cxRows(1, "w", 1000))
	for _, opts := range []EncodeOptions{{}, {RowGroupRows: 400, CreatedBy: "causality test"}} {
		want := cxEncode(t, rows)
		if opts.RowGroupRows != 0 {
			var buf bytes.Buffer
			if err := WriteParquet(&buf, rows, opts); err != nil {
				t.Fatal(err)
			}
			want = buf.Bytes()
		}
		var got bytes.Buffer
		w := NewRowWriter(&got, opts)
		for chunk := range slices.Chunk(rows, 300) {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("opts %+v: streaming writer output (%d bytes) differs from WriteParquet's (%d bytes)", opts, got.Len(), len(want))
		}
	}
}

func TestCompactMergesSmallFiles(t *testing.T) {
	// Ids of file i: random (every file spans the whole id range) or
	// time-ordered like the sink's (file i covers the i-th range), with
	// some ranges overlapping the next (two sink processes, late events).
	random := func(i, j int, id string) string { return id }
	successive := func(i, j int, id string) string { return fmt.Sprintf("%03d", i) + id }
	overlapping := func(i, j int, id string) string {
		if j%3 == 0 {
			return fmt.Sprintf("%03d", i+1) + id
		}
		return fmt.Sprintf("%03d", i) + id
	}
	for _, tc := range []struct {
		name        string
		files, rows int
		maxInputs   int
		ids         func(file, row int, id string) string
	}{
		{"two files", 2, 100, 0, random},
		{"many files", 25, 20, 0, random},
		{"many files, successive id ranges", 25, 20, 0, successive},
		{"many files, overlapping id ranges", 25, 20, 0, overlapping},
		{"more files than MaxInputs", 13, 20, 4, random},
		{"an empty file among them", 3, 0, 0, random},
		{"an empty file among successive ones", 3, 0, 0, successive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dest := cxLake(t)
			dir := cxHour(9)
			var want []Row
			for i := range tc.files {
				rows := cxRows(uint64(i), fmt.Sprintf("f%02d", i), tc.rows+i)
				for j := range rows {
					rows[j].ID = tc.ids(i, j, rows[j].ID)
				}
				// Names in the opposite order of the id ranges, so the
				// merge cannot rely on name order.
				cxPut(t, dest, dir, fmt.Sprintf("%d-%d-aa.parquet", 9000-i*100, 9000-i*100+99), rows)
				want = append(want, rows...)
			}
			c := &Compactor{Dest: dest, Now: cxClock, MaxInputs: tc.maxInputs}
			rep, err := c.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			files := cxFiles(t, dest, dir)
			if len(files) != 1 {
				t.Errorf("%d files after compaction, want 1: %v", len(files), slices.Sorted(maps.Keys(files)))
			}
			for name, rows := range files {
				if !strings.HasPrefix(name, "c-") || !strings.HasSuffix(name, ".parquet") {
					t.Errorf("output named %q", name)
				}
				if !slices.IsSortedFunc(rows, func(a, b Row) int { return strings.Compare(a.ID, b.ID) }) {
					t.Errorf("output %s is not sorted by id", name)
				}
			}
			got := cxAllRows(t, dest, dir)
			cxSortByID(want)
			if len(got) != len(want) {
				t.Fatalf("%d rows after compaction, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("row %d after compaction:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
			wantPasses := 1
			if tc.maxInputs > 0 {
				// Each pass takes maxInputs files and leaves one small
				// output, which the next pass takes again.
				wantPasses = (tc.files - 1 + tc.maxInputs - 2) / (tc.maxInputs - 1)
			}
			if rep.Partitions != 1 || rep.Compacted != 1 || rep.Passes != wantPasses ||
				rep.RowsIn < int64(len(want)) || rep.Duplicates != 0 || rep.RowsIn != rep.RowsOut {
				t.Errorf("report %+v, want 1 partition, %d passes, %d rows, no duplicates", rep, wantPasses, len(want))
			}
			if wantPasses == 1 && (rep.FilesIn != tc.files || rep.RowsIn != int64(len(want))) {
				t.Errorf("report %+v: want %d files and %d rows in", rep, tc.files, len(want))
			}
			if m := cxManifests(t, dest); len(m) != 0 {
				t.Errorf("cxManifests left behind: %v", m)
			}
		})
	}
}

// TestCompactOutputEncoding checks that outputs are encoded like the
// sink's files: the same schema, zstd, dictionary pages on the same
// columns.
func TestCompactOutputEncoding(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	dir := cxHour(8)
	for i := range 3 {
		cxPut(t, dest, dir, fmt.Sprintf("f%d.parquet", i), cxRows(uint64(i), fmt.Sprint(i), 100))
	}
	if _, err := (&Compactor{Dest: dest, Now: cxClock}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	objs, _ := dest.List(ctx, dir)
	if len(objs) != 1 {
		t.Fatalf("want one output, got %v", objs)
	}
	data, err := dest.Get(ctx, objs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	refData := cxEncode(t, cxRows(9, "x", 10))
	ref, err := parquet.OpenFile(bytes.NewReader(refData), int64(len(refData)))
	if err != nil {
		t.Fatal(err)
	}
	if !parquet.EqualNodes(f.Schema(), ref.Schema()) {
		t.Errorf("output schema %v differs from WriteParquet's %v", f.Schema(), ref.Schema())
	}
	refCols := ref.Metadata().RowGroups[0].Columns
	for i, cc := range f.Metadata().RowGroups[0].Columns {
		name := cc.MetaData.PathInSchema[0]
		if cc.MetaData.Codec != format.Zstd {
			t.Errorf("column %s codec %v, want zstd", name, cc.MetaData.Codec)
		}
		hasDict, refDict := cc.MetaData.DictionaryPageOffset != 0, refCols[i].MetaData.DictionaryPageOffset != 0
		if hasDict != refDict {
			t.Errorf("column %s dictionary = %v, WriteParquet's %v", name, hasDict, refDict)
		}
	}
	if f.Metadata().CreatedBy != ref.Metadata().CreatedBy {
		t.Errorf("created by %q, WriteParquet's %q", f.Metadata().CreatedBy, ref.Metadata().CreatedBy)
	}
}

func TestCompactDropsDuplicateIDs(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	dir := cxHour(10)
	base := cxRows(1, "d", 200)
	// Three copies of overlapping ranges of the same events, told apart by
	// carrier; received_at decides which copy stays.
	mk := func(from, to int, carrier string, shift int64) []Row {
		rows := slices.Clone(base[from:to])
		for i := range rows {
			rows[i].Carrier = carrier
			rows[i].ReceivedAt += shift
		}
		return rows
	}
	a := mk(0, 150, "a", 0)       // earliest for 0..149 unless b ties
	b := mk(100, 200, "b", 0)     // ties a on 100..149 (a is the first input), only copy of 150..199
	cc := mk(50, 120, "c", -1000) // earliest of all on 50..119
	// A duplicate inside one file: the second copy has a later received_at.
	dupInFile := append(mk(0, 10, "d", 5000), mk(190, 200, "d", -5000)...)
	cxPut(t, dest, dir, "1-a.parquet", a)
	cxPut(t, dest, dir, "2-b.parquet", b)
	cxPut(t, dest, dir, "3-c.parquet", cc)
	cxPut(t, dest, dir, "4-d.parquet", dupInFile)

	rep, err := (&Compactor{Dest: dest, Now: cxClock}).RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := cxAllRows(t, dest, dir)
	if len(got) != len(base) {
		t.Fatalf("%d rows after dedup, want %d", len(got), len(base))
	}
	wantDup := int64(len(a) + len(b) + len(cc) + len(dupInFile) - len(base))
	if rep.Duplicates != wantDup || rep.RowsOut != int64(len(base)) {
		t.Errorf("report %+v, want %d duplicates, %d rows out", rep, wantDup, len(base))
	}
	for _, r := range got {
		i := slices.IndexFunc(base, func(x Row) bool { return x.ID == r.ID })
		var want string
		switch {
		case i >= 50 && i < 120:
			want = "c"
		case i >= 190:
			want = "d" // received 5 s earlier than b's copy
		case i < 150:
			want = "a"
		default:
			want = "b"
		}
		if r.Carrier != want {
			t.Errorf("row %d (%s) kept the copy from %q, want %q", i, r.ID, r.Carrier, want)
		}
		w := base[i]
		w.Carrier, w.ReceivedAt = r.Carrier, r.ReceivedAt
		if !reflect.DeepEqual(r, w) {
			t.Errorf("row %d changed beyond carrier/received_at: %+v", i, r)
		}
	}
}

// TestCompactDedupAtRangeBoundaries has files with successive id ranges
// (read one after another) whose boundary ids are duplicated: the copy with
// the earliest received_at must win whichever file is open first.
func TestCompactDedupAtRangeBoundaries(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	dir := cxHour(10)
	mk := func(prefix string, n int, carrier string) []Row {
		rows := cxRows(uint64(len(prefix)+n), carrier, n)
		for i := range rows {
			rows[i].ID = fmt.Sprintf("%s-%04d", prefix, i)
			rows[i].Carrier = carrier
		}
		return rows
	}
	a := mk("001", 50, "a")
	b := mk("002", 50, "b")
	c := mk("003", 50, "c")
	// a's last id is b's first; b's first copy arrived earlier.
	a = append(a, b[0])
	a[len(a)-1].Carrier, a[len(a)-1].ReceivedAt = "a", b[0].ReceivedAt+1
	// c's first id is b's last; c's copy arrived earlier.
	cDup := b[len(b)-1]
	cDup.Carrier, cDup.ReceivedAt = "c", b[len(b)-1].ReceivedAt-1
	c = append(c, cDup)
	cxPut(t, dest, dir, "1.parquet", c)
	cxPut(t, dest, dir, "2.parquet", a)
	cxPut(t, dest, dir, "3.parquet", b)
	rep, err := (&Compactor{Dest: dest, Now: cxClock}).RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := cxAllRows(t, dest, dir)
	if len(got) != 150 || rep.Duplicates != 2 {
		t.Fatalf("%d rows, %d duplicates; want 150 and 2", len(got), rep.Duplicates)
	}
	for _, r := range got {
		want := map[byte]string{'1': "a", '2': "b", '3': "c"}[r.ID[2]]
		if r.ID == b[len(b)-1].ID {
			want = "c"
		}
		if r.Carrier != want {
			t.Errorf("%s kept the copy from %q, want %q", r.ID, r.Carrier, want)
		}
	}
}

func TestCompactLeavesOpenHoursAndReferencedFiles(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	led := NewCompactionLedger(dest)

	open := cxHour(12)   // the current hour
	recent := cxHour(11) // ended 30 minutes ago: not yet After (1h)
	closed := cxHour(10) // ended 1h30 ago
	guarded := cxHour(9) // closed, but only one unreferenced file
	for _, dir := range []string{open, recent, closed, guarded} {
		for i := range 3 {
			cxPut(t, dest, dir, fmt.Sprintf("%d.parquet", i), cxRows(uint64(i), dir[len(dir)-2:]+fmt.Sprint(i), 30))
		}
	}
	// A file that is not Parquet is never an input.
	if err := dest.Put(ctx, closed+"/notes.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompactionIntent(ctx, led, "1-abcd", closed+"/0.parquet", guarded+"/0.parquet"); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompactionIntent(ctx, led, "2-abcd", guarded+"/1.parquet"); err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string][]Row{}
	for _, dir := range []string{open, recent, closed, guarded} {
		before[dir] = cxFiles(t, dest, dir)
	}

	c := &Compactor{Dest: dest, Ledger: led, Now: cxClock}
	rep, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Partitions != 2 || rep.Compacted != 1 || rep.FilesIn != 2 {
		t.Errorf("report %+v, want 2 closed partitions looked at, 1 compacted from 2 files", rep)
	}
	for _, dir := range []string{open, recent, guarded} {
		if got := cxFiles(t, dest, dir); !reflect.DeepEqual(got, before[dir]) {
			t.Errorf("%s changed: %v", dir, slices.Sorted(maps.Keys(got)))
		}
	}
	got := cxFiles(t, dest, closed)
	names := slices.Sorted(maps.Keys(got))
	if len(names) != 3 || names[0] != "0.parquet" || !strings.HasPrefix(names[1], "c-") || names[2] != "notes.txt" {
		t.Errorf("closed hour holds %v, want the referenced 0.parquet, one output and notes.txt", names)
	}
	if !reflect.DeepEqual(got["0.parquet"], before[closed]["0.parquet"]) {
		t.Error("the referenced file changed")
	}
	want := cxSortByID(append(slices.Clone(before[closed]["1.parquet"]), before[closed]["2.parquet"]...))
	if !reflect.DeepEqual(got[names[1]], want) {
		t.Error("the output does not hold exactly the two unreferenced files' rows")
	}

	// Once the intents are gone (the ack floor passed them), the rest is
	// merged too.
	if err := dest.DeletePrefix(ctx, LedgerDir); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(cxFiles(t, dest, guarded)); n != 1 {
		t.Errorf("guarded hour has %d files after its intents went, want 1", n)
	}
	if n := len(cxFiles(t, dest, closed)); n != 2 { // output + notes.txt
		t.Errorf("closed hour has %d files after its intents went, want 2", n)
	}
}

func TestCompactIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	dirs := []string{cxHour(3), cxHour(4)}
	for _, dir := range dirs {
		for i := range 6 {
			cxPut(t, dest, dir, fmt.Sprintf("%d.parquet", i), cxRows(uint64(i), fmt.Sprint(i), 40))
		}
	}
	c := &Compactor{Dest: dest, Now: cxClock, TargetBytes: 24 << 10}
	rep, err := c.RunOnce(ctx)
	if err != nil || !rep.Did() {
		t.Fatalf("first run: %+v, %v", rep, err)
	}
	snap := func() []Object {
		objs, err := dest.List(ctx, "events")
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, cxManifests(t, dest)...)
		slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
		return objs
	}
	first := snap()
	rep, err = c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Did() || rep.FilesIn != 0 || rep.Partitions != 2 {
		t.Errorf("second run did something: %+v", rep)
	}
	if second := snap(); !reflect.DeepEqual(first, second) {
		t.Errorf("second run changed the lake:\n%v\n%v", first, second)
	}
}

func TestCompactRejectsUnsortedInput(t *testing.T) {
	ctx := context.Background()
	dest := cxLake(t)
	dir := cxHour(5)
	other := cxHour(6)
	cxPut(t, dest, dir, "1.parquet", cxRows(1, "a", 100))
	rows := cxSortByID(cxRows(2, "b", 100))
	rows[50], rows[51] = rows[51], rows[50]
	if err := dest.Put(ctx, dir+"/2.parquet", cxEncode(t, rows)); err != nil {
		t.Fatal(err)
	}
	cxPut(t, dest, dir, "3.parquet", cxRows(3, "c", 100))
	// Another partition is compacted all the same.
	cxPut(t, dest, other, "1.parquet", cxRows(4, "d", 100))
	cxPut(t, dest, other, "2.parquet", cxRows(5, "e", 100))

	read := func() map[string][]byte {
		out := map[string][]byte{}
		objs, _ := dest.List(ctx, "events")
		objs = append(objs, cxManifests(t, dest)...)
		for _, o := range objs {
			data, _ := dest.Get(ctx, o.Path)
			out[o.Path] = data
		}
		return out
	}
	before := read()
	rep, err := (&Compactor{Dest: dest, Now: cxClock}).RunOnce(ctx)
	if !errors.Is(err, ErrUnsortedInput) {
		t.Fatalf("err = %v, want ErrUnsortedInput", err)
	}
	if !strings.Contains(err.Error(), dir+"/2.parquet") {
		t.Errorf("error does not name the file: %v", err)
	}
	after := read()
	for p, data := range before {
		if strings.HasPrefix(p, dir+"/") && !bytes.Equal(after[p], data) {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if strings.HasPrefix(p, dir+"/") && before[p] == nil {
			t.Errorf("%s appeared", p)
		}
		if strings.HasPrefix(p, CompactionDir) {
			t.Errorf("manifest %s left behind", p)
		}
	}
	if rep.Compacted != 1 || len(cxFiles(t, dest, other)) != 1 {
		t.Errorf("the sorted partition was not compacted: %+v", rep)
	}
}

func TestCompactBoundedOutputSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		target    int64
		maxInputs int
	}{
		{"32KiB", 32 << 10, 0},
		{"64KiB", 64 << 10, 0},
		{"64KiB, 3 inputs a pass", 64 << 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dest := cxLake(t)
			dir := cxHour(7)
			var want []Row
			for i := range 16 {
				rows := cxRows(uint64(i), fmt.Sprintf("f%02d", i), 150)
				cxPut(t, dest, dir, fmt.Sprintf("%02d.parquet", i), rows)
				want = append(want, rows...)
			}
			objs, _ := dest.List(ctx, dir)
			var inBytes int64
			for _, o := range objs {
				if o.Size >= tc.target/2 {
					t.Fatalf("input %s is %d bytes, not small for target %d", o.Path, o.Size, tc.target)
				}
				inBytes += o.Size
			}
			c := &Compactor{Dest: dest, Now: cxClock, TargetBytes: tc.target, MaxInputs: tc.maxInputs}
			rep, err := c.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			files := cxFiles(t, dest, dir)
			objs, _ = dest.List(ctx, dir)
			small := 0
			var outBytes int64
			for _, o := range objs {
				outBytes += o.Size
				// The cut happens within one batch of rows after the
				// estimate reaches the target, plus the footer.
				if o.Size > tc.target+tc.target/4 {
					t.Errorf("output %s is %d bytes, target %d", path.Base(o.Path), o.Size, tc.target)
				}
				if o.Size < tc.target/2 {
					small++
				}
			}
			if len(files) < 2 || small > 1 {
				t.Errorf("%d outputs (%d small) from %d input bytes, target %d", len(files), small, inBytes, tc.target)
			}
			t.Logf("%d inputs, %d bytes -> %d outputs, %d bytes; %d passes", 16, inBytes, len(files), outBytes, rep.Passes)
			// Outputs of one pass cover disjoint id ranges.
			type span struct{ lo, hi, name string }
			var spans []span
			for name, rows := range files {
				if !slices.IsSortedFunc(rows, func(a, b Row) int { return strings.Compare(a.ID, b.ID) }) {
					t.Errorf("%s not sorted", name)
				}
				spans = append(spans, span{rows[0].ID, rows[len(rows)-1].ID, name})
			}
			got := cxAllRows(t, dest, dir)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i, w := range cxSortByID(want) {
				if !reflect.DeepEqual(got[i], w) {
					t.Fatalf("row %d differs", i)
				}
			}
			if tc.maxInputs == 0 {
				// Every pass reads about target bytes; its outputs do
				// not overlap (outputs of different passes may).
				byPass := map[string][]span{}
				for _, s := range spans {
					id := strings.Split(s.name, "-")[1]
					byPass[id] = append(byPass[id], s)
				}
				for id, ss := range byPass {
					slices.SortFunc(ss, func(a, b span) int { return strings.Compare(a.lo, b.lo) })
					for i := 1; i < len(ss); i++ {
						if ss[i].lo <= ss[i-1].hi {
							t.Errorf("pass %s: outputs %s and %s overlap", id, ss[i-1].name, ss[i].name)
						}
					}
				}
			}
		})
	}
}

// cxCrashDest is a real destination that "crashes" after a number of
// mutating steps: that step and every later one fail, as nothing runs after
// a process dies. With s3 set, Replace is done the way s3dest does it
// (upload each file, then delete each removed one), each a step, so a
// crash can land between any two of them; otherwise Replace is localdest's
// atomic one, a single step.
type cxCrashDest struct {
	Destination
	s3     bool
	budget int
	steps  int
}

var errCxCrash = errors.New("simulated crash")

func (d *cxCrashDest) step() error {
	d.steps++
	if d.steps > d.budget {
		return errCxCrash
	}
	return nil
}

func (d *cxCrashDest) crashed() bool { return d.steps > d.budget }

func (d *cxCrashDest) Put(ctx context.Context, p string, data []byte) error {
	if err := d.step(); err != nil {
		return err
	}
	return d.Destination.Put(ctx, p, data)
}

func (d *cxCrashDest) Delete(ctx context.Context, paths ...string) error {
	for _, p := range paths {
		if err := d.step(); err != nil {
			return err
		}
		if err := d.Destination.Delete(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (d *cxCrashDest) Replace(ctx context.Context, dir string, add []File, remove []string) error {
	if !d.s3 {
		if err := d.step(); err != nil {
			return err
		}
		return d.Destination.Replace(ctx, dir, add, remove)
	}
	for _, f := range add {
		if err := d.Put(ctx, dir+"/"+f.Name, f.Data); err != nil {
			return err
		}
	}
	for _, name := range remove {
		if err := d.Delete(ctx, dir+"/"+name); err != nil {
			return err
		}
	}
	return nil
}

func (d *cxCrashDest) DeletePrefix(ctx context.Context, prefix string) error {
	if err := d.step(); err != nil {
		return err
	}
	return d.Destination.DeletePrefix(ctx, prefix)
}

// TestCompactConvergesAtEveryCrashPoint crashes a compaction after each of
// its mutating steps and then the recovery run after each of its own, for
// an atomic (local) and a non-atomic (S3-style) swap, and checks that a
// final run leaves every event exactly once.
func TestCompactConvergesAtEveryCrashPoint(t *testing.T) {
	ctx := context.Background()
	dir := cxHour(2)
	var want []Row
	const files = 4 // two passes at the target below
	for i := range files {
		want = append(want, cxRows(uint64(i), fmt.Sprint(i), 60)...)
	}
	cxSortByID(want)

	setup := func(t *testing.T) *localdest.Dest {
		dest := cxLake(t)
		for i := range files {
			rows := cxRows(uint64(i), fmt.Sprint(i), 60)
			cxPut(t, dest, dir, fmt.Sprintf("%d.parquet", i), rows)
		}
		return dest
	}
	check := func(t *testing.T, dest Destination) {
		t.Helper()
		got := cxAllRows(t, dest, dir)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("lake holds %d rows, want exactly the %d distinct events", len(got), len(want))
		}
		if m := cxManifests(t, dest); len(m) != 0 {
			t.Fatalf("cxManifests left: %v", m)
		}
	}
	for _, s3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("s3=%v", s3), func(t *testing.T) {
			// A small target so that one run makes several passes and a
			// pass several outputs.
			const target = 32 << 10
			points := 0
			for first := 0; ; first++ {
				dest := setup(t)
				cd := &cxCrashDest{Destination: dest, s3: s3, budget: first}
				_, err := (&Compactor{Dest: cd, Now: cxClock, TargetBytes: target}).RunOnce(ctx)
				if !cd.crashed() {
					if err != nil {
						t.Fatal(err)
					}
					check(t, dest)
					break
				}
				for second := 0; ; second++ {
					points++
					// Copy the crashed state, crash the recovery after
					// `second` steps, then recover for real.
					lake := cxLake(t)
					cxCopyLake(t, dest.Root(), lake.Root())
					rd := &cxCrashDest{Destination: lake, s3: s3, budget: second}
					_, _ = (&Compactor{Dest: rd, Now: cxClock, TargetBytes: target}).RunOnce(ctx)
					c := &Compactor{Dest: lake, Now: cxClock, TargetBytes: target}
					if _, err := c.RunOnce(ctx); err != nil {
						t.Fatalf("crash after %d, then %d steps: %v", first, second, err)
					}
					check(t, lake)
					if rep, err := c.RunOnce(ctx); err != nil || rep.Did() {
						t.Fatalf("crash after %d, then %d steps: run after recovery did %+v, %v", first, second, rep, err)
					}
					if !rd.crashed() {
						break
					}
				}
			}
			t.Logf("%d crash points checked", points)
			if points < 15 {
				t.Fatalf("only %d crash points: the set-up does not exercise the compactor", points)
			}
		})
	}
}

func cxCopyLake(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o750)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCompactResolvesLeftoverStates builds, by hand, the state each crash
// point leaves (a manifest plus some of its inputs and outputs, as local
// and S3 swaps leave them) and checks that one run settles it the right
// way, leaves every event exactly once and removes the manifest.
func TestCompactResolvesLeftoverStates(t *testing.T) {
	ctx := context.Background()
	dir := cxHour(1)
	// The inputs, and the outputs and manifest a pass makes of them with
	// a small target, so that there are several outputs to crash between.
	const planTarget = 12 << 10
	inputs := map[string][]byte{}
	var names []string
	var want []Row
	template := cxLake(t)
	for i := range 8 {
		rows := cxRows(uint64(i), fmt.Sprint(i), 60)
		name := fmt.Sprintf("%d.parquet", i)
		cxPut(t, template, dir, name, rows)
		inputs[name], _ = template.Get(ctx, dir+"/"+name)
		names = append(names, name)
		want = append(want, rows...)
	}
	cxSortByID(want)
	outs, mpath, manifest, err := PlanCompaction(ctx, template, dir, names, planTarget)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) < 3 {
		t.Fatalf("want several outputs to crash between, got %d", len(outs))
	}
	// The planned outputs are what a pass writes: sorted, disjoint, cut
	// near the target.
	var prevHi string
	for i, f := range outs {
		rows := cxDecode(t, f.Data)
		if !slices.IsSortedFunc(rows, func(a, b Row) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("output %d not sorted", i)
		}
		if i > 0 && rows[0].ID <= prevHi {
			t.Errorf("output %d overlaps output %d", i, i-1)
		}
		prevHi = rows[len(rows)-1].ID
		if i < len(outs)-1 && (len(f.Data) < planTarget/2 || len(f.Data) > 2*planTarget) {
			t.Errorf("output %d is %d bytes for a target of %d", i, len(f.Data), planTarget)
		}
	}

	all := func(n int) []int { return cxSeq(0, n) }
	none := func(int) []int { return nil }
	for _, tc := range []struct {
		name       string
		outputs    func(n int) []int // which outputs exist
		inputs     func(n int) []int // which inputs exist
		stage      bool              // a hidden staging directory left by a local Replace
		forward    bool
		noManifest bool
	}{
		{name: "crash before the manifest", outputs: none, inputs: all, noManifest: true},
		{name: "manifest stored, swap not started", outputs: none, inputs: all},
		{name: "local swap staged, not exchanged", outputs: none, inputs: all, stage: true},
		{name: "local swap done, manifest not deleted", outputs: all, inputs: none, stage: true, forward: true},
		{name: "s3: crash after the first upload", outputs: func(int) []int { return []int{0} }, inputs: all},
		{name: "s3: crash before the last upload", outputs: func(n int) []int { return cxSeq(0, n-1) }, inputs: all},
		{name: "s3: uploads done, nothing deleted", outputs: all, inputs: all, forward: true},
		{name: "s3: crash among the deletes", outputs: all, inputs: func(n int) []int { return cxSeq(n/2, n) }, forward: true},
		{name: "s3: deletes done, manifest not deleted", outputs: all, inputs: none, forward: true},
		{name: "roll back interrupted", outputs: func(n int) []int { return cxSeq(1, n-1) }, inputs: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := cxLake(t)
			keepIn := tc.inputs(len(names))
			for i, name := range names {
				if slices.Contains(keepIn, i) {
					if err := dest.Put(ctx, dir+"/"+name, inputs[name]); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, i := range tc.outputs(len(outs)) {
				if err := dest.Put(ctx, dir+"/"+outs[i].Name, outs[i].Data); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.noManifest {
				if err := dest.Put(ctx, mpath, manifest); err != nil {
					t.Fatal(err)
				}
			}
			if tc.stage {
				stage := filepath.Join(dest.Root(), filepath.FromSlash(path.Dir(dir)), ".hour=1.replace-123")
				if err := os.MkdirAll(stage, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(stage, outs[0].Name), outs[0].Data, 0o640); err != nil {
					t.Fatal(err)
				}
			}

			var logs bytes.Buffer
			var mu sync.Mutex
			c := &Compactor{Dest: dest, Now: cxClock, Log: cxLogger(&logs, &mu)}
			rep, err := c.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.noManifest && rep.Recovered != 0:
				t.Errorf("recovered %d without a manifest", rep.Recovered)
			case !tc.noManifest && rep.Recovered != 1:
				t.Errorf("recovered %d, want 1", rep.Recovered)
			case !tc.noManifest && !strings.Contains(logs.String(), fmt.Sprintf("rolled_forward=%v", tc.forward)):
				t.Errorf("want rolled_forward=%v, logged: %s", tc.forward, logs.String())
			}
			if got := cxAllRows(t, dest, dir); !reflect.DeepEqual(got, want) {
				t.Fatalf("lake holds %d rows, want exactly the %d events", len(got), len(want))
			}
			if ms := cxManifests(t, dest); len(ms) != 0 {
				t.Errorf("manifests left: %v", ms)
			}
			if rep, err := c.RunOnce(ctx); err != nil || rep.Did() {
				t.Errorf("next run did %+v, %v", rep, err)
			}
		})
	}
}

func cxSeq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestCompactLocalReadersSeeEveryIDOnce has readers count the rows of a
// partition (listing the directory, then each listed file's footer) while
// compaction swaps it, round after round. On local disk the swap is one
// RENAME_EXCHANGE, so every complete count must be the number of distinct
// ids. The one tolerated event is a listed file gone by the time it is
// opened (it was swapped out in between): that listing is retried, and
// the test reports how often it happened.
func TestCompactLocalReadersSeeEveryIDOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx := context.Background()
	dest := cxLake(t)
	const (
		rounds  = 2
		files   = 100
		perFile = 5
	)
	var counts, retries, wrong atomic.Int64
	var firstWrong atomic.Value
	for round := range rounds {
		dir := cxHour(round)
		full := filepath.Join(dest.Root(), filepath.FromSlash(dir))
		for i := range files {
			// Long names, as the sink's are (<first seq>-<last seq>-<hex>).
			name := fmt.Sprintf("%010d-%010d-%08x.parquet", round*100000+i*100, round*100000+i*100+99, i)
			cxPut(t, dest, dir, name, cxRows(uint64(round*1000+i), fmt.Sprintf("r%df%03d", round, i), perFile))
		}
		const want = files * perFile

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					n, vanished, err := cxCountRows(full)
					switch {
					case err != nil:
						firstWrong.CompareAndSwap(nil, err.Error())
						wrong.Add(1)
					case vanished:
						retries.Add(1)
					case n != want:
						firstWrong.CompareAndSwap(nil, fmt.Sprintf("round %d: counted %d rows, want %d", round, n, want))
						wrong.Add(1)
					default:
						counts.Add(1)
					}
				}
			}()
		}
		// Several passes per round (MaxInputs), each one swap.
		c := &Compactor{Dest: dest, Now: cxClock, MaxInputs: 12}
		rep, err := c.RunOnce(ctx)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passes < 5 {
			t.Fatalf("round %d: only %d passes", round, rep.Passes)
		}
	}
	t.Logf("%d consistent counts, %d listings retried because a listed file was swapped out before it was opened, %d wrong",
		counts.Load(), retries.Load(), wrong.Load())
	if wrong.Load() > 0 {
		t.Fatalf("%d counts were wrong; first: %v", wrong.Load(), firstWrong.Load())
	}
	if counts.Load() == 0 {
		t.Fatal("readers never completed a count")
	}
}

// cxCountRows lists dir like a query engine and sums the row counts in the
// footers of its visible Parquet files. vanished reports a listed file
// that could not be opened any more.
func cxCountRows(dir string) (n int64, vanished bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".parquet") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return 0, true, nil
		}
		if err != nil {
			return 0, false, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, false, err
		}
		pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			f.Close()
			return 0, false, fmt.Errorf("open %s: %w", name, err)
		}
		n += pf.NumRows()
		f.Close()
	}
	return n, false, nil
}

func cxLogger(buf *bytes.Buffer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(cxLockedWriter{buf, mu}, nil))
}

type cxLockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w cxLockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
