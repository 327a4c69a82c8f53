package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/store"
	"sigs.k8s.io/yaml"
)

// memStore is an in-memory Store with the real one's rules: atomic
// commits, revisions on change, routes that never go back.
type memStore struct {
	mu      sync.Mutex
	records map[string]store.Record
	events  map[string][]rollout.Event
	points  map[string][]store.Point
	commits int
}

func newMemStore() *memStore {
	return &memStore{records: map[string]store.Record{}, events: map[string][]rollout.Event{}, points: map[string][]store.Point{}}
}

func roundTrip[T any](v T) T {
	var out T
	if err := json.Unmarshal(mustJSON(v), &out); err != nil {
		panic(err)
	}
	return out
}

func (s *memStore) Load(context.Context) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Record
	for _, r := range s.records {
		out = append(out, roundTrip(r))
	}
	return out, nil
}

func (s *memStore) Commit(_ context.Context, ts ...store.Transition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]store.Record{}
	for _, t := range ts {
		r, ok := next[t.Name]
		if !ok {
			r, ok = s.records[t.Name]
		}
		if !ok && t.Manifest == nil {
			return fmt.Errorf("%s: %w", t.Name, store.ErrNotFound)
		}
		r.Name = t.Name
		if t.Manifest != nil {
			r.Manifest = roundTrip(*t.Manifest)
			r.Revision++
		}
		r.Status = roundTrip(t.Status)
		if t.Route != nil {
			if r.Route != nil && t.Route.Generation < r.Route.Generation {
				return fmt.Errorf("%s: route generation %d after %d", t.Name, t.Route.Generation, r.Route.Generation)
			}
			rt := roundTrip(*t.Route)
			r.Route = &rt
		}
		next[t.Name] = r
	}
	for _, t := range ts {
		s.events[t.Name] = append(s.events[t.Name], t.Events...)
		s.points[t.Name] = append(s.points[t.Name], t.Points...)
	}
	for k, v := range next {
		s.records[k] = v
	}
	s.commits++
	return nil
}

func (s *memStore) Series(_ context.Context, name string, run int) ([]store.Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Point
	for _, p := range s.points[name] {
		if p.Run == run {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *memStore) Delete(_ context.Context, name string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[name]; !ok {
		return store.ErrNotFound
	}
	delete(s.records, name)
	return nil
}

func (s *memStore) eventLog(name string) []rollout.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rollout.Event(nil), s.events[name]...)
}

// fakeRouter records the routes applied.
type fakeRouter struct {
	mu     sync.Mutex
	routes map[string][]rollout.Route
}

func newFakeRouter() *fakeRouter { return &fakeRouter{routes: map[string][]rollout.Route{}} }

func (r *fakeRouter) Apply(_ context.Context, name string, _ rollout.Traffic, rt rollout.Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rs := r.routes[name]; len(rs) > 0 && rs[len(rs)-1].Generation > rt.Generation {
		return nil
	}
	r.routes[name] = append(r.routes[name], rt)
	return nil
}

func (r *fakeRouter) Remove(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, name)
	return nil
}

func (r *fakeRouter) last(name string) (rollout.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.routes[name]
	if len(rs) == 0 {
		return rollout.Route{}, false
	}
	return rs[len(rs)-1], true
}

// providerFunc adapts a function to Provider.
type providerFunc func(q rollout.Query) (analysis.Measurement, error)

func (f providerFunc) Query(_ context.Context, q rollout.Query) (analysis.Measurement, error) {
	return f(q)
}

// errorRates answers error-rate queries with the given rates per role.
func errorRates(canary, stable float64) Provider {
	return providerFunc(func(q rollout.Query) (analysis.Measurement, error) {
		rate := stable
		if q.Role == rollout.RoleCanary {
			rate = canary
		}
		n := int64(1000)
		return analysis.Measurement{Start: q.Start, End: q.End, Value: rate, HasValue: true, Count: n,
			Requests: n, Errors: int64(rate * float64(n))}, nil
	})
}

const testSpec = `
apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: %s
  upstreams: ["http://127.0.0.1:9001"]
  traffic: {listen: "127.0.0.1:18080"}
  strategy:
    canary:
      steps: %s
  analysis:
    interval: 1s
    metrics:
      - {name: error-rate, max: 0.05}
`

func manifest(t *testing.T, version, steps string) rollout.Manifest {
	t.Helper()
	var m rollout.Manifest
	if err := yaml.UnmarshalStrict(fmt.Appendf(nil, testSpec, version, steps), &m); err != nil {
		t.Fatal(err)
	}
	if errs := m.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return m
}

