package warehouse

// Compaction merges the many small files the sink writes into an hour
// partition (one per flush) into a few files of about TargetBytes, once the
// hour is over. This comment is the whole scheme; the code follows it step
// by step.
//
// # What is merged
//
// A run lists "events" and groups objects by partition directory (the path
// up to and including hour=N). A directory is a candidate once its hour
// ended at least After ago (late events can still arrive after that; they
// are simply new small files that a later run merges). In a candidate, a
// pass lists the directory, THEN reads the ledger's referenced files, and
// takes as inputs the visible .parquet files smaller than TargetBytes/2 that
// no intent names. The order matters: the sink records an intent before it
// writes a file, so a file that was in our listing had its intent recorded
// before we read the ledger and is protected; a file written after the
// listing is not an input at all. A referenced file must stay, because the
// sink decides "already written" by its existence (see ledger.go). Fewer
// than two inputs: nothing to do.
//
// A pass takes inputs in name order up to MaxInputs files and TargetBytes
// of input in total (each input is below TargetBytes/2, so two always fit),
// and stops earlier if the readers it would have open at once would need
// more than readerMemBudget (see Memory). Passes repeat until fewer than
// two inputs are left. Every output but the
// last of a pass is at least TargetBytes/2 (see outputSet), so each pass
// lowers the number of small files by at least one: the loop ends, and a
// second run over an unchanged lake does nothing.
//
// # Merge
//
// The sink writes every file sorted by id, so a pass is a streaming k-way
// merge by id (container/heap over one parquet.GenericReader per input,
// read in chunks). A reader is opened only when the merge reaches the
// smallest id of its file (from the footer's statistics) and closed at the
// file's end: ids are time-ordered and each sink file holds one flush, so
// an hour's files cover successive id ranges and are read one or two at a
// time, not all at once. Duplicate ids, which only a redelivery bug could create,
// are dropped exactly: of the rows with one id the one with the earliest
// received_at is kept, then the one from the first input in name order.
// Deduplication sees only the files merged in one pass. An input that is
// not sorted by id fails the directory's compaction before anything is
// written (ErrUnsortedInput). Outputs are written with WriteParquet's
// settings (newRowWriter), cut at about TargetBytes, so they too are sorted
// by id and cover disjoint id ranges. They are named c-<id>-<n>.parquet,
// where id is a truncated sha256 of the directory and the sorted input
// names: deterministic, so a retried pass writes the same names.
//
// # Swap, and finishing an interrupted one
//
// After the merge, and before touching the partition, a manifest
// {dir, inputs, outputs} is stored durably as _causality/compactions/<id>.json.
// Then Dest.Replace(dir, outputs, inputs) swaps, then the manifest is
// deleted. Every run first resolves the manifests it finds, deciding by what
// exists in dir, never by how far the crashed run believed it got:
//
//   - every output exists: the swap's add half completed, and the outputs
//     hold every distinct id of the inputs, so the inputs still present are
//     deleted (roll forward);
//   - some output is missing: the swap never completed its add half, and
//     both Replace implementations delete nothing before every add is done,
//     so all inputs are still there; the outputs that exist are deleted
//     (roll back) and a later pass merges the inputs again.
//
// Then the manifest is deleted; a directory whose manifest could not be
// resolved is not compacted in that run. Each crash point, with the state
// it leaves and what the next run does:
//
//   - before the manifest is stored: outputs existed only in memory; the
//     lake is untouched. Nothing to resolve.
//   - manifest stored, Replace not started (or failed early): inputs only,
//     no output. Roll back (deletes nothing).
//   - local Replace: renameat2(RENAME_EXCHANGE) makes the staged directory
//     (kept files + outputs) the partition in one step: before it, as above;
//     after it, outputs only. Roll back or roll forward (deletes nothing).
//     A hidden staging directory may be left beside the partition; readers
//     never see it.
//   - S3 Replace (and the local fallback without RENAME_EXCHANGE) uploads
//     outputs one by one, then deletes inputs. Crash during uploads: some
//     outputs + all inputs: roll back deletes the uploaded outputs. Crash
//     during deletes, or after: all outputs + some inputs: roll forward
//     deletes the rest.
//   - crash while resolving: every step above is an idempotent delete and
//     the manifest goes last, so the next run resolves the same way (a
//     partial roll back still has an output missing; a partial roll
//     forward still has every output).
//
// In every case the next run leaves each event exactly once in the lake.
// Names are never reused for other content: a pass whose output names
// already exist in the directory (a later file reusing an old input name)
// salts its id until they do not.
//
// The scheme assumes ONE compactor per lake at a time (RunOnce calls on one
// Compactor are serialised): a second process resolving a manifest while
// its owner is still uploading would roll back under it and lose rows.
//
// # What readers see
//
// On local disk there is no window: the compactor changes a partition only
// through Replace, and localdest swaps the whole partition directory with a
// staged copy in one RENAME_EXCHANGE, so the directory a reader opens holds
// either the old files or the new ones, never both (duplicates) and never
// neither (missing rows); there is no moment in between to observe. A
// reader can hit a file it listed just before the swap being gone when it
// opens it: it lists again and gets the new set
// (TestCompactLocalReadersSeeEveryIDOnce counts how often). localdest
// keeps the swapped-out content for a minute before deleting it, so a
// listing that straddles the swap still reads one whole directory, and its
// List reads each directory through one descriptor. On S3, which has no
// multi-object swap, a listing between the
// first upload and the last delete sees both old and new files: rows
// twice, never rows missing.
//
// # Memory
//
// Nothing is proportional to the rows of a partition. A pass holds:
//
//   - its outputs, compressed, because Replace takes them whole: about the
//     size of its inputs, so at most about TargetBytes (one buffer, sized
//     up front from the inputs' size plus 1/8);
//   - the writer's current row group, flushed every TargetBytes/4 (at
//     least 1 MiB), plus at most one uncompressed page per column, and the
//     zstd encoder's state (~32 MiB for the default codec, pooled and
//     shared with the sink);
//   - the open readers: each ~400 KiB (read buffers, its chunk of
//     mergeChunk decoded rows) plus ~1.6 x its current page per column
//     (pages are up to 256 KiB of values), so up to ~5 MiB for a large
//     file. Inputs are chosen so that the readers open at once stay within
//     readerMemBudget (32 MiB, estimated from footers);
//   - not the inputs: Dest.Get returns whole objects, so each is copied
//     to an unlinked file in TempDir (a pass's inputs are at most
//     TargetBytes of disk) and read from there.
//
// So about 1.4 x TargetBytes + ~75 MiB at worst. With the default 64 MiB,
// BenchmarkCompact's hour (20 files, 1M rows, 43 MiB) peaked at 117 MiB
// live (successive id ranges, one pass) and 130 MiB (random ids, four
// passes), measured with GOGC=10. A smaller TargetBytes lowers the first
// term proportionally.

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Compaction defaults.
const (
	DefaultCompactTargetBytes int64 = 64 << 20
	DefaultCompactAfter             = time.Hour
	DefaultCompactMaxInputs         = 256
)

