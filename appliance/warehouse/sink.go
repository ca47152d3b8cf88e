package warehouse

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// SinkOptions says when files are cut. The zero value of a field means its
// default.
type SinkOptions struct {
	// FlushInterval is the longest an event waits in an open batch.
	FlushInterval time.Duration
	// FlushMaxEvents cuts a partition's file at this many events.
	FlushMaxEvents int
	// FlushMaxBytes cuts a partition's file when its events take this much
	// memory, and also bounds all open batches together: past it, the
	// largest batches are cut first. So memory stays bounded however many
	// partitions (apps x hours) are open: the open batches hold at most
	// this, and the one write in flight at most as much again.
	FlushMaxBytes int64
	// HeaderReceivedAt names the message header with the receive time in
	// Unix milliseconds.
	HeaderReceivedAt string
	Encode           EncodeOptions
}

// Defaults for SinkOptions.
const (
	DefaultFlushInterval  = time.Minute
	DefaultFlushMaxEvents = 500_000
	// DefaultFlushMaxBytes is small on purpose: every held event is a
	// pending ack the server tracks, and the sink drained 60k events/s
	// with 16 MiB against 44k with 64 MiB (BenchmarkSinkDrain).
	DefaultFlushMaxBytes = 16 << 20
)

func (o SinkOptions) withDefaults() SinkOptions {
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushMaxEvents <= 0 {
		o.FlushMaxEvents = DefaultFlushMaxEvents
	}
	if o.FlushMaxBytes <= 0 {
		o.FlushMaxBytes = DefaultFlushMaxBytes
	}
	return o
}

// AckWait is how long JetStream waits for the sink's ack before it
// redelivers. An event can sit in an open batch for a whole flush interval
// and then wait for its write, so the ack wait is two intervals plus a
// minute for the write; a write that takes longer (destination down) keeps
// its events with in-progress acks. Were the ack wait shorter, JetStream
// would redeliver events that are only waiting, and they would be written
// twice (DESIGN.md, "Known trap").
func (o SinkOptions) AckWait() time.Duration {
	return 2*o.withDefaults().FlushInterval + time.Minute
}

