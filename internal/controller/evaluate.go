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
	// trackers judge the current run's metrics incrementally; they are
	// rebuilt from the stored series after a restart, a new revision or a
	// failed commit.
	trackers map[string]*analysis.Tracker
	// shadowTrackers judge the canary's mirrored requests the same way,
	// for display: shadow verdicts do not decide the run.
	shadowTrackers map[string]*analysis.Tracker
	trackersRun    int
	trackersRev    int64
	// load cancels the load hooks running for the current interval.
	load context.CancelFunc

	pmu     sync.Mutex
	pending pendingObs
}

// pendingObs are observations not yet fed to Next.
type pendingObs struct {
	measured *measured
	hooks    []rollout.HookResult
}

func newEntry(r store.Record) *entry {
	return &entry{name: r.Name, rec: r}
}

// reset forgets a deleted rollout's state before it is created again.
func (e *entry) reset() {
	e.rec = store.Record{Name: e.name}
	e.applied = 0
	e.deleted = false
	e.trackers = nil
}

func (e *entry) addMeasured(m *measured) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	e.pending.measured = m
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
	if e.pending.measured == nil {
		e.pending.measured = p.measured
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
	obs := rollout.Observations{Hooks: p.hooks}
	var points []store.Point
	if p.measured != nil {
		obs.Checks, points = c.judge(ctx, e, p.measured)
	}
	if err := c.transition(ctx, e, nil, obs, points); err != nil {
		e.trackers = nil // they judged measurements that were not recorded
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

// judge turns an interval's measurements into verdicts, if the run still
// awaits them: each metric's tracker takes the interval. The caller holds
// e.mu.
func (c *Controller) judge(ctx context.Context, e *entry, m *measured) (*rollout.CheckResults, []store.Point) {
	st := e.rec.Status
	cr := rollout.CheckResults{Run: m.rc.Run, Interval: m.rc.Interval}
	if !rollout.Accepts(st, cr) {
		return nil, nil
	}
	spec := e.rec.Manifest.Spec
	trackers := c.trackersFor(ctx, e, spec, st.Run)
	var points []store.Point
	for _, metric := range spec.Analysis.Metrics {
		iv, ok := m.intervals[metric.Name]
		if !ok {
			iv = analysis.Interval{At: m.rc.End, Canary: analysis.Measurement{Count: -1, Err: "not measured: the metric was added after the interval began"}}
		}
		p := finite(store.Point{Run: cr.Run, Interval: cr.Interval, Metric: metric.Name, At: m.rc.End, Canary: iv.Canary, Stable: iv.Stable})
		p.Result = finiteResult(trackers[metric.Name].Add(analysis.Interval{At: p.At, Canary: p.Canary, Stable: p.Stable}))
		if sh, ok := m.shadow[metric.Name]; ok {
			p.Shadow = &store.Shadow{Canary: finiteMeasurement(sh)}
			p.Shadow.Result = finiteResult(e.shadowTrackers[metric.Name].Add(analysis.Interval{At: p.At, Canary: p.Shadow.Canary, Stable: p.Stable}))
		}
		cr.Results = append(cr.Results, p.Result)
		points = append(points, p)
	}
	return &cr, points
}

// trackersFor returns the run's trackers, rebuilding them from the stored
// series when they are missing or stale.
func (c *Controller) trackersFor(ctx context.Context, e *entry, spec rollout.Spec, run int) map[string]*analysis.Tracker {
	if e.trackers != nil && e.trackersRun == run && e.trackersRev == e.rec.Revision {
		return e.trackers
	}
	ts, shadow := map[string]*analysis.Tracker{}, map[string]*analysis.Tracker{}
	for _, m := range spec.Analysis.Metrics {
		ts[m.Name] = analysis.NewTracker(m.Name, m.Criteria)
		shadow[m.Name] = analysis.NewTracker(m.Name, m.Criteria)
	}
	points, err := c.opts.Store.Series(ctx, e.name, run)
	if err != nil {
		c.log.Error("load measurements", "rollout", e.name, "run", run, "err", err)
	}
	for _, p := range points {
		if t, ok := ts[p.Metric]; ok {
			t.Add(analysis.Interval{At: p.At, Canary: p.Canary, Stable: p.Stable})
			if p.Shadow != nil {
				shadow[p.Metric].Add(analysis.Interval{At: p.At, Canary: p.Shadow.Canary, Stable: p.Stable})
			}
		}
	}
	e.trackers, e.shadowTrackers, e.trackersRun, e.trackersRev = ts, shadow, run, e.rec.Revision
	return ts
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