// CompactionDir holds the manifests of compactions in progress, beside the
// lake ("_" keeps Hive readers out).
const CompactionDir = "_causality/compactions"

// ErrUnsortedInput reports an input file whose rows are not sorted by id;
// the partition is left untouched.
var ErrUnsortedInput = errors.New("warehouse: compaction input not sorted by id")

// Merge buffering: each open input reads mergeChunk rows at a time; rows
// go to the writer mergeBatch at a time.
const (
	mergeChunk = 128
	mergeBatch = 128
)

// Compactor merges small files of closed hour partitions. See the comment
// at the top of this file for the scheme and its guarantees.
type Compactor struct {
	Dest Destination
	// Ledger protects the files live intents name; nil protects nothing.
	Ledger *ledger
	// TargetBytes is the size outputs are cut at; files from TargetBytes/2
	// up are left alone. 0 means DefaultCompactTargetBytes.
	TargetBytes int64
	// After is how long after its hour ended a partition is compacted;
	// 0 means DefaultCompactAfter.
	After time.Duration
	// MaxInputs bounds the files merged in one pass; 0 means
	// DefaultCompactMaxInputs.
	MaxInputs int
	// Encode is the Parquet encoding of outputs; the zero value is
	// WriteParquet's production default.
	Encode EncodeOptions
	// TempDir holds a pass's inputs while they are merged (an unlinked
	// file, at most about TargetBytes); "" means os.TempDir().
	TempDir string
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex // one RunOnce at a time
}

