// Package deptest checks what a package imports and calls, so that the
// architecture's rules (a pure core without I/O or a clock) are enforced by
// the tests of the packages they bind. It is test support only.
package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Rules say what a package may import and call.
type Rules struct {
	// Allow lists the non-standard packages the package may import.
	Allow []string
	// Forbid lists forbidden standard packages; "net/..." forbids a subtree.
	Forbid []string
	// ForbidCalls lists forbidden package functions, e.g. "time.Now".
	ForbidCalls []string
}

// Pure is the rule set of the core packages: the standard library only,
// without networking, files, processes, logging or the clock.
var Pure = Rules{
	Forbid: []string{"net", "net/...", "os", "os/...", "log", "log/...", "syscall", "unsafe", "io/fs", "io/ioutil", "math/rand", "math/rand/v2", "crypto/rand"},
	ForbidCalls: []string{"time.Now", "time.Since", "time.Until", "time.Sleep", "time.After",
		"time.AfterFunc", "time.Tick", "time.NewTimer", "time.NewTicker"},
}

// Check reports every violation of r by the non-test Go files in dir.
func Check(t testing.TB, dir string, r Rules) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		n++
		names := map[string]string{} // local name -> import path
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if msg := r.importProblem(path); msg != "" {
				t.Errorf("%s imports %q: %s", fset.Position(imp.Pos()), path, msg)
			}
			name := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			names[name] = path
		}
		ast.Inspect(file, func(node ast.Node) bool {
			sel, ok := node.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok {
				call := names[id.Name] + "." + sel.Sel.Name
				for _, f := range r.ForbidCalls {
					if call == f {
						t.Errorf("%s uses %s: take the time as an argument instead", fset.Position(sel.Pos()), f)
					}
				}
			}
			return true
		})
	}
	if n == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
}

func (r Rules) importProblem(path string) string {
	first, _, _ := strings.Cut(path, "/")
	std := !strings.Contains(first, ".") && first != "aviary"
	if !std {
		for _, a := range r.Allow {
			if path == a {
				return ""
			}
		}
		return "only the standard library and " + strings.Join(r.Allow, ", ") + " are allowed here"
	}
	for _, f := range r.Forbid {
		if sub, ok := strings.CutSuffix(f, "/..."); ok && strings.HasPrefix(path, sub+"/") || path == f {
			return "forbidden in a pure package"
		}
	}
	return ""
}
