package apikey

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestGenerate(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	seenHash := make(map[string]bool, n)
	for range n {
		key, hash, display := Generate()
		if !strings.HasPrefix(key, Prefix) || Prefix != "cz_" {
			t.Fatalf("key %q does not start with cz_", key)
		}
		if len(key) != 46 {
			t.Fatalf("key %q has %d characters, want 46 (cz_ and 43 of base64url)", key, len(key))
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, Prefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: body is not 32 bytes of unpadded base64url (%d bytes, %v)", key, len(raw), err)
		}
		want := Hash(key)
		if !bytes.Equal(hash, want[:]) {
			t.Fatalf("hash of %q = %x, want Hash(key) = %x", key, hash, want)
		}
		if display != key[:9] || display != DisplayPrefix(key) {
			t.Fatalf("display of %q = %q, want %q", key, display, key[:9])
		}
		if seen[key] || seenHash[string(hash)] {
			t.Fatalf("key %q generated twice", key)
		}
		seen[key], seenHash[string(hash)] = true, true
	}
}

func TestHash(t *testing.T) {
	a, b := Hash("cz_one"), Hash("cz_two")
	if a == b {
		t.Fatal("two keys hash alike")
	}
	if Hash("cz_one") != a {
		t.Fatal("Hash is not deterministic")
	}
	if a == ([32]byte{}) {
		t.Fatal("zero hash")
	}
}

func TestDisplayPrefix(t *testing.T) {
	tests := []struct{ key, want string }{
		{"cz_abcdefghijk", "cz_abcdef"},
		{"cz_abcdefg", "cz_abcdef"},
		{"cz_abcdef", "cz_abcdef"}, // exactly prefix + 6: whole
		{"cz_abc", "cz_abc"},       // shorter: whole
		{"", ""},
	}
	for _, tt := range tests {
		if got := DisplayPrefix(tt.key); got != tt.want {
			t.Errorf("DisplayPrefix(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestFromHeaders(t *testing.T) {
	tests := []struct {
		name, xAPIKey, authorization, want string
	}{
		{name: "X-API-Key", xAPIKey: "cz_k1", want: "cz_k1"},
		{name: "X-API-Key wins over Bearer", xAPIKey: "cz_k1", authorization: "Bearer cz_k2", want: "cz_k1"},
		{name: "X-API-Key trimmed", xAPIKey: "  cz_k1\t", want: "cz_k1"},
		{name: "blank X-API-Key falls back to Bearer", xAPIKey: "   ", authorization: "Bearer cz_k2", want: "cz_k2"},
		{name: "Bearer", authorization: "Bearer cz_k2", want: "cz_k2"},
		{name: "bearer lower case", authorization: "bearer cz_k2", want: "cz_k2"},
		{name: "BEARER upper case", authorization: "BEARER cz_k2", want: "cz_k2"},
		{name: "spaces around and between", authorization: "  Bearer    cz_k2  ", want: "cz_k2"},
		{name: "Basic ignored", authorization: "Basic YWRtaW46cHc=", want: ""},
		{name: "Token scheme ignored", authorization: "Token cz_k2", want: ""},
		{name: "Bearer without a token", authorization: "Bearer", want: ""},
		{name: "Bearer and blanks", authorization: "Bearer   ", want: ""},
		{name: "bare key without a scheme", authorization: "cz_k2", want: ""},
		{name: "scheme only as a prefix", authorization: "Bearerx cz_k2", want: ""},
		{name: "nothing", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromHeaders(tt.xAPIKey, tt.authorization); got != tt.want {
				t.Errorf("FromHeaders(%q, %q) = %q, want %q", tt.xAPIKey, tt.authorization, got, tt.want)
			}
		})
	}
}

func TestIdentityAllow(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type call struct {
		at       time.Duration // after now
		n        int
		wantOK   bool
		wantWait time.Duration // when refused: about this long (±5ms)
	}
	tests := []struct {
		name  string
		limit *rate.Limiter // 10 events a second, burst 20, unless nil
		calls []call
	}{
		{
			name:  "burst is consumed, then refused",
			limit: rate.NewLimiter(10, 20),
			calls: []call{
				{n: 20, wantOK: true},
				{n: 1, wantOK: false, wantWait: 100 * time.Millisecond},
			},
		},
		{
			name:  "refused request takes nothing",
			limit: rate.NewLimiter(10, 20),
			calls: []call{
				{n: 15, wantOK: true},
				{n: 10, wantOK: false, wantWait: 500 * time.Millisecond}, // 5 short at 10/s
				{n: 10, wantOK: false, wantWait: 500 * time.Millisecond}, // still 5 short: nothing was taken
				{n: 5, wantOK: true},
				{n: 1, wantOK: false, wantWait: 100 * time.Millisecond},
			},
		},
		{
			name:  "budget refills over time",
			limit: rate.NewLimiter(10, 20),
			calls: []call{
				{n: 20, wantOK: true},
				{at: 500 * time.Millisecond, n: 5, wantOK: true},
				{at: 500 * time.Millisecond, n: 1, wantOK: false, wantWait: 100 * time.Millisecond},
				{at: 10 * time.Second, n: 20, wantOK: true}, // refills to the burst, no more
				{at: 10 * time.Second, n: 1, wantOK: false, wantWait: 100 * time.Millisecond},
			},
		},
		{
			name:  "more than the burst is refused and takes nothing",
			limit: rate.NewLimiter(10, 20),
			calls: []call{
				{n: 21, wantOK: false, wantWait: time.Second},
				{n: 20, wantOK: true},
			},
		},
		{
			name:  "nil limiter is unlimited",
			limit: nil,
			calls: []call{
				{n: 1_000_000, wantOK: true},
				{n: 1_000_000, wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := &Identity{AppID: "app"}
			id.limiter.Store(tt.limit)
			for i, c := range tt.calls {
				ok, wait := id.Allow(now.Add(c.at), c.n)
				if ok != c.wantOK {
					t.Fatalf("call %d (%d events at +%v): ok = %v, want %v", i, c.n, c.at, ok, c.wantOK)
				}
				if ok && wait != 0 {
					t.Errorf("call %d: allowed with wait %v, want 0", i, wait)
				}
				if !ok && (wait <= 0 || wait < c.wantWait-5*time.Millisecond || wait > c.wantWait+5*time.Millisecond) {
					t.Errorf("call %d: refused with wait %v, want about %v", i, wait, c.wantWait)
				}
			}
		})
	}
}
