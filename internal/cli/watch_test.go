package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/server/servertest"
)

// syncBuffer is written by the command and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background runs a command until it exits; wait returns its result.
type background struct {
	stdout, stderr syncBuffer
	done           chan int
	cancel         context.CancelFunc
}

func (a *aviary) start(args ...string) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{done: make(chan int, 1), cancel: cancel}
	go func() {
		b.done <- runWith(ctx, append([]string{"aviary"}, args...), a.system(""), &b.stdout, &b.stderr)
	}()
	a.t.Cleanup(cancel)
	return b
}

func (b *background) wait(t *testing.T) cliResult {
	t.Helper()
	select {
	case code := <-b.done:
		return cliResult{code: code, stdout: b.stdout.String(), stderr: b.stderr.String()}
	case <-time.After(20 * time.Second):
		t.Fatalf("the command did not exit; stdout so far:\n%s\nstderr:\n%s", b.stdout.String(), b.stderr.String())
	}
	return cliResult{}
}

// waitOutput waits until the command printed text.
func (b *background) waitOutput(t *testing.T, text string) {
	t.Helper()
	servertest.WaitFor(t, "output "+text, func() bool { return strings.Contains(b.stdout.String(), text) })
}

// status -w on a pipe prints the run as lines until it ends, and exits 0
// when it ends Succeeded.
func TestStatusWatchSucceeds(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	atPause(t, a, "web")
	w := a.start("status", "web", "-w")
	w.waitOutput(t, "rollout web: Progressing, run 1: v2 over v1, step 2/4, weight 20%")
	a.ok("promote", "web")
	env.Clock.Advance(10 * time.Second)
	r := w.wait(t)
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, want 0 and nothing", r.code, r.stderr)
	}
	golden(t, "status-watch-succeeded.txt", r.stdout)
}

// A run that is rolled back ends the watch with exit code 1 and the reason.
func TestStatusWatchFails(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	atPause(t, a, "web")
	env.Provider.SetErrorRates(0.3, 0.01)
	w := a.start("status", "web", "-w")
	w.waitOutput(t, "step 2/4")
	a.ok("promote", "web")
	env.Clock.Advance(10 * time.Second)
	r := w.wait(t)
	want := "aviary: rollout web: Failed: rolled back: error-rate: canary 0.3 is above max 0.05 (1 failed interval(s), failureLimit 0)\n"
	if r.code != ExitFailed || r.stderr != want {
		t.Fatalf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	golden(t, "status-watch-failed.txt", r.stdout)
}

// On a terminal the view is redrawn in place: each redraw moves the cursor
// up over the previous one and clears it.
func TestStatusWatchTerminal(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	a.terminal = true
	atPause(t, a, "web")
	w := a.start("status", "web", "-w")
	w.waitOutput(t, "waiting   for `aviary promote web`")
	a.ok("promote", "web")
	env.Clock.Advance(10 * time.Second)
	r := w.wait(t)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	frames := strings.Split(r.stdout, "\x1b[")
	if len(frames) < 3 {
		t.Fatalf("got %d frames, want a first view and redraws:\n%q", len(frames), r.stdout)
	}
	first := strings.Count(frames[0], "\n")
	if !strings.HasPrefix(frames[1], itoa(first)+"A") || !strings.HasPrefix(frames[2], "J") {
		t.Errorf("the first redraw does not move up the %d lines of the first view: %q", first, frames[1])
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("a line of %d characters wraps on a 100-column terminal: %q", n, line)
		}
	}
	last := frames[len(frames)-1]
	if !strings.Contains(last, "rollout web: Succeeded") || !strings.Contains(last, "✔ analysis") {
		t.Errorf("the last view is not the promoted rollout:\n%s", last)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// status -w -o json prints one status object per line.
func TestStatusWatchJSON(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	atPause(t, a, "web")
	w := a.start("status", "web", "-w", "-o", "json")
	w.waitOutput(t, `"canaryWeight":20`)
	a.ok("promote", "web", "--full")
	r := w.wait(t)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last server.Status
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	if len(lines) < 2 || last.Phase != rollout.PhaseSucceeded || last.StableVersion != "v2" {
		t.Fatalf("got %d lines ending in %s with stable %s, want several ending Succeeded with v2", len(lines), last.Phase, last.StableVersion)
	}
}

// A rollout that is not running a run is shown once; a deleted one ends
// the watch with exit code 1; an interrupted watch exits 0.
func TestStatusWatchEdges(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	a.ok("apply", "-f", writeFile(t, "api.yaml", servertest.Manifest("api", "v1")))
	r := a.ok("status", "api", "-w")
	if !strings.Contains(r.stdout, "rollout api: Initialized") {
		t.Errorf("a rollout without a run: %q", r.stdout)
	}

	atPause(t, a, "web")
	w := a.start("status", "web", "-w")
	w.waitOutput(t, "step 2/4")
	a.ok("delete", "web")
	if r := w.wait(t); r.code != ExitFailed || !strings.Contains(r.stderr, "rollout web was deleted") {
		t.Errorf("deleted: exit %d, stderr %q", r.code, r.stderr)
	}

	atPause(t, a, "db")
	w = a.start("status", "db", "-w")
	w.waitOutput(t, "step 2/4")
	w.cancel()
	if r := w.wait(t); r.code != ExitOK {
		t.Errorf("interrupted: exit %d, stderr %q, want 0", r.code, r.stderr)
	}
	if r := a.run("status", "nope", "-w"); r.code != ExitFailed || !strings.Contains(r.stderr, `"nope": rollout not found`) {
		t.Errorf("unknown rollout: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := a.run("status", "db", "-w", "-o", "yaml"); r.code != ExitUsage {
		t.Errorf("-w -o yaml: exit %d, want 2", r.code)
	}
}

// When the connection drops, status -w says so and reconnects; the server
// opens the new stream with the current state.
func TestStatusWatchReconnects(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	atPause(t, a, "web")
	var mu sync.Mutex
	dropped := false
	// A proxy in front of the API that cuts the first stream after its
	// first event.
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, env.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		mu.Lock()
		cut := !dropped && strings.Contains(r.URL.Path, "watch")
		dropped = dropped || cut
		mu.Unlock()
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil || (cut && bytes.Contains(buf[:n], []byte("event: rollout"))) {
				return
			}
		}
	})
	ps := httptestServer(t, proxy)
	a.vars["AVIARY_SERVER"] = ps
	w := a.start("status", "web", "-w")
	servertest.WaitFor(t, "the reconnection", func() bool { return strings.Contains(w.stderr.String(), "reconnecting") })
	a.ok("promote", "web", "--full")
	r := w.wait(t)
	if r.code != ExitOK || !strings.Contains(r.stdout, "rollout web: Succeeded") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "aviary: lost the connection to "+ps) {
		t.Errorf("stderr %q does not name the server", r.stderr)
	}
}
