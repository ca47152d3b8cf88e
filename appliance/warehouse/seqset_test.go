package warehouse

import (
	"slices"
	"testing"
)

func TestSeqSet(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint64
		want seqSet
	}{
		{"empty", nil, nil},
		{"one", []uint64{7}, seqSet{{7, 7}}},
		{"run out of order with repeats", []uint64{5, 3, 4, 4, 6}, seqSet{{3, 6}}},
		{"interleaved partitions", []uint64{1, 3, 5, 6, 7, 10}, seqSet{{1, 1}, {3, 3}, {5, 7}, {10, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seqSetOf(tt.seqs)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("seqSetOf = %v, want %v", got, tt.want)
			}
			back, err := decodeSeqSet(got.encode())
			if err != nil || !slices.Equal(back, got) {
				t.Fatalf("round trip = %v, %v", back, err)
			}
			for _, q := range tt.seqs {
				if !got.contains(q) {
					t.Errorf("does not contain %d", q)
				}
			}
			for _, q := range []uint64{0, 2, 8, 9, 11, 1 << 40} {
				if got.contains(q) != slices.Contains(tt.seqs, q) {
					t.Errorf("contains(%d) = %v", q, got.contains(q))
				}
			}
		})
	}
	u := seqSetOf([]uint64{1, 2, 9}).union(seqSetOf([]uint64{3, 4, 20}))
	if want := (seqSet{{1, 4}, {9, 9}, {20, 20}}); !slices.Equal(u, want) {
		t.Fatalf("union = %v, want %v", u, want)
	}
}

func TestDecodeSeqSetRejectsGarbage(t *testing.T) {
	for _, in := range []string{"!!!", "AQ", "/////////////w"} {
		if _, err := decodeSeqSet(in); err == nil {
			t.Errorf("decodeSeqSet(%q) accepted garbage", in)
		}
	}
}

// FuzzDecodeSeqSet: ledger intents are read back from storage anyone with
// access to the bucket can write; no content may panic the sink, and what
// decodes must be sorted disjoint runs that encode back to the same text.
func FuzzDecodeSeqSet(f *testing.F) {
	f.Add(seqSetOf([]uint64{1, 3, 5, 6, 7, 10}).encode())
	f.Add("")
	f.Add("AAA")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := decodeSeqSet(text)
		if err != nil {
			return
		}
		for i, r := range s {
			if r.hi < r.lo || (i > 0 && r.lo <= s[i-1].hi) {
				t.Fatalf("decoded runs not sorted and disjoint: %v", s)
			}
		}
		back, err := decodeSeqSet(s.encode())
		if err != nil || !slices.Equal(back, s) {
			t.Fatalf("re-encode round trip: %v %v", back, err)
		}
	})
}