// ConsumerConfig is the durable consumer the sink needs: explicit acks, the
// ack wait above, enough pending acks to fill every open batch, and no
// delivery limit (an event is retried until it is written).
func ConsumerConfig(durable string, opts SinkOptions) jetstream.ConsumerConfig {
	opts = opts.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait(),
		MaxDeliver:    -1,
		MaxAckPending: 2*opts.FlushMaxEvents + fetchBatch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

const (
	// fetchBatch is how many messages the consumer pulls ahead.
	fetchBatch = 2000
	// ledgerGrace keeps an intent for a while after the ack floor passed
	// it. The floor reported by the server is in memory; JetStream writes
	// consumer state to disk about ten times a second, so after a kill -9
	// the floor on restart may be a little older than the one we saw.
	// Two minutes is far beyond that lag.
	ledgerGrace = 2 * time.Minute
	// gcEvery is how often written intents are collected.
	gcEvery = 30 * time.Second
	// heldOverhead approximates the memory of a held event beyond its
	// bytes and reply subject.
	heldOverhead = 64
)

// Sink reads the stream through a durable consumer and writes the lake.
// Run it in one goroutine; Status and Lag are safe from others.
type Sink struct {
	opts     SinkOptions
	cons     jetstream.Consumer
	nc       *nats.Conn // acks go straight to the message's reply subject
	dest     Destination
	ledger   *ledger
	log      *slog.Logger
	metrics  *Metrics
	now      func() time.Time
	lagCache lagCache

	open map[Partition]*batch
	// sealed are batches whose write began and did not finish (the run
	// ended mid-retry). Their file name and content are fixed, so they
	// take no new events; the final flush writes them as they are.
	sealed []*batch
	// writing are the batches of the flush in flight (nil: none); results
	// brings its outcome back.
	writing []*batch
	results chan flushResult
	held    map[uint64]struct{} // stream sequences in open or sealed batches
	// nextDue is the earliest interval deadline of the open batches (zero:
	// none open), so the loop does not scan every partition per message.
	nextDue  time.Time
	buffered int64
	// written are sequences a crashed run wrote but did not ack (from the
	// ledger); redeliveries of them are acked without writing.
	written       seqSet
	ackFloor      uint64 // the consumer's, at the last refresh
	lastRefresh   time.Time
	intents       map[string]uint64    // ledger path -> max sequence, known to this process
	collectable   map[string]time.Time // ledger path -> when the ack floor first passed it
	lastGC        time.Time
	lastHeartbeat time.Time

	mu     sync.Mutex
	status Status

	// Stop hands Run the context bounding the final flush.
	runCtx    context.Context
	cancelRun context.CancelFunc
	final     chan context.Context
	done      chan struct{}
}

// Status is the sink's health for /readyz.
type Status struct {
	// Err is the failure of the current write, "" when writes succeed.
	Err string
	// FailingSince is when writes began to fail.
	FailingSince time.Time
	// LastWrite is the last successful flush.
	LastWrite time.Time
}

type batch struct {
	part   Partition
	events []heldEvent
	bytes  int64
	opened time.Time
	// file is set by the first attempt to write the batch and reused by
	// later ones, so a flush retried at shutdown rewrites the same file
	// rather than adding a second copy under a new name.
	file    *intentFile
	encoded []byte
	rows    int // in file
}

// heldEvent is an event waiting in a batch: the stored bytes as they came
// from the stream, decoded only when the file is written. Holding decoded
// rows instead (some twenty strings each) made the garbage collector scan
// tens of megabytes of pointers all the time; this is two pointers.
type heldEvent struct {
	reply    string // ack subject of the latest delivery
	data     []byte // the envelope, protobuf
	received int64  // Unix ms
	seq      uint64
}

// NewSink makes a sink reading cons (on connection nc) into dest. stream identifies the
// stream incarnation (see StreamID).
func NewSink(cons jetstream.Consumer, nc *nats.Conn, dest Destination, stream string, opts SinkOptions, m *Metrics, log *slog.Logger) *Sink {
	opts = opts.withDefaults()
	if opts.HeaderReceivedAt == "" {
		opts.HeaderReceivedAt = "Causality-Received-Ms"
	}
	if opts.Encode.Compression == nil {
		// The sink writes files all day: its codec must keep its encoders (see ZstdCodec).
		opts.Encode.Compression = NewZstdCodec(runtime.GOMAXPROCS(0))
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	return &Sink{
		runCtx:      runCtx,
		cancelRun:   cancelRun,
		final:       make(chan context.Context, 1),
		done:        make(chan struct{}),
		opts:        opts,
		cons:        cons,
		nc:          nc,
		dest:        dest,
		ledger:      newLedger(dest, cons.CachedInfo().Name, stream),
		log:         log,
		metrics:     m,
		now:         time.Now,
		open:        map[Partition]*batch{},
		held:        map[uint64]struct{}{},
		results:     make(chan flushResult, 1),
		intents:     map[string]uint64{},
		collectable: map[string]time.Time{},
	}
}

// StreamID names a stream incarnation for the ledger: sequences restart
// when a stream is deleted and created again.
func StreamID(info *jetstream.StreamInfo) string {
	return info.Config.Name + "@" + strconv.FormatInt(info.Created.UnixNano(), 10)
}

// Stop ends Run, whose final flush gets until ctx ends, and waits for it.
// It must not be called before Run has been started.
func (s *Sink) Stop(ctx context.Context) error {
	select {
	case s.final <- ctx:
	default:
	}
	s.cancelRun()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("warehouse: final flush did not finish in time; unwritten events stay in the stream: %w", ctx.Err())
	}
}

// Status reports the sink's health.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Ledger exposes the intents for compaction, which must leave the files
// they name alone.
func (s *Sink) Ledger() *ledger { return s.ledger }

// Encode is how the sink encodes files, codec included, for the compactor to share.
func (s *Sink) Encode() EncodeOptions { return s.opts.Encode }

// Run consumes until ctx ends or Stop is called, then flushes every open
// batch and returns. Events of a flush that cannot finish in time stay
// unacknowledged and come back on the next start.
func (s *Sink) Run(ctx context.Context) error {
	defer close(s.done)
	stopCtx := context.WithoutCancel(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.runCtx, cancel)()
	if err := s.recover(ctx); err != nil {
		return err
	}
	var it jetstream.MessagesContext
	defer func() {
		if it != nil {
			it.Stop()
		}
	}()
	for ctx.Err() == nil {
		if it == nil {
			var err error
			it, err = s.cons.Messages(jetstream.PullMaxMessages(fetchBatch))
			if err != nil {
				s.log.Warn("warehouse consumer unavailable; retrying", "err", err)
				sleep(ctx, time.Second)
				continue
			}
		}
		msg, err := it.Next(jetstream.NextMaxWait(s.wait()))
		switch {
		case err == nil:
			s.add(ctx, msg)
		case errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			it = nil
		default:
			s.log.Warn("warehouse consumer", "err", err)
		}
		s.collectFlush()
		if s.openBytes() > s.opts.FlushMaxBytes {
			s.flushLargest(ctx)
		}
		s.flushDue(ctx)
		if s.writing != nil && s.Status().Err != "" {
			s.heartbeat()
		}
		s.collect(ctx)
	}
	s.await() // a write cut short by the end of ctx seals its batches
	select {
	case stopCtx = <-s.final:
	default:
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(stopCtx, 30*time.Second)
		defer cancel()
	}
	if it != nil {
		// Stop pulling, but take what was already pulled: left in the
		// iterator it would only come back after the ack wait. A drained
		// iterator ends by itself; the long wait only matters on a machine
		// too busy to hand over the last messages within a second.
		it.Drain()
		for stopCtx.Err() == nil {
			msg, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
			if err != nil {
				break
			}
			s.add(stopCtx, msg)
		}
		it = nil
	}
	s.flushAll(stopCtx)
	s.await()
	// Acks are published without waiting; make sure the last ones have left this process
	// before it may exit, or their events come back on the next start (harmless, the
	// ledger skips them, but work done twice).
	// Not while disconnected: the flush would wait for a reconnection that may never come,
	// and the acks are lost either way.
	if s.nc.IsConnected() {
		fctx, cancel := context.WithTimeout(stopCtx, 5*time.Second)
		err := s.nc.FlushWithContext(fctx)
		cancel()
		if err != nil {
			s.log.Warn("warehouse: last acks may not have reached the server; their events are redelivered and skipped on the next start", "err", err)
		}
	}
	if n := len(s.held); n > 0 {
		s.log.Warn("warehouse stopped with events not yet written; they stay in the stream and are written on the next start", "events", n)
	}
	return nil
}

// wait bounds a blocking pull by the next batch deadline, so intervals are
// kept even when nothing arrives.
func (s *Sink) wait() time.Duration {
	w := 250 * time.Millisecond
	if !s.nextDue.IsZero() {
		w = min(w, s.nextDue.Sub(s.now()))
	}
	return max(w, time.Millisecond)
}

// recover loads the ledger: sequences written by a run that crashed before
// acking them are skipped when they come back.
func (s *Sink) recover(ctx context.Context) error {
	for {
		err := s.refresh(ctx)
		if err == nil {
			return nil
		}
		s.setFailing(err)
		s.log.Error("warehouse: cannot read its ledger; retrying", "destination", s.dest.String(), "err", err)
		if !sleep(ctx, 5*time.Second) {
			return ctx.Err()
		}
	}
}

// refresh rereads the ledger. Intents of another incarnation of the stream
// are deleted; the others become the written set.
func (s *Sink) refresh(ctx context.Context) error {
	info, err := s.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	loaded, err := s.ledger.load(ctx)
	if err != nil {
		return err
	}
	var written seqSet
	var stale []string
	for _, li := range loaded {
		if li.stale {
			stale = append(stale, li.path)
			continue
		}
		s.intents[li.path] = li.maxSeq
		if li.maxSeq > info.AckFloor.Stream {
			written = written.union(li.written)
		}
	}
	if len(stale) > 0 {
		if err := s.ledger.delete(ctx, stale...); err != nil {
			return err
		}
	}
	s.written = written
	s.ackFloor = info.AckFloor.Stream
	s.lastRefresh = s.now()
	if len(written) > 0 {
		s.log.Info("warehouse: resuming after an interrupted write; events already in the lake will not be written again",
			"ranges", len(written), "max_seq", written.max())
	}
	return nil
}

// add takes one message into its partition's batch.
func (s *Sink) add(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		s.log.Error("warehouse: message without JetStream metadata; dropped", "subject", msg.Subject(), "err", err)
		return
	}
	seq, reply := meta.Sequence.Stream, msg.Reply()
	receivedMs := meta.Timestamp.UnixMilli()
	if h := msg.Headers().Get(s.opts.HeaderReceivedAt); h != "" {
		if v, err := strconv.ParseInt(h, 10, 64); err == nil {
			receivedMs = v
		}
	}
	p, err := RawPartitionOf(msg.Data(), receivedMs)
	if err != nil {
		s.log.Error("warehouse: stream message is not an event envelope; terminated", "seq", seq, "subject", msg.Subject(), "err", err)
		s.metrics.Poison.Inc()
		s.reply(reply, ackTerm)
		return
	}
	if _, ok := s.held[seq]; ok {
		// Redelivered while we hold it (an ack wait ran out): keep the
		// newest delivery, whose ack the server is waiting for.
		s.replaceReply(p, seq, reply)
		return
	}
	if meta.NumDelivered > 1 && s.now().Sub(s.lastRefresh) > time.Second {
		// Another process (or our previous life) may have written it.
		if err := s.refresh(ctx); err != nil {
			s.log.Warn("warehouse: cannot reread ledger for a redelivered event; it waits", "seq", seq, "err", err)
			s.reply(reply, ackNak)
			return
		}
	}
	// At or below the ack floor it was acked, so written: a redelivery
	// sent just before the server took our ack.
	if s.written.contains(seq) || (meta.NumDelivered > 1 && seq <= s.ackFloor) {
		s.reply(reply, ackAck)
		s.metrics.Redelivered.Inc()
		return
	}
	b := s.open[p]
	if b == nil {
		b = &batch{part: p, opened: s.now()}
		s.open[p] = b
		if due := b.opened.Add(s.opts.FlushInterval); s.nextDue.IsZero() || due.Before(s.nextDue) {
			s.nextDue = due
		}
	}
	size := int64(heldOverhead + len(reply) + cap(msg.Data()))
	s.held[seq] = struct{}{}
	b.events = append(b.events, heldEvent{reply: reply, data: msg.Data(), received: receivedMs, seq: seq})
	b.bytes += size
	s.buffered += size
	s.metrics.Buffered.Inc()
	s.metrics.BufferedBytes.Add(float64(size))
	if len(b.events) >= s.opts.FlushMaxEvents || b.bytes >= s.opts.FlushMaxBytes {
		s.flush(ctx, []*batch{b})
	}
}

