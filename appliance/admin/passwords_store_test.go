package admin

import (
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
	"github.com/causality-io/causality/appliance/store"
)

func TestNewPasswordsGiven(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := pgtest.Context(t)

	p, generated, err := NewPasswords(ctx, s, "first")
	if err != nil {
		t.Fatal(err)
	}
	if generated != "" {
		t.Errorf("generated %q although a password was given", generated)
	}
	stored, ok, err := s.Setting(ctx, store.SettingAdminPasswordHash)
	if err != nil || !ok {
		t.Fatalf("no stored hash: %v, %v", ok, err)
	}
	if match, err := VerifyPassword(stored, "first"); err != nil || !match {
		t.Fatalf("stored hash does not verify the given password: %v, %v", match, err)
	}

	checks := func(p *Passwords, want map[string]bool) {
		t.Helper()
		for pw, w := range want {
			if got := p.Check(pw); got != w {
				t.Errorf("Check(%q) = %v, want %v", pw, got, w)
			}
		}
	}
	checks(p, map[string]bool{"first": true, "second": false})
	checks(p, map[string]bool{"first": true}) // cached now

	// Set replaces the password at once, cache included.
	if err := p.Set(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	checks(p, map[string]bool{"first": false, "second": true})

	// A restart without a password keeps the stored one and generates nothing.
	p2, generated, err := NewPasswords(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if generated != "" {
		t.Errorf("generated %q although a password was stored", generated)
	}
	checks(p2, map[string]bool{"first": false, "second": true})

	// A restart with another password replaces it.
	p3, _, err := NewPasswords(ctx, s, "third")
	if err != nil {
		t.Fatal(err)
	}
	checks(p3, map[string]bool{"second": false, "third": true})
}

func TestNewPasswordsGenerated(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := pgtest.Context(t)

	p1, generated, err := NewPasswords(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) != 22 {
		t.Fatalf("generated %q, want a 22-character password on the first start", generated)
	}
	if !p1.Check(generated) {
		t.Fatal("the generated password does not work")
	}

	// The next start generates nothing and the first password still works: it was shown
	// once and must stay valid.
	p2, again, err := NewPasswords(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if again != "" {
		t.Fatalf("second start generated %q", again)
	}
	if !p2.Check(generated) {
		t.Fatal("the password generated at the first start no longer works")
	}
	if p2.Check(GeneratePassword()) {
		t.Fatal("another random password works")
	}
}
