package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/causality-io/causality/appliance/store"
)

// Argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes). A verification
// costs tens of milliseconds, so Passwords caches the last one that succeeded.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns a PHC-style argon2id string: $argon2id$v=19$m=..,t=..,p=..$salt$hash.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword checks password against a HashPassword string, in constant time.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("unrecognised password hash")
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false, fmt.Errorf("password hash parameters: %w", err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password hash salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("password hash: %w", err)
	}
	// A damaged or hostile hash must give an error, not a panic in argon2 or a huge
	// allocation: bound every parameter.
	switch {
	case iters < 1 || iters > 16:
		return false, errors.New("password hash: t out of range")
	case threads < 1 || threads > 16:
		return false, errors.New("password hash: p out of range")
	case mem < 8*uint32(threads) || mem > 256*1024:
		return false, errors.New("password hash: m out of range")
	case len(salt) < 8 || len(want) < 16:
		return false, errors.New("password hash: salt or key too short")
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// GeneratePassword makes a password for the first start: 128 random bits, readable.
func GeneratePassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Passwords checks the admin password against the stored hash.
type Passwords struct {
	store *store.Store

	mu       sync.Mutex
	hash     string
	verified [32]byte // SHA-256 of the last password that matched hash; zero when none
}

// NewPasswords makes the checker and settles the admin password at start: a given one
// replaces the stored hash; with none given and none stored, one is generated, stored and
// returned so that the caller can print it once.
func NewPasswords(ctx context.Context, s *store.Store, given string) (p *Passwords, generated string, err error) {
	p = &Passwords{store: s}
	switch {
	case given != "":
		if err := p.Set(ctx, given); err != nil {
			return nil, "", err
		}
	default:
		candidate := GeneratePassword()
		created, err := s.SetSettingIfAbsent(ctx, store.SettingAdminPasswordHash, HashPassword(candidate))
		if err != nil {
			return nil, "", err
		}
		if created {
			generated = candidate
		}
	}
	hash, ok, err := s.Setting(ctx, store.SettingAdminPasswordHash)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", errors.New("admin password hash missing after setting it")
	}
	p.hash = hash
	return p, generated, nil
}

// Cached reports, cheaply, whether password is the admin password that last passed Check.
func (p *Passwords) Cached(password string) bool {
	sum := sha256.Sum256([]byte(password))
	p.mu.Lock()
	verified := p.verified
	p.mu.Unlock()
	return verified != ([32]byte{}) && subtle.ConstantTimeCompare(sum[:], verified[:]) == 1
}

// Check reports whether password is the admin password.
func (p *Passwords) Check(password string) bool {
	if p.Cached(password) {
		return true
	}
	sum := sha256.Sum256([]byte(password))
	p.mu.Lock()
	hash := p.hash
	p.mu.Unlock()
	ok, err := VerifyPassword(hash, password)
	if err != nil || !ok {
		return false
	}
	p.mu.Lock()
	if p.hash == hash {
		p.verified = sum
	}
	p.mu.Unlock()
	return true
}

// Set stores a new admin password.
func (p *Passwords) Set(ctx context.Context, password string) error {
	hash := HashPassword(password)
	if err := p.store.SetSetting(ctx, store.SettingAdminPasswordHash, hash); err != nil {
		return err
	}
	p.mu.Lock()
	p.hash, p.verified = hash, [32]byte{}
	p.mu.Unlock()
	return nil
}
