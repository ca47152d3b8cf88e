package warehouse_test

// The sink against a real S3: an embedded JetStream (as testStream makes it)
// and a real MinIO process (miniotest), with the lake downloaded afterwards
// and read by DuckDB (laketest), an engine independent of the writer.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/causality-io/causality/appliance/bus"
	. "github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/laketest"
	"github.com/causality-io/causality/appliance/warehouse/s3dest"
	"github.com/causality-io/causality/appliance/warehouse/s3dest/miniotest"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// s3Prefix is where the sink's lake lives in the bucket.
const s3Prefix = "lake"

// The two event hours of these tests, and when the appliance received every
// event (an hour after the later one, well inside the plausible window).
var (
	s3Hour3  = time.Date(2026, 11, 7, 3, 0, 0, 0, time.UTC)
	s3Hour4  = s3Hour3.Add(time.Hour)
	s3RecvMs = s3Hour3.Add(2 * time.Hour).UnixMilli()
)

// s3Events makes n screen views of app in the hour starting at hour (one a
// second from ten past, so n must stay under 3000). tag keeps ids unique
// across calls; every event has its own device and screen name, so a value
// in the wrong row shows.
func s3Events(app, tag string, hour time.Time, n int) []*causalityv1.EventEnvelope {
	envs := events(app, n, hour.Add(10*time.Minute).UnixMilli())
	for i, e := range envs {
		e.Id = fmt.Sprintf("%s-%s-%05d", app, tag, i)
		e.DeviceId = "dev-" + e.Id
		e.Payload = &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "screen-" + e.Id}}
	}
	return envs
}

// s3Env is one test's MinIO (with a bucket of its own) and stream.
type s3Env struct {
	srv    *miniotest.Server
	bucket string
	bus    *bus.Bus
	stream string // StreamID of the EVENTS stream
	log    *slog.Logger
}

func newS3Env(t *testing.T) *s3Env {
	t.Helper()
	srv := miniotest.Start(t) // skips, naming the install command, without MinIO (fails under CI)
	laketest.EnsureInstalled(t)
	e := &s3Env{srv: srv, bucket: srv.Bucket(t, ""), bus: testStream(t)}
	st, err := e.bus.JetStream().Stream(context.Background(), bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	e.stream = StreamID(st.CachedInfo())

	// The sinks' logs, shown when the test fails. Registered before any
	// sink, so it runs after their cleanups have stopped them.
	var logs s3LockedBuffer
	e.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sink logs:\n%s", logs.String())
		}
	})
	return e
}

