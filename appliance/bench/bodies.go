package bench

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// Ids are "bench-<run>-<counter>": run is 8 random hex digits per run (so that two runs
// inside the server's duplicate window do not collide) and counter is 16 hex digits. The
// fixed width is what makes ids cheap: a body is built once with a placeholder where the
// counter goes, and each request copies the body and overwrites those 16 bytes.
const (
	idDigits = 16
	idMarker = "~~~~~~~~~~~~~~~~" // placeholder of the counter while a template is built
)

// putHex writes v as idDigits lowercase hex digits into b.
func putHex(b []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := idDigits - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
}

// bodyTemplate is one pre-encoded request body.
type bodyTemplate struct {
	plain  []byte // what the server decodes (ids zeroed when they are patched per request)
	wire   []byte // what is sent: plain, or its gzip
	events int
	idAt   []int // offsets in wire of each event's counter digits (unique ids only)
	// With gzip and unique ids: plain cut around the counters (len(idAt)+1 pieces), for the
	// CRC of the gzip trailer, which sits at crcAt in wire.
	segs  [][]byte
	crcAt int
}

// BodySet is the pool of request bodies a run sends, built before the run so that the
// measurement sees no body generation: with unique ids each request costs one copy of a
// template and 16 byte writes per event (plus a CRC pass with gzip), and no body
// allocation once the buffer pool is warm.
type BodySet struct {
	templates   []bodyTemplate
	unique      bool
	ContentType string
	Gzip        bool
	counter     atomic.Uint64
	bufs        sync.Pool // *sendBuf
}

// bodyOptions describe the bodies to build.
type bodyOptions struct {
	app       string
	runID     string // 8 hex digits
	single    bool   // IngestEventRequest (one event) instead of a batch
	batchSize int
	bodies    int
	proto     bool
	gzip      bool
	unique    bool
}

// buildBodies makes opts.bodies distinct bodies from the event generator.
func buildBodies(gen *eventGen, opts bodyOptions) (*BodySet, error) {
	if len(opts.runID) != 8 {
		return nil, fmt.Errorf("run id %q: want 8 hex digits", opts.runID)
	}
	s := &BodySet{unique: opts.unique, Gzip: opts.gzip, ContentType: event.ContentTypeJSON}
	if opts.proto {
		s.ContentType = event.ContentTypeProtobuf
	}
	per := opts.batchSize
	if opts.single {
		per = 1
	}
	var serial uint64
	var gz gzipper
	for range opts.bodies {
		evs := make([]*causalityv1.EventEnvelope, per)
		for i := range evs {
			id := "bench-" + opts.runID + "-" + idMarker
			if !opts.unique { // fixed ids: after the first pass over the pool, repeats are duplicates
				var c [idDigits]byte
				putHex(c[:], serial)
				id = "bench-" + opts.runID + "-" + string(c[:])
				serial++
			}
			evs[i] = gen.envelope(id)
		}
		var msg proto.Message = &causalityv1.IngestEventBatchRequest{Events: evs}
		if opts.single {
			msg = &causalityv1.IngestEventRequest{Event: evs[0]}
		}
		var plain []byte
		var err error
		if opts.proto {
			plain, err = proto.Marshal(msg)
		} else {
			plain, err = protojson.Marshal(msg)
		}
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		t := bodyTemplate{plain: plain, wire: plain, events: per, crcAt: -1}
		if opts.unique {
			t.idAt = markerOffsets(plain)
			if len(t.idAt) != per {
				return nil, fmt.Errorf("body template: found %d id placeholders, want %d", len(t.idAt), per)
			}
			for _, off := range t.idAt {
				putHex(plain[off:], 0)
			}
		}
		if opts.gzip {
			if err := t.compress(&gz); err != nil {
				return nil, err
			}
		}
		s.templates = append(s.templates, t)
	}
	return s, nil
}

func markerOffsets(b []byte) []int {
	var offs []int
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(idMarker))
		if j < 0 {
			return offs
		}
		offs = append(offs, i+j)
		i += j + idDigits
	}
}

