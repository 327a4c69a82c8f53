package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/store"
)

// entry is one rollout in memory. mu serializes its transitions; the
// observations that arrive between them wait in pending (guarded by pmu).
type entry struct {
	name string

	mu      sync.Mutex
	rec     store.Record
	applied int64 // highest route generation the router applied
	deleted bool
	// series is the current run's measurements by metric, for Judge.
	seriesRun int
	series    map[string][]analysis.Interval
	// load cancels the load hooks running for the current interval.
	load context.CancelFunc

	pmu     sync.Mutex
	pending pendingObs
}

// pendingObs are observations not yet fed to Next.
type pendingObs struct {
	checks *rollout.CheckResults
	points []store.Point
	hooks  []rollout.HookResult
}

func newEntry(r store.Record) *entry {
	return &entry{name: r.Name, rec: r, series: map[string][]analysis.Interval{}}
}

// reset forgets a deleted rollout's state before it is created again.
func (e *entry) reset() {
	e.rec = store.Record{Name: e.name}
	e.applied = 0
	e.deleted = false
	e.seriesRun, e.series = 0, map[string][]analysis.Interval{}
}

func (e *entry) loadSeries(run int, points []store.Point) {
	e.seriesRun = run
	e.series = map[string][]analysis.Interval{}
	for _, p := range points {
		e.series[p.Metric] = append(e.series[p.Metric], analysis.Interval{At: p.At, Canary: p.Canary, Stable: p.Stable})
	}
}

func (e *entry) addChecks(cr rollout.CheckResults, points []store.Point) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	e.pending.checks, e.pending.points = &cr, points
}

func (e *entry) addHook(r rollout.HookResult) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	e.pending.hooks = append(e.pending.hooks, r)
}

func (e *entry) takePending() pendingObs {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	p := e.pending
	e.pending = pendingObs{}
	return p
}

// requeue puts observations back after a failed commit, unless newer ones
// arrived meanwhile.
func (e *entry) requeue(p pendingObs) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	if e.pending.checks == nil {
		e.pending.checks, e.pending.points = p.checks, p.points
	}
	e.pending.hooks = append(p.hooks, e.pending.hooks...)
}

func (e *entry) cancelLoad() {
	if e.load != nil {
		e.load()
		e.load = nil
	}
}

// evaluate feeds a rollout's pending observations to the core.
func (c *Controller) evaluate(ctx context.Context, name string) {
	e := c.entry(name)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return
	}
	// A route that could not be applied is applied before anything else.
	c.applyStoredRoute(ctx, e)
	p := e.takePending()
	obs := rollout.Observations{Checks: p.checks, Hooks: p.hooks}
	if err := c.transition(ctx, e, nil, obs, p.points); err != nil {
		e.requeue(p)
		c.log.Error("transition", "rollout", name, "err", err)
		c.sched.set(name, c.clock.Now().Add(time.Second))
	}
}

// transition runs the core once, commits the result and carries out the
// actions. The caller holds e.mu. On error nothing has changed.
// points are the measurements behind obs.Checks; they are recorded only
// when the core accepts those results.
func (c *Controller) transition(ctx context.Context, e *entry, m *rollout.Manifest, obs rollout.Observations, points []store.Point) error {
	now := c.now()
	spec := e.rec.Manifest.Spec
	if m != nil {
		spec = m.Spec
	}
	obs.Applied = e.applied
	before := e.rec.Status
	if obs.Checks == nil || !rollout.Accepts(before, *obs.Checks) {
		points = nil
	}
	st, actions := rollout.Next(now, spec, before, obs)
	tr := store.Transition{Name: e.name, At: now, Manifest: m, Status: st, Points: points}
	for _, a := range actions {
		switch a := a.(type) {
		case rollout.SetRoute:
			r := c.withLoadMatch(e.name, spec, a.Route)
			tr.Route = &r
		case rollout.Notify:
			tr.Events = append(tr.Events, a.Event)
		case rollout.Finish:
			tr.Finished = append(tr.Finished, a)
		}
	}
	if err := c.commit(ctx, tr); err != nil {
		return fmt.Errorf("commit %q: %w", e.name, err)
	}
	c.committed(e, tr, now, points)
	// Watchers hear of the transition before its actions run: a data plane
	// that follows the routes must see a route before the router waits
	// for it to be applied.
	c.subs.publish(Change{Name: e.name, Record: e.rec, Events: tr.Events})
	c.execute(ctx, e, spec, actions)
	wake := st.WakeAt
	if st.Phase == rollout.PhasePromoting && e.applied >= st.RouteGeneration {
		wake = now // the router took the promoting route: finish at once
	}
	c.sched.set(e.name, wake)
	return nil
}

// committed updates memory and metrics after a commit.
func (c *Controller) committed(e *entry, tr store.Transition, now time.Time, points []store.Point) {
	if tr.Manifest != nil {
		if e.rec.CreatedAt.IsZero() {
			e.rec.CreatedAt = now
		}
		e.rec.Manifest = *tr.Manifest
		e.rec.Revision++
	}
	old := e.rec.Status.Phase
	e.rec.Status = tr.Status
	e.rec.UpdatedAt = now
	if tr.Route != nil {
		e.rec.Route = tr.Route
	}
	if e.seriesRun != tr.Status.Run {
		e.seriesRun, e.series = tr.Status.Run, map[string][]analysis.Interval{}
	}
	for _, p := range points {
		e.series[p.Metric] = append(e.series[p.Metric], analysis.Interval{At: p.At, Canary: p.Canary, Stable: p.Stable})
	}
	c.metrics.phase(old, tr.Status.Phase)
	for _, ev := range tr.Events {
		c.metrics.decisions.WithLabelValues(ev.Type).Inc()
	}
	for _, f := range tr.Finished {
		c.metrics.runs.WithLabelValues(string(f.Outcome)).Inc()
	}
}

// now is the clock's time without its monotonic reading, as the store
// keeps it, so that a restored status compares exactly as the original.
func (c *Controller) now() time.Time { return c.clock.Now().Round(0).UTC() }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}
