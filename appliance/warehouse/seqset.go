package warehouse

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"sort"
)

// seqRange is an inclusive run of stream sequences.
type seqRange struct{ lo, hi uint64 }

// seqSet is a set of stream sequences kept as sorted, disjoint runs. One
// file's sequences are mostly runs (one app, one hour, in stream order), so
// this stays small where a map of every sequence would not.
type seqSet []seqRange

// seqSetOf builds the set of seqs (in any order, duplicates allowed).
func seqSetOf(seqs []uint64) seqSet {
	s := slices.Clone(seqs)
	slices.Sort(s)
	var out seqSet
	for _, q := range s {
		if n := len(out); n > 0 && q <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, q)
			continue
		}
		out = append(out, seqRange{q, q})
	}
	return out
}

// union merges other into s.
func (s seqSet) union(other seqSet) seqSet {
	all := append(slices.Clone(s), other...)
	slices.SortFunc(all, func(a, b seqRange) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	var out seqSet
	for _, r := range all {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s seqSet) contains(q uint64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= q })
	return i < len(s) && s[i].lo <= q
}

func (s seqSet) max() uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].hi
}

// encode renders the set compactly for the ledger: each run as two uvarints
// (gap since the previous run's end, run length - 1), base64 encoded.
func (s seqSet) encode() string {
	buf := make([]byte, 0, len(s)*4)
	var prev uint64
	for _, r := range s {
		buf = binary.AppendUvarint(buf, r.lo-prev)
		buf = binary.AppendUvarint(buf, r.hi-r.lo)
		prev = r.hi
	}
	return base64.RawStdEncoding.EncodeToString(buf)
}

var errBadSeqSet = errors.New("malformed sequence set")

func decodeSeqSet(text string) (seqSet, error) {
	buf, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return nil, errBadSeqSet
	}
	var out seqSet
	var prev uint64
	for len(buf) > 0 {
		gap, n := binary.Uvarint(buf)
		if n <= 0 {
			return nil, errBadSeqSet
		}
		buf = buf[n:]
		span, n := binary.Uvarint(buf)
		if n <= 0 {
			return nil, errBadSeqSet
		}
		buf = buf[n:]
		lo := prev + gap
		if lo < prev || (len(out) > 0 && gap == 0) || lo+span < lo {
			return nil, errBadSeqSet
		}
		out = append(out, seqRange{lo, lo + span})
		prev = lo + span
	}
	return out, nil
}