type s3LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *s3LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *s3LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dest is an s3dest on the test's bucket under s3Prefix.
func (e *s3Env) dest(t *testing.T) *s3dest.Dest {
	t.Helper()
	d, err := s3dest.New(s3dest.Options{
		Endpoint:  e.srv.Endpoint,
		AccessKey: e.srv.AccessKey,
		SecretKey: e.srv.SecretKey,
		Insecure:  true,
		Bucket:    e.bucket,
		Prefix:    s3Prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// consumer creates (or updates) the warehouse consumer as the sink needs
// it; a non-zero ackWait overrides the ack wait ConsumerConfig derives.
func (e *s3Env) consumer(t *testing.T, opts SinkOptions, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	cfg := ConsumerConfig(bus.WarehouseConsumer, opts)
	if ackWait > 0 {
		cfg.AckWait = ackWait
	}
	cons, err := e.bus.EnsureConsumer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

type s3Sink struct {
	*Sink
	metrics *Metrics
	done    chan error // Run's result
}

// run starts a sink reading cons into dest; the test's end stops it.
func (e *s3Env) run(t *testing.T, cons jetstream.Consumer, dest Destination, opts SinkOptions) *s3Sink {
	t.Helper()
	opts.HeaderReceivedAt = bus.HeaderReceivedAt
	m := NewMetrics(prometheus.NewRegistry(), dest.String())
	s := &s3Sink{Sink: NewSink(cons, e.bus.Conn(), dest, e.stream, opts, m, e.log), metrics: m, done: make(chan error, 1)}
	go func() { s.done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx) // returns at once for a sink already stopped
	})
	return s
}

// s3WaitCaughtUp waits until the consumer has nothing pending (every event
// acknowledged, and the sink acks only what is written), the sink holds
// nothing, it has written at least rows rows and reports no error.
func s3WaitCaughtUp(t *testing.T, s *s3Sink, rows int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		lag, err := s.Lag(context.Background())
		buffered := testutil.ToFloat64(s.metrics.Buffered)
		written := testutil.ToFloat64(s.metrics.RowsWritten)
		st := s.Status()
		if err == nil && lag == 0 && buffered == 0 && written >= float64(rows) && st.Err == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: sink not caught up after %v: lag %d (err %v), buffered %v, rows written %v of %d, status %+v",
				what, within, lag, err, buffered, written, rows, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// download copies every object of the bucket into a new directory, each at
// its key, and returns the directory and the keys. The lake the sink wrote
// is then <dir>/<s3Prefix>, a local lake DuckDB can read.
func (e *s3Env) download(t *testing.T) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := e.srv.Client(t)
	dir := t.TempDir()
	var keys []string
	for obj := range c.ListObjectsIter(ctx, e.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list bucket %s: %v", e.bucket, obj.Err)
		}
		keys = append(keys, obj.Key)
		r, err := c.GetObject(ctx, e.bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", obj.Key, err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("get %s: %v", obj.Key, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(obj.Key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, keys
}

// s3Objects sorts the bucket's keys: data files under <prefix>/events/,
// ledger intents of the warehouse consumer, and anything else.
type s3Objects struct {
	data, intents, other []string
}

func s3Classify(keys []string) s3Objects {
	var o s3Objects
	ledger := s3Prefix + "/" + LedgerDir + "/" + bus.WarehouseConsumer + "/"
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, s3Prefix+"/events/"):
			o.data = append(o.data, k)
		case strings.HasPrefix(k, ledger) && strings.HasSuffix(k, ".json"):
			o.intents = append(o.intents, k)
		default:
			o.other = append(o.other, k)
		}
	}
	return o
}

// s3ExactlyOnce fails unless DuckDB reads each of ids exactly once from
// the lake at root, and nothing else.
func s3ExactlyOnce(t *testing.T, root string, ids []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range laketest.IDs(t, root) {
		count[id]++
	}
	var missing, dup, extra []string
	for _, id := range ids {
		switch n := count[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s x%d", id, n))
		}
		delete(count, id)
	}
	for id := range count {
		extra = append(extra, id)
	}
	first := func(s []string) []string {
		slices.Sort(s)
		return s[:min(len(s), 5)]
	}
	if len(missing)+len(dup)+len(extra) > 0 {
		t.Errorf("DuckDB reads the lake with %d of %d published ids missing %v, %d duplicated %v, %d never published %v",
			len(missing), len(ids), first(missing), len(dup), first(dup), len(extra), first(extra))
	}
}