// CompactReport sums up one RunOnce.
type CompactReport struct {
	Partitions int // closed hour partitions looked at
	Compacted  int // partitions at least one pass merged
	Passes     int
	Recovered  int // interrupted compactions finished or rolled back
	FilesIn    int
	FilesOut   int
	RowsIn     int64
	RowsOut    int64
	Duplicates int64 // rows dropped because their id was already kept
	BytesIn    int64
	BytesOut   int64
}

// Did reports whether the run changed anything.
func (r CompactReport) Did() bool { return r.Passes > 0 || r.Recovered > 0 }

func (r *CompactReport) addPass(s passStats) {
	r.Passes++
	r.FilesIn += s.filesIn
	r.FilesOut += s.filesOut
	r.RowsIn += s.rowsIn
	r.RowsOut += s.rowsOut
	r.Duplicates += s.rowsIn - s.rowsOut
	r.BytesIn += s.bytesIn
	r.BytesOut += s.bytesOut
}

type passStats struct {
	filesIn, filesOut int
	rowsIn, rowsOut   int64
	bytesIn, bytesOut int64
	smallOut          int // outputs below TargetBytes/2 (candidates again)
}

func (c *Compactor) target() int64 {
	if c.TargetBytes > 0 {
		return c.TargetBytes
	}
	return DefaultCompactTargetBytes
}

func (c *Compactor) after() time.Duration {
	if c.After > 0 {
		return c.After
	}
	return DefaultCompactAfter
}

func (c *Compactor) maxInputs() int {
	if c.MaxInputs >= 2 {
		return c.MaxInputs
	}
	if c.MaxInputs > 0 {
		return 2
	}
	return DefaultCompactMaxInputs
}

func (c *Compactor) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Compactor) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// RunOnce finishes interrupted compactions, then compacts every closed hour
// partition with at least two small unprotected files. An error in one
// partition does not stop the others; all errors are returned joined.
func (c *Compactor) RunOnce(ctx context.Context) (CompactReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rep CompactReport

	blocked, errs, err := c.resolveAll(ctx, &rep)
	if err != nil {
		return rep, err
	}

	objs, err := c.Dest.List(ctx, "events")
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("compaction: list lake: %w", err))...)
	}
	now, after, half := c.now(), c.after(), c.target()/2
	small := map[string]int{} // closed partition dir -> small .parquet files
	for _, o := range objs {
		dir, name := path.Split(o.Path)
		dir = strings.TrimSuffix(dir, "/")
		end, ok := partitionHourEnd(dir)
		if !ok || now.Sub(end) < after {
			continue
		}
		n := small[dir]
		if strings.HasSuffix(name, ".parquet") && o.Size < half {
			n++
		}
		small[dir] = n
	}
	dirs := make([]string, 0, len(small))
	for dir := range small {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	rep.Partitions = len(dirs)
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if small[dir] < 2 || blocked[dir] {
			continue
		}
		if err := c.compactDir(ctx, dir, &rep); err != nil {
			errs = append(errs, fmt.Errorf("compact %s: %w", dir, err))
		}
	}
	return rep, errors.Join(errs...)
}

// compactDir runs passes over dir until fewer than two inputs are left.
func (c *Compactor) compactDir(ctx context.Context, dir string, rep *CompactReport) error {
	compacted := false
	for {
		inputs, listed, err := c.pickInputs(ctx, dir)
		if err != nil || len(inputs) < 2 {
			return err
		}
		st, swapped, err := c.pass(ctx, dir, inputs, listed)
		if swapped {
			rep.addPass(st)
			if !compacted {
				rep.Compacted++
				compacted = true
			}
		}
		if err != nil {
			return err
		}
		if st.smallOut >= st.filesIn {
			// Cannot happen (see outputSet); never loop on it.
			return fmt.Errorf("pass merged %d files into %d small ones; stopping", st.filesIn, st.smallOut)
		}
	}
}

