// Package e2e tests aviary end to end: the real binary as real processes
// on loopback, sample upstreams and load in the test process.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aviary-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "aviary")
	// The binary is built without the race detector: these tests are about
	// processes, crashes and timing; AVIARY_E2E_RACE=1 builds it with it.
	build := exec.Command("go", "build", "-o", binary, "../cmd/aviary")
	if os.Getenv("AVIARY_E2E_RACE") != "" {
		build = exec.Command("go", "build", "-race", "-o", binary, "../cmd/aviary")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build aviary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a log buffer safe to write from a process's pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running aviary process.
type proc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

func start(t *testing.T, args ...string) *proc { return startWith(t, nil, args...) }

// startWith starts aviary with extra environment variables.
func startWith(t *testing.T, vars []string, args ...string) *proc {
	t.Helper()
	p := &proc{log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(append(os.Environ(), "AVIARY_TOKEN="+token), vars...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of %v:\n%s", args, p.log.String())
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("aviary did not stop on SIGTERM within 30s")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("aviary exited %d after SIGTERM:\n%s", code, p.log.String())
	}
}

const token = "e2e-token-0123456789abcdef"

// env is one server with its data directory.
type env struct {
	t      *testing.T
	dir    string
	addr   string
	url    string
	extra  []string
	vars   []string // the server's extra environment
	server *proc
}

func newEnv(t *testing.T, extra ...string) *env { return newEnvWith(t, nil, extra...) }

func newEnvWith(t *testing.T, vars []string, extra ...string) *env {
	e := &env{t: t, dir: t.TempDir(), addr: freeAddr(t), extra: extra, vars: vars}
	e.url = "http://" + e.addr
	e.startServer()
	return e
}

func (e *env) startServer() {
	e.t.Helper()
	args := append([]string{"server", "--data", e.dir, "--addr", e.addr}, e.extra...)
	e.server = startWith(e.t, e.vars, args...)
	e.waitReady()
}

// waitReady waits until the API answers with the controller running.
func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(e.url + "/api/v1/rollouts")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-e.server.done:
			e.t.Fatalf("the server exited:\n%s", e.server.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.t.Fatalf("the server did not become ready:\n%s", e.server.log.String())
}

// aviary runs a client command against the server.
func (e *env) aviary(args ...string) (int, string, string) {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "AVIARY_SERVER="+e.url, "AVIARY_TOKEN="+token)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errOut.String()
}

// must runs a client command that must succeed.
func (e *env) must(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.aviary(args...)
	if code != 0 {
		e.t.Fatalf("aviary %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (e *env) apply(manifest string) {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "rollout.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.must("apply", "-f", f)
}

func (e *env) status(name string) server.Status {
	e.t.Helper()
	var st server.Status
	if err := json.Unmarshal([]byte(e.must("status", name, "-o", "json")), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitPhase polls the API until the rollout reaches the phase.
func (e *env) waitPhase(name string, want rollout.Phase, within time.Duration) server.Status {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var st server.Status
	for time.Now().Before(deadline) {
		if get(e.url+"/api/v1/rollouts/"+name, &st) == nil && st.Phase == want {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("%s did not reach %s within %s; it is %s: %s", name, want, within, st.Phase, st.Message)
	return st
}

// waitFor polls the API until cond holds for the rollout's status.
func (e *env) waitFor(name, what string, within time.Duration, cond func(server.Status) bool) server.Status {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var st server.Status
	for time.Now().Before(deadline) {
		if get(e.url+"/api/v1/rollouts/"+name, &st) == nil && cond(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("%s: %s did not happen within %s; phase %s: %s", name, what, within, st.Phase, st.Message)
	return st
}

func (e *env) events(name string) []server.Event {
	e.t.Helper()
	var evs server.Events
	if err := get(e.url+"/api/v1/rollouts/"+name+"/events?limit=1000", &evs); err != nil {
		e.t.Fatal(err)
	}
	return evs.Events
}

func get(url string, out any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s: %s", res.Status, b)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// upstream is a sample version: it answers with its name in X-Version and
// fails a share of requests.
type upstream struct {
	*httptest.Server
	failure atomic.Uint64 // share of failures, as math.Float64bits
	served  atomic.Int64
}

func newUpstream(t *testing.T, version string, failure float64) *upstream {
	u := &upstream{}
	u.setFailure(failure)
	r := rand.New(rand.NewPCG(uint64(len(version)), 9))
	var mu sync.Mutex
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		u.served.Add(1)
		w.Header().Set("X-Version", version)
		mu.Lock()
		fail := r.Float64() < u.failureRate()
		mu.Unlock()
		if fail {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", version)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) setFailure(f float64) { u.failure.Store(uint64(f * 1e6)) }
func (u *upstream) failureRate() float64 { return float64(u.failure.Load()) / 1e6 }

// manifest is the e2e rollout: one error-rate check every second, with
// small sample sizes so runs take seconds.
func manifest(name, version, upstream, listen, steps string) string {
	return fmt.Sprintf(`apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: %s}
spec:
  version: %s
  upstreams: [%q]
  traffic: {listen: %q}
  rollbackWindow: 10m
  progressDeadline: 2m
  strategy:
    canary:
      steps: %s
  analysis:
    interval: 1s
    metrics:
      - name: error-rate
        compare: baseline
        test: sequential
        maxIncrease: 2%%
        minSamples: 40
`, name, version, upstream, listen, steps)
}

// withContext gives a test a context that ends with it.
func withContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
