//go:build docgen

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"aviary/internal/server/servertest"
)

var docMarker = regexp.MustCompile(`@@([a-z0-9.-]+)@@`)

// TestGenerateCLIDoc writes docs/cli.md from testdata/cli.md.tmpl. Each
// @@name@@ becomes the golden file testdata/golden/name (the outputs the
// tests check), or one of the outputs this test produces:
//
//	go test -tags docgen -run TestGenerateCLIDoc ./internal/cli
func TestGenerateCLIDoc(t *testing.T) {
	out := map[string]string{}
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	for _, cmd := range []string{"apply", "get", "status", "release", "promote", "abort", "pause", "resume", "retry", "rollback", "approve", "history", "events", "delete"} {
		out["help-"+cmd] = a.ok(cmd, "--help").stdout
	}
	bad := strings.NewReplacer("setWeight: 20", "setWeight: 120", "max: 0.05", "max: 0.05\n        maxIncrease: 1%").Replace(servertest.Manifest("web", "v1"))
	path := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out["err-invalid"] = strings.ReplaceAll(a.run("apply", "-f", path).stderr, path, "web.yaml")
	a.ok("apply", "-f", writeFile(t, "v1.yaml", servertest.Manifest("web", "v1")))
	out["err-refused"] = a.run("promote", "web").stderr
	out["err-notfound"] = a.run("status", "nope").stderr
	out["err-usage"] = a.run("promote").stderr
	delete(a.vars, "AVIARY_TOKEN")
	out["err-token"] = a.run("abort", "web").stderr
	a.vars["AVIARY_SERVER"] = "http://127.0.0.1:7070"
	out["err-connect"] = a.run("get").stderr

	// The live view's last frame, as a terminal shows it.
	live := servertest.Start(t, servertest.Options{})
	b := newAviary(t, live)
	b.terminal = true
	atPause(t, b, "web")
	w := b.start("status", "web", "-w")
	w.waitOutput(t, "waiting")
	b.ok("promote", "web")
	frames := strings.Split(w.stdout.String(), "\x1b[")
	out["live-pause"] = frames[0]
	live.Clock.Advance(10 * time.Second)
	r := w.wait(t)
	frames = strings.Split(r.stdout, "\x1b[")
	out["live-end"] = strings.TrimPrefix(frames[len(frames)-1], "J")

	tmpl, err := os.ReadFile(filepath.Join("testdata", "cli.md.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	doc := docMarker.ReplaceAllStringFunc(string(tmpl), func(m string) string {
		name := m[2 : len(m)-2]
		text, ok := out[name]
		if !ok {
			b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
			if err != nil {
				t.Errorf("%s: %v", m, err)
			}
			text = string(b)
		}
		return strings.TrimRight(text, "\n")
	})
	if t.Failed() {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "cli.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
