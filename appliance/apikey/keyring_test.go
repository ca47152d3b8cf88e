package apikey

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/store"
)

// addKey generates a key and stores it, as the admin API does.
func addKey(t *testing.T, s *store.Store, app string, rateLimit *float64) (string, store.APIKey) {
	t.Helper()
	key, hash, prefix := Generate()
	k, err := s.CreateKey(pgtest.Context(t), store.NewAPIKey{AppID: app, Name: "key of " + app, Hash: hash, Prefix: prefix, RateLimit: rateLimit})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return key, k
}

func ptr[T any](v T) *T { return &v }

// otherLastChar changes the last character of key.
func otherLastChar(key string) string {
	last := byte('A')
	if key[len(key)-1] == last {
		last = 'B'
	}
	return key[:len(key)-1] + string(last)
}

func load(t *testing.T, kr *Keyring) {
	t.Helper()
	if err := kr.Load(pgtest.Context(t)); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestKeyringLoadLookup(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	const defaultRate = 100 // burst max(2*100, 1000) = 1000
	kr := NewKeyring(s, defaultRate, testLogger(t))

	keyDefault, kDefault := addKey(t, s, "default", nil)
	keyFast, kFast := addKey(t, s, "fast", ptr(600.0)) // burst 1200
	keySlow, kSlow := addKey(t, s, "slow", ptr(5.0))   // burst never under 1000
	keyFree, kFree := addKey(t, s, "free", ptr(0.0))   // 0: unlimited
	keyGone, kGone := addKey(t, s, "gone", nil)
	if err := s.RevokeKey(pgtest.Context(t), kGone.ID); err != nil {
		t.Fatal(err)
	}

	if _, ok := kr.Lookup(keyDefault); ok {
		t.Fatal("Lookup found a key before Load")
	}
	load(t, kr)

	now := time.Now()
	tests := []struct {
		name      string
		key       string
		wantFound bool
		want      store.APIKey
		burst     int // events allowed at once before the next one is refused; 0: unlimited
	}{
		{name: "default rate", key: keyDefault, wantFound: true, want: kDefault, burst: 1000},
		{name: "own rate", key: keyFast, wantFound: true, want: kFast, burst: 1200},
		{name: "low rate still fits a full batch", key: keySlow, wantFound: true, want: kSlow, burst: 1000},
		{name: "rate 0 is unlimited", key: keyFree, wantFound: true, want: kFree},
		{name: "revoked", key: keyGone},
		{name: "one character changed", key: otherLastChar(keyDefault)},
		{name: "display prefix is not the key", key: kDefault.Prefix},
		{name: "empty", key: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := kr.Lookup(tt.key)
			if ok != tt.wantFound {
				t.Fatalf("Lookup found = %v, want %v", ok, tt.wantFound)
			}
			if !ok {
				if id != nil {
					t.Fatalf("Lookup of a missing key returned %+v", id)
				}
				return
			}
			if id.KeyID != tt.want.ID || id.AppID != tt.want.AppID {
				t.Fatalf("identity = %s/%s, want %s/%s", id.KeyID, id.AppID, tt.want.ID, tt.want.AppID)
			}
			if tt.burst == 0 {
				if ok, _ := id.Allow(now, 1_000_000); !ok {
					t.Fatal("unlimited key refused a million events")
				}
				return
			}
			if ok, wait := id.Allow(now, tt.burst); !ok {
				t.Fatalf("a burst of %d refused (wait %v)", tt.burst, wait)
			}
			if ok, wait := id.Allow(now, 1); ok || wait <= 0 {
				t.Fatalf("after the burst: ok = %v, wait %v; want refused with a positive wait", ok, wait)
			}
		})
	}
}

