package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

func newKey(app, name string, rate *float64) NewAPIKey {
	h := sha256.Sum256([]byte(app + "/" + name))
	return NewAPIKey{AppID: app, Name: name, Hash: h[:], Prefix: "cz_" + name, RateLimit: rate}
}

func createKey(t *testing.T, s *Store, nk NewAPIKey) APIKey {
	t.Helper()
	k, err := s.CreateKey(pgtest.Context(t), nk)
	if err != nil {
		t.Fatalf("CreateKey(%s/%s): %v", nk.AppID, nk.Name, err)
	}
	return k
}

func keyIDs(keys []APIKey) []uuid.UUID {
	ids := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCreateKey(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx := pgtest.Context(t)
	rate := 50.0
	before := time.Now().Add(-time.Minute) // the clocks of test and server are the same machine's

	nk := newKey("shop", "web", &rate)
	k := createKey(t, s, nk)
	if k.ID.Version() != 7 {
		t.Errorf("id %s is UUID version %d, want 7 (time-ordered)", k.ID, k.ID.Version())
	}
	if k.AppID != "shop" || k.Name != "web" || k.Prefix != nk.Prefix || string(k.Hash) != string(nk.Hash) {
		t.Errorf("CreateKey returned %+v, want the fields of %+v", k, nk)
	}
	if k.RateLimit == nil || *k.RateLimit != rate {
		t.Errorf("RateLimit = %v, want %v", k.RateLimit, rate)
	}
	if k.CreatedAt.Before(before) || k.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("CreatedAt = %v, want about now", k.CreatedAt)
	}
	if k.LastUsedAt != nil || k.RevokedAt != nil {
		t.Errorf("new key has LastUsedAt %v, RevokedAt %v; want both nil", k.LastUsedAt, k.RevokedAt)
	}

	var apps int
	if err := pgtest.Connect(t, dbURL).QueryRow(ctx, `SELECT count(*) FROM apps WHERE id = 'shop'`).Scan(&apps); err != nil {
		t.Fatal(err)
	}
	if apps != 1 {
		t.Fatalf("apps rows for shop = %d, want 1 (created with its first key)", apps)
	}

	// A second key of the same app reuses the app; no rate limit means the default (nil).
	k2 := createKey(t, s, newKey("shop", "ios", nil))
	if k2.RateLimit != nil {
		t.Errorf("RateLimit = %v, want nil", *k2.RateLimit)
	}
	if k2.ID == k.ID {
		t.Error("two keys share an id")
	}

	tests := []struct {
		name string
		nk   NewAPIKey
	}{
		{name: "same hash as an existing key", nk: NewAPIKey{AppID: "other", Name: "copy", Hash: nk.Hash, Prefix: "cz_x"}},
		{name: "negative rate limit", nk: newKey("shop", "negative", ptr(-1.0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.CreateKey(ctx, tt.nk); err == nil {
				t.Fatal("CreateKey succeeded")
			} else if !strings.Contains(err.Error(), "create api key for app "+tt.nk.AppID) {
				t.Errorf("error %q does not name the app", err)
			}
		})
	}
	keys, err := s.ListKeys(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("after two refused creations there are %d keys, want 2", len(keys))
	}
}

func ptr[T any](v T) *T { return &v }

func TestListAndRevokeKeys(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)

	keys, err := s.ListKeys(ctx, true)
	if err != nil || len(keys) != 0 {
		t.Fatalf("ListKeys of an empty database = %v, %v; want none", keys, err)
	}
	k1 := createKey(t, s, newKey("a", "one", nil))
	k2 := createKey(t, s, newKey("b", "two", nil))
	k3 := createKey(t, s, newKey("a", "three", nil))

	if err := s.RevokeKey(ctx, k2.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	list := func(includeRevoked bool) []APIKey {
		t.Helper()
		keys, err := s.ListKeys(ctx, includeRevoked)
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	all := list(true)
	if want := []uuid.UUID{k3.ID, k2.ID, k1.ID}; !equalIDs(keyIDs(all), want) {
		t.Fatalf("ListKeys(true) = %v, want newest first %v", keyIDs(all), want)
	}
	if all[1].RevokedAt == nil {
		t.Fatal("revoked key has no RevokedAt")
	}
	firstRevoked := *all[1].RevokedAt
	if active := list(false); !equalIDs(keyIDs(active), []uuid.UUID{k3.ID, k1.ID}) {
		t.Fatalf("ListKeys(false) = %v, want %v", keyIDs(active), []uuid.UUID{k3.ID, k1.ID})
	}

	// Revoking again is fine and keeps the first revocation time.
	if err := s.RevokeKey(ctx, k2.ID); err != nil {
		t.Fatalf("second RevokeKey: %v", err)
	}
	if again := list(true)[1]; again.RevokedAt == nil || !again.RevokedAt.Equal(firstRevoked) {
		t.Errorf("RevokedAt after a second revoke = %v, want %v", again.RevokedAt, firstRevoked)
	}

	unknown := uuid.Must(uuid.NewV7())
	err = s.RevokeKey(ctx, unknown)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevokeKey(unknown) = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), unknown.String()) {
		t.Errorf("error %q does not name the id", err)
	}
	if n := len(list(true)); n != 3 {
		t.Errorf("%d keys after revoking an unknown id, want 3", n)
	}
}