// pickInputs lists dir and then reads the ledger (in that order, see the
// top of the file) and returns the next pass's inputs in name order, and
// the names of everything visible in dir.
func (c *Compactor) pickInputs(ctx context.Context, dir string) ([]Object, map[string]bool, error) {
	objs, err := c.Dest.List(ctx, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list: %w", err)
	}
	half := c.target() / 2
	listed := make(map[string]bool, len(objs))
	var cand []Object
	for _, o := range objs {
		d, name := path.Split(o.Path)
		if strings.TrimSuffix(d, "/") != dir {
			continue
		}
		listed[name] = true
		if strings.HasSuffix(name, ".parquet") && o.Size < half {
			cand = append(cand, o)
		}
	}
	if len(cand) < 2 {
		return nil, listed, nil
	}
	if c.Ledger != nil {
		ref, err := c.Ledger.referenced(ctx)
		if err != nil {
			return nil, nil, err
		}
		cand = slices.DeleteFunc(cand, func(o Object) bool { return ref[o.Path] })
	}
	slices.SortFunc(cand, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	budget, limit := c.target(), c.maxInputs()
	var total int64
	n := 0
	for n < len(cand) && n < limit && (n < 2 || total+cand[n].Size <= budget) {
		total += cand[n].Size
		n++
	}
	return cand[:n], listed, nil
}

// pass merges inputs into outputs and swaps them in under a manifest.
// swapped reports that the outputs replaced the inputs (even if cleaning up
// the manifest then failed).
func (c *Compactor) pass(ctx context.Context, dir string, inputs []Object, listed map[string]bool) (st passStats, swapped bool, err error) {
	sp, err := newSpool(c.TempDir)
	if err != nil {
		return st, false, err
	}
	defer sp.Close()
	ins, err := prepareInputs(ctx, c.Dest, sp, inputs, true)
	if err != nil {
		return st, false, err
	}
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = path.Base(in.path)
	}
	id := compactionID(dir, names, listed)
	outs, st, err := mergeInputs(ctx, ins, "c-"+id, c.target(), c.Encode)
	if err != nil {
		return st, false, err
	}
	m := compactManifest{Version: manifestVersion, Dir: dir, Inputs: names, Created: c.now().UTC()}
	for _, f := range outs {
		m.Outputs = append(m.Outputs, f.Name)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return st, false, err
	}
	mpath := path.Join(CompactionDir, id+".json")
	if err := c.Dest.Put(ctx, mpath, data); err != nil {
		return st, false, fmt.Errorf("store compaction manifest: %w", err)
	}
	if err := c.Dest.Replace(ctx, dir, outs, names); err != nil {
		// The swap may be half done (S3). Settle it now by what exists,
		// so readers do not see rows twice until the next run; if that
		// fails too, the next run does it.
		forward, rerr := c.resolve(ctx, mpath, m)
		if rerr != nil {
			return st, false, fmt.Errorf("swap: %w (left for the next run: %v)", err, rerr)
		}
		if forward {
			return st, true, nil // it had completed after all
		}
		return st, false, fmt.Errorf("swap (rolled back): %w", err)
	}
	if err := c.Dest.Delete(ctx, mpath); err != nil {
		// The swap is done; a leftover manifest only rolls forward over
		// inputs that are gone already.
		return st, true, fmt.Errorf("delete compaction manifest: %w", err)
	}
	return st, true, nil
}

// compactionID names a pass by its directory and inputs. If a visible file
// in dir already carries an output name of that id (a later file reused an
// input name of a finished compaction), the id is salted until none does,
// so outputs never overwrite other data.
func compactionID(dir string, inputs []string, listed map[string]bool) string {
	sorted := slices.Clone(inputs)
	slices.Sort(sorted)
	for salt := 0; ; salt++ {
		h := sha256.New()
		h.Write([]byte(dir))
		for _, name := range sorted {
			h.Write([]byte{0})
			h.Write([]byte(name))
		}
		if salt > 0 {
			fmt.Fprintf(h, "\x01%d", salt)
		}
		id := hex.EncodeToString(h.Sum(nil))[:20]
		taken := false
		for name := range listed {
			if strings.HasPrefix(name, "c-"+id+"-") {
				taken = true
				break
			}
		}
		if !taken {
			return id
		}
	}
}

// compactManifest records a swap about to happen; see the top of the file.
type compactManifest struct {
	Version int       `json:"v"`
	Dir     string    `json:"dir"`
	Inputs  []string  `json:"inputs"`
	Outputs []string  `json:"outputs"`
	Created time.Time `json:"created"`
}

const manifestVersion = 1

func (m *compactManifest) valid() error {
	if m.Version != manifestVersion {
		return fmt.Errorf("version %d", m.Version)
	}
	if _, ok := partitionHourEnd(m.Dir); !ok {
		return fmt.Errorf("dir %q is not an hour partition", m.Dir)
	}
	for _, name := range append(slices.Clone(m.Inputs), m.Outputs...) {
		if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
			return fmt.Errorf("bad file name %q", name)
		}
	}
	return nil
}

