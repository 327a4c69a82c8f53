package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Selector picks a number out of a decoded JSON document (as encoding/json
// decodes into any): the web provider's value and count. It is written
// either as a JSONPath subset or as an expr-lang expression:
//
//   - a path starts with "$": $ is the document, .name or ['name'] a key of
//     an object, [N] the N-th element of an array (from 0; -1 is the last).
//     For example $.data.result[0].value.
//   - anything else is an expression over body, the decoded document, e.g.
//     body.hits / body.total or sum(map(body.shards, .errors)).
//
// The selected value must be a number; JSON null means no data.
type Selector struct {
	src  string
	path []pathStep // when a path
	prog *vm.Program
}

// selectorEnv is what an expression selector sees: the document, of any
// shape.
type selectorEnv struct {
	Body any `expr:"body"`
}

type pathStep struct {
	key   string
	index int
	isKey bool
}

// String is the selector as written.
func (s *Selector) String() string { return s.src }

// ParseSelector compiles a selector. A path's errors name the offending
// character (1-based); an expression's error is an *ExprError.
func ParseSelector(src string) (*Selector, error) {
	t := strings.TrimSpace(src)
	if t == "" {
		return nil, fmt.Errorf("the selector is empty: give a path such as $.data.value or an expression over body")
	}
	if isPath(t) {
		steps, err := parsePath(t)
		if err != nil {
			return nil, err
		}
		return &Selector{src: t, path: steps}, nil
	}
	opts := append(exprOptions(), expr.Env(selectorEnv{}))
	prog, err := expr.Compile(t, opts...)
	if err != nil {
		return nil, compileError(err)
	}
	return &Selector{src: t, prog: prog}, nil
}

// isPath tells a JSONPath ($, $.a, $[0]) from an expression ($env is
// expr's own variable).
func isPath(s string) bool {
	return s == "$" || strings.HasPrefix(s, "$.") || strings.HasPrefix(s, "$[")
}

func parsePath(s string) ([]pathStep, error) {
	var steps []pathStep
	i := 1
	bad := func(format string, args ...any) error {
		return fmt.Errorf("path %s: at character %d: %s", s, i+1, fmt.Sprintf(format, args...))
	}
	for i < len(s) {
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if j == i+1 {
				return nil, bad("a key name must follow '.'")
			}
			steps = append(steps, pathStep{key: s[i+1 : j], isKey: true})
			i = j
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, bad("unclosed '['")
			}
			inner := s[i+1 : i+end]
			switch {
			case len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0]:
				steps = append(steps, pathStep{key: inner[1 : len(inner)-1], isKey: true})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil {
					return nil, bad("want an array index or a quoted key inside [], got %q (filters and wildcards are not supported)", inner)
				}
				steps = append(steps, pathStep{index: n})
			}
			i += end + 1
		default:
			return nil, bad("unexpected %q: want '.' or '['", s[i])
		}
	}
	return steps, nil
}

// Select returns the selected number; ok is false when the value is JSON
// null (no data). A missing key, an index out of range or a value that is
// not a number is an error naming where the selection stopped.
func (s *Selector) Select(doc any) (v float64, ok bool, err error) {
	var out any
	if s.prog != nil {
		out, err = expr.Run(s.prog, selectorEnv{Body: doc})
		if err != nil {
			return 0, false, fmt.Errorf("expression %s: %s", s.src, firstLine(err))
		}
	} else if out, err = s.walk(doc); err != nil {
		return 0, false, err
	}
	if out == nil {
		return 0, false, nil
	}
	switch x := out.(type) {
	case float64:
		v = x
	case json.Number:
		if v, err = x.Float64(); err != nil {
			return 0, false, fmt.Errorf("%s: %q is not a number", s.src, x)
		}
	default:
		rv := reflect.ValueOf(out)
		switch {
		case rv.CanInt():
			v = float64(rv.Int())
		case rv.CanUint():
			v = float64(rv.Uint())
		case rv.CanFloat():
			v = rv.Float()
		default:
			return 0, false, fmt.Errorf("%s is %s, not a number", s.src, describeJSON(out))
		}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, false, nil
	}
	return v, true, nil
}

func (s *Selector) walk(doc any) (any, error) {
	cur := doc
	at := "$"
	for _, st := range s.path {
		if st.isKey {
			obj, isObj := cur.(map[string]any)
			if !isObj {
				return nil, fmt.Errorf("%s: %s is %s, not an object with key %q", s.src, at, describeJSON(cur), st.key)
			}
			next, found := obj[st.key]
			if !found {
				keys := make([]string, 0, len(obj))
				for k := range obj {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if len(keys) > 8 {
					keys = append(keys[:8], "…")
				}
				return nil, fmt.Errorf("%s: %s has no key %q (it has: %s)", s.src, at, st.key, strings.Join(keys, ", "))
			}
			cur = next
			at += "." + st.key
			continue
		}
		arr, isArr := cur.([]any)
		if !isArr {
			return nil, fmt.Errorf("%s: %s is %s, not an array", s.src, at, describeJSON(cur))
		}
		i := st.index
		if i < 0 {
			i += len(arr)
		}
		if i < 0 || i >= len(arr) {
			return nil, fmt.Errorf("%s: %s has %d elements, no index %d", s.src, at, len(arr), st.index)
		}
		cur = arr[i]
		at += fmt.Sprintf("[%d]", st.index)
	}
	return cur, nil
}

func describeJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	}
	return fmt.Sprintf("a %T", v)
}
