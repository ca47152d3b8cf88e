package warehouse_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	. "github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// testStream is a real embedded JetStream with the EVENTS stream.
func testStream(t testing.TB) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{
		StoreDir: t.TempDir(), DedupWindow: time.Minute, MaxAge: time.Hour, MaxBytes: 1 << 30,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// publish stores envelopes as ingest does and returns their ids.
func publish(t testing.TB, b *bus.Bus, envs []*causalityv1.EventEnvelope, receivedMs int64) []string {
	t.Helper()
	msgs := make([]bus.Message, len(envs))
	ids := make([]string, len(envs))
	for i, e := range envs {
		data, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = bus.Message{Subject: "events." + e.GetAppId() + ".screen.view", Data: data, MsgID: e.GetId(), ReceivedMs: receivedMs}
		ids[i] = e.GetId()
	}
	res, err := b.Publish(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Duplicate {
			t.Fatalf("publish %d: err %v duplicate %v", i, r.Err, r.Duplicate)
		}
	}
	return ids
}

// events makes n screen views for app, at tsMs plus i seconds.
func events(app string, n int, tsMs int64) []*causalityv1.EventEnvelope {
	out := make([]*causalityv1.EventEnvelope, n)
	for i := range out {
		out[i] = &causalityv1.EventEnvelope{
			Id: fmt.Sprintf("%s-%08d", app, i), AppId: app, DeviceId: "device-1",
			TimestampMs:   tsMs + int64(i)*1000,
			DeviceContext: &causalityv1.DeviceContext{Platform: causalityv1.Platform_PLATFORM_IOS, OsVersion: "18.1", Locale: "en_US"},
			Payload:       &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Home"}},
		}
	}
	return out
}

type lakeRow struct {
	Row
	path string
}

// readLake reads every visible Parquet file of a local lake.
func readLake(t *testing.T, root string) []lakeRow {
	t.Helper()
	var out []lakeRow
	err := filepath.WalkDir(filepath.Join(root, "events"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			return nil
		}
		rows, err := parquet.ReadFile[Row](p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rel, _ := filepath.Rel(root, p)
		for _, r := range rows {
			out = append(out, lakeRow{r, filepath.ToSlash(rel)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type testSink struct {
	*Sink
	dest    *localdest.Dest
	metrics *Metrics
	done    chan error
}

func startSink(t testing.TB, b *bus.Bus, root string, opts SinkOptions) *testSink {
	t.Helper()
	ctx := context.Background()
	dest, err := localdest.New(root)
	if err != nil {
		t.Fatal(err)
	}
	opts.HeaderReceivedAt = bus.HeaderReceivedAt
	cons, err := b.EnsureConsumer(ctx, ConsumerConfig(bus.WarehouseConsumer, opts))
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry(), dest.String())
	s := NewSink(cons, b.Conn(), dest, StreamID(st.CachedInfo()), opts, m, slog.New(slog.DiscardHandler))
	ts := &testSink{Sink: s, dest: dest, metrics: m, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.Stop(stopCtx)
	})
	return ts
}

// waitWritten waits until the consumer has nothing left and the lake holds n rows.
func waitWritten(t *testing.T, s *testSink, root string, n int) []lakeRow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lag, err := s.Lag(context.Background())
		rows := readLake(t, root)
		if err == nil && lag == 0 && len(rows) >= n {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("lake has %d rows, want %d; lag %d (%v); status %+v", len(rows), n, lag, err, s.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exactlyOnce fails unless the lake holds each of ids exactly once.
func exactlyOnce(t *testing.T, rows []lakeRow, ids []string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("id %s is in the lake %d times, want once", id, seen[id])
		}
		delete(seen, id)
	}
	for id := range seen {
		t.Errorf("id %s is in the lake but was never published", id)
	}
}

func TestSinkWritesEachEventOnceInItsPartition(t *testing.T) {
	b := testStream(t)
	root := t.TempDir()
	s := startSink(t, b, root, SinkOptions{FlushInterval: 200 * time.Millisecond})

	hour3 := time.Date(2026, 11, 7, 3, 10, 0, 0, time.UTC).UnixMilli()
	var ids []string
	ids = append(ids, publish(t, b, events("shop", 300, hour3), hour3+3_600_000)...)           // hour 3, received an hour later
	ids = append(ids, publish(t, b, events("a/b=c", 50, hour3+3_600_000), hour3+3_600_000)...) // hour 4, escaped app id
	ids = append(ids, publish(t, b, events("clock", 5, 0), hour3)...)                          // absurd clock: receive time
	rows := waitWritten(t, s, root, len(ids))
	exactlyOnce(t, rows, ids)

	for _, r := range rows {
		want := "events/app_id=shop/year=2026/month=11/day=7/hour=3/"
		switch {
		case strings.HasPrefix(r.ID, "a/b=c"):
			want = "events/app_id=a%2Fb%3Dc/year=2026/month=11/day=7/hour=4/"
		case strings.HasPrefix(r.ID, "clock"):
			want = "events/app_id=clock/year=2026/month=11/day=7/hour=3/"
		}
		if !strings.HasPrefix(r.path, want) {
			t.Fatalf("row %s in %s, want under %s", r.ID, r.path, want)
		}
		if r.ReceivedAt == 0 || r.EventTime == 0 {
			t.Fatalf("row %s lacks times: %+v", r.ID, r.Row)
		}
	}
	// Each file is sorted by id (compaction merges on it).
	byFile := map[string][]string{}
	for _, r := range rows {
		byFile[r.path] = append(byFile[r.path], r.ID)
	}
	for f, fileIDs := range byFile {
		if !slices.IsSorted(fileIDs) {
			t.Errorf("%s is not sorted by id", f)
		}
	}
	if got := testutil.ToFloat64(s.metrics.RowsWritten); got != float64(len(ids)) {
		t.Errorf("rows written metric %v, want %d", got, len(ids))
	}
}

func TestSinkCutsFilesByCount(t *testing.T) {
	b := testStream(t)
	root := t.TempDir()
	s := startSink(t, b, root, SinkOptions{FlushInterval: time.Hour, FlushMaxEvents: 100})
	ts := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli() // 1000 s: all in one hour
	ids := publish(t, b, events("shop", 1000, ts), ts)
	rows := waitWritten(t, s, root, len(ids))
	exactlyOnce(t, rows, ids)
	perFile := map[string]int{}
	for _, r := range rows {
		perFile[r.path]++
	}
	if len(perFile) != 10 {
		t.Errorf("%d files, want 10 of 100 events", len(perFile))
	}
	for f, n := range perFile {
		if n != 100 {
			t.Errorf("%s holds %d events, want 100", f, n)
		}
	}
}

func TestSinkBoundsMemoryAcrossPartitions(t *testing.T) {
	b := testStream(t)
	root := t.TempDir()
	const maxBytes = 64 << 10 // about 150 rows
	s := startSink(t, b, root, SinkOptions{FlushInterval: time.Hour, FlushMaxBytes: maxBytes})
	ts := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	var ids []string
	for app := range 40 { // 40 partitions, none ever reaching a size or count limit alone
		ids = append(ids, publish(t, b, events(fmt.Sprintf("app%03d", app), 10, ts), ts)...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		written := len(readLake(t, root))
		held := int(testutil.ToFloat64(s.metrics.Buffered))
		// Cut early: some files exist though no limit of a single
		// partition and no interval was reached.
		if written > 0 && written+held == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d written + %d held, want %d with some written: memory is not bounded", written, held, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What is left stays under the bound: the open batches at most
	// maxBytes, plus a write in flight at most as much again.
	if got := testutil.ToFloat64(s.metrics.BufferedBytes); got > 2*maxBytes {
		t.Errorf("buffered %v bytes, bound 2 x %d", got, maxBytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readLake(t, root), ids)
}

func TestSinkStopFlushesOpenBatches(t *testing.T) {
	b := testStream(t)
	root := t.TempDir()
	s := startSink(t, b, root, SinkOptions{FlushInterval: time.Hour})
	ts := time.Now().UnixMilli()
	ids := publish(t, b, events("shop", 250, ts), ts)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(s.metrics.Buffered) < float64(len(ids)) {
		if time.Now().After(deadline) {
			t.Fatalf("sink buffered %v of %d", testutil.ToFloat64(s.metrics.Buffered), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rows := readLake(t, root); len(rows) != 0 {
		t.Fatalf("%d rows written before the interval", len(rows))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readLake(t, root), ids)
	// Stop returns once the acks have reached the server, which applies them on its own
	// goroutine: allow it a moment.
	for {
		lag, err := s.Lag(ctx)
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("lag after stop %d (%v), want 0", lag, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A run that crashed after writing a file but before acking leaves the
// intent and the file; the next run must skip those events.
func TestSinkSkipsWhatACrashedRunWrote(t *testing.T) {
	b := testStream(t)
	root := t.TempDir()
	ctx := context.Background()
	ts := time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC).UnixMilli()
	envs := events("shop", 100, ts)
	ids := publish(t, b, envs, ts)

	// What the crashed run left: a file with seqs 1..40 and its intent,
	// plus an intent whose file never appeared (seqs 41..60).
	dest, err := localdest.New(root)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]Row, 40)
	seqs := make([]uint64, 40)
	for i := range rows {
		rows[i] = FromEnvelope(envs[i], ts)
		seqs[i] = uint64(i + 1)
	}
	data := encodeRows(t, rows)
	part := PartitionOf(envs[0], ts).Path()
	if err := dest.Put(ctx, part+"/1-40-crashed.parquet", data); err != nil {
		t.Fatal(err)
	}
	stream := StreamID(st.CachedInfo())
	if _, err := WriteIntent(ctx, dest, bus.WarehouseConsumer, stream, "1-crashed", map[string][]uint64{part + "/1-40-crashed.parquet": seqs}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteIntent(ctx, dest, bus.WarehouseConsumer, stream, "2-crashed", map[string][]uint64{part + "/41-60-never.parquet": {41, 60}}); err != nil {
		t.Fatal(err)
	}
	// And an intent of an older incarnation of the stream, to be dropped.
	oldIntent, err := WriteIntent(ctx, dest, bus.WarehouseConsumer, "EVENTS@1", "0-old", map[string][]uint64{part + "/1-100-old.parquet": {1, 100}})
	if err != nil {
		t.Fatal(err)
	}

	s := startSink(t, b, root, SinkOptions{FlushInterval: 100 * time.Millisecond})
	exactlyOnce(t, waitWritten(t, s, root, len(ids)), ids)
	if got := testutil.ToFloat64(s.metrics.Redelivered); got != 40 {
		t.Errorf("skipped %v events as already written, want 40", got)
	}
	if _, err := dest.Get(ctx, oldIntent); err == nil {
		t.Error("intent of another stream incarnation was kept")
	}
}

func encodeRows(t *testing.T, rows []Row) []byte {
	t.Helper()
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.ID, b.ID) })
	var buf strings.Builder
	if err := WriteParquet(&buf, rows, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	return []byte(buf.String())
}

// A full disk is a real fault: a tiny tmpfs as the lake, filled up.
func TestSinkWaitsOutAFullDiskWithoutLoss(t *testing.T) {
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", root).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", root).Run() })
	filler := filepath.Join(root, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	b := testStream(t)
	s := startSink(t, b, root, SinkOptions{FlushInterval: 100 * time.Millisecond})
	ts := time.Now().UnixMilli()
	ids := publish(t, b, events("shop", 200, ts), ts)

	deadline := time.Now().Add(15 * time.Second)
	for s.Status().Err == "" {
		if time.Now().After(deadline) {
			t.Fatal("sink did not report the full disk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := testutil.ToFloat64(s.metrics.FlushErrors.WithLabelValues(ModeDiskFull)); got < 1 {
		t.Errorf("disk_full errors %v, want >= 1 (status %+v)", got, s.Status())
	}
	if lag, _ := s.Lag(context.Background()); lag != uint64(len(ids)) {
		t.Errorf("lag %d while the disk is full, want all %d events kept", lag, len(ids))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, waitWritten(t, s, root, len(ids)), ids)
	if st := s.Status(); st.Err != "" || st.LastWrite.IsZero() {
		t.Errorf("status after recovery %+v", st)
	}
}
