package server

import (
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/store"
)

// Status is the API's view of one rollout: what `aviary status -o json`,
// `aviary get -o json` and the dashboard show. Its JSON shape is a stable
// contract (docs/api.md): fields are added, never renamed or removed. Keys
// are always present; a value that does not apply is null (or "" / 0 where
// documented).
type Status struct {
	Name  string        `json:"name"`
	Phase rollout.Phase `json:"phase"`
	// DesiredVersion is the version the spec asks for.
	DesiredVersion string `json:"desiredVersion"`
	StableVersion  string `json:"stableVersion"`
	// CanaryVersion is the version of the current or last run ("" before the
	// first run).
	CanaryVersion string `json:"canaryVersion"`
	CanaryWeight  int    `json:"canaryWeight"`
	// Step is the 1-based current step (0 before the first run, Steps once
	// every step is done); Steps counts the strategy's steps and Plan lists
	// them.
	Step  int        `json:"step"`
	Steps int        `json:"steps"`
	Plan  []PlanStep `json:"plan"`
	// Run numbers the current or last run (0: none yet).
	Run          int        `json:"run"`
	RunStartedAt *time.Time `json:"runStartedAt"`
	// StepStartedAt is when the current step began (null without a run).
	StepStartedAt *time.Time `json:"stepStartedAt"`
	Message       string     `json:"message"`
	Waiting       *Waiting   `json:"waiting"`
	Pause         *Pause     `json:"pause"`
	// Checks are the latest result of each metric in the current run.
	Checks       []Check `json:"checks"`
	Failures     int     `json:"failures"`
	FailureLimit int     `json:"failureLimit"`
	Decision     string  `json:"decision"`
	// Revision counts the spec's applied changes.
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// RollbackUntil is set while `aviary rollback` can restore the previous
	// stable version (PreviousVersion).
	RollbackUntil   *time.Time `json:"rollbackUntil"`
	PreviousVersion string     `json:"previousVersion"`
	// RouteGeneration is the generation of the last route the rollout
	// emitted.
	RouteGeneration int64 `json:"routeGeneration"`
}

// PlanStep is one step of the strategy, as the progress bar draws it.
type PlanStep struct {
	// Kind is setWeight, pause, analysis or gate.
	Kind string `json:"kind"`
	// Weight is set for setWeight.
	Weight int `json:"weight,omitempty"`
	// Duration is set for a timed pause or an analysis with a minimum
	// duration.
	Duration string `json:"duration,omitempty"`
	// Gate names a gate step.
	Gate string `json:"gate,omitempty"`
}