// resolveAll settles every manifest left by an interrupted run. It returns
// the directories whose manifest is still unsettled (not to be compacted
// now) with their errors; a manifest it cannot read is fatal, since its
// directory is unknown.
func (c *Compactor) resolveAll(ctx context.Context, rep *CompactReport) (map[string]bool, []error, error) {
	objs, err := c.Dest.List(ctx, CompactionDir)
	if err != nil {
		return nil, nil, fmt.Errorf("compaction: list manifests: %w", err)
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	blocked := map[string]bool{}
	var errs []error
	for _, o := range objs {
		if !strings.HasSuffix(o.Path, ".json") {
			continue
		}
		data, err := c.Dest.Get(ctx, o.Path)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("compaction: read manifest: %w", err)
		}
		var m compactManifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, nil, fmt.Errorf("compaction: manifest %s is unreadable: %w", o.Path, err)
		}
		if err := m.valid(); err != nil {
			return nil, nil, fmt.Errorf("compaction: manifest %s: %w", o.Path, err)
		}
		forward, err := c.resolve(ctx, o.Path, m)
		if err != nil {
			blocked[m.Dir] = true
			errs = append(errs, fmt.Errorf("compaction: resolve %s: %w", o.Path, err))
			continue
		}
		rep.Recovered++
		c.log().Warn("warehouse compaction: finished an interrupted swap",
			"dir", m.Dir, "rolled_forward", forward, "inputs", len(m.Inputs), "outputs", len(m.Outputs))
	}
	return blocked, errs, nil
}

// resolve settles one manifest by what exists in its directory (see the
// top of the file) and deletes it.
func (c *Compactor) resolve(ctx context.Context, mpath string, m compactManifest) (forward bool, err error) {
	objs, err := c.Dest.List(ctx, m.Dir)
	if err != nil {
		return false, err
	}
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		if d, name := path.Split(o.Path); strings.TrimSuffix(d, "/") == m.Dir {
			present[name] = true
		}
	}
	forward = true
	for _, name := range m.Outputs {
		if !present[name] {
			forward = false
			break
		}
	}
	doomed := m.Outputs
	if forward {
		doomed = m.Inputs
	}
	var del []string
	for _, name := range doomed {
		if present[name] {
			del = append(del, path.Join(m.Dir, name))
		}
	}
	if err := c.Dest.Delete(ctx, del...); err != nil {
		return forward, err
	}
	return forward, c.Dest.Delete(ctx, mpath)
}

// partitionHourEnd parses an hour partition directory
// "events/app_id=<a>/year=Y/month=M/day=D/hour=H" and returns the end of
// that hour (UTC). Anything else is not a partition.
func partitionHourEnd(dir string) (time.Time, bool) {
	seg := strings.Split(dir, "/")
	if len(seg) != 6 || seg[0] != "events" || len(seg[1]) <= len("app_id=") || !strings.HasPrefix(seg[1], "app_id=") {
		return time.Time{}, false
	}
	var v [4]int
	for i, key := range [4]string{"year=", "month=", "day=", "hour="} {
		s, ok := strings.CutPrefix(seg[2+i], key)
		if !ok || s == "" || len(s) > 4 || strings.Trim(s, "0123456789") != "" {
			return time.Time{}, false
		}
		v[i], _ = strconv.Atoi(s)
	}
	start := time.Date(v[0], time.Month(v[1]), v[2], v[3], 0, 0, 0, time.UTC)
	if start.Year() != v[0] || int(start.Month()) != v[1] || start.Day() != v[2] || start.Hour() != v[3] {
		return time.Time{}, false // month=13, day=31 in November, hour=24
	}
	return start.Add(time.Hour), true
}

// passInput is one input of a pass: its footer, opened on a copy of the
// object in the pass's spool file.
type passInput struct {
	idx  int // position in name order: the dedup tie-break
	path string
	size int64
	file *parquet.File
	rows int64
	// minID and maxID bound the file's ids (from its footer statistics);
	// ranged is false when the footer has none.
	minID, maxID string
	ranged       bool
	// mem estimates the heap a reader of this file holds while active.
	mem int64
}

// Reader memory: an active parquet-go reader holds, per column, a read
// buffer and its current page decompressed and decoded, and the rows of its
// chunk. Measured on WriteParquet's files: ~250 KiB fixed with 64-row
// chunks, ~1.2 KiB per chunk row, plus up to ~1.6 x the page (pages are
// cut at 256 KiB of values, smaller in small files).
const (
	readerFixedMem     = 400 << 10
	readerPageCap      = 256 << 10
	readerPageFactor   = 1.6
	readerMemBudget    = 32 << 20 // estimated, of the readers active at once
	spoolFilePattern   = "causality-compact-*"
	minRowGroupFlushAt = 1 << 20
)