func TestTouchKeys(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)
	k1 := createKey(t, s, newKey("a", "one", nil))
	k2 := createKey(t, s, newKey("a", "two", nil))
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	lastUsed := func() map[uuid.UUID]*time.Time {
		t.Helper()
		keys, err := s.ListKeys(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		m := map[uuid.UUID]*time.Time{}
		for _, k := range keys {
			m[k.ID] = k.LastUsedAt
		}
		return m
	}
	steps := []struct {
		name string
		used map[uuid.UUID]time.Time
		want map[uuid.UUID]time.Time // absent: never used
	}{
		{name: "nothing to record", used: nil, want: map[uuid.UUID]time.Time{}},
		{
			name: "first use",
			used: map[uuid.UUID]time.Time{k1.ID: base},
			want: map[uuid.UUID]time.Time{k1.ID: base},
		},
		{
			name: "older time is ignored, two keys at once",
			used: map[uuid.UUID]time.Time{k1.ID: base.Add(-time.Hour), k2.ID: base.Add(time.Second)},
			want: map[uuid.UUID]time.Time{k1.ID: base, k2.ID: base.Add(time.Second)},
		},
		{
			name: "newer time wins",
			used: map[uuid.UUID]time.Time{k1.ID: base.Add(time.Minute)},
			want: map[uuid.UUID]time.Time{k1.ID: base.Add(time.Minute), k2.ID: base.Add(time.Second)},
		},
		{
			name: "unknown key is ignored",
			used: map[uuid.UUID]time.Time{uuid.Must(uuid.NewV7()): base.Add(time.Hour)},
			want: map[uuid.UUID]time.Time{k1.ID: base.Add(time.Minute), k2.ID: base.Add(time.Second)},
		},
	}
	for _, step := range steps {
		if err := s.TouchKeys(ctx, step.used); err != nil {
			t.Fatalf("%s: TouchKeys: %v", step.name, err)
		}
		got := lastUsed()
		for _, id := range []uuid.UUID{k1.ID, k2.ID} {
			want, used := step.want[id]
			switch {
			case !used && got[id] != nil:
				t.Errorf("%s: key %s has LastUsedAt %v, want none", step.name, id, *got[id])
			case used && (got[id] == nil || !got[id].Equal(want)):
				t.Errorf("%s: key %s has LastUsedAt %v, want %v", step.name, id, got[id], want)
			}
		}
	}
}

// CreateKey and RevokeKey announce the change on KeysChannel, which is how other instances
// learn of it.
func TestListenHearsKeyChanges(t *testing.T) {
	t.Parallel()
	s, dbURL := openStore(t)
	ctx, cancel := context.WithCancel(pgtest.Context(t))
	heard := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, KeysChannel, nil, func() { heard <- struct{}{} }) }()
	waitListening(t, dbURL, KeysChannel)

	expect := func(what string) {
		t.Helper()
		select {
		case <-heard:
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification within 5s after %s", what)
		}
	}
	k := createKey(t, s, newKey("a", "one", nil))
	expect("CreateKey")
	if err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	expect("RevokeKey")

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after its context ended")
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
