package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server/servertest"
)

// cliResult is what one run of the command line did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// aviary runs the command line in-process against env with the given
// environment (AVIARY_SERVER and AVIARY_TOKEN point at env unless set).
type aviary struct {
	t        *testing.T
	env      *servertest.Env
	vars     map[string]string
	terminal bool
}

func newAviary(t *testing.T, env *servertest.Env) *aviary {
	return &aviary{t: t, env: env, vars: map[string]string{
		"AVIARY_SERVER": env.URL, "AVIARY_TOKEN": servertest.Token, "USER": "tester",
	}}
}

func (a *aviary) system(stdin string) *system {
	return &system{
		stdin:  strings.NewReader(stdin),
		getenv: func(k string) string { return a.vars[k] },
		now:    a.env.Clock.Now,
		loc:    time.UTC,
		terminal: func(io.Writer) (bool, int) {
			return a.terminal, 100
		},
		http: &http.Client{},
	}
}

// run runs args (without the program name) and returns what happened.
func (a *aviary) run(args ...string) cliResult {
	a.t.Helper()
	return a.runIn(context.Background(), "", args...)
}

func (a *aviary) runIn(ctx context.Context, stdin string, args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	code := runWith(ctx, append([]string{"aviary"}, args...), a.system(stdin), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs args and fails the test unless they exit 0.
func (a *aviary) ok(args ...string) cliResult {
	a.t.Helper()
	r := a.run(args...)
	if r.code != ExitOK {
		a.t.Fatalf("aviary %s: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// normalize replaces what differs between runs: the test server's address.
func (a *aviary) normalize(s string) string {
	return strings.ReplaceAll(s, a.env.URL, "http://127.0.0.1:PORT")
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// atPause applies v1 and v2 of name and waits for the run's pause.
func atPause(t *testing.T, a *aviary, name string) {
	t.Helper()
	a.ok("apply", "-f", writeFile(t, name+"-v1.yaml", servertest.Manifest(name, "v1")))
	a.ok("apply", "-f", writeFile(t, name+"-v2.yaml", servertest.Manifest(name, "v2")))
	servertest.WaitFor(t, "the pause", func() bool {
		r, err := a.env.Controller.Get(name)
		return err == nil && r.Status.Waiting != nil && r.Status.Waiting.Kind == rollout.WaitPause
	})
}

// httptestServer serves h until the test ends and returns its address.
func httptestServer(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