func TestSinkS3WritesEachEventOnce(t *testing.T) {
	e := newS3Env(t)
	opts := SinkOptions{FlushInterval: 200 * time.Millisecond}
	s := e.run(t, e.consumer(t, opts, 0), e.dest(t), opts)

	// Two apps in two hours: four partitions.
	published := map[string]*causalityv1.EventEnvelope{}
	wantParts := map[string]int64{}
	var ids []string
	for _, g := range []struct {
		app  string
		hour time.Time
		n    int
	}{{"shop", s3Hour3, 150}, {"games", s3Hour3, 120}, {"shop", s3Hour4, 90}, {"games", s3Hour4, 60}} {
		envs := s3Events(g.app, fmt.Sprintf("h%d", g.hour.Hour()), g.hour, g.n)
		ids = append(ids, publish(t, e.bus, envs, s3RecvMs)...)
		for _, env := range envs {
			published[env.GetId()] = env
		}
		wantParts[fmt.Sprintf("%s/%d/%d/%d/%d", g.app, g.hour.Year(), g.hour.Month(), g.hour.Day(), g.hour.Hour())] += int64(g.n)
	}
	s3WaitCaughtUp(t, s, len(ids), 30*time.Second, "writing")
	if got := testutil.ToFloat64(s.metrics.RowsWritten); got != float64(len(ids)) {
		t.Errorf("rows written metric %v, want %d", got, len(ids))
	}

	dir, keys := e.download(t)
	root := filepath.Join(dir, s3Prefix)
	objs := s3Classify(keys)

	// The bucket: data files under events/, intents under _causality/,
	// nothing else, and no hidden Parquet file (an upload's temporary name,
	// say) that a Hive reader would skip but a careless glob would not.
	for _, k := range objs.data {
		rel := strings.TrimPrefix(k, s3Prefix+"/")
		for _, elem := range strings.Split(rel, "/") {
			if strings.HasPrefix(elem, ".") || strings.HasPrefix(elem, "_") {
				t.Errorf("hidden object %s in the lake", k)
			}
		}
		if !strings.HasSuffix(k, ".parquet") {
			t.Errorf("object %s under events/ is not a Parquet file", k)
		}
	}
	if len(objs.data) < len(wantParts) {
		t.Errorf("%d data files for %d partitions: %v", len(objs.data), len(wantParts), objs.data)
	}
	if got := testutil.ToFloat64(s.metrics.FilesWritten); got != float64(len(objs.data)) {
		t.Errorf("files written metric %v, but the lake holds %d files", got, len(objs.data))
	}
	if len(objs.intents) == 0 {
		t.Errorf("no ledger intent under %s/%s/%s/: %v", s3Prefix, LedgerDir, bus.WarehouseConsumer, keys)
	}
	for _, k := range objs.other {
		if !strings.HasPrefix(k, s3Prefix+"/_causality/") {
			t.Errorf("object %s is neither lake data nor under %s/_causality/", k, s3Prefix)
		}
	}

	s3ExactlyOnce(t, root, ids)

	// Partition columns, as DuckDB derives them from the keys.
	gotParts := map[string]int64{}
	for _, r := range laketest.Query(t, root, `SELECT app_id, year, month, day, hour, count(*) AS n FROM events GROUP BY ALL`) {
		gotParts[fmt.Sprintf("%v/%v/%v/%v/%v", r["app_id"], r["year"], r["month"], r["day"], r["hour"])] = r["n"].(int64)
	}
	if !maps.Equal(gotParts, wantParts) {
		t.Errorf("events by app_id/year/month/day/hour: %v, want %v", gotParts, wantParts)
	}

	// Column values against what was published, row by row.
	rows := laketest.Query(t, root, `
		SELECT id, app_id, hour, device_id, timestamp_ms, event_time, received_at,
		       platform, os_version, event_name,
		       json_extract_string(payload_json, '$.screen_name') AS screen_name
		FROM events`)
	if len(rows) != len(ids) {
		t.Errorf("DuckDB reads %d rows, want %d", len(rows), len(ids))
	}
	var bad []string
	for _, r := range rows {
		env := published[r["id"].(string)]
		if env == nil {
			continue // reported by s3ExactlyOnce
		}
		ts := time.UnixMilli(env.GetTimestampMs()).UTC()
		want := map[string]any{
			"app_id": env.GetAppId(), "hour": int64(ts.Hour()), "device_id": env.GetDeviceId(),
			"timestamp_ms": env.GetTimestampMs(), "platform": "ios", "os_version": "18.1",
			"event_name": "screen.view", "screen_name": env.GetScreenView().GetScreenName(),
		}
		for col, v := range want {
			if r[col] != v {
				bad = append(bad, fmt.Sprintf("%s: %s = %v (%T), want %v", env.GetId(), col, r[col], r[col], v))
			}
		}
		if got := laketest.TimeOf(t, r["event_time"]); !got.Equal(ts) {
			bad = append(bad, fmt.Sprintf("%s: event_time %v, want %v", env.GetId(), got, ts))
		}
		if got := laketest.TimeOf(t, r["received_at"]); !got.Equal(time.UnixMilli(s3RecvMs)) {
			bad = append(bad, fmt.Sprintf("%s: received_at %v, want %v", env.GetId(), got, time.UnixMilli(s3RecvMs).UTC()))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d wrong values, first: %v", len(bad), bad[:min(len(bad), 5)])
	}
}

// The outage test: MinIO goes away while events keep coming. The sink must
// say so (status, flush error metric), keep the events in the stream
// (unacknowledged: the consumer lag is exactly them), write nothing, and
// once MinIO is back write everything exactly once on its own.
func TestSinkS3OutageBuffersThenRecovers(t *testing.T) {
	e := newS3Env(t)
	opts := SinkOptions{FlushInterval: 200 * time.Millisecond}
	s := e.run(t, e.consumer(t, opts, 0), e.dest(t), opts)

	first := publish(t, e.bus, s3Events("shop", "before", s3Hour3, 200), s3RecvMs)
	s3WaitCaughtUp(t, s, len(first), 30*time.Second, "first batch")
	before := s.Status()
	if before.Err != "" || before.LastWrite.IsZero() {
		t.Fatalf("status after the first batch %+v, want healthy with a last write", before)
	}
	filesBefore := testutil.ToFloat64(s.metrics.FilesWritten)
	// failureMode labels a refused connection (and a reset one, and an
	// EOF: what a client sees from a MinIO that is shutting down) as
	// unreachable.
	unreachable := s.metrics.FlushErrors.WithLabelValues(ModeUnreachable)
	unreachableBefore := testutil.ToFloat64(unreachable)

	stopped := time.Now()
	e.srv.Stop()
	var second []string
	second = append(second, publish(t, e.bus, s3Events("shop", "during", s3Hour4, 120), s3RecvMs)...)
	second = append(second, publish(t, e.bus, s3Events("games", "during", s3Hour3, 80), s3RecvMs)...)

	// Each write attempt rides out minio-go's own retries (about 4s against
	// a refused port) before the sink sees the error.
	deadline := time.Now().Add(45 * time.Second)
	for {
		st := s.Status()
		if st.Err != "" && !st.FailingSince.IsZero() && testutil.ToFloat64(unreachable) > unreachableBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("45s into the outage: status %+v, %s errors %v (before %v), errors by mode: %s",
				st, ModeUnreachable, testutil.ToFloat64(unreachable), unreachableBefore, s3ErrorsByMode(s.metrics))
		}
		time.Sleep(50 * time.Millisecond)
	}
	detected := time.Since(stopped)
	st := s.Status()
	if mode := FailureMode(errors.New(st.Err)); mode != ModeUnreachable {
		t.Errorf("status error %q is classified %q, want %q", st.Err, mode, ModeUnreachable)
	}
	if st.FailingSince.Before(stopped) {
		t.Errorf("failing since %v, before MinIO was stopped at %v", st.FailingSince, stopped)
	}

	// The second batch stays in the stream: the lag is exactly it (the
	// first one was acked before the outage), nothing of it acked.
	deadline = time.Now().Add(10 * time.Second)
	for {
		lag, err := s.Lag(context.Background())
		if err == nil && lag == uint64(len(second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag during the outage %d (err %v), want the second batch, %d", lag, err, len(second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Some are held in the batch whose flush is failing; the rest may still
	// sit in the consumer's pull-ahead buffer (delivered, so in the lag),
	// as Run adds nothing while it retries.
	if got := testutil.ToFloat64(s.metrics.Buffered); got < 1 || got > float64(len(second)) {
		t.Errorf("buffered events during the outage %v, want between 1 and %d", got, len(second))
	}
	// And nothing was (claimed to be) written.
	if got := testutil.ToFloat64(s.metrics.RowsWritten); got != float64(len(first)) {
		t.Errorf("rows written during the outage %v, want still %d", got, len(first))
	}
	if got := testutil.ToFloat64(s.metrics.FilesWritten); got != filesBefore {
		t.Errorf("files written during the outage %v, want still %v", got, filesBefore)
	}
	if got := s.Status().LastWrite; !got.Equal(before.LastWrite) {
		t.Errorf("last write moved during the outage: %v, was %v", got, before.LastWrite)
	}

	e.srv.Start(t) // same port and data
	restarted := time.Now()
	s3WaitCaughtUp(t, s, len(first)+len(second), 60*time.Second, "after MinIO came back")
	recovered := time.Since(restarted)
	after := s.Status()
	if after.Err != "" || !after.FailingSince.IsZero() {
		t.Errorf("status after recovery %+v, want healthy", after)
	}
	if !after.LastWrite.After(before.LastWrite) {
		t.Errorf("last write %v did not advance past %v", after.LastWrite, before.LastWrite)
	}
	if got := testutil.ToFloat64(s.metrics.RowsWritten); got != float64(len(first)+len(second)) {
		t.Errorf("rows written %v, want %d", got, len(first)+len(second))
	}
	t.Logf("outage reported %v after MinIO stopped (%v %s errors); caught up %v after it restarted",
		detected.Round(time.Millisecond), testutil.ToFloat64(unreachable)-unreachableBefore, ModeUnreachable,
		recovered.Round(time.Millisecond))

	dir, _ := e.download(t)
	s3ExactlyOnce(t, filepath.Join(dir, s3Prefix), append(first, second...))
}

func s3ErrorsByMode(m *Metrics) string {
	var parts []string
	for _, mode := range []string{"disk_full", "permission", "unreachable", "other"} {
		parts = append(parts, fmt.Sprintf("%s=%v", mode, testutil.ToFloat64(m.FlushErrors.WithLabelValues(mode))))
	}
	return strings.Join(parts, " ")
}

// errS3Crash is what every operation of a crashed s3CrashDest returns.
var errS3Crash = errors.New("simulated crash: the sink process is gone")

// s3CrashDest is the real s3dest with a crash at one chosen point: right
// after the first data file (a path under events/) has been uploaded, before
// the sink can acknowledge its events. That is the window the ledger exists
// for, and it cannot be hit deterministically from outside: killing the
// process or MinIO at some moment lands in it only by chance (the kill -9
// end-to-end test relies on that chance). Hence this thin wrapper, the only
// stand-in in these tests; the stream, the consumer and the bucket are real.
//
// The Put that completes the upload reports failure, as if the process had
// died before it saw the response: returning nil would let the sink ack at
// once when that file is the flush's last. From then on every operation
// fails, and crash is called (it cancels a context the test waits on, and
// the test then stops the sink without a final flush).
type s3CrashDest struct {
	Destination
	crash func()

	mu      sync.Mutex
	crashed bool
	file    string // the data file that made it
	data    []byte
}

func (d *s3CrashDest) down() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.crashed
}

func (d *s3CrashDest) Put(ctx context.Context, p string, data []byte) error {
	if d.down() {
		return errS3Crash
	}
	if err := d.Destination.Put(ctx, p, data); err != nil {
		return err
	}
	if !strings.HasPrefix(p, "events/") {
		return nil
	}
	d.mu.Lock()
	d.crashed, d.file, d.data = true, p, bytes.Clone(data)
	d.mu.Unlock()
	d.crash()
	return errS3Crash
}

func (d *s3CrashDest) Get(ctx context.Context, p string) ([]byte, error) {
	if d.down() {
		return nil, errS3Crash
	}
	return d.Destination.Get(ctx, p)
}

func (d *s3CrashDest) List(ctx context.Context, prefix string) ([]Object, error) {
	if d.down() {
		return nil, errS3Crash
	}
	return d.Destination.List(ctx, prefix)
}

func (d *s3CrashDest) Delete(ctx context.Context, paths ...string) error {
	if d.down() {
		return errS3Crash
	}
	return d.Destination.Delete(ctx, paths...)
}

func (d *s3CrashDest) Replace(ctx context.Context, dir string, add []File, remove []string) error {
	if d.down() {
		return errS3Crash
	}
	return d.Destination.Replace(ctx, dir, add, remove)
}

func (d *s3CrashDest) DeletePrefix(ctx context.Context, prefix string) error {
	if d.down() {
		return errS3Crash
	}
	return d.Destination.DeletePrefix(ctx, prefix)
}

func (d *s3CrashDest) Check(ctx context.Context) error {
	if d.down() {
		return errS3Crash
	}
	return d.Destination.Check(ctx)
}

// A sink that dies after a data file reached S3 but before its events were
// acknowledged leaves the ledger intent and the file; the next sink on the
// same consumer and bucket must skip exactly those events when they come
// back and write the rest.
func TestSinkS3CrashBetweenWriteAndAck(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	opts := SinkOptions{FlushInterval: 200 * time.Millisecond}
	// ConsumerConfig sets the ack wait to 2*FlushInterval + 1m (about a
	// minute here), so the crashed sink's unacknowledged events would come
	// back only after that. 2s keeps the test short. It is safe here: a
	// flush to a local MinIO takes far less, and if one did not, JetStream
	// would redeliver events the second sink still holds (it keeps the
	// newest delivery) or has just written (the ledger skips them), which
	// can only raise the skipped count; hence ">=" below.
	cons := e.consumer(t, opts, 2*time.Second)

	var ids []string
	ids = append(ids, publish(t, e.bus, s3Events("shop", "early", s3Hour3, 120), s3RecvMs)...)
	ids = append(ids, publish(t, e.bus, s3Events("games", "early", s3Hour3, 80), s3RecvMs)...)

	crashed, crash := context.WithCancel(ctx)
	defer crash()
	cd := &s3CrashDest{Destination: e.dest(t), crash: crash}
	s1 := e.run(t, cons, cd, opts)
	select {
	case <-crashed.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the first sink wrote no data file in 30s: status %+v", s1.Status())
	}
	// Stop it abruptly: with an expired context its final flush gets one
	// attempt, which the crashed destination fails, so nothing is acked.
	expired, cancel := context.WithCancel(ctx)
	cancel()
	if err := s1.Stop(expired); err != nil {
		t.Logf("stopping the crashed sink: %v", err)
	}
	select {
	case err := <-s1.done:
		if err != nil {
			t.Logf("crashed sink's Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the crashed sink's Run did not return within 15s of Stop")
	}

	// What the crash left: one data file, its intent, no acks.
	cd.mu.Lock()
	file, data := cd.file, cd.data
	cd.mu.Unlock()
	inFile, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
	if err != nil || len(inFile) == 0 {
		t.Fatalf("the crashed file %s: %d rows, %v", file, len(inFile), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 || info.NumPending+uint64(info.NumAckPending) != uint64(len(ids)) {
		t.Fatalf("after the crash: ack floor %d, pending %d + %d unacked; want nothing acked of %d",
			info.AckFloor.Stream, info.NumPending, info.NumAckPending, len(ids))
	}
	if got := testutil.ToFloat64(s1.metrics.RowsWritten); got != 0 {
		t.Fatalf("the crashed sink reports %v rows written, want 0 (no flush finished)", got)
	}
	_, keys := e.download(t)
	left := s3Classify(keys)
	if !slices.Equal(left.data, []string{s3Prefix + "/" + file}) || len(left.intents) == 0 {
		t.Fatalf("after the crash the bucket holds data %v and intents %v; want just %s and its intent", left.data, left.intents, file)
	}

	// More events meanwhile, then a normal sink on the same consumer.
	early := len(ids)
	ids = append(ids, publish(t, e.bus, s3Events("shop", "late", s3Hour4, 60), s3RecvMs)...)
	s2 := e.run(t, cons, e.dest(t), opts)
	s3WaitCaughtUp(t, s2, len(ids)-len(inFile), 60*time.Second, "second sink")

	skipped := testutil.ToFloat64(s2.metrics.Redelivered)
	if skipped < float64(len(inFile)) {
		t.Errorf("redelivered events skipped as already written: %v, want at least the %d in %s", skipped, len(inFile), file)
	}
	if got := testutil.ToFloat64(s2.metrics.RowsWritten); got != float64(len(ids)-len(inFile)) {
		t.Errorf("second sink wrote %v rows, want %d (all %d but the %d already in %s)",
			got, len(ids)-len(inFile), len(ids), len(inFile), file)
	}
	t.Logf("crashed with %d of %d events in %s; the second sink skipped %v redelivered events and wrote %v",
		len(inFile), early, file, skipped, testutil.ToFloat64(s2.metrics.RowsWritten))

	dir, keys := e.download(t)
	if !slices.Contains(keys, s3Prefix+"/"+file) {
		t.Errorf("the crashed run's file %s is gone", file)
	}
	s3ExactlyOnce(t, filepath.Join(dir, s3Prefix), ids)
}

// A stop during an outage interrupts a flush whose file is already encoded;
// the shutdown then drains events of the same partition that were pulled
// ahead. They must go to a file of their own: appended to the interrupted
// batch they were once acked without being in its (fixed) file.
func TestSinkS3StopDuringOutageKeepsDrainedEvents(t *testing.T) {
	e := newS3Env(t)
	opts := SinkOptions{FlushInterval: 200 * time.Millisecond}
	cons := e.consumer(t, opts, 0)
	s := e.run(t, cons, e.dest(t), opts)
	a := publish(t, e.bus, s3Events("shop", "a", s3Hour3, 50), s3RecvMs)
	s3WaitCaughtUp(t, s, len(a), 30*time.Second, "a")

	e.srv.Stop()
	b := publish(t, e.bus, s3Events("shop", "b", s3Hour3, 100), s3RecvMs)
	deadline := time.Now().Add(30 * time.Second)
	for s.Status().Err == "" {
		if time.Now().After(deadline) {
			t.Fatal("the sink did not report the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := publish(t, e.bus, s3Events("shop", "c", s3Hour3, 100), s3RecvMs)
	for {
		info, err := cons.Info(context.Background())
		if err == nil && info.NumPending == 0 && info.NumAckPending == len(b)+len(c) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b and c not delivered: %+v %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	time.Sleep(500 * time.Millisecond)
	e.srv.Start(t)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	dir, _ := e.download(t)
	s3ExactlyOnce(t, filepath.Join(dir, s3Prefix), append(append(a, b...), c...))
}

// Compaction against a real S3: the sink writes an hour as many small
// files, the compactor merges them (uploads, then deletes), and DuckDB
// reads every id exactly once from fewer files. A second run does nothing.
func TestCompactS3MergesSmallFilesExactlyOnce(t *testing.T) {
	e := newS3Env(t)
	opts := SinkOptions{FlushInterval: 100 * time.Millisecond, FlushMaxEvents: 40}
	dest := e.dest(t)
	s := e.run(t, e.consumer(t, opts, 0), dest, opts)
	ids := publish(t, e.bus, s3Events("shop", "c", s3Hour3, 400), s3RecvMs)
	s3WaitCaughtUp(t, s, len(ids), 30*time.Second, "writing")
	ctx := context.Background()
	before, err := dest.List(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 10 {
		t.Fatalf("the sink wrote %d files, want many small ones", len(before))
	}
	// An hour later the ledger has long collected these intents (their
	// events are acked); until then compaction must leave the files alone.
	c := &Compactor{Dest: dest, Ledger: s.Ledger(), TargetBytes: 8 << 20, After: time.Hour,
		Now: func() time.Time { return s3Hour3.Add(3 * time.Hour) }}
	if rep, err := c.RunOnce(ctx); err != nil || rep.FilesIn != 0 {
		t.Fatalf("compaction of files live intents name: %+v, %v", rep, err)
	}
	if err := dest.DeletePrefix(ctx, LedgerDir); err != nil {
		t.Fatal(err)
	}

	c = &Compactor{Dest: dest, Ledger: s.Ledger(), TargetBytes: 8 << 20, After: time.Hour,
		Now: func() time.Time { return s3Hour3.Add(3 * time.Hour) }}
	rep, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := dest.List(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if rep.FilesIn == 0 || len(after) >= len(before) {
		t.Fatalf("compaction %+v left %d files of %d", rep, len(after), len(before))
	}
	dir, _ := e.download(t)
	s3ExactlyOnce(t, filepath.Join(dir, s3Prefix), ids)

	again, err := c.RunOnce(ctx)
	if err != nil || again.FilesIn != 0 {
		t.Fatalf("second run %+v, %v; want nothing to do", again, err)
	}
}