// replaceReply points a held event at its newest delivery.
func (s *Sink) replaceReply(p Partition, seq uint64, reply string) {
	for _, b := range append(append([]*batch{s.open[p]}, s.sealed...), s.writing...) {
		if b == nil || b.part != p {
			continue
		}
		for i := range b.events {
			if b.events[i].seq == seq {
				b.events[i].reply = reply
				return
			}
		}
	}
}

// JetStream ack bodies (its protocol: a publish to the message's reply
// subject). The sink acks by subject so that it need not keep the client's
// message objects alive while a batch waits.
var (
	ackAck      = []byte("+ACK")
	ackNak      = []byte("-NAK")
	ackTerm     = []byte("+TERM")
	ackProgress = []byte("+WPI")
)

func (s *Sink) reply(subject string, body []byte) {
	if subject == "" {
		return
	}
	_ = s.nc.Publish(subject, body) // a lost ack means a redelivery, which the ledger absorbs
}

// flushDue cuts every batch that has waited a whole interval. They go
// together, under one ledger intent.
func (s *Sink) flushDue(ctx context.Context) {
	now := s.now()
	if s.nextDue.IsZero() || now.Before(s.nextDue) {
		return
	}
	var due []*batch
	s.nextDue = time.Time{}
	for _, b := range s.open {
		deadline := b.opened.Add(s.opts.FlushInterval)
		if !now.Before(deadline) {
			due = append(due, b)
		} else if s.nextDue.IsZero() || deadline.Before(s.nextDue) {
			s.nextDue = deadline
		}
	}
	if len(due) > 0 {
		s.flush(ctx, due)
	}
}

