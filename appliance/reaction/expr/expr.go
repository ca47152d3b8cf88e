// Package expr compiles and runs the CEL expressions of rules and detectors: a condition
// (a bool) or a value (a number) over one event. The variables are
//
//	event     the typed causality.v1.EventEnvelope, e.g. event.purchase_complete.total_cents
//	category  the event's category ("commerce")
//	type      the event's type ("purchase_complete", or a custom event's name)
//
// Expressions are type-checked when they are saved, so a typo in a field name is refused
// then rather than found on the live stream.
package expr

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// maxSourceLen bounds an expression's text; longer ones are refused at save time.
const maxSourceLen = 4096

// maxCost bounds the worst-case work of one evaluation (CEL's cost units, about one per
// operation), estimated when an expression is saved with every map, list and string of
// the event assumed to hold up to sizeBound elements. It refuses nested loops over an
// event's maps, which could stall the engine, while any expression a person writes to
// test fields passes. Checking at save time costs nothing per event; tracking the cost
// while evaluating made every evaluation about a third slower.
const (
	maxCost   = 1_000_000
	sizeBound = 1000
)

// boundedSizes is the cost estimator behind maxCost.
type boundedSizes struct{}

func (boundedSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: sizeBound}
}

func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Env compiles expressions. It is safe for concurrent use.
type Env struct {
	env     *cel.Env
	adapter types.Adapter
}

// NewEnv builds the environment shared by every rule and detector.
func NewEnv() (*Env, error) {
	env, err := cel.NewEnv(
		cel.Types(&causalityv1.EventEnvelope{}),
		cel.Variable("event", cel.ObjectType("causality.v1.EventEnvelope")),
		cel.Variable("category", cel.StringType),
		cel.Variable("type", cel.StringType),
		ext.Strings(),
	)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	return &Env{env: env, adapter: env.CELTypeAdapter()}, nil
}

// Error is a compile error. Error() is CEL's message with the offending line and a caret
// under the place it points at; Line and Column (1-based) locate the first problem for an
// editor.
type Error struct {
	Message string
	Line    int
	Column  int
	full    string
}

func (e *Error) Error() string { return e.full }

// Program is a compiled expression, safe for concurrent use.
type Program struct {
	prg      cel.Program
	source   string
	requires Requirements
}

// Source is the expression's text.
func (p *Program) Source() string { return p.source }

// Condition compiles a condition, which must be a bool. An empty (or blank) condition is
// nil: it matches everything.
func (e *Env) Condition(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return e.compile(src, "a bool (true or false)", func(t *cel.Type) bool { return t.IsExactType(cel.BoolType) })
}

// Number compiles a value expression, which must be an int, uint or double.
func (e *Env) Number(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Message: "an expression is required", Line: 1, Column: 1, full: "an expression is required"}
	}
	return e.compile(src, "a number (int, uint or double)", func(t *cel.Type) bool {
		return t.IsExactType(cel.IntType) || t.IsExactType(cel.UintType) || t.IsExactType(cel.DoubleType)
	})
}

func (e *Env) compile(src, want string, ok func(*cel.Type) bool) (*Program, error) {
	if len(src) > maxSourceLen {
		return nil, &Error{Message: fmt.Sprintf("longer than %d characters", maxSourceLen), Line: 1, Column: 1,
			full: fmt.Sprintf("the expression is longer than %d characters", maxSourceLen)}
	}
	ast, iss := e.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, compileError(iss)
	}
	if t := ast.OutputType(); !ok(t) {
		msg := fmt.Sprintf("the expression is a %s, it must be %s", t, want)
		return nil, &Error{Message: msg, Line: 1, Column: 1, full: msg}
	}
	cost, err := e.env.EstimateCost(ast, boundedSizes{})
	if err != nil {
		return nil, &Error{Message: err.Error(), Line: 1, Column: 1, full: err.Error()}
	}
	if cost.Max > maxCost {
		msg := fmt.Sprintf("the expression may take up to %d steps on a large event (the limit is %d); nested loops over maps or lists are the usual cause", cost.Max, maxCost)
		return nil, &Error{Message: msg, Line: 1, Column: 1, full: msg}
	}
	prg, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &Error{Message: err.Error(), Line: 1, Column: 1, full: err.Error()}
	}
	return &Program{prg: prg, source: src, requires: requirements(ast)}, nil
}

func compileError(iss *cel.Issues) error {
	errs := iss.Errors()
	e := &Error{Message: "invalid expression", Line: 1, Column: 1}
	if len(errs) > 0 {
		first := errs[0]
		e.Message = first.Message
		if loc := first.Location; loc != nil {
			e.Line, e.Column = loc.Line(), loc.Column()+1
		}
	}
	e.full = strings.ReplaceAll(strings.TrimPrefix(iss.Err().Error(), "ERROR: "), "<input>:", "")
	return e
}

// Input is the event an expression runs on. It is CEL's activation, so evaluating a
// program allocates no map of variables, and it converts the event and strings to CEL
// values once, however many programs run on it.
type Input struct {
	Event    *causalityv1.EventEnvelope
	Category string
	Type     string

	env             *Env
	event, cat, typ ref.Val
}

// NewInput prepares an event for evaluation.
func (e *Env) NewInput(ev *causalityv1.EventEnvelope, category, typ string) *Input {
	return &Input{Event: ev, Category: category, Type: typ, env: e}
}

// Reset points a reused Input at another event.
func (in *Input) Reset(ev *causalityv1.EventEnvelope, category, typ string) {
	env := in.env
	*in = Input{Event: ev, Category: category, Type: typ, env: env}
}

// ResolveName implements interpreter.Activation.
func (in *Input) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		if in.env == nil {
			return in.Event, true
		}
		if in.event == nil {
			in.event = in.env.adapter.NativeToValue(in.Event)
		}
		return in.event, true
	case "category":
		if in.cat == nil {
			in.cat = types.String(in.Category)
		}
		return in.cat, true
	case "type":
		if in.typ == nil {
			in.typ = types.String(in.Type)
		}
		return in.typ, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (in *Input) Parent() interpreter.Activation { return nil }

// Match runs a condition. An evaluation error (a division by zero, a missing map key) is
// returned and counts as no match.
func (p *Program) Match(in *Input) (bool, error) {
	out, _, err := p.prg.Eval(in)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition gave %s, not a bool", typeName(out))
	}
	return bool(b), nil
}

// Value runs a number expression.
func (p *Program) Value(in *Input) (float64, error) {
	out, _, err := p.prg.Eval(in)
	if err != nil {
		return math.NaN(), err
	}
	switch v := out.(type) {
	case types.Int:
		return float64(v), nil
	case types.Uint:
		return float64(v), nil
	case types.Double:
		return float64(v), nil
	}
	return math.NaN(), fmt.Errorf("value gave %s, not a number", typeName(out))
}

func typeName(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().TypeName()
}

// IsCompileError reports whether err is a compile error of an expression (the user's
// mistake) rather than a failure of the system.
func IsCompileError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