// spool holds a pass's inputs on local disk, so that their bytes are not on
// the heap while they are merged (Destination.Get returns whole objects).
// The file is unlinked as soon as it is created: nothing is left behind by
// a crash, and the space is returned when it is closed.
type spool struct {
	f   *os.File
	off int64
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, spoolFilePattern)
	if err != nil {
		return nil, fmt.Errorf("compaction spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("compaction spool: %w", err)
	}
	return &spool{f: f}, nil
}

func (s *spool) add(data []byte) (*io.SectionReader, error) {
	if _, err := s.f.WriteAt(data, s.off); err != nil {
		return nil, fmt.Errorf("compaction spool: %w", err)
	}
	r := io.NewSectionReader(s.f, s.off, int64(len(data)))
	s.off += int64(len(data))
	return r, nil
}

func (s *spool) Close() error { return s.f.Close() }

// prepareInputs copies the candidates, in order, into sp and reads their
// footers. It stops before the first candidate that would let the readers
// active at once exceed readerMemBudget (see maxOverlap), always keeping
// two; budget false keeps them all.
func prepareInputs(ctx context.Context, dest Destination, sp *spool, cands []Object, budget bool) ([]*passInput, error) {
	var ins []*passInput
	for i, o := range cands {
		data, err := dest.Get(ctx, o.Path)
		if err != nil {
			return nil, fmt.Errorf("read input: %w", err)
		}
		r, err := sp.add(data)
		if err != nil {
			return nil, err
		}
		in, err := openInput(r, int64(len(data)), o.Path, i)
		if err != nil {
			return nil, err
		}
		if budget && len(ins) >= 2 && maxOverlap(append(ins, in)) > readerMemBudget {
			break
		}
		ins = append(ins, in)
	}
	return ins, nil
}

func openInput(r io.ReaderAt, size int64, p string, idx int) (*passInput, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", p, err)
	}
	in := &passInput{idx: idx, path: p, size: size, file: f, rows: f.NumRows()}
	leaf, ok := f.Schema().Lookup("id")
	md := f.Metadata()
	in.ranged = ok && len(md.RowGroups) > 0
	pages := map[int]int64{}
	for g, rg := range md.RowGroups {
		for c, cc := range rg.Columns {
			pages[c] = max(pages[c], min(cc.MetaData.TotalUncompressedSize, readerPageCap))
		}
		if !in.ranged {
			continue
		}
		st := rg.Columns[leaf.ColumnIndex].MetaData.Statistics
		lo, hi := st.MinValue, st.MaxValue
		if lo == nil || hi == nil {
			in.ranged = false
			continue
		}
		if g == 0 || string(lo) < in.minID {
			in.minID = string(lo)
		}
		if g == 0 || string(hi) > in.maxID {
			in.maxID = string(hi)
		}
	}
	var page int64
	for _, p := range pages {
		page += p
	}
	in.mem = readerFixedMem + int64(readerPageFactor*float64(page))
	return in, nil
}

// maxOverlap is the largest estimated memory of readers active at once in
// a merge of ins: readers are opened when the merge reaches their smallest
// id and closed after their largest, so it is the heaviest set of inputs
// whose id ranges share a point. An input without statistics overlaps all.
func maxOverlap(ins []*passInput) int64 {
	type edge struct {
		id    string
		start bool
		mem   int64
	}
	var edges []edge
	var always int64
	for _, in := range ins {
		if in.rows == 0 {
			continue
		}
		if !in.ranged {
			always += in.mem
			continue
		}
		edges = append(edges, edge{in.minID, true, in.mem}, edge{in.maxID, false, in.mem})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		switch { // ranges are closed: at one id, starts come first
		case a.start && !b.start:
			return -1
		case !a.start && b.start:
			return 1
		}
		return 0
	})
	var cur, peak int64
	for _, e := range edges {
		if e.start {
			cur += e.mem
			peak = max(peak, cur)
		} else {
			cur -= e.mem
		}
	}
	return always + peak
}