type harness struct {
	t      *testing.T
	c      *Controller
	store  Store
	router *fakeRouter
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, st Store, p Provider) *harness {
	t.Helper()
	h := &harness{t: t, store: st, router: newFakeRouter(), done: make(chan error, 1)}
	c, err := New(Options{Store: st, Routers: map[string]Router{rollout.RouterBuiltin: h.router},
		Providers: map[string]Provider{rollout.ProviderBuiltin: p}})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- c.Run(ctx) }()
	waitFor(t, "controller running", func() bool { return c.checkRunning() == nil })
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("controller did not stop")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) phase(name string) rollout.Phase {
	r, err := h.c.Get(name)
	if err != nil {
		return ""
	}
	return r.Status.Phase
}

func TestHealthyReleasePromoted(t *testing.T) {
	h := start(t, newMemStore(), errorRates(0.01, 0.01))
	ctx := context.Background()
	res, err := h.c.Apply(ctx, manifest(t, "v1", `[{setWeight: 50}, {analysis: {}}]`))
	if err != nil || !res.Created || res.Record.Status.Phase != rollout.PhaseInitialized {
		t.Fatalf("apply v1: %+v, %v", res, err)
	}
	again, err := h.c.Apply(ctx, manifest(t, "v1", `[{setWeight: 50}, {analysis: {}}]`))
	if err != nil || again.Changed {
		t.Fatalf("re-applying the same spec changed it: %+v, %v", again, err)
	}
	if _, err := h.c.Apply(ctx, manifest(t, "v2", `[{setWeight: 50}, {analysis: {}}]`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 promoted", func() bool { return h.phase("web") == rollout.PhaseSucceeded })
	r, _ := h.c.Get("web")
	if r.Status.Stable.Version != "v2" || r.Revision != 2 {
		t.Fatalf("got stable %s revision %d, want v2 and 2", r.Status.Stable.Version, r.Revision)
	}
	last, _ := h.router.last("web")
	if last.Canary != nil || last.Stable.Version != "v2" || last.Generation != r.Status.RouteGeneration {
		t.Fatalf("router's last route %+v, want v2 alone at generation %d", last, r.Status.RouteGeneration)
	}
	points, _ := h.store.Series(ctx, "web", 1)
	if len(points) == 0 || points[0].Result.Verdict != analysis.Pass {
		t.Fatalf("measurements not recorded: %+v", points)
	}
	if points[0].Shadow != nil {
		t.Errorf("a rollout that does not mirror has a shadow measurement: %+v", points[0].Shadow)
	}
}

// With mirroring, the canary's mirrored requests are measured and judged
// apart, recorded with each point, and shown: they do not decide the run.
func TestShadowMeasuredNotDecisive(t *testing.T) {
	var mu sync.Mutex
	var shadowQueries []rollout.Query
	live := errorRates(0.01, 0.01)
	p := providerFunc(func(q rollout.Query) (analysis.Measurement, error) {
		if !q.Shadow {
			return live.Query(context.Background(), q)
		}
		mu.Lock()
		shadowQueries = append(shadowQueries, q)
		mu.Unlock()
		return analysis.Measurement{Start: q.Start, End: q.End, Value: 0.3, HasValue: true, Count: 200, Requests: 200, Errors: 60}, nil
	})
	h := start(t, newMemStore(), p)
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		m := manifest(t, v, `[{setWeight: 50}, {analysis: {}}]`)
		m.Spec.Strategy.Canary.Mirror = &rollout.Mirror{Percent: 10}
		if _, err := h.c.Apply(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "v2 promoted", func() bool { return h.phase("web") == rollout.PhaseSucceeded })
	points, _ := h.store.Series(ctx, "web", 1)
	if len(points) == 0 {
		t.Fatal("no measurements recorded")
	}
	for _, pt := range points {
		if pt.Result.Verdict != analysis.Pass {
			t.Errorf("interval %d: live verdict %s, want Pass", pt.Interval, pt.Result.Verdict)
		}
		if pt.Shadow == nil {
			t.Fatalf("interval %d: no shadow measurement", pt.Interval)
		}
		if pt.Shadow.Canary.Requests != 200 || pt.Shadow.Result.Verdict != analysis.Fail || !strings.Contains(pt.Shadow.Result.Reason, "0.3") {
			t.Errorf("interval %d: shadow %+v, want 200 requests judged Fail at 0.3", pt.Interval, pt.Shadow)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, q := range shadowQueries {
		if q.Role != rollout.RoleCanary || q.Version != "v2" || q.Metric.Name != "error-rate" {
			t.Errorf("shadow query %+v, want the canary v2's error-rate", q)
		}
	}
}

func TestFaultyReleaseRolledBack(t *testing.T) {
	h := start(t, newMemStore(), errorRates(0.3, 0.01))
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		if _, err := h.c.Apply(ctx, manifest(t, v, `[{setWeight: 10}, {analysis: {}}, {setWeight: 50}]`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "v2 rolled back", func() bool { return h.phase("web") == rollout.PhaseFailed })
	var reason string
	for _, e := range h.store.(*memStore).eventLog("web") {
		if e.Type == rollout.EventRolledBack {
			reason = e.Reason
		}
	}
	if !strings.Contains(reason, "error-rate") || !strings.Contains(reason, "0.3") {
		t.Fatalf("rollback reason %q does not name the metric and its value", reason)
	}
	last, _ := h.router.last("web")
	if last.Canary != nil || last.Stable.Version != "v1" {
		t.Fatalf("router's last route %+v, want v1 alone", last)
	}
}

// A restarted controller re-applies the last committed route before
// anything else and resumes the run at the same step.
func TestRestartResumesRun(t *testing.T) {
	st := newMemStore()
	h := start(t, st, errorRates(0.01, 0.01))
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		if _, err := h.c.Apply(ctx, manifest(t, v, `[{setWeight: 20}, {pause: {}}, {setWeight: 60}]`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the pause", func() bool {
		r, _ := h.c.Get("web")
		return r.Status.Waiting != nil && r.Status.Waiting.Kind == rollout.WaitPause
	})
	h.stop()
	before, _ := h.c.Get("web")

	h2 := start(t, st, errorRates(0.01, 0.01))
	route, ok := h2.router.last("web")
	if !ok || route.Weight != 20 || route.Generation != before.Status.RouteGeneration {
		t.Fatalf("restored route %+v, want weight 20 at generation %d", route, before.Status.RouteGeneration)
	}
	after, _ := h2.c.Get("web")
	if after.Status.Step != before.Status.Step || after.Status.StepStartedAt != before.Status.StepStartedAt {
		t.Fatalf("step %d started %v after restart, want %d started %v", after.Status.Step, after.Status.StepStartedAt, before.Status.Step, before.Status.StepStartedAt)
	}
	if _, err := h2.c.Command(ctx, "web", rollout.Command{Op: rollout.OpPromote}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 promoted", func() bool { return h2.phase("web") == rollout.PhaseSucceeded })
}

// A refused command changes nothing.
func TestRefusedCommandChangesNothing(t *testing.T) {
	st := newMemStore()
	h := start(t, st, errorRates(0.01, 0.01))
	ctx := context.Background()
	if _, err := h.c.Apply(ctx, manifest(t, "v1", `[{setWeight: 20}]`)); err != nil {
		t.Fatal(err)
	}
	commits := st.commits
	_, err := h.c.Command(ctx, "web", rollout.Command{Op: rollout.OpPromote})
	if !errors.Is(err, rollout.ErrRefused) || !strings.Contains(err.Error(), "no run in progress") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if _, err := h.c.Command(ctx, "nope", rollout.Command{Op: rollout.OpAbort}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if st.commits != commits {
		t.Fatalf("refused commands committed %d transitions", st.commits-commits)
	}
}

// Values that JSON cannot hold never reach the store.
func TestFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	p := finite(store.Point{
		Canary: analysis.Measurement{Value: nan, HasValue: true, Samples: []float64{1, nan, 2}},
		Stable: analysis.Measurement{Value: 3, HasValue: true, Latency: &analysis.Histogram{Buckets: []analysis.Bucket{{Upper: 1, Count: 2}, {Upper: inf, Count: 1}}}},
		Result: analysis.Result{Canary: inf, HasCanary: true, P: nan, Effect: -inf},
	})
	if _, err := json.Marshal(p); err != nil {
		t.Fatalf("still not storable: %v", err)
	}
	if p.Canary.HasValue || len(p.Canary.Samples) != 2 || !p.Stable.HasValue || len(p.Stable.Latency.Buckets) != 1 || p.Result.HasCanary {
		t.Fatalf("got %+v", p)
	}
}

// The controller over the real SQLite store: a release promoted, then a
// fresh controller over the reopened database finds it as it was.
func TestWithSQLiteStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "aviary.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, db, errorRates(0.01, 0.01))
	for _, v := range []string{"v1", "v2"} {
		if _, err := h.c.Apply(ctx, manifest(t, v, `[{setWeight: 50}, {analysis: {}}]`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "v2 promoted", func() bool { return h.phase("web") == rollout.PhaseSucceeded })
	want, _ := h.c.Get("web")
	h.stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := db.Runs(ctx, "web")
	if err != nil || len(runs) != 1 || runs[0].Outcome != rollout.PhaseSucceeded {
		t.Fatalf("runs %+v, %v; want one Succeeded", runs, err)
	}
	h2 := start(t, db, errorRates(0.01, 0.01))
	got, _ := h2.c.Get("web")
	if string(mustJSON(got.Status)) != string(mustJSON(want.Status)) || got.Revision != want.Revision {
		t.Fatalf("reloaded %+v, want %+v", got.Status, want.Status)
	}
	route, _ := h2.router.last("web")
	if route.Generation != want.Status.RouteGeneration || route.Stable.Version != "v2" {
		t.Fatalf("restored route %+v", route)
	}
}
