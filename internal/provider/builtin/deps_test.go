package builtin

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package's place in the architecture: of aviary's
// own packages it may import only these (the proxy none: it knows nothing of
// rollouts; adapters never import the controller or each other).
func TestImports(t *testing.T) {
	allowed := []string{"aviary/internal/rollout", "aviary/internal/analysis", "aviary/internal/proxy"}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "aviary/") && !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s; allowed aviary packages: %q", f, path, allowed)
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
}