// mergeFiles merges the objects inputs (each sorted by id) into outputs
// named <prefix>-<n>.parquet; see mergeInputs.
func mergeFiles(ctx context.Context, dest Destination, inputs []Object, prefix string, target int64, opts EncodeOptions, tempDir string) ([]File, passStats, error) {
	sp, err := newSpool(tempDir)
	if err != nil {
		return nil, passStats{}, err
	}
	defer sp.Close()
	ins, err := prepareInputs(ctx, dest, sp, inputs, false)
	if err != nil {
		return nil, passStats{}, err
	}
	return mergeInputs(ctx, ins, prefix, target, opts)
}

// mergeInputs merges ins (each sorted by id) into outputs named
// <prefix>-<n>.parquet, sorted by id, without duplicate ids, each cut at
// about target bytes.
//
// A reader is opened only when the merge reaches the smallest id of its
// file (footer statistics) and closed at its end, so files covering
// successive id ranges, as the sink's do, are read one or two at a time.
func mergeInputs(ctx context.Context, ins []*passInput, prefix string, target int64, opts EncodeOptions) ([]File, passStats, error) {
	st := passStats{filesIn: len(ins)}
	pending := make([]*passInput, 0, len(ins))
	for _, in := range ins {
		st.bytesIn += in.size
		if in.rows > 0 {
			pending = append(pending, in)
		}
	}
	// Files without statistics first (activated at once), then by their
	// smallest id.
	slices.SortStableFunc(pending, func(a, b *passInput) int {
		switch {
		case !a.ranged && b.ranged:
			return -1
		case a.ranged && !b.ranged:
			return 1
		}
		return strings.Compare(a.minID, b.minID)
	})
	h := make(mergeHeap, 0, len(ins))
	defer func() {
		for _, s := range h {
			s.release()
		}
	}()

	out := outputSet{prefix: prefix, target: target, opts: opts, remaining: st.bytesIn}
	batch := make([]Row, 0, mergeBatch)
	emit := func(r Row) error {
		batch = append(batch, r)
		if len(batch) < mergeBatch {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := out.write(batch)
		clear(batch) // drop string references early
		batch = batch[:0]
		return err
	}
	var cur Row
	curIdx, have := 0, false
	for len(h) > 0 || len(pending) > 0 {
		// Open every file that may hold the next id.
		for len(pending) > 0 && (len(h) == 0 || !pending[0].ranged || pending[0].minID <= h.top().ID) {
			in := pending[0]
			pending = pending[1:]
			s := &mergeSource{idx: in.idx, path: in.path, r: parquet.NewGenericReader[Row](in.file), buf: make([]Row, mergeChunk)}
			in.file = nil // the reader holds it until released
			ok, err := s.fill()
			if err != nil {
				s.release()
				return nil, st, err
			}
			st.rowsIn += int64(s.n)
			if !ok {
				s.release()
				continue
			}
			if first := s.buf[0].ID; have && first < cur.ID {
				// The footer's statistics put it later than its rows:
				// merging on would write ids out of order.
				s.release()
				return nil, st, fmt.Errorf("%w: %s starts at id %q, below its footer's minimum %q", ErrUnsortedInput, in.path, first, in.minID)
			}
			heap.Push(&h, s)
		}
		if len(h) == 0 {
			break // only empty files were left
		}
		s := h[0]
		r := &s.buf[s.pos]
		switch {
		case !have:
			cur, curIdx, have = *r, s.idx, true
		case r.ID == cur.ID:
			if r.ReceivedAt < cur.ReceivedAt || (r.ReceivedAt == cur.ReceivedAt && s.idx < curIdx) {
				cur, curIdx = *r, s.idx
			}
		default:
			if err := emit(cur); err != nil {
				return nil, st, err
			}
			st.rowsOut++
			cur, curIdx = *r, s.idx
		}
		if s.pos++; s.pos < s.n {
			heap.Fix(&h, 0)
			continue
		}
		ok, err := s.fill()
		if err != nil {
			return nil, st, err
		}
		st.rowsIn += int64(s.n)
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
			s.release()
		}
	}
	if have {
		if err := emit(cur); err != nil {
			return nil, st, err
		}
		st.rowsOut++
	}
	if len(batch) > 0 {
		if err := out.write(batch); err != nil {
			return nil, st, err
		}
	}
	if err := out.finish(); err != nil {
		return nil, st, err
	}
	st.filesOut = len(out.files)
	for _, f := range out.files {
		st.bytesOut += int64(len(f.Data))
		if int64(len(f.Data)) < target/2 {
			st.smallOut++
		}
	}
	return out.files, st, nil
}

