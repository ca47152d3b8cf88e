// Package webhook signs webhook deliveries the Standard Webhooks way
// (https://www.standardwebhooks.com/) and sends them over HTTP without letting
// a configured URL reach the appliance's own network, unless the operator
// allows it with --webhook-allow-private.
//
// A delivery carries three headers: webhook-id (the message id, the same on
// every retry so receivers can deduplicate), webhook-timestamp (Unix seconds)
// and webhook-signature ("v1,<base64 HMAC-SHA256>" of id.timestamp.body keyed
// with the endpoint's secret). Receivers verify them with any Standard
// Webhooks library; Verify is the same check in Go.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix marks a Standard Webhooks signing secret. It is not part of
// the key: the key is the base64 after it.
const SecretPrefix = "whsec_"

// Header names of a Standard Webhooks delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far webhook-timestamp may be from now when Verify
// is given no tolerance: the spec libraries' default of five minutes.
const DefaultTolerance = 5 * time.Minute

// Errors Verify wraps, so that a caller can tell a replay (ErrTimestamp) from
// a forgery or a wrong secret (ErrSignature).
var (
	ErrMissingHeader = errors.New("missing header")
	ErrTimestamp     = errors.New("bad timestamp")
	ErrSignature     = errors.New("no matching signature")
)

// NewSecret returns a new signing secret: SecretPrefix and the standard
// base64 of 32 random bytes, the form Standard Webhooks libraries accept.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// Sign returns the webhook-signature header value "v1,<base64 HMAC-SHA256>"
// of msgID + "." + Unix seconds of ts + "." + body, keyed with the decoded
// secret. A secret without SecretPrefix is decoded whole, as the spec's
// libraries do. An undecodable or empty secret is an error.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

// Verify checks a delivery as a receiver would: the webhook-id,
// webhook-timestamp and webhook-signature headers must be present, the
// timestamp within tolerance of now (tolerance <= 0 means DefaultTolerance),
// and one of the space-separated "v1,<sig>" entries of webhook-signature
// must match body. The error says which check failed and wraps
// ErrMissingHeader, ErrTimestamp or ErrSignature.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsRaw := h.Get(HeaderID), h.Get(HeaderTimestamp)
	// Several webhook-signature fields are one list, as if joined by spaces.
	sigs := strings.Fields(strings.Join(h.Values(HeaderSignature), " "))
	for _, c := range []struct {
		name    string
		missing bool
	}{{HeaderID, id == ""}, {HeaderTimestamp, tsRaw == ""}, {HeaderSignature, len(sigs) == 0}} {
		if c.missing {
			return fmt.Errorf("%w %s", ErrMissingHeader, c.name)
		}
	}

	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrTimestamp, HeaderTimestamp, tsRaw)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds: time.Unix of an absurd header value would
	// saturate a Duration and hide the sign.
	switch age := now.Unix() - ts; {
	case age > int64(tolerance/time.Second):
		return fmt.Errorf("%w: %s %d is %ds old, tolerance %v", ErrTimestamp, HeaderTimestamp, ts, age, tolerance)
	case -age > int64(tolerance/time.Second):
		return fmt.Errorf("%w: %s %d is %ds in the future, tolerance %v", ErrTimestamp, HeaderTimestamp, ts, -age, tolerance)
	}

	want := mac(key, id, ts, body)
	for _, s := range sigs {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a, ...) are allowed next to v1
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) { // constant time
			return nil
		}
	}
	return fmt.Errorf("%w in %s (%d entries checked)", ErrSignature, HeaderSignature, len(sigs))
}

// decodeSecret turns a secret into its HMAC key. The error never quotes the
// secret, since it may end up in a log.
func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook secret is not base64 after %q: %w", SecretPrefix, err)
	}
	if len(key) == 0 {
		// An empty key would sign with a key everyone knows.
		return nil, errors.New("webhook secret is empty")
	}
	return key, nil
}

// mac is HMAC-SHA256(key, msgID "." unix "." body).
func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	prefix := make([]byte, 0, len(msgID)+22)
	prefix = append(prefix, msgID...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, unix, 10)
	prefix = append(prefix, '.')
	m.Write(prefix)
	m.Write(body)
	return m.Sum(nil)
}