// flushLargest cuts the largest batches until the open ones take at most
// half of FlushMaxBytes, so that many small partitions cannot hold memory
// beyond the bound.
func (s *Sink) flushLargest(ctx context.Context) {
	all := make([]*batch, 0, len(s.open))
	for _, b := range s.open {
		all = append(all, b)
	}
	slices.SortFunc(all, func(a, b *batch) int { return int(b.bytes - a.bytes) })
	var cut []*batch
	left := s.openBytes()
	for _, b := range all {
		if left <= s.opts.FlushMaxBytes/2 {
			break
		}
		cut = append(cut, b)
		left -= b.bytes
	}
	s.flush(ctx, cut)
}

func (s *Sink) flushAll(ctx context.Context) {
	if len(s.open)+len(s.sealed) == 0 {
		return
	}
	all := slices.Clone(s.sealed)
	for _, b := range s.open {
		all = append(all, b)
	}
	s.flush(ctx, all)
}

// flush writes batches and acknowledges their events. Order is what makes
// it exactly-once: intent, files, acks (see ledger.go). The writing runs in
// its own goroutine while Run goes on taking events into new batches; one
// flush is in flight at a time, so a second one first waits for it. On
// ctx's end the events stay unacknowledged and the batches are sealed.
func (s *Sink) flush(ctx context.Context, batches []*batch) {
	if len(batches) == 0 {
		return
	}
	s.await()
	for _, b := range batches {
		if s.open[b.part] == b {
			delete(s.open, b.part)
		}
		s.sealed = slices.DeleteFunc(s.sealed, func(x *batch) bool { return x == b })
	}
	s.writing = batches
	go func() { s.results <- s.write(ctx, batches) }()
}

