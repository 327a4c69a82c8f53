package analysis

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// A condition is a boolean expr-lang expression over the latest interval's
// results, for checks that no fixed rule expresses (business metrics):
//
//	canary.value >= stable.value * 0.98 && canary.count > 100
//
// canary and stable each have value (the metric's value), count (the sample
// size behind it, -1 when the provider does not know it), requests and errors
// (request counts, 0 when the provider reports none). expr is pure
// computation; the builtins that read the clock or the local time zone (now,
// date) are disabled so that a condition's verdict depends on its inputs
// alone, as every verdict in this package does.

// conditionSide is one version's numbers as a condition sees them.
type conditionSide struct {
	Value    float64 `expr:"value"`
	Count    float64 `expr:"count"`
	Requests float64 `expr:"requests"`
	Errors   float64 `expr:"errors"`
}

// conditionEnv is what a condition may refer to.
type conditionEnv struct {
	Canary conditionSide `expr:"canary"`
	Stable conditionSide `expr:"stable"`
}

// ExprError is an expression that does not compile: Message is expr's
// explanation and Line and Column (1-based) where it stopped.
type ExprError struct {
	Message      string
	Line, Column int
}

func (e *ExprError) Error() string {
	if e.Line == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (line %d, column %d)", e.Message, e.Line, e.Column)
}

// exprOptions are the options every expression of this package compiles with.
func exprOptions() []expr.Option {
	return []expr.Option{expr.DisableBuiltin("now"), expr.DisableBuiltin("date")}
}

// compileError turns expr's error into an ExprError with a 1-based column.
func compileError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &ExprError{Message: fe.Message, Line: fe.Line, Column: fe.Column + 1}
	}
	return &ExprError{Message: err.Error()}
}

// condition is a compiled condition and the versions it refers to.
type condition struct {
	prog       *vm.Program
	usesStable bool
}

// CompileCondition compiles and type-checks a condition: it must be a
// boolean expression over canary and stable. The error is an *ExprError.
func CompileCondition(src string) error {
	_, err := compileCondition(src)
	return err
}

func compileCondition(src string) (condition, error) {
	if strings.TrimSpace(src) == "" {
		return condition{}, &ExprError{Message: "the condition is empty"}
	}
	opts := append(exprOptions(), expr.Env(conditionEnv{}), expr.AsBool())
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return condition{}, compileError(err)
	}
	c := condition{prog: prog}
	ast.Find(prog.Node(), func(n ast.Node) bool {
		if id, ok := n.(*ast.IdentifierNode); ok && id.Value == "stable" {
			c.usesStable = true
		}
		return false
	})
	return c, nil
}

func side(m Measurement) conditionSide {
	return conditionSide{Value: m.Value, Count: float64(m.Count), Requests: float64(m.Requests), Errors: float64(m.Errors)}
}

// judgeCondition evaluates the condition on the latest interval: Pass when
// true, Fail when false, Inconclusive when a version it refers to has no
// value, Error when it cannot be evaluated.
func judgeCondition(r Result, c Criteria, last Interval) Result {
	metric := r.Metric
	cond, err := compileCondition(c.Condition)
	if err != nil { // unreachable: Validate compiled it
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: condition: %v", metric, err)
		return r
	}
	can, st := last.Canary, last.Stable
	r.CanaryCount = can.Count
	if can.HasValue {
		r.Canary, r.HasCanary = can.Value, true
	}
	if cond.usesStable {
		r.StableCount = st.Count
		if st.HasValue {
			r.Stable, r.HasStable = st.Value, true
		}
	}
	values := describeSides(can, st, cond.usesStable)
	switch {
	case !can.HasValue:
		r.Reason = fmt.Sprintf("%s: condition %q not evaluated: no canary data in the last interval%s", metric, c.Condition, note(can))
		return r
	case cond.usesStable && !st.HasValue:
		r.Reason = fmt.Sprintf("%s: condition %q not evaluated: no stable data in the last interval%s", metric, c.Condition, note(st))
		return r
	}
	out, err := expr.Run(cond.prog, conditionEnv{Canary: side(can), Stable: side(st)})
	if err != nil {
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: condition %q could not be evaluated with %s: %v", metric, c.Condition, values, firstLine(err))
		return r
	}
	if ok, _ := out.(bool); ok {
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%s: condition %q holds with %s", metric, c.Condition, values)
		return r
	}
	r.Verdict = Fail
	r.Reason = fmt.Sprintf("%s: condition %q is false with %s", metric, c.Condition, values)
	return r
}

// describeSides writes "canary 0.91 (count 1,204), stable 0.97 (count 20,113)".
func describeSides(can, st Measurement, withStable bool) string {
	one := func(name string, m Measurement) string {
		if !m.HasValue {
			return name + " no value"
		}
		s := name + " " + fmtValue(m.Value)
		if m.Count >= 0 {
			s += " (count " + fmtCount(m.Count) + ")"
		}
		return s
	}
	s := one("canary", can)
	if withStable {
		s += ", " + one("stable", st)
	}
	return s
}

// note adds a measurement's note on why it has no value: " (value is NaN)".
func note(m Measurement) string {
	if m.Note == "" {
		return ""
	}
	return " (" + m.Note + ")"
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
