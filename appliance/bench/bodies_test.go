package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func testBodies(t *testing.T, opts bodyOptions) *BodySet {
	t.Helper()
	if opts.app == "" {
		opts.app = "bench"
	}
	if opts.runID == "" {
		opts.runID = "0123abcd"
	}
	s, err := buildBodies(newEventGen(opts.app, 1, time.Now()), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeBody reads a request body the way the server does: un-gzip, then decode.
func decodeBody(t *testing.T, s *BodySet, single bool, wire []byte) []*causalityv1.EventEnvelope {
	t.Helper()
	plain := wire
	if s.Gzip {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		if plain, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	if single {
		req, err := event.DecodeSingle(s.ContentType, plain)
		if err != nil {
			t.Fatalf("DecodeSingle: %v\n%s", err, plain)
		}
		return []*causalityv1.EventEnvelope{req.GetEvent()}
	}
	req, err := event.DecodeBatch(s.ContentType, plain)
	if err != nil {
		t.Fatalf("DecodeBatch: %v\n%.300s", err, plain)
	}
	return req.GetEvents()
}

func TestBodiesDecodeWithUniqueIDs(t *testing.T) {
	v, _ := event.NewValidator()
	for _, tc := range []struct {
		name   string
		single bool
		proto  bool
		gzip   bool
	}{
		{"batch json", false, false, false},
		{"batch proto", false, true, false},
		{"batch json gzip", false, false, true},
		{"batch proto gzip", false, true, true},
		{"single json", true, false, false},
		{"single proto gzip", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const batch, bodies = 50, 4
			s := testBodies(t, bodyOptions{single: tc.single, batchSize: batch, bodies: bodies, proto: tc.proto, gzip: tc.gzip, unique: true})
			want := batch
			if tc.single {
				want = 1
			}
			seen := map[string]bool{}
			kinds := map[string]int{}
			for seq := range uint64(3 * bodies) { // every template more than once
				b := s.Body(seq)
				evs := decodeBody(t, s, tc.single, b.Bytes())
				b.Close()
				if len(evs) != want {
					t.Fatalf("body %d: %d events, want %d", seq, len(evs), want)
				}
				for _, e := range evs {
					if err := v.Validate(e); err != nil {
						t.Fatalf("invalid event: %v", err)
					}
					if !strings.HasPrefix(e.GetId(), "bench-0123abcd-") || len(e.GetId()) != len("bench-0123abcd-")+idDigits {
						t.Fatalf("id %q", e.GetId())
					}
					if seen[e.GetId()] {
						t.Fatalf("id %s sent twice", e.GetId())
					}
					seen[e.GetId()] = true
					c, _, _ := event.Kind(e)
					kinds[c]++
				}
			}
			if !tc.single && len(kinds) < 4 {
				t.Errorf("event categories %v: want a mix", kinds)
			}
		})
	}
}

func TestBodiesFixedIDsRepeat(t *testing.T) {
	s := testBodies(t, bodyOptions{batchSize: 10, bodies: 2, unique: false, gzip: true})
	a := decodeBody(t, s, false, s.Body(0).Bytes())
	b := decodeBody(t, s, false, s.Body(2).Bytes())
	if a[3].GetId() != b[3].GetId() {
		t.Fatalf("without unique ids the same template must repeat its ids: %s vs %s", a[3].GetId(), b[3].GetId())
	}
}

func TestGzipKeepsRatio(t *testing.T) {
	s := testBodies(t, bodyOptions{batchSize: 100, bodies: 2, unique: true, gzip: true})
	plain, wire := s.Sizes()
	t.Logf("plain %d B, gzip %d B (%.1fx)", plain, wire, float64(plain)/float64(wire))
	if wire*3 > plain {
		t.Errorf("patchable gzip compresses %d B to %d B: the preset dictionary is not working", plain, wire)
	}
}