// flushResult is what a write reports back to Run's goroutine, which owns
// the batches' bookkeeping and sends the acks.
type flushResult struct {
	err     error // ctx ended before the files were durable
	intent  string
	dropped []*batch // nothing to write (all undecodable, or encoding failed)
	start   time.Time
	files   int
	rows    int
	size    int64
}

// write encodes and stores batches; it touches no state Run owns.
func (s *Sink) write(ctx context.Context, batches []*batch) flushResult {
	r := flushResult{start: s.now()}
	var files []File
	var intentFiles []intentFile
	for _, b := range batches {
		if b.file == nil && !s.encode(b) {
			r.dropped = append(r.dropped, b)
			continue
		}
		files = append(files, File{Name: b.file.Path, Data: b.encoded})
		intentFiles = append(intentFiles, *b.file)
		r.rows += b.rows
		r.size += int64(len(b.encoded))
	}
	r.files = len(files)
	if len(files) == 0 {
		return r
	}
	name := fmt.Sprintf("%d-%s", r.start.UnixNano(), randomHex(4))
	r.err = s.retry(ctx, func() error {
		if err := s.ledger.write(ctx, name, intentFiles); err != nil {
			return err
		}
		for _, f := range files {
			if err := s.dest.Put(ctx, f.Name, f.Data); err != nil {
				return fmt.Errorf("write %s: %w", f.Name, err)
			}
		}
		return nil
	})
	r.intent = s.ledger.path(name)
	return r
}

