package store

import (
	"context"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// controller is the smallest shell around the real core: it commits each
// transition before acting, and restarts from the store now and then.
type controller struct {
	t       *testing.T
	path    string
	db      *DB
	now     time.Time
	m       *rollout.Manifest
	st      rollout.Status
	applied int64
	pending *rollout.RunChecks
	events  []rollout.Event
	points  []Point
}

// step calls Next and commits the transition it returns.
func (c *controller) step(newSpec *rollout.Manifest, obs rollout.Observations, pts []Point) {
	c.t.Helper()
	if newSpec != nil {
		c.m = newSpec
	}
	obs.Applied = c.applied
	next, actions := rollout.Next(c.now, c.m.Normalize().Spec, c.st, obs)
	tr := Transition{Name: c.m.Metadata.Name, At: c.now, Manifest: newSpec, Status: next, Points: pts}
	for _, a := range actions {
		switch a := a.(type) {
		case rollout.SetRoute:
			tr.Route = &a.Route
		case rollout.Notify:
			tr.Events = append(tr.Events, a.Event)
		case rollout.Finish:
			tr.Finished = append(tr.Finished, a)
		case rollout.RunChecks:
			c.pending = &a
		}
	}
	mustCommit(c.t, c.db, tr)
	// Side effects only after the commit: the route is applied.
	if tr.Route != nil {
		c.applied = tr.Route.Generation
	}
	c.st = next
	c.events = append(c.events, tr.Events...)
	c.points = append(c.points, pts...)
}

// restart closes the store and resumes from what it holds.
func (c *controller) restart() {
	c.t.Helper()
	if err := c.db.Close(); err != nil {
		c.t.Fatal(err)
	}
	c.db = open(c.t, c.path)
	rec, err := c.db.Get(context.Background(), "web")
	if err != nil {
		c.t.Fatal(err)
	}
	diff(c.t, "status after restart", rec.Status, c.st)
	c.st, c.m = rec.Status, &rec.Manifest
}

// TestWithTheCore drives a real run (rollout.Next) to promotion and a
// rollback after it, restarting from the store every few steps, and checks
// that the store holds exactly what the core said.
func TestWithTheCore(t *testing.T) {
	db, path := tempDB(t)
	c := &controller{t: t, path: path, db: db, now: t0}
	c.step(spec(t, "web", "v1"), rollout.Observations{}, nil)
	c.now = c.now.Add(time.Minute)
	c.step(spec(t, "web", "v2"), rollout.Observations{}, nil)

	for i := 0; c.st.Phase != rollout.PhaseSucceeded; i++ {
		if i > 500 {
			t.Fatalf("no promotion after %d steps: %+v", i, c.st)
		}
		c.now = c.now.Add(10 * time.Second)
		var obs rollout.Observations
		var pts []Point
		if p := c.pending; p != nil && !c.now.Before(p.End) {
			res := analysis.Result{Metric: "error-rate", Verdict: analysis.Pass, Canary: 0.002, HasCanary: true, Stable: 0.003,
				HasStable: true, CanaryCount: 500, StableCount: 4500, Reason: "canary 0.2% vs stable 0.3%"}
			obs.Checks = &rollout.CheckResults{Run: p.Run, Interval: p.Interval, Results: []analysis.Result{res}}
			pts = []Point{{Run: p.Run, Interval: p.Interval, Metric: res.Metric, At: c.now, Result: res,
				Canary: analysis.Measurement{Start: p.Start, End: p.End, Value: 0.002, HasValue: true, Count: 500},
				Stable: analysis.Measurement{Start: p.Start, End: p.End, Value: 0.003, HasValue: true, Count: 4500}}}
			c.pending = nil
		}
		c.step(nil, obs, pts)
		if i%4 == 3 {
			c.restart()
		}
	}
	c.now = c.now.Add(time.Minute)
	c.step(nil, rollout.Observations{Commands: []rollout.Command{{Op: rollout.OpRollback, By: "alice"}}}, nil)
	if c.st.Phase != rollout.PhaseFailed {
		t.Fatalf("rollback after promotion: phase %s (%s)", c.st.Phase, c.st.Message)
	}
	c.restart()

	ctx := context.Background()
	rec, err := c.db.Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Route == nil || rec.Route.Generation != c.st.RouteGeneration || rec.Route.Generation != c.applied {
		t.Errorf("route: got %+v, want generation %d", rec.Route, c.st.RouteGeneration)
	}
	if rec.Revision != 2 {
		t.Errorf("revision: got %d, want 2 (v1, v2)", rec.Revision)
	}
	runs, err := c.db.Runs(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Version != "v2" || runs[0].StableVersion != "v1" || runs[0].Outcome != rollout.PhaseFailed || runs[0].EndedAt == nil {
		t.Errorf("runs: got %+v, want run 1 of v2 against v1, Failed after its promotion", runs)
	}
	recs, err := c.db.Events(ctx, EventQuery{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []rollout.Event
	for _, r := range recs {
		evs = append(evs, r.Event)
	}
	diff(t, "events", evs, c.events)
	series, err := c.db.Series(ctx, "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "series", series, c.points)
	if len(c.points) < 2 {
		t.Errorf("only %d points: the run did not analyse", len(c.points))
	}
}
