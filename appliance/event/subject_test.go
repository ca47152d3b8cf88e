package event

import (
	"strings"
	"testing"
	"unicode/utf8"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestSubjectEveryKind(t *testing.T) {
	for _, k := range allKinds {
		want := "events.shop." + k.category + "." + k.typ
		if got := Subject(k.valid()); got != want {
			t.Errorf("%s: Subject = %q, want %q", k.field, got, want)
		}
	}
}

func TestSubjectSanitises(t *testing.T) {
	custom := func(app, name string) *causalityv1.EventEnvelope {
		e := envelope(&causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{EventName: name}})
		e.AppId = app
		return e
	}
	long := strings.Repeat("a", 300)
	longRunes := strings.Repeat("é", 100) // 200 bytes, 2 per rune
	tests := []struct {
		name string
		e    *causalityv1.EventEnvelope
		want string
	}{
		{"plain", custom("shop", "level_complete"), "events.shop.custom.level_complete"},
		{"dots", custom("com.example.shop", "v2.checkout"), "events.com_example_shop.custom.v2_checkout"},
		{"spaces", custom("my shop", "Level Complete"), "events.my_shop.custom.Level_Complete"},
		{"whitespace", custom("a\tb\nc\rd\fe\vf", "x\u00a0y\u2003z\u2028w"), "events.a_b_c_d_e_f.custom.x_y_z_w"},
		{"wildcards", custom("*", ">"), "events._.custom._"},
		{"wildcards inside", custom("a*b", "c>d"), "events.a_b.custom.c_d"},
		{"controls", custom("a\x00b\x7fc", "\x1b[31m"), "events.a_b_c.custom._[31m"},
		{"invalid utf-8", custom("a\xffb", "\xc3"), "events.a_b.custom._"},
		{"format chars", custom("a\u200bb", "c\ufeffd"), "events.a_b.custom.c_d"},
		{"unicode kept", custom("café", "购买"), "events.café.custom.购买"},
		{"empty app", custom("", "x"), "events._.custom.x"},
		{"empty type", custom("shop", ""), "events.shop.custom._"},
		{"dollar and slash kept", custom("$shop", "a/b-c:d"), "events.$shop.custom.a/b-c:d"},
		{"long cut", custom(long, long), "events." + long[:maxTokenBytes] + ".custom." + long[:maxTokenBytes]},
		{"long cut at rune", custom("x"+longRunes, "ok"), "events.x" + longRunes[:maxTokenBytes-2] + ".custom.ok"},
		{"no payload", &causalityv1.EventEnvelope{AppId: "shop"}, "events.shop._._"},
		{"nil", nil, "events._._._"},
		{"builtin type, app sanitised", func() *causalityv1.EventEnvelope {
			e := allKinds[4].valid()
			e.AppId = "a.b c"
			return e
		}(), "events.a_b_c.screen.view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Subject(tt.e)
			if got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
			checkSubject(t, got)
		})
	}
}

// checkSubject fails unless s is a valid NATS subject of four non-empty
// tokens with no wildcard, whitespace or control character.
func checkSubject(t testing.TB, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("subject %q is not UTF-8", s)
	}
	tokens := strings.Split(s, ".")
	if len(tokens) != 4 || tokens[0] != "events" {
		t.Fatalf("subject %q: want events.<app>.<category>.<type>", s)
	}
	for _, tok := range tokens {
		if tok == "" || len(tok) > maxTokenBytes {
			t.Fatalf("subject %q: token %q empty or too long", s, tok)
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7f || r == '*' || r == '>' || strings.ContainsRune("\u0085\u00a0\u1680\u2028\u2029\u200b\ufeff", r) {
				t.Fatalf("subject %q: token %q holds %U", s, tok, r)
			}
		}
	}
}