func TestKeyringReload(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	kr := NewKeyring(s, 100, testLogger(t))
	keyA, _ := addKey(t, s, "a", nil)
	keyB, kB := addKey(t, s, "b", nil)
	load(t, kr)

	idA, ok := kr.Lookup(keyA)
	if !ok {
		t.Fatal("key a not found")
	}
	now := time.Now()
	if ok, _ := idA.Allow(now, 1000); !ok {
		t.Fatal("burst refused")
	}

	// A revoked key works until the next Load, then is gone; the other key stays.
	if err := s.RevokeKey(pgtest.Context(t), kB.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := kr.Lookup(keyB); !ok {
		t.Fatal("key b gone before Load")
	}
	keyC, _ := addKey(t, s, "c", nil)
	load(t, kr)
	if _, ok := kr.Lookup(keyB); ok {
		t.Error("revoked key b still found after Load")
	}
	if _, ok := kr.Lookup(keyC); !ok {
		t.Error("new key c not found after Load")
	}

	// The identity, and with it the spent budget, survives the reload: a reload must not
	// hand out a fresh burst.
	idA2, ok := kr.Lookup(keyA)
	if !ok {
		t.Fatal("key a gone after Load")
	}
	if idA2 != idA {
		t.Fatal("Load replaced the identity of a key that stayed")
	}
	if ok, _ := idA2.Allow(now, 1); ok {
		t.Fatal("the burst spent before the reload is available again")
	}
}

func TestKeyringRun(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	kr := NewKeyring(s, 100, testLogger(t))
	load(t, kr)

	ctx, cancel := context.WithCancel(pgtest.Context(t))
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		kr.Run(ctx, time.Hour) // only a notification can make it reload within the test
	}()
	waitListening(t, dbURL, store.KeysChannel)

	// Another appliance on the same database creates, then revokes, a key.
	other, err := store.Open(pgtest.Context(t), dbURL, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	key, k := addKey(t, other, "remote", nil)
	waitFor(t, "the new key to be found", func() bool { _, ok := kr.Lookup(key); return ok })
	id, _ := kr.Lookup(key)
	if err := other.RevokeKey(pgtest.Context(t), k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revoked key to go", func() bool { _, ok := kr.Lookup(key); return !ok })

	// A key in use: its last use is written when Run stops.
	key2, k2 := addKey(t, other, "remote", nil)
	waitFor(t, "the second key to be found", func() bool { _, ok := kr.Lookup(key2); return ok })
	id2, _ := kr.Lookup(key2)
	used := time.Now().Add(-time.Minute).Truncate(time.Second)
	id2.MarkUsed(used)
	id.MarkUsed(used) // revoked meanwhile: no longer in the keyring, so not written

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	keys, err := s.ListKeys(pgtest.Context(t), true)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uuid.UUID]store.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	if got := byID[k2.ID].LastUsedAt; got == nil || !got.Equal(used) {
		t.Errorf("last_used_at of the used key = %v, want %v", got, used)
	}
	if got := byID[k.ID].LastUsedAt; got != nil {
		t.Errorf("last_used_at of the revoked key = %v, want none", *got)
	}
}

// The periodic tick writes last use while Run keeps running, and reloads keys whose change
// was not announced.
func TestKeyringRunTick(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	kr := NewKeyring(s, 100, testLogger(t))
	key, k := addKey(t, s, "a", nil)
	load(t, kr)
	id, _ := kr.Lookup(key)

	ctx, cancel := context.WithCancel(pgtest.Context(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		kr.Run(ctx, 50*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	used := time.Now().Truncate(time.Second)
	id.MarkUsed(used)
	waitFor(t, "last_used_at to be written", func() bool {
		keys, err := s.ListKeys(pgtest.Context(t), false)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys) == 1 && keys[0].ID == k.ID && keys[0].LastUsedAt != nil && keys[0].LastUsedAt.Equal(used)
	})

	// Revoked behind the store's back: no notification, only the tick notices.
	if _, err := pgtest.Connect(t, dbURL).Exec(pgtest.Context(t), `UPDATE api_keys SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quietly revoked key to go", func() bool { _, ok := kr.Lookup(key); return !ok })
}

// waitFor polls cond for up to 3 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitListening waits until some session of the database has run LISTEN on channel, so a
// notification sent afterwards cannot be missed.
func waitListening(t *testing.T, dbURL, channel string) {
	t.Helper()
	conn := pgtest.Connect(t, dbURL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN "' || $1 || '"'`, channel).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody listens on %s after 10s", channel)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Requests check their budget while the keyring reloads (after every key change, and on the
// tick). Run with -race.
func TestKeyringReloadWhileServing(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	kr := NewKeyring(s, 100, testLogger(t))
	key, _ := addKey(t, s, "a", nil)
	load(t, kr)
	id, _ := kr.Lookup(key)

	stop := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			select {
			case <-stop:
				return
			default:
				id.Allow(time.Now(), 1)
			}
		}
	}()
	for range 5 {
		load(t, kr)
	}
	close(stop)
	<-served
}
