package deptest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }
func (r *recorder) Helper()                           {}

func TestCheckCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	src := `package p

import (
	"fmt"
	"net/http"
	"os"
	clock "time"
	"k8s.io/client-go/kubernetes"
)

var _ = kubernetes.NewForConfig
var _ = http.Get
var _ = os.Getenv

func f() { fmt.Println(clock.Now()) }
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Check(r, dir, Pure)
	joined := strings.Join(r.errs, "\n")
	if len(r.errs) != 4 {
		t.Fatalf("got %d violations, want 4 (net/http, os, k8s.io, time.Now):\n%s", len(r.errs), joined)
	}
}

func TestCheckAcceptsPureCode(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nimport (\n\t\"fmt\"\n\t\"time\"\n)\n\nfunc f(now time.Time) string { return fmt.Sprint(now.Add(time.Second)) }\n"
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Check(r, dir, Pure)
	if len(r.errs) != 0 {
		t.Fatalf("pure code flagged: %v", r.errs)
	}
}