// mergeSource is one open input of a merge: a reader and its current chunk.
type mergeSource struct {
	idx  int
	path string
	r    *parquet.GenericReader[Row]
	buf  []Row
	pos  int
	n    int
	last string // last id read, for the order check
	read bool   // last is set
	eof  bool
}

// fill reads the next chunk, checking that ids do not go down. It reports
// false at the end of the file.
func (s *mergeSource) fill() (bool, error) {
	s.pos, s.n = 0, 0
	for !s.eof {
		n, err := s.r.Read(s.buf)
		if errors.Is(err, io.EOF) {
			s.eof, err = true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read input %s: %w", s.path, err)
		}
		if n == 0 {
			continue
		}
		for i := range s.buf[:n] {
			id := s.buf[i].ID
			if s.read && id < s.last {
				return false, fmt.Errorf("%w: %s has id %q after %q", ErrUnsortedInput, s.path, id, s.last)
			}
			s.last, s.read = id, true
		}
		s.n = n
		return true, nil
	}
	return false, nil
}

func (s *mergeSource) release() {
	if s.r != nil {
		s.r.Close()
	}
	s.r, s.buf = nil, nil
}

// mergeHeap orders sources by their current row: id, then received_at,
// then input order.
type mergeHeap []*mergeSource

func (h mergeHeap) top() *Row     { return &h[0].buf[h[0].pos] }
func (h mergeHeap) Len() int      { return len(h) }
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h mergeHeap) Less(i, j int) bool {
	a, b := &h[i].buf[h[i].pos], &h[j].buf[h[j].pos]
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	if a.ReceivedAt != b.ReceivedAt {
		return a.ReceivedAt < b.ReceivedAt
	}
	return h[i].idx < h[j].idx
}
func (h *mergeHeap) Push(x any) { *h = append(*h, x.(*mergeSource)) }
func (h *mergeHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}

// outputSet writes merged rows into successive in-memory Parquet files.
//
// A file is cut once the writer's Size (bytes written plus the current row
// group, its unflushed values counted uncompressed, so an overestimate)
// reaches target: the row group is flushed (making Size exact) and, if the
// file really holds target/2 or more, closed; otherwise writing goes on
// into it. So every output but the last is at least target/2 (no longer a
// compaction input) and at most about target plus one batch and the
// footer. Row groups are also flushed every target/4 (at least 1 MiB), so
// the writer's buffered row group stays a fraction of an output.
type outputSet struct {
	prefix    string
	target    int64
	opts      EncodeOptions
	remaining int64 // input bytes not yet accounted for by outputs: a size hint

	buf     *bytes.Buffer
	w       *parquet.GenericWriter[Row]
	flushed int64 // Size at the last row group flush
	files   []File
}

func (o *outputSet) write(rows []Row) error {
	if o.w == nil {
		// Outputs come out about as large as their inputs, so size the
		// buffer for that with some slack, capped by the target (plus the
		// cut's slack): outgrowing it would copy the whole file at twice
		// its size.
		rem := max(o.remaining, 0)
		hint := min(rem+rem/8, o.target+o.target/8) + 64<<10
		o.buf = bytes.NewBuffer(make([]byte, 0, hint))
		o.w = newRowWriter(o.buf, o.opts)
		o.flushed = 0
	}
	if _, err := o.w.Write(rows); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	size := o.w.Size()
	if size < o.target && size-o.flushed < max(o.target/4, minRowGroupFlushAt) {
		return nil
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	// With the row group flushed, Size is exact: the bytes written so
	// far (some may still sit in the writer's own buffer, not yet in buf).
	o.flushed = o.w.Size()
	if size >= o.target && o.flushed >= o.target/2 {
		return o.cut()
	}
	return nil
}

func (o *outputSet) cut() error {
	if err := o.w.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	// The buffer was sized from the remaining input, so the hints of all
	// outputs add up to about the input: keeping its spare capacity costs
	// less than a copy would at this moment.
	data := o.buf.Bytes()
	o.remaining -= int64(len(data))
	o.files = append(o.files, File{Name: fmt.Sprintf("%s-%d.parquet", o.prefix, len(o.files)), Data: data})
	o.w, o.buf = nil, nil
	return nil
}

func (o *outputSet) finish() error {
	if o.w == nil {
		return nil
	}
	return o.cut()
}
