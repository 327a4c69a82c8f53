// Package servertest runs aviary's API in tests: a real controller over the
// real SQLite store (in a temporary directory), with a fake router and
// provider and a fake clock, behind an httptest server. Tests of the server
// and of the command line use it.
package servertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/controller"
	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// The real controller is what the API drives.
var _ server.Controller = (*controller.Controller)(nil)

// Token is the API token of every test server.
const Token = "test-token-5f1c"

// Epoch is when every test clock starts.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Env is a running API with its parts.
type Env struct {
	URL string
	// Clock is the fake clock of the controller and the server; nil with
	// Options.RealClock.
	Clock *Clock
	Store *store.DB
	// DBPath is the SQLite database file.
	DBPath     string
	Router     *Router
	Provider   *Provider
	Controller *controller.Controller
	Server     *server.Server
	// Logs holds what the server logged.
	Logs *SyncBuffer

	stopOnce sync.Once
	stop     func(t testing.TB)
}

// StopController stops the controller (the API keeps serving).
func (e *Env) StopController(t testing.TB) {
	e.stopOnce.Do(func() { e.stop(t) })
}

// Options adjust Start.
type Options struct {
	// Heartbeat of event streams (default 50ms, to test it).
	Heartbeat time.Duration
	// MaxBody bounds request bodies (default: the server's).
	MaxBody int64
	// Router is the name the fake router is registered under (default
	// builtin); NoProvider leaves the controller without providers.
	Router     string
	NoProvider bool
	// RealClock runs the controller and the server on the wall clock
	// instead of a fake one (Env.Clock is then nil): runs move on their
	// own, as a browser watching them expects.
	RealClock bool
	// Dashboard is served at / (default: the server's placeholder page).
	Dashboard fs.FS
}

// Start runs a controller and the API until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	env := &Env{Router: NewRouter(), Provider: NewProvider(), Logs: &SyncBuffer{}}
	// clock stays a nil interface with RealClock: the controller and the
	// server then use the wall clock.
	var clock controller.Clock
	now := time.Now
	if !o.RealClock {
		env.Clock = NewClock(Epoch)
		clock, now = env.Clock, env.Clock.Now
	}
	env.DBPath = filepath.Join(t.TempDir(), "aviary.db")
	db, err := store.Open(context.Background(), env.DBPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env.Store = db
	reg := prometheus.NewRegistry()
	if o.Router == "" {
		o.Router = rollout.RouterBuiltin
	}
	providers := map[string]controller.Provider{rollout.ProviderBuiltin: env.Provider}
	if o.NoProvider {
		providers = nil
	}
	c, err := controller.New(controller.Options{
		Store:      env.Store,
		Routers:    map[string]controller.Router{o.Router: env.Router},
		Providers:  providers,
		Clock:      clock,
		Registerer: reg,
		Workers:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.Controller = c
	if o.Heartbeat == 0 {
		o.Heartbeat = 50 * time.Millisecond
	}
	srv, err := server.New(server.Options{
		Controller: c, History: env.Store, Token: Token,
		Logger:    slog.New(slog.NewTextHandler(env.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Gatherer:  reg,
		MaxBody:   o.MaxBody,
		Heartbeat: o.Heartbeat,
		Now:       now,
		Dashboard: o.Dashboard,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.Server = srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	hs := httptest.NewServer(srv)
	env.URL = hs.URL
	env.stop = func(t testing.TB) {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the controller did not stop")
		}
	}
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		env.StopController(t)
		if err := db.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	// The controller accepts commands once Run has loaded the store.
	WaitFor(t, "the controller to run", func() bool {
		_, err := c.Command(context.Background(), "", rollout.Command{})
		return !errors.Is(err, controller.ErrNotRunning)
	})
	return env
}

// WaitFor polls cond until it holds, failing the test after 20 seconds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Phase is a rollout's phase ("" when it does not exist).
func (e *Env) Phase(name string) rollout.Phase {
	r, err := e.Controller.Get(name)
	if err != nil {
		return ""
	}
	return r.Status.Phase
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Router records the routes applied.
type Router struct {
	mu     sync.Mutex
	routes map[string]rollout.Route
}

// NewRouter returns a router that serves nothing.
func NewRouter() *Router { return &Router{routes: map[string]rollout.Route{}} }

// Apply records a route unless it is older than the one applied.
func (r *Router) Apply(_ context.Context, name string, _ rollout.Traffic, rt rollout.Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.routes[name]; ok && old.Generation > rt.Generation {
		return nil
	}
	r.routes[name] = rt
	return nil
}

// Remove forgets a rollout.
func (r *Router) Remove(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, name)
	return nil
}

// Route is the route applied to a rollout.
func (r *Router) Route(name string) (rollout.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.routes[name]
	return rt, ok
}

// Provider answers every query with an error rate per role (1% for both
// until SetErrorRates), measured over 1,000 requests, or with what the
// function given to SetFunc says.
type Provider struct {
	mu             sync.Mutex
	canary, stable float64
	fn             func(rollout.Query) analysis.Measurement
}

// NewProvider returns a provider of healthy versions.
func NewProvider() *Provider { return &Provider{canary: 0.01, stable: 0.01} }

// SetErrorRates changes the rates measured from now on.
func (p *Provider) SetErrorRates(canary, stable float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.canary, p.stable = canary, stable
}

// SetFunc makes f answer every query from now on (nil: the error rates
// again). f is called with no lock held and must be safe for concurrent
// use.
func (p *Provider) SetFunc(f func(rollout.Query) analysis.Measurement) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn = f
}

// Query measures one version.
func (p *Provider) Query(_ context.Context, q rollout.Query) (analysis.Measurement, error) {
	p.mu.Lock()
	if f := p.fn; f != nil {
		p.mu.Unlock()
		return f(q), nil
	}
	rate := p.stable
	if q.Role == rollout.RoleCanary {
		rate = p.canary
	}
	p.mu.Unlock()
	const n = 1000
	return analysis.Measurement{Start: q.Start, End: q.End, Value: rate, HasValue: true, Count: n,
		Requests: n, Errors: int64(rate * n)}, nil
}

// Manifest is a rollout manifest for tests: steps setWeight 20, a pause
// for `aviary promote`, setWeight 60 and an analysis of error-rate (max 5%)
// every 10s.
func Manifest(name, version string) string {
	return fmt.Sprintf(manifestText, name, version)
}

const manifestText = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: %s
spec:
  version: %s
  upstreams: ["http://127.0.0.1:9001"]
  traffic:
    listen: "127.0.0.1:18080"
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
        - setWeight: 60
        - analysis: {}
  analysis:
    interval: 10s
    metrics:
      - name: error-rate
        max: 0.05
`
