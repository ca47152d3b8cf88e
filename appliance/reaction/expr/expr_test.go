package expr_test

import (
	"strings"
	"testing"

	"github.com/causality-io/causality/appliance/reaction/expr"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func purchase(total int64) *expr.Input {
	return &expr.Input{
		Event: &causalityv1.EventEnvelope{AppId: "shop", DeviceId: "d1", Payload: &causalityv1.EventEnvelope_PurchaseComplete{
			PurchaseComplete: &causalityv1.PurchaseComplete{TotalCents: total, Currency: "EUR"}}},
		Category: "commerce", Type: "purchase_complete",
	}
}

func custom(name string, ints map[string]int64) *expr.Input {
	return &expr.Input{
		Event: &causalityv1.EventEnvelope{AppId: "game", DeviceId: "d1", Payload: &causalityv1.EventEnvelope_CustomEvent{
			CustomEvent: &causalityv1.CustomEvent{EventName: name, IntParams: ints}}},
		Category: "custom", Type: name,
	}
}

func TestConditionMatches(t *testing.T) {
	env, err := expr.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cond string
		in   *expr.Input
		want bool
	}{
		{`event.purchase_complete.total_cents > 100000`, purchase(250000), true},
		{`event.purchase_complete.total_cents > 100000`, purchase(99), false},
		{`event.custom_event.int_params["level"] >= 10`, custom("level_up", map[string]int64{"level": 12}), true},
		{`event.custom_event.int_params["level"] >= 10`, custom("level_up", map[string]int64{"level": 3}), false},
		{`category == "commerce" && type == "purchase_complete"`, purchase(1), true},
		{`event.app_id.startsWith("sh") && event.purchase_complete.currency.lowerAscii() == "eur"`, purchase(1), true},
		{`has(event.purchase_complete) && !has(event.custom_event)`, purchase(1), true},
		// A field of a payload that is not set reads as its zero value.
		{`event.purchase_complete.total_cents == 0`, custom("x", nil), true},
	}
	for _, tt := range tests {
		p, err := env.Condition(tt.cond)
		if err != nil {
			t.Fatalf("Condition(%q): %v", tt.cond, err)
		}
		got, err := p.Match(tt.in)
		if err != nil {
			t.Fatalf("Match(%q): %v", tt.cond, err)
		}
		if got != tt.want {
			t.Errorf("%q on %s: got %v, want %v", tt.cond, tt.in.Type, got, tt.want)
		}
	}
}

func TestMissingMapKeyIsAnErrorNotAMatch(t *testing.T) {
	env, _ := expr.NewEnv()
	p, err := env.Condition(`event.custom_event.int_params["level"] >= 10`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Match(custom("x", nil))
	if err == nil || got {
		t.Fatalf("got %v, %v; want no match and an error", got, err)
	}
}

func TestCompileErrorsPointAtTheProblem(t *testing.T) {
	env, _ := expr.NewEnv()
	tests := []struct {
		src        string
		wantInMsg  string
		line, col  int
		numberExpr bool
	}{
		{src: `event.purchase_complete.total_cent > 1`, wantInMsg: "total_cent", line: 1, col: 24},
		{src: `event.purchase_complete.total_cents > "a"`, wantInMsg: "no matching overload", line: 1, col: 37},
		{src: `event.app_id`, wantInMsg: "must be a bool", line: 1, col: 1},
		{src: "true &&\n  nope", wantInMsg: "undeclared reference to 'nope'", line: 2, col: 3},
		{src: `event.purchase_complete.currency`, wantInMsg: "must be a number", line: 1, col: 1, numberExpr: true},
		{src: `(`, wantInMsg: "Syntax error", line: 1, col: 2},
	}
	for _, tt := range tests {
		var err error
		if tt.numberExpr {
			_, err = env.Number(tt.src)
		} else {
			_, err = env.Condition(tt.src)
		}
		var e *expr.Error
		if err == nil || !expr.IsCompileError(err) {
			t.Fatalf("%q: got %v, want a compile error", tt.src, err)
		}
		e = err.(*expr.Error)
		if !strings.Contains(err.Error(), tt.wantInMsg) {
			t.Errorf("%q: message %q does not mention %q", tt.src, err, tt.wantInMsg)
		}
		if e.Line != tt.line || e.Column != tt.col {
			t.Errorf("%q: at %d:%d, want %d:%d (%s)", tt.src, e.Line, e.Column, tt.line, tt.col, err)
		}
	}
}

func TestEmptyConditionMatchesAll(t *testing.T) {
	env, _ := expr.NewEnv()
	p, err := env.Condition("  ")
	if err != nil || p != nil {
		t.Fatalf("got %v, %v; want nil program, nil error", p, err)
	}
}

func TestValue(t *testing.T) {
	env, _ := expr.NewEnv()
	p, err := env.Number(`event.purchase_complete.total_cents / 100`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Value(purchase(12345))
	if err != nil || v != 123 {
		t.Fatalf("got %v, %v; want 123", v, err)
	}
	p, err = env.Number(`double(event.purchase_complete.total_cents) / 100.0`)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Value(purchase(12345)); v != 123.45 {
		t.Fatalf("got %v, want 123.45", v)
	}
}

func TestExpensiveExpressionsAreRefusedWhenSaved(t *testing.T) {
	env, _ := expr.NewEnv()
	_, err := env.Condition(`event.custom_event.string_params.all(k, event.custom_event.string_params.all(j, event.custom_event.string_params.all(i, k + j + i != "")))`)
	if err == nil || !strings.Contains(err.Error(), "nested loops") {
		t.Fatalf("got %v, want a refusal naming nested loops", err)
	}
	// One loop over a map, and string functions, are fine.
	for _, ok := range []string{
		`event.custom_event.string_params.exists(k, k.startsWith("utm_"))`,
		`event.screen_view.screen_name.contains("checkout") || event.screen_view.params.size() > 3`,
	} {
		if _, err := env.Condition(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
