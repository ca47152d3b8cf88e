package admin

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheapHash is a valid argon2id string with small parameters, as an older or differently
// tuned binary might have stored; it verifies in microseconds.
func cheapHash(password string) string { return argonHash(password, 64, 1) }

// argonHash is HashPassword with the given memory (KiB) and passes, and a fixed salt.
func argonHash(password string, memory, passes uint32) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, passes, memory, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", memory, passes, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestHashPassword(t *testing.T) {
	h1, h2 := HashPassword("correct horse"), HashPassword("correct horse")
	for _, h := range []string{h1, h2} {
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("hash %q: want argon2id with OWASP's minimum parameters", h)
		}
		if strings.Contains(h, "correct horse") {
			t.Errorf("hash %q contains the password", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: no random salt")
	}
	if strings.Split(h1, "$")[4] == strings.Split(h2, "$")[4] {
		t.Error("two hashes share a salt")
	}
}

func TestVerifyPassword(t *testing.T) {
	stored := HashPassword("correct horse")
	tests := []struct {
		name     string
		encoded  string
		password string
		want     bool
	}{
		{name: "right", encoded: stored, password: "correct horse", want: true},
		{name: "wrong", encoded: stored, password: "battery staple"},
		{name: "case matters", encoded: stored, password: "Correct horse"},
		{name: "prefix of the password", encoded: stored, password: "correct"},
		{name: "trailing space", encoded: stored, password: "correct horse "},
		{name: "empty", encoded: stored, password: ""},
		{name: "empty password hashed", encoded: HashPassword(""), password: "", want: true},
		{name: "unicode", encoded: HashPassword("pässwörd🔑"), password: "pässwörd🔑", want: true},
		{name: "parameters come from the hash", encoded: cheapHash("old"), password: "old", want: true},
		{name: "parameters come from the hash, wrong", encoded: cheapHash("old"), password: "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.encoded, tt.password)
			if err != nil {
				t.Fatalf("VerifyPassword: %v", err)
			}
			if ok != tt.want {
				t.Fatalf("VerifyPassword(%q) = %v, want %v", tt.password, ok, tt.want)
			}
		})
	}
}

// verifySafely turns a panic into a test failure, so that one bad case does not hide the others.
func verifySafely(t *testing.T, encoded, password string) (ok bool, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("VerifyPassword(%q) panicked: %v", encoded, r)
		}
	}()
	return VerifyPassword(encoded, password)
}

// A hash that is not what HashPassword writes, damaged in the database or written by
// another tool, is an error, never a match.
func TestVerifyPasswordTampered(t *testing.T) {
	good := strings.Split(cheapHash("pw"), "$") // "", argon2id, v=19, params, salt, hash
	with := func(i int, v string) string {
		p := append([]string(nil), good...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", "pw"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"no leading $", strings.TrimPrefix(cheapHash("pw"), "$")},
		{"a part missing", strings.Join(good[:5], "$")},
		{"a part too many", cheapHash("pw") + "$extra"},
		{"other version", with(2, "v=16")},
		{"version not a number", with(2, "v=x")},
		{"parameters garbled", with(3, "m=64;t=1;p=1")},
		{"parameters not numbers", with(3, "m=a,t=b,p=c")},
		{"parallelism out of range", with(3, "m=64,t=1,p=300")},
		{"salt not base64", with(4, "!!!")},
		{"hash not base64", with(5, "!!!")},
		{"hash with padding", with(5, good[5]+"=")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := verifySafely(t, tt.encoded, "pw")
			if err == nil {
				t.Errorf("VerifyPassword(%q) = %v, nil; want an error", tt.encoded, ok)
			}
			if ok {
				t.Errorf("VerifyPassword(%q) matched", tt.encoded)
			}
		})
	}
}

// Parameters that argon2 refuses, and an empty hash part, must be errors too; today they
// panic inside argon2.IDKey (password.go:61). Passwords.Check then panics on every admin
// request instead of refusing it.
func TestVerifyPasswordTamperedPanics(t *testing.T) {
	good := strings.Split(cheapHash("pw"), "$")
	with := func(i int, v string) string {
		p := append([]string(nil), good...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, encoded := range []string{with(3, "m=64,t=0,p=1"), with(3, "m=64,t=1,p=0"), with(5, "")} {
		if ok, err := verifySafely(t, encoded, "pw"); err == nil || ok {
			t.Errorf("VerifyPassword(%q) = %v, %v; want an error", encoded, ok, err)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := GeneratePassword()
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || len(raw) != 16 {
			t.Fatalf("GeneratePassword() = %q: want 128 random bits in base64url (%v)", p, err)
		}
		if seen[p] {
			t.Fatalf("GeneratePassword() repeated %q", p)
		}
		seen[p] = true
	}
}

// Check without a database: the hash as NewPasswords would have loaded it.
func TestPasswordsCheck(t *testing.T) {
	p := &Passwords{hash: HashPassword("right")}
	steps := []struct {
		password string
		want     bool
	}{
		{"wrong", false},
		{"right", true},
		{"right", true}, // from the cache now
		{"wrong", false},
		{"", false},
		{"right ", false},
		{"right", true},
	}
	for i, st := range steps {
		if got := p.Check(st.password); got != st.want {
			t.Errorf("step %d: Check(%q) = %v, want %v", i, st.password, got, st.want)
		}
	}

	broken := &Passwords{hash: "not a hash"}
	if broken.Check("") || broken.Check("not a hash") {
		t.Error("Check matched against an unreadable hash")
	}
}