// compress sets t.wire to the gzip of t.plain. Without patchable ids that is plain gzip.
// With them the counters must stay writable in the compressed bytes, so the member is built
// by hand: one deflate stream over the body in which every counter travels as a 16-byte
// stored block. The compressor is fed the whole body in order, but each counter as 16 bytes
// of a value that occurs nowhere else in the body ("poison"), and its output for those 16
// bytes is thrown away, replaced by the stored block. Sync flushes around each counter keep
// the stream byte-aligned and leave no match pending across it. The compressor's window thus
// lines up byte for byte with the decoder's, and no back-reference can point into a counter
// (it would have to match poison), so the rest compresses as in a one-piece gzip except for
// a block header per event. The CRC in the trailer is recomputed per request.
func (t *bodyTemplate) compress(gz *gzipper) error {
	var out bytes.Buffer
	out.Write(gzipHeader[:])
	sw, zw, err := gz.reset(&out)
	if err != nil {
		return err
	}
	if len(t.idAt) == 0 {
		if _, err := zw.Write(t.plain); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		t.wire = appendGzipTrailer(out.Bytes(), crc32.ChecksumIEEE(t.plain), len(t.plain))
		return nil
	}

	// The pieces of plain around the counters.
	t.segs = t.segs[:0]
	prev := 0
	for _, off := range t.idAt {
		t.segs = append(t.segs, t.plain[prev:off])
		prev = off + idDigits
	}
	t.segs = append(t.segs, t.plain[prev:])

	var seen [256]bool
	for _, s := range t.segs {
		for _, c := range s {
			seen[c] = true
		}
	}
	poison := -1
	for c := 255; c >= 0; c-- {
		if !seen[c] {
			poison = c
			break
		}
	}
	if poison < 0 { // cannot happen for JSON; for protobuf it would take every byte value
		return errors.New("gzip with unique ids: every byte value occurs in the body; use --unique-ids=false or no --gzip")
	}
	var poisonID [idDigits]byte
	for i := range poisonID {
		poisonID[i] = byte(poison)
	}

	wireIDs := make([]int, 0, len(t.idAt))
	for k, seg := range t.segs {
		if _, err := zw.Write(seg); err != nil {
			return err
		}
		if err := zw.Flush(); err != nil {
			return err
		}
		if k == len(t.idAt) {
			break
		}
		sw.w = io.Discard
		if _, err := zw.Write(poisonID[:]); err != nil {
			return err
		}
		if err := zw.Flush(); err != nil {
			return err
		}
		sw.w = &out
		// Stored block, not final: header byte (BFINAL=0, BTYPE=00), LEN=16, NLEN=^16.
		out.Write([]byte{0x00, idDigits, 0x00, ^byte(idDigits), 0xff})
		wireIDs = append(wireIDs, out.Len())
		out.Write(t.plain[t.idAt[k] : t.idAt[k]+idDigits])
	}
	out.Write([]byte{0x01, 0x00, 0x00, 0xff, 0xff}) // final empty stored block
	t.crcAt = out.Len()
	t.wire = appendGzipTrailer(out.Bytes(), crc32.ChecksumIEEE(t.plain), len(t.plain))
	t.idAt = wireIDs
	return nil
}

// gzipper keeps one compressor for all templates: a new one allocates about a megabyte.
type gzipper struct {
	sw *switchWriter
	zw *flate.Writer
}

func (g *gzipper) reset(out io.Writer) (*switchWriter, *flate.Writer, error) {
	if g.zw == nil {
		g.sw = &switchWriter{w: out}
		zw, err := flate.NewWriter(g.sw, flate.DefaultCompression)
		if err != nil {
			return nil, nil, err
		}
		g.zw = zw
		return g.sw, g.zw, nil
	}
	g.sw.w = out
	g.zw.Reset(g.sw)
	return g.sw, g.zw, nil
}

// switchWriter lets compress send the compressor's output elsewhere between flushes.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// gzipHeader is a gzip member header without name or time (RFC 1952), OS unknown.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

func appendGzipTrailer(b []byte, crc uint32, size int) []byte {
	b = binary.LittleEndian.AppendUint32(b, crc)
	return binary.LittleEndian.AppendUint32(b, uint32(size))
}

// patch writes the counters base, base+1, ... into b, a copy of t.wire, and fixes the CRC.
func (t *bodyTemplate) patch(b []byte, base uint64) {
	for i, off := range t.idAt {
		putHex(b[off:off+idDigits], base+uint64(i))
	}
	if t.crcAt < 0 {
		return
	}
	var crc uint32
	for i, off := range t.idAt {
		crc = crc32.Update(crc, crc32.IEEETable, t.segs[i])
		crc = crc32.Update(crc, crc32.IEEETable, b[off:off+idDigits])
	}
	crc = crc32.Update(crc, crc32.IEEETable, t.segs[len(t.segs)-1])
	binary.LittleEndian.PutUint32(b[t.crcAt:], crc)
}

// Len is the number of distinct bodies.
func (s *BodySet) Len() int { return len(s.templates) }

// EventsPerBody is the number of events each body holds.
func (s *BodySet) EventsPerBody() int { return s.templates[0].events }

// Sizes returns the mean plain and wire size of a body in bytes.
func (s *BodySet) Sizes() (plain, wire int) {
	for _, t := range s.templates {
		plain += len(t.plain)
		wire += len(t.wire)
	}
	return plain / len(s.templates), wire / len(s.templates)
}

// sendBuf is a reusable copy of a body on its way out.
type sendBuf struct{ b []byte }

// Body returns request number seq's body. With unique ids it is a fresh copy with fresh
// counters, handed back to the pool when the HTTP transport closes it (it may still be
// writing after the response came back, so the buffer cannot be reused any earlier).
func (s *BodySet) Body(seq uint64) *Body {
	t := &s.templates[seq%uint64(len(s.templates))]
	if !s.unique {
		return &Body{data: t.wire}
	}
	sb, _ := s.bufs.Get().(*sendBuf)
	if sb == nil {
		sb = &sendBuf{}
	}
	sb.b = append(sb.b[:0], t.wire...)
	n := uint64(len(t.idAt))
	t.patch(sb.b, s.counter.Add(n)-n)
	return &Body{data: sb.b, buf: sb, set: s}
}

// Body is an io.ReadCloser over one request body.
type Body struct {
	data   []byte
	off    int
	buf    *sendBuf
	set    *BodySet
	closed atomic.Bool
}

// Bytes returns the whole body.
func (b *Body) Bytes() []byte { return b.data }

// Len is the body's length in bytes.
func (b *Body) Len() int { return len(b.data) }

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

// Close returns the buffer to the pool, once.
func (b *Body) Close() error {
	if b.closed.CompareAndSwap(false, true) && b.buf != nil {
		b.set.bufs.Put(b.buf)
	}
	return nil
}

var errBodyClosed = errors.New("bench: read of a closed request body")
