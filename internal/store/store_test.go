package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/deptest"
	"aviary/internal/manifest"
	"aviary/internal/rollout"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The store imports the core and the SQLite driver, and never reads the clock.
func TestImports(t *testing.T) {
	deptest.Check(t, ".", deptest.Rules{
		Allow:       []string{"aviary/internal/rollout", "aviary/internal/analysis", "modernc.org/sqlite"},
		ForbidCalls: deptest.Pure.ForbidCalls,
	})
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func open(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tempDB(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aviary.db")
	return open(t, path), path
}

const webYAML = `
apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: %s, labels: {team: payments}}
spec:
  version: %s
  upstreams: ["http://127.0.0.1:9002"]
  traffic: {router: builtin, listen: "127.0.0.1:8080"}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis: {duration: 1m}
        - setWeight: 50
        - analysis: {duration: 1m}
  analysis:
    interval: 30s
    metrics:
      - {name: error-rate, compare: baseline, maxIncrease: 1%%}
  progressDeadline: 10m
`

// spec is a valid manifest of the named rollout releasing version.
func spec(t testing.TB, name, version string) *rollout.Manifest {
	t.Helper()
	ds, err := manifest.Decode(fmt.Appendf(nil, webYAML, name, version))
	if err != nil {
		t.Fatal(err)
	}
	if errs := ds[0].Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return &ds[0].Manifest
}

func route(gen int64, weight int) *rollout.Route {
	r := &rollout.Route{Generation: gen, Stable: rollout.Backend{Version: "v1", Upstreams: []string{"http://127.0.0.1:9001"}}}
	if weight > 0 {
		r.Canary = &rollout.Backend{Version: "v2", Upstreams: []string{"http://127.0.0.1:9002"}}
		r.Weight = weight
	}
	return r
}

func event(n int, typ string) rollout.Event {
	return rollout.Event{Time: at(n), Run: 1, Type: typ, Severity: rollout.SeverityInfo, Phase: rollout.PhaseProgressing,
		Weight: 10, Step: 1, Reason: fmt.Sprintf("%s at %d", typ, n)}
}

func point(run, interval int, metric string, v analysis.Verdict) Point {
	return Point{Run: run, Interval: interval, Metric: metric, At: at(30 * interval),
		Canary: analysis.Measurement{Start: at(30 * (interval - 1)), End: at(30 * interval), Value: 0.012, HasValue: true, Count: 1200, Requests: 1200, Errors: 14,
			Latency: &analysis.Histogram{Buckets: []analysis.Bucket{{Upper: 0.1, Count: 1100}, {Upper: 1, Count: 100}}}},
		Stable: analysis.Measurement{Start: at(30 * (interval - 1)), End: at(30 * interval), Value: 0.003, HasValue: true, Count: 9000, Requests: 9000, Errors: 27},
		Result: analysis.Result{Metric: metric, Verdict: v, Canary: 0.012, HasCanary: true, Stable: 0.003, HasStable: true,
			CanaryCount: 1200, StableCount: 9000, P: 0.004, Reason: "canary 1.2% vs stable 0.3%"},
	}
}

func running(run int, weight int, started time.Time) rollout.Status {
	return rollout.Status{Phase: rollout.PhaseProgressing, Message: "progressing",
		Stable: rollout.Backend{Version: "v1", Upstreams: []string{"http://127.0.0.1:9001"}},
		Canary: &rollout.Backend{Version: "v2", Upstreams: []string{"http://127.0.0.1:9002"}},
		Weight: weight, Run: run, RunStartedAt: started, Step: 1, StepStartedAt: started, RouteGeneration: 2,
		Analysis: rollout.AnalysisStatus{Interval: 3, Checks: []analysis.Result{{Metric: "error-rate", Verdict: analysis.Pass, Reason: "ok"}}},
	}
}

func initialized() rollout.Status {
	return rollout.Status{Phase: rollout.PhaseInitialized, Stable: rollout.Backend{Version: "v1"}, RouteGeneration: 1}
}

func mustCommit(t testing.TB, db *DB, ts ...Transition) {
	t.Helper()
	if err := db.Commit(context.Background(), ts...); err != nil {
		t.Fatal(err)
	}
}

func diff(t testing.TB, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	m := spec(t, "web", "v1")
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: m, Status: initialized(), Route: route(1, 0)})
	st := running(1, 10, at(5))
	mustCommit(t, db, Transition{Name: "web", At: at(5), Manifest: spec(t, "web", "v2"), Status: st, Route: route(2, 10)})
	mustCommit(t, db, Transition{Name: "api", At: at(6), Manifest: spec(t, "api", "v1"), Status: initialized()})

	got, err := db.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Name: "web", Manifest: *spec(t, "web", "v2"), Revision: 2, Status: st, Route: route(2, 10), CreatedAt: at(0), UpdatedAt: at(5)}
	diff(t, "Get", got, want)

	all, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "api" || all[1].Name != "web" {
		t.Fatalf("Load: got %d records, want api and web in that order", len(all))
	}
	diff(t, "Load web", all[1], want)
	if all[0].Route != nil {
		t.Errorf("api has no route yet, got %+v", all[0].Route)
	}

	// A Commit without Route keeps the stored one.
	st.Weight = 20
	mustCommit(t, db, Transition{Name: "web", At: at(9), Status: st})
	got, _ = db.Get(ctx, "web")
	diff(t, "route after a commit without one", got.Route, route(2, 10))
	diff(t, "status", got.Status, st)
	if !got.UpdatedAt.Equal(at(9)) || !got.CreatedAt.Equal(at(0)) {
		t.Errorf("times: got created %s updated %s, want %s and %s", got.CreatedAt, got.UpdatedAt, at(0), at(9))
	}
}

