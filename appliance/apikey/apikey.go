// Package apikey makes API keys, and keeps the in-memory keyring that the ingest path checks
// keys against: no database round trip per request, refreshed when keys change.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Prefix marks a string as a Causality ingest key, which helps secret scanners and people.
const Prefix = "cz_"

// Generate makes a new key of 256 random bits. Only its hash is stored; the key itself is
// shown to the user once.
func Generate() (key string, hash []byte, display string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go 1.24+ aborts instead)
	key = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := Hash(key)
	return key, h[:], DisplayPrefix(key)
}

// Hash is the stored form of a key. SHA-256 suits keys with 256 bits of entropy: nobody
// can guess one from its hash, and checking costs a fraction of a microsecond.
func Hash(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// DisplayPrefix is the part of a key shown in lists, enough to tell keys apart.
func DisplayPrefix(key string) string {
	if len(key) <= len(Prefix)+6 {
		return key
	}
	return key[:len(Prefix)+6]
}

// FromHeaders picks the key from X-API-Key or Authorization: Bearer.
func FromHeaders(xAPIKey, authorization string) string {
	if k := strings.TrimSpace(xAPIKey); k != "" {
		return k
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}
