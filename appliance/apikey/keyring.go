package apikey

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/causality-io/causality/appliance/store"
)

// Identity is who a valid key speaks for, with its rate limiter.
type Identity struct {
	KeyID   uuid.UUID
	AppID   string
	limiter atomic.Pointer[rate.Limiter] // nil: unlimited; swapped by Load while requests use it
	used    atomic.Int64                 // last use, Unix seconds
	flushed atomic.Int64                 // last use written to the database
}

// Allow takes n events from the key's budget. When the budget is short it takes nothing
// and says how long to wait before the request would fit.
func (id *Identity) Allow(now time.Time, n int) (bool, time.Duration) {
	lim := id.limiter.Load()
	if lim == nil {
		return true, 0
	}
	r := lim.ReserveN(now, n)
	if !r.OK() {
		// More events than the burst can ever hold; a full second is an honest answer.
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// MarkUsed notes that the key was used now; Run writes it to the database later.
func (id *Identity) MarkUsed(now time.Time) { id.used.Store(now.Unix()) }

// Keyring holds every active key by hash.
type Keyring struct {
	store       *store.Store
	log         *slog.Logger
	defaultRate float64

	mu     sync.RWMutex
	byHash map[[32]byte]*Identity
}

// NewKeyring makes an empty keyring; call Load before serving.
func NewKeyring(s *store.Store, defaultRate float64, log *slog.Logger) *Keyring {
	return &Keyring{store: s, log: log, defaultRate: defaultRate, byHash: map[[32]byte]*Identity{}}
}

// Lookup finds the identity of a key.
func (k *Keyring) Lookup(key string) (*Identity, bool) {
	h := Hash(key)
	k.mu.RLock()
	id, ok := k.byHash[h]
	k.mu.RUnlock()
	return id, ok
}

// Load reads the active keys from the database. Identities of keys that stay keep their
// limiter state, so a reload does not hand out a fresh burst.
func (k *Keyring) Load(ctx context.Context) error {
	keys, err := k.store.ListKeys(ctx, false)
	if err != nil {
		return fmt.Errorf("load keyring: %w", err)
	}
	k.mu.RLock()
	old := make(map[uuid.UUID]*Identity, len(k.byHash))
	for _, id := range k.byHash {
		old[id.KeyID] = id
	}
	k.mu.RUnlock()

	next := make(map[[32]byte]*Identity, len(keys))
	for _, sk := range keys {
		limit := k.defaultRate
		if sk.RateLimit != nil {
			limit = *sk.RateLimit
		}
		id := old[sk.ID]
		if id == nil {
			id = &Identity{KeyID: sk.ID, AppID: sk.AppID}
			if sk.LastUsedAt != nil {
				id.flushed.Store(sk.LastUsedAt.Unix())
			}
		}
		id.limiter.Store(k.limiterFor(limit, id.limiter.Load()))
		var h [32]byte
		copy(h[:], sk.Hash)
		next[h] = id
	}
	k.mu.Lock()
	k.byHash = next
	k.mu.Unlock()
	return nil
}

func (k *Keyring) limiterFor(limit float64, current *rate.Limiter) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	if current != nil && current.Limit() == rate.Limit(limit) {
		return current
	}
	// Two seconds' worth, and never less than one full batch, so that any allowed request
	// can pass once the budget refills.
	burst := int(math.Max(2*limit, 1000))
	return rate.NewLimiter(rate.Limit(limit), burst)
}

// Run keeps the keyring current until ctx ends: it reloads on a notification from any
// instance sharing the database, and every reloadEvery as a safety net, and writes
// last-used times.
func (k *Keyring) Run(ctx context.Context, reloadEvery time.Duration) {
	notified := make(chan struct{}, 1)
	go k.listen(ctx, notified)
	t := time.NewTicker(reloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			k.flushUsage(context.WithoutCancel(ctx))
			return
		case <-notified:
		case <-t.C:
			k.flushUsage(ctx)
		}
		if err := k.Load(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("reload api keys", "err", err)
		}
	}
}

func (k *Keyring) listen(ctx context.Context, notified chan<- struct{}) {
	for ctx.Err() == nil {
		wake := func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		}
		// Reloading once listening catches a key revoked while the connection was down.
		err := k.store.Listen(ctx, store.KeysChannel, wake, wake)
		if ctx.Err() != nil {
			return
		}
		k.log.Warn("listen for api key changes; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func (k *Keyring) flushUsage(ctx context.Context) {
	used := map[uuid.UUID]time.Time{}
	var ids []*Identity
	k.mu.RLock()
	for _, id := range k.byHash {
		if u := id.used.Load(); u > id.flushed.Load() {
			used[id.KeyID] = time.Unix(u, 0)
			ids = append(ids, id)
		}
	}
	k.mu.RUnlock()
	if err := k.store.TouchKeys(ctx, used); err != nil {
		k.log.Warn("record api key use", "err", err)
		return
	}
	for _, id := range ids {
		id.flushed.Store(used[id.KeyID].Unix())
	}
}