func TestNotFound(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	calls := map[string]func() error{
		"Get":       func() error { _, err := db.Get(ctx, "nope"); return err },
		"Revisions": func() error { _, err := db.Revisions(ctx, "nope"); return err },
		"Runs":      func() error { _, err := db.Runs(ctx, "nope"); return err },
		"Series":    func() error { _, err := db.Series(ctx, "nope", 1); return err },
		"Events":    func() error { _, err := db.Events(ctx, EventQuery{Name: "nope"}); return err },
		"Delete":    func() error { return db.Delete(ctx, "nope", at(1)) },
		"Commit":    func() error { return db.Commit(ctx, Transition{Name: "nope", At: at(1), Status: initialized()}) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), `"nope"`) {
				t.Errorf("error %q does not name the rollout", err)
			}
		})
	}
}

func TestRevisionsOnlyOnChange(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	mustCommit(t, db, Transition{Name: "web", At: at(1), Manifest: spec(t, "web", "v1"), Status: initialized()}) // same
	mustCommit(t, db, Transition{Name: "web", At: at(2), Status: initialized()})                                 // none
	mustCommit(t, db, Transition{Name: "web", At: at(3), Manifest: spec(t, "web", "v2"), Status: initialized()}) // new
	mustCommit(t, db, Transition{Name: "web", At: at(4), Manifest: spec(t, "web", "v2"), Status: initialized()}) // same
	mustCommit(t, db, Transition{Name: "web", At: at(5), Manifest: spec(t, "web", "v1"), Status: initialized()}) // back: new

	got, err := db.Revisions(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []Revision{
		{Revision: 1, Manifest: *spec(t, "web", "v1"), AppliedAt: at(0)},
		{Revision: 2, Manifest: *spec(t, "web", "v2"), AppliedAt: at(3)},
		{Revision: 3, Manifest: *spec(t, "web", "v1"), AppliedAt: at(5)},
	}
	diff(t, "Revisions", got, want)
	rec, _ := db.Get(ctx, "web")
	if rec.Revision != 3 {
		t.Errorf("Record.Revision: got %d, want 3", rec.Revision)
	}
}

func TestRefusedBeforeWriting(t *testing.T) {
	db, _ := tempDB(t)
	nan := point(1, 1, "error-rate", analysis.Pass)
	nan.Canary.Value = math.NaN()
	cases := []struct {
		name string
		t    Transition
		want string
	}{
		{"no name", Transition{At: at(0), Manifest: spec(t, "web", "v1")}, "needs the rollout's name"},
		{"no time", Transition{Name: "web", Manifest: spec(t, "web", "v1")}, "needs a time"},
		{"time out of range", Transition{Name: "web", At: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Manifest: spec(t, "web", "v1")}, "needs a time"},
		{"manifest of another rollout", Transition{Name: "web", At: at(0), Manifest: spec(t, "api", "v1")}, `the manifest is named "api"`},
		{"NaN", Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Points: []Point{nan}}, `points[0] (run 1, interval 1, metric "error-rate"): encode`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := db.Commit(context.Background(), c.t)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	if all, _ := db.Load(context.Background()); len(all) != 0 {
		t.Errorf("refused commits created %d rollouts", len(all))
	}
}

func TestDelete(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	st := running(1, 10, at(1))
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized(), Events: []rollout.Event{event(0, rollout.EventInitialized)}})
	mustCommit(t, db, Transition{Name: "web", At: at(1), Status: st, Route: route(7, 10), Events: []rollout.Event{event(1, rollout.EventStarted)},
		Points: []Point{point(1, 1, "error-rate", analysis.Pass)}})
	mustCommit(t, db, Transition{Name: "api", At: at(2), Manifest: spec(t, "api", "v1"), Status: initialized(), Events: []rollout.Event{event(2, rollout.EventInitialized)}})

	if err := db.Delete(ctx, "web", at(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if all, _ := db.Load(ctx); len(all) != 1 || all[0].Name != "api" {
		t.Fatalf("Load after Delete: got %v, want only api", all)
	}
	if err := db.Delete(ctx, "web", at(4)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: got %v, want ErrNotFound", err)
	}
	// The global log keeps the deleted rollout's events and says it was deleted.
	evs, err := db.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Rollout+":"+e.Event.Type)
	}
	diff(t, "global log", types, []string{"web:Initialized", "web:Started", "api:Initialized", "web:Deleted"})
	last := evs[len(evs)-1].Event
	diff(t, "deleted event", last, rollout.Event{Time: at(3), Run: 1, Type: EventDeleted, Severity: rollout.SeverityInfo,
		Phase: rollout.PhaseProgressing, Weight: 10, Step: 1, Reason: "rollout deleted"})

	// A new rollout of the same name starts afresh: revision 1, no runs, no
	// events, and a route generation that may start low again.
	mustCommit(t, db, Transition{Name: "web", At: at(5), Manifest: spec(t, "web", "v9"), Status: initialized(), Route: route(1, 0)})
	rec, err := db.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revision != 1 || !rec.CreatedAt.Equal(at(5)) || rec.Manifest.Spec.Version != "v9" {
		t.Errorf("re-created: got revision %d created %s version %s, want 1, %s, v9", rec.Revision, rec.CreatedAt, rec.Manifest.Spec.Version, at(5))
	}
	if runs, _ := db.Runs(ctx, "web"); len(runs) != 0 {
		t.Errorf("re-created rollout inherited %d runs", len(runs))
	}
	if evs, _ := db.Events(ctx, EventQuery{Name: "web"}); len(evs) != 0 {
		t.Errorf("re-created rollout inherited %d events", len(evs))
	}
	if pts, _ := db.Series(ctx, "web", 1); len(pts) != 0 {
		t.Errorf("re-created rollout inherited %d points", len(pts))
	}
}

func TestClosed(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Commit": db.Commit(ctx, Transition{Name: "web", At: at(1), Status: initialized()}),
		"Delete": db.Delete(ctx, "web", at(1)),
		"Get":    second(db.Get(ctx, "web")),
		"Load":   second(db.Load(ctx)),
		"Events": second(db.Events(ctx, EventQuery{})),
		"Runs":   second(db.Runs(ctx, "web")),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