// collectFlush takes a finished write's result if there is one.
func (s *Sink) collectFlush() {
	select {
	case r := <-s.results:
		s.complete(r)
	default:
	}
}

// await waits for the write in flight, if any, keeping held events alive
// with in-progress acks while it retries.
func (s *Sink) await() {
	if s.writing == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case r := <-s.results:
			s.complete(r)
			return
		case <-t.C:
			if s.Status().Err != "" {
				s.heartbeat()
			}
		}
	}
}

// complete acks a written flush's events, or seals its batches when it
// could not finish.
func (s *Sink) complete(r flushResult) {
	batches := s.writing
	s.writing = nil
	for _, b := range r.dropped {
		s.forget(b)
	}
	if r.err != nil {
		// ctx ended: nothing acked, nothing lost. The batches keep their
		// file for the final flush and take no more events.
		for _, b := range batches {
			if !slices.Contains(r.dropped, b) {
				s.sealed = append(s.sealed, b)
			}
		}
		return
	}
	var maxSeq uint64
	for _, b := range batches {
		if slices.Contains(r.dropped, b) {
			continue
		}
		for _, e := range b.events {
			s.reply(e.reply, ackAck)
		}
		maxSeq = max(maxSeq, b.maxSeq())
		s.forget(b)
	}
	if r.files == 0 {
		return
	}
	s.intents[r.intent] = maxSeq
	took := s.now().Sub(r.start)
	s.metrics.FilesWritten.Add(float64(r.files))
	s.metrics.RowsWritten.Add(float64(r.rows))
	s.metrics.BytesWritten.Add(float64(r.size))
	s.metrics.FlushDuration.Observe(took.Seconds())
	s.metrics.LastWrite.SetToCurrentTime()
	s.setHealthy()
	s.log.Debug("warehouse: flushed", "files", r.files, "events", r.rows, "bytes", r.size, "took", took)
}

// encode writes a batch's events as its file, sorted by id. Rows are
// decoded and written encodeChunk at a time, so a flush holds the
// columnar row group (compact) and one chunk of rows, not every row of
// the batch at once. Events that do not decode (ingest validated them, so
// only a foreign publisher makes these) are terminated and left out. It
// reports false when there is nothing to write. It runs in the write
// goroutine and changes only the batch.
func (s *Sink) encode(b *batch) bool {
	order := make([]idOrder, 0, len(b.events))
	for i, e := range b.events {
		id, err := RawID(e.data)
		if err != nil {
			s.poison(e, err)
			continue
		}
		order = append(order, idOrder{id: id, i: int32(i)})
	}
	slices.SortStableFunc(order, func(a, b idOrder) int { return strings.Compare(a.id, b.id) })

	var buf bytes.Buffer
	w := newRowWriter(&buf, s.opts.Encode)
	rows := make([]Row, 0, encodeChunk)
	seqs := make([]uint64, 0, len(order))
	var env causalityv1.EventEnvelope
	var scratch []byte
	write := func() error {
		_, err := w.Write(rows)
		rows = rows[:0]
		return err
	}
	var err error
	for _, o := range order {
		e := b.events[o.i]
		env.Reset()
		if uerr := proto.Unmarshal(e.data, &env); uerr != nil {
			s.poison(e, uerr)
			continue
		}
		rows = append(rows, fromEnvelope(&env, e.received, &scratch))
		seqs = append(seqs, e.seq)
		if len(rows) == encodeChunk {
			if err = write(); err != nil {
				break
			}
		}
	}
	if err == nil && len(rows) > 0 {
		err = write()
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		// Encoding valid rows in memory has no failure mode we know of;
		// leave the events to redelivery rather than guess.
		s.log.Error("warehouse: cannot encode a batch; its events stay in the stream", "partition", b.part.Path(), "err", err)
		return false
	}
	if len(seqs) == 0 {
		return false
	}
	set := seqSetOf(seqs)
	name := fmt.Sprintf("%d-%d-%s.parquet", set[0].lo, set.max(), randomHex(4))
	b.file = &intentFile{Path: b.part.Path() + "/" + name, Seqs: set.encode()}
	b.encoded = buf.Bytes()
	b.rows = len(seqs)
	// The stored bytes are no longer needed: the file holds the rows.
	for i := range b.events {
		b.events[i].data = nil
	}
	return true
}

