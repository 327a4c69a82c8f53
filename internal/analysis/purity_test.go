package analysis

import (
	"testing"

	"aviary/internal/deptest"
)

// Analysis is pure: numbers in, verdicts out. The one non-standard import
// is expr-lang, a pure expression evaluator, for conditions and selectors
// (its clock-reading builtins are disabled, see exprOptions).
func TestPure(t *testing.T) {
	rules := deptest.Pure
	rules.Allow = []string{
		"github.com/expr-lang/expr",
		"github.com/expr-lang/expr/ast",
		"github.com/expr-lang/expr/file",
		"github.com/expr-lang/expr/vm",
	}
	deptest.Check(t, ".", rules)
}