// Waiting says what a run waits for: kind is webhook, pause, gate or
// decision.
type Waiting struct {
	Kind  string    `json:"kind"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// Pause says why a run is paused: cause is operator, errors, deadline or
// failure.
type Pause struct {
	Cause  string    `json:"cause"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Check is the latest result of one metric. Values that were not measured
// are null: canary without data, stable when the check did not compare
// against it, p/e/statistic when no statistical test ran.
type Check struct {
	Metric  string   `json:"metric"`
	Verdict string   `json:"verdict"`
	Canary  *float64 `json:"canary"`
	Stable  *float64 `json:"stable"`
	// CanarySamples and StableSamples are the sample sizes (requests or
	// points) behind the values; -1 when the provider does not know (stable
	// is null when the check did not compare against it).
	CanarySamples int64    `json:"canarySamples"`
	StableSamples *int64   `json:"stableSamples"`
	Statistic     *float64 `json:"statistic"`
	P             *float64 `json:"p"`
	E             *float64 `json:"e"`
	// Effect is canary minus stable (or their ratio, for ratio criteria),
	// when the check compared the two.
	Effect *float64 `json:"effect"`
	Reason string   `json:"reason"`
}

// NewStatus builds the status view of a stored rollout at time now (which
// decides whether the rollback window is still open).
func NewStatus(r store.Record, now time.Time) Status {
	spec := r.Manifest.Normalize().Spec
	st := r.Status
	steps := spec.Strategy.Canary.Steps
	v := Status{
		Name:            r.Name,
		Phase:           st.Phase,
		DesiredVersion:  spec.Version,
		StableVersion:   st.Stable.Version,
		CanaryWeight:    st.Weight,
		Steps:           len(steps),
		Plan:            plan(steps),
		Run:             st.Run,
		RunStartedAt:    timePtr(st.RunStartedAt),
		StepStartedAt:   timePtr(st.StepStartedAt),
		Message:         st.Message,
		Checks:          checks(st.Analysis.Checks),
		Failures:        st.Analysis.Failures,
		FailureLimit:    spec.Analysis.FailureLimit,
		Decision:        spec.Analysis.Decision,
		Revision:        r.Revision,
		CreatedAt:       r.CreatedAt,
		UpdatedAt:       r.UpdatedAt,
		RouteGeneration: st.RouteGeneration,
	}
	if st.Canary != nil {
		v.CanaryVersion = st.Canary.Version
	}
	if st.Run > 0 {
		v.Step = min(st.Step+1, len(steps))
	}
	if w := st.Waiting; w != nil {
		v.Waiting = &Waiting{Kind: w.Kind, Name: w.Name, Since: w.Since}
	}
	if p := st.Pause; p != nil {
		v.Pause = &Pause{Cause: p.Cause, Reason: p.Reason, Since: p.Since}
	}
	if st.Phase == rollout.PhaseSucceeded && st.Previous != nil && !st.PromotedAt.IsZero() {
		until := st.PromotedAt.Add(spec.RollbackWindow.D())
		if now.Before(until) {
			v.RollbackUntil = &until
			v.PreviousVersion = st.Previous.Version
		}
	}
	return v
}

func plan(steps []rollout.Step) []PlanStep {
	out := make([]PlanStep, 0, len(steps))
	for _, s := range steps {
		var p PlanStep
		switch {
		case s.SetWeight != nil:
			p = PlanStep{Kind: "setWeight", Weight: *s.SetWeight}
		case s.Pause != nil:
			p = PlanStep{Kind: "pause", Duration: durationText(s.Pause.Duration)}
		case s.Analysis != nil:
			p = PlanStep{Kind: "analysis", Duration: durationText(s.Analysis.Duration)}
		case s.Gate != nil:
			p = PlanStep{Kind: "gate", Gate: s.Gate.Name}
		}
		out = append(out, p)
	}
	return out
}

func durationText(d rollout.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func checks(rs []analysis.Result) []Check {
	out := make([]Check, 0, len(rs))
	for _, r := range rs {
		c := Check{
			Metric:        r.Metric,
			Verdict:       r.Verdict.String(),
			CanarySamples: r.CanaryCount,
			Statistic:     nonZero(r.Statistic),
			P:             nonZero(r.P),
			E:             nonZero(r.E),
			Reason:        r.Reason,
		}
		if r.HasCanary {
			c.Canary = &r.Canary
		}
		if r.HasStable {
			c.Stable = &r.Stable
			c.StableSamples = &r.StableCount
			c.Effect = &r.Effect
		}
		out = append(out, c)
	}
	return out
}

func nonZero(f float64) *float64 {
	if f == 0 {
		return nil
	}
	return &f
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// List is the answer of GET /api/v1/rollouts.
type List struct {
	Rollouts []Status `json:"rollouts"`
}

// RouteEntry is one rollout's traffic configuration and its last route:
// what a data-plane process (`aviary proxy --server URL`) needs to serve it.
// A proxy applies an entry only if Route.Generation is higher than the one
// it serves (or Revision is higher: the traffic configuration changed).
type RouteEntry struct {
	Name     string          `json:"name"`
	Revision int64           `json:"revision"`
	Traffic  rollout.Traffic `json:"traffic"`
	// Route is null before the rollout's first route was committed.
	Route *rollout.Route `json:"route"`
}

// Routes is the answer of GET /api/v1/routes.
type Routes struct {
	Routes []RouteEntry `json:"routes"`
}

func newRouteEntry(r store.Record) RouteEntry {
	return RouteEntry{
		Name:     r.Name,
		Revision: r.Revision,
		Traffic:  r.Manifest.Normalize().Spec.Traffic,
		Route:    r.Route,
	}
}

// ApplyResult says what an apply or release did to one rollout: action is
// created, configured or unchanged.
type ApplyResult struct {
	Name    string `json:"name"`
	Action  string `json:"action"`
	Rollout Status `json:"rollout"`
}

// Applied is the answer of POST /api/v1/rollouts.
type Applied struct {
	Results []ApplyResult `json:"results"`
}

// Event is one recorded transition of a rollout, with a reason that names
// the numbers behind it. Step is 1-based, as in Status (0 before the first
// run). ID orders events; it is 0 in a watch stream, where events arrive
// before the store numbers them.
type Event struct {
	ID       int64         `json:"id"`
	Rollout  string        `json:"rollout"`
	Time     time.Time     `json:"time"`
	Run      int           `json:"run"`
	Type     string        `json:"type"`
	Severity string        `json:"severity"`
	Phase    rollout.Phase `json:"phase"`
	Weight   int           `json:"weight"`
	Step     int           `json:"step"`
	Reason   string        `json:"reason"`
}

// newEvent converts the core's event (whose step is an index) for a
// rollout of steps steps.
func newEvent(id int64, name string, e rollout.Event, steps int) Event {
	step := 0
	if e.Run > 0 {
		step = min(e.Step+1, steps)
	}
	return Event{ID: id, Rollout: name, Time: e.Time, Run: e.Run, Type: e.Type, Severity: e.Severity,
		Phase: e.Phase, Weight: e.Weight, Step: step, Reason: e.Reason}
}

// stepCount is the number of steps of a stored rollout's spec.
func stepCount(r store.Record) int {
	return len(r.Manifest.Normalize().Spec.Strategy.Canary.Steps)
}

// Events is the answer of GET /api/v1/rollouts/{name}/events. Next is the
// id to pass as after= to read the events that follow.
type Events struct {
	Events []Event `json:"events"`
	Next   int64   `json:"next"`
}

// Run is one run of a rollout: one canary version released from StartedAt
// until EndedAt (null while it runs), with its outcome (Succeeded or Failed,
// "" while it runs) and the reason.
type Run struct {
	Run           int           `json:"run"`
	Version       string        `json:"version"`
	StableVersion string        `json:"stableVersion"`
	StartedAt     time.Time     `json:"startedAt"`
	EndedAt       *time.Time    `json:"endedAt"`
	Outcome       rollout.Phase `json:"outcome"`
	Reason        string        `json:"reason"`
}

func newRun(r store.Run) Run {
	return Run{Run: r.Run, Version: r.Version, StableVersion: r.StableVersion, StartedAt: r.StartedAt,
		EndedAt: r.EndedAt, Outcome: r.Outcome, Reason: r.Reason}
}

// Runs is the answer of GET /api/v1/rollouts/{name}/runs, newest first.
type Runs struct {
	Runs []Run `json:"runs"`
}

// Point is one metric measured over one interval of a run: what the
// provider measured for each version, and the check's result.
type Point struct {
	Interval int                  `json:"interval"`
	Metric   string               `json:"metric"`
	At       time.Time            `json:"at"`
	Canary   analysis.Measurement `json:"canary"`
	Stable   analysis.Measurement `json:"stable"`
	Check    Check                `json:"check"`
	// Shadow is the canary's measurement of its mirrored requests and the
	// metric's check of it against Stable, when the rollout mirrors
	// traffic. Shadow checks are shown, not acted on.
	Shadow *ShadowPoint `json:"shadow,omitempty"`
}

// ShadowPoint is a point's shadow (mirrored) measurement and its check.
type ShadowPoint struct {
	Canary analysis.Measurement `json:"canary"`
	Check  Check                `json:"check"`
}

func newPoint(p store.Point) Point {
	out := Point{Interval: p.Interval, Metric: p.Metric, At: p.At, Canary: p.Canary, Stable: p.Stable,
		Check: checks([]analysis.Result{p.Result})[0]}
	if p.Shadow != nil {
		out.Shadow = &ShadowPoint{Canary: p.Shadow.Canary, Check: checks([]analysis.Result{p.Shadow.Result})[0]}
	}
	return out
}

// Measurements is the answer of GET /api/v1/rollouts/{name}/runs/{run}/measurements,
// in interval order.
type Measurements struct {
	Run    int     `json:"run"`
	Points []Point `json:"points"`
}

// Revision is one applied spec, normalized (every default filled in).
type Revision struct {
	Revision  int64            `json:"revision"`
	AppliedAt time.Time        `json:"appliedAt"`
	Manifest  rollout.Manifest `json:"manifest"`
}

// Revisions is the answer of GET /api/v1/rollouts/{name}/revisions, oldest
// first.
type Revisions struct {
	Revisions []Revision `json:"revisions"`
}