// encodeChunk is how many rows encode decodes before handing them to the
// Parquet writer.
const encodeChunk = 1024

type idOrder struct {
	id string
	i  int32
}

func (s *Sink) poison(e heldEvent, err error) {
	s.log.Error("warehouse: stream message is not an event envelope; terminated", "seq", e.seq, "err", err)
	s.metrics.Poison.Inc()
	s.reply(e.reply, ackTerm)
}

func (b *batch) maxSeq() uint64 {
	var m uint64
	for _, e := range b.events {
		m = max(m, e.seq)
	}
	return m
}

// openBytes is what the batches still taking events hold; a write in
// flight holds at most as much again.
func (s *Sink) openBytes() int64 {
	n := s.buffered
	for _, b := range s.writing {
		n -= b.bytes
	}
	return n
}

func (s *Sink) openBatches() []*batch {
	out := make([]*batch, 0, len(s.open))
	for _, b := range s.open {
		out = append(out, b)
	}
	return out
}

// forget drops a batch's bookkeeping (written, or abandoned to redelivery).
func (s *Sink) forget(b *batch) {
	for _, e := range b.events {
		delete(s.held, e.seq)
	}
	if s.open[b.part] == b {
		delete(s.open, b.part)
	}
	s.sealed = slices.DeleteFunc(s.sealed, func(x *batch) bool { return x == b })
	s.buffered -= b.bytes
	s.metrics.Buffered.Sub(float64(len(b.events)))
	s.metrics.BufferedBytes.Sub(float64(b.bytes))
}

