package expr

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Requirements are equalities a condition cannot be true without: from top-level
// conjuncts such as `event.app_id == "shop"` or `type == "level_up"`. The engine checks
// them as plain string comparisons before running the program, so a rule written with its
// filters inside the condition costs as little as one using the filter fields. Empty
// means no requirement.
type Requirements struct {
	AppID, Category, Type string
}

// Requires returns the condition's requirements. A requirement that appears twice with
// different values is kept once: the program itself still decides.
func (p *Program) Requires() Requirements { return p.requires }

// requirements walks the conjuncts at the top of a checked expression. A false conjunct
// makes `a && b` false whatever the others give (CEL's && absorbs errors that way), so
// skipping the program when a requirement fails never changes a result.
func requirements(a *cel.Ast) Requirements {
	var r Requirements
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		switch call.FunctionName() {
		case operators.LogicalAnd:
			for _, arg := range call.Args() {
				walk(arg)
			}
		case operators.Equals:
			args := call.Args()
			if len(args) != 2 {
				return
			}
			name, value, ok := nameAndString(args[0], args[1])
			if !ok {
				name, value, ok = nameAndString(args[1], args[0])
			}
			if !ok {
				return
			}
			switch name {
			case "event.app_id":
				r.AppID = value
			case "category":
				r.Category = value
			case "type":
				r.Type = value
			}
		}
	}
	walk(a.NativeRep().Expr())
	return r
}

// nameAndString matches `<variable or event field> == "<string>"`.
func nameAndString(left, right ast.Expr) (name, value string, ok bool) {
	if right.Kind() != ast.LiteralKind {
		return "", "", false
	}
	s, isString := right.AsLiteral().(types.String)
	if !isString {
		return "", "", false
	}
	switch left.Kind() {
	case ast.IdentKind:
		return left.AsIdent(), string(s), true
	case ast.SelectKind:
		sel := left.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != "event" {
			return "", "", false
		}
		return "event." + sel.FieldName(), string(s), true
	}
	return "", "", false
}