// retry runs op until it succeeds or ctx ends, backing off to 30s. Each
// failure mode is logged when it starts, not on every attempt. While it
// retries, Run's goroutine sends in-progress acks for every held event so
// that JetStream does not hand them to someone else (see heartbeat).
func (s *Sink) retry(ctx context.Context, op func() error) error {
	backoff := 250 * time.Millisecond
	var lastMode string
	for {
		err := op()
		if err == nil {
			if lastMode != "" {
				s.log.Info("warehouse: writes work again", "destination", s.dest.String())
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		mode := failureMode(err)
		s.metrics.FlushErrors.WithLabelValues(mode).Inc()
		if mode != lastMode {
			s.log.Error("warehouse: cannot write; events stay in the stream and writes are retried",
				"destination", s.dest.String(), "mode", mode, "err", err)
			lastMode = mode
		}
		s.setFailing(err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// heartbeat sends in-progress acks for every held event, at most every
// third of the ack wait.
func (s *Sink) heartbeat() {
	if s.now().Sub(s.lastHeartbeat) < s.opts.AckWait()/3 {
		return
	}
	s.lastHeartbeat = s.now()
	all := append(append(slices.Clone(s.sealed), s.writing...), s.openBatches()...)
	for _, b := range all {
		for _, e := range b.events {
			s.reply(e.reply, ackProgress)
		}
	}
}

// collect deletes intents that can no longer matter: every sequence they
// name is below the consumer's ack floor (never redelivered), and has been
// for ledgerGrace.
func (s *Sink) collect(ctx context.Context) {
	now := s.now()
	if now.Sub(s.lastGC) < gcEvery || len(s.intents) == 0 {
		return
	}
	s.lastGC = now
	info, err := s.cons.Info(ctx)
	if err != nil {
		return
	}
	var done []string
	for p, maxSeq := range s.intents {
		if maxSeq > info.AckFloor.Stream {
			continue
		}
		first, ok := s.collectable[p]
		if !ok {
			s.collectable[p] = now
			continue
		}
		if now.Sub(first) >= ledgerGrace {
			done = append(done, p)
		}
	}
	if err := s.ledger.delete(ctx, done...); err != nil {
		s.log.Warn("warehouse: cannot delete old ledger intents; will retry", "err", err)
		return
	}
	for _, p := range done {
		delete(s.intents, p)
		delete(s.collectable, p)
	}
	if info.AckFloor.Stream >= s.written.max() {
		s.written = nil
	}
}

func (s *Sink) setFailing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Err == "" {
		s.status.FailingSince = s.now()
	}
	s.status.Err = err.Error()
}

func (s *Sink) setHealthy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Err = ""
	s.status.FailingSince = time.Time{}
	s.status.LastWrite = s.now()
}

// Failure modes, for logs and the flush error metric.
const (
	modeDiskFull    = "disk_full"
	modePermission  = "permission"
	modeUnreachable = "unreachable"
	modeOther       = "other"
)

func failureMode(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return modeDiskFull
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return modePermission
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF):
		return modeUnreachable
	}
	// S3 errors arrive as text from the server. Only the innermost error is
	// read: the outer ones name the object, whose app id could contain any
	// of these words.
	for inner := errors.Unwrap(err); inner != nil; inner = errors.Unwrap(inner) {
		err = inner
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "no space left") || strings.Contains(msg, "quota") || strings.Contains(msg, "storage full") || strings.Contains(msg, "storage reached"):
		return modeDiskFull
	case strings.Contains(msg, "access denied") || strings.Contains(msg, "forbidden") || strings.Contains(msg, "permission denied"):
		return modePermission
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "timeout") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "server not initialized") || strings.Contains(msg, "unreachable"):
		return modeUnreachable
	}
	return modeOther
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lagCache keeps consumer info for metric scrapes without hammering the
// server.
type lagCache struct {
	mu   sync.Mutex
	at   time.Time
	lag  float64
	last error
}

// RegisterLag exports the consumer lag (events not yet written) on reg.
func (s *Sink) RegisterLag(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "causality_warehouse_consumer_lag",
		Help:        "Events in the stream not yet written to the lake: waiting for delivery plus delivered and unacknowledged.",
		ConstLabels: prometheus.Labels{"destination": s.dest.String()},
	}, func() float64 {
		lag, _ := s.Lag(context.Background())
		return float64(lag)
	}))
}

// Lag is the number of events not yet in the lake.
func (s *Sink) Lag(ctx context.Context) (uint64, error) {
	s.lagCache.mu.Lock()
	defer s.lagCache.mu.Unlock()
	if time.Since(s.lagCache.at) < time.Second {
		return uint64(s.lagCache.lag), s.lagCache.last
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := s.cons.Info(ctx)
	s.lagCache.at, s.lagCache.last = time.Now(), err
	if err != nil {
		return uint64(s.lagCache.lag), err
	}
	s.lagCache.lag = float64(info.NumPending + uint64(info.NumAckPending))
	return uint64(s.lagCache.lag), nil
}
