package simulate

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Epoch is the simulated clock's start.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultDuration bounds a simulation whose scenario gives none.
const DefaultDuration = time.Hour

// Policies: how a simulated run's checks are judged.
const (
	// PolicyAviary judges the spec's own analysis (its metrics, or the
	// default analysis).
	PolicyAviary = "aviary"
	// PolicyThreshold replaces the analysis with the common fixed-threshold
	// rule: the canary's success rate must be at least 99% in each 1-minute
	// interval, a minute without canary requests counts as failed, and the
	// fifth failed check rolls the run back. The steps are the spec's.
	PolicyThreshold = "threshold"
)

// Policies lists the accepted policies.
var Policies = []string{PolicyAviary, PolicyThreshold}

// The threshold policy's rule.
const (
	ThresholdSuccessRate  = 0.99
	ThresholdInterval     = time.Minute
	ThresholdFailedChecks = 5
)

// Options tune a simulation.
type Options struct {
	// Seed picks the random traffic; the same seed gives the same run.
	Seed uint64
	// Policy is PolicyAviary (default) or PolicyThreshold.
	Policy string
}

// Result is a simulated run: what happened, in order, and how it ended.
type Result struct {
	Rollout  string  `json:"rollout"`
	Seed     uint64  `json:"seed"`
	Policy   string  `json:"policy,omitempty"` // set for the threshold policy only
	Stable   string  `json:"stable"`
	Canary   string  `json:"canary"`
	Timeline []Entry `json:"timeline"`
	Verdict  Verdict `json:"verdict"`
}

// Entry kinds.
const (
	EntryEvent   = "event"
	EntryChecks  = "checks"
	EntryCommand = "command"
)

// Entry is one line of the timeline.
type Entry struct {
	At     rollout.Duration  `json:"at"`
	Kind   string            `json:"kind"`
	Phase  rollout.Phase     `json:"phase"`
	Weight int               `json:"weight"`
	Step   string            `json:"step"`
	Type   string            `json:"type,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Checks []analysis.Result `json:"checks,omitempty"`

	step int // the step index for an event entry
}

// Verdict is how the simulation ended.
type Verdict struct {
	// Phase is the final phase: Succeeded, Failed, Paused (waiting for a
	// person) or Progressing (the scenario ended first).
	Phase  rollout.Phase    `json:"phase"`
	At     rollout.Duration `json:"at"`
	Reason string           `json:"reason"`
	// CanaryRequests and CanaryErrors count what the canary served during
	// the run: the blast radius.
	CanaryRequests int64 `json:"canaryRequests"`
	CanaryErrors   int64 `json:"canaryErrors"`
}

// sim is one simulation in progress.
type sim struct {
	spec     rollout.Spec
	sc       Scenario
	w        *world
	st       rollout.Status
	now      time.Time
	applied  int64
	trackers map[string]*analysis.Tracker // each metric's judge over the run
	res      Result
	finished bool
	runStart time.Time
	policy   string
}

// Run simulates releasing m's version under scenario sc. m must be valid;
// it is normalized here.
func Run(m rollout.Manifest, sc Scenario, opt Options) (Result, error) {
	if errs := sc.Validate(); len(errs) > 0 {
		return Result{}, errs
	}
	m = m.Normalize()
	policy := opt.Policy
	switch policy {
	case "", PolicyAviary:
		policy = PolicyAviary
	case PolicyThreshold:
		m.Spec.Analysis = thresholdAnalysis(m.Spec.Analysis)
	default:
		return Result{}, fmt.Errorf("unknown policy %q (want %s)", opt.Policy, strings.Join(Policies, " or "))
	}
	stable := sc.StableVersion
	if stable == "" {
		stable = "stable"
	}
	if stable == m.Spec.Version {
		return Result{}, fmt.Errorf("the scenario's stable version %q is the spec's version: the canary must differ", stable)
	}
	s := &sim{
		spec: m.Spec, sc: sc, now: Epoch,
		w:        &world{sc: sc, seed: opt.Seed, t0: Epoch},
		trackers: map[string]*analysis.Tracker{},
		res:      Result{Rollout: m.Metadata.Name, Seed: opt.Seed, Stable: stable, Canary: m.Spec.Version},
		policy:   policy,
	}
	if policy == PolicyThreshold {
		s.res.Policy = policy
	}
	initial := m.Spec
	initial.Version = stable
	initial.Upstreams = []string{"http://" + stable + ".simulated:80"}
	s.call(initial, rollout.Observations{})
	s.step(rollout.Observations{})
	end := Epoch.Add(DefaultDuration)
	if sc.Duration > 0 {
		end = Epoch.Add(sc.Duration.D())
	}
	ops := append([]OperatorAction(nil), sc.Operator...)
	for guard := 0; guard < 1_000_000; guard++ {
		next := s.st.WakeAt
		if len(ops) > 0 && (next.IsZero() || Epoch.Add(ops[0].At.D()).Before(next)) {
			next = Epoch.Add(ops[0].At.D())
		}
		if next.IsZero() || next.After(end) || (len(ops) == 0 && s.settled()) {
			break
		}
		if next.After(s.now) {
			s.now = next
		}
		var obs rollout.Observations
		for len(ops) > 0 && !Epoch.Add(ops[0].At.D()).After(s.now) {
			o := ops[0]
			ops = ops[1:]
			obs.Commands = append(obs.Commands, rollout.Command{Op: o.Command, Full: o.Full, Gate: o.Gate, By: "scenario"})
			s.entry(Entry{Kind: EntryCommand, Type: o.Command, Reason: describeCommand(o)})
		}
		s.step(obs)
	}
	if !s.finished && s.now.Before(end) && !s.settled() {
		s.now = end
	}
	s.verdict()
	return s.res, nil
}

// settled reports whether nothing more can happen without a person: the
// run ended, or it waits for a person.
func (s *sim) settled() bool {
	st := s.st
	if !st.Phase.Active() {
		return s.finished || st.Phase == rollout.PhaseInitialized
	}
	if st.Phase == rollout.PhasePaused {
		return true
	}
	w := st.Waiting
	return w != nil && w.Kind != rollout.WaitWebhook
}

// step calls Next and carries out its actions, feeding back what they
// observe at the same instant until nothing more is observed.
func (s *sim) step(obs rollout.Observations) {
	for range 100 {
		next := s.call(s.spec, obs)
		if next == nil {
			return
		}
		obs = *next
	}
}

// call runs Next once, executes its actions and returns what they observed
// (nil when nothing).
func (s *sim) call(spec rollout.Spec, obs rollout.Observations) *rollout.Observations {
	obs.Applied = s.applied
	st, actions := rollout.Next(s.now, spec, s.st, obs)
	s.st = st
	var out rollout.Observations
	observed := false
	for _, a := range actions {
		switch a := a.(type) {
		case rollout.SetRoute:
			s.w.route(s.now, a.Route.Weight, a.Route.Canary != nil)
			s.applied = a.Route.Generation
			observed = true // the route is applied: promotion may finish
		case rollout.RunChecks:
			out.Checks = s.checks(a)
			observed = true
		case rollout.CallHook:
			if r, ok := s.hook(a); ok {
				out.Hooks = append(out.Hooks, r)
				observed = true
			}
		case rollout.Notify:
			if a.Event.Type == rollout.EventStarted {
				s.runStart = s.now
			}
			s.entry(Entry{Kind: EntryEvent, Type: a.Event.Type, Reason: a.Event.Reason,
				Phase: a.Event.Phase, Weight: a.Event.Weight, step: a.Event.Step})
		case rollout.Finish:
			s.finished = true
		}
	}
	if !observed {
		return nil
	}
	return &out
}

// entry adds a line to the timeline; events carry their own phase, weight
// and step, other lines take the current ones.
func (s *sim) entry(e Entry) {
	e.At = rollout.Duration(s.now.Sub(Epoch))
	if e.Kind != EntryEvent {
		e.Phase, e.Weight, e.step = s.st.Phase, s.st.Weight, s.st.Step
	}
	e.Step = "-"
	if n := len(s.spec.Strategy.Canary.Steps); e.Phase.Active() {
		e.Step = fmt.Sprintf("%d/%d", min(e.step+1, n), n)
	}
	s.res.Timeline = append(s.res.Timeline, e)
}

// hook answers a webhook call as the scenario says; fire-and-forget calls
// get no answer.
func (s *sim) hook(c rollout.CallHook) (rollout.HookResult, bool) {
	switch c.Type {
	case rollout.HookPostRollout, rollout.HookEvent, rollout.HookLoad:
		return rollout.HookResult{}, false
	}
	var answer bool
	if b, ok := s.sc.Webhooks[c.Name]; ok {
		answer = b.OK || (b.FromAt > 0 && !s.now.Before(Epoch.Add(b.FromAt.D())))
	} else {
		// Unscripted hooks say go; an unscripted rollback hook never asks
		// for a rollback.
		answer = c.Type != rollout.HookRollback
	}
	msg := "200 OK (simulated)"
	if !answer {
		msg = "503 (simulated)"
	}
	return rollout.HookResult{Name: c.Name, Key: c.Key, OK: answer, Message: msg}, true
}

// checks measures every metric over the interval and judges it.
func (s *sim) checks(rc rollout.RunChecks) *rollout.CheckResults {
	win := s.w.measure(rc.Start, rc.End, false)
	cr := &rollout.CheckResults{Run: rc.Run, Interval: rc.Interval}
	for _, m := range s.spec.Analysis.Metrics {
		var r analysis.Result
		if win.outage {
			r = analysis.Result{Metric: m.Name, Verdict: analysis.Error, CanaryCount: -1,
				Reason: fmt.Sprintf("%s: provider %s did not answer (simulated outage)", m.Name, m.Provider)}
		} else if iv, err := s.interval(m, win, rc); err != nil {
			r = analysis.Result{Metric: m.Name, Verdict: analysis.Error, CanaryCount: -1, Reason: fmt.Sprintf("%s: %v", m.Name, err)}
		} else {
			tr := s.trackers[m.Name]
			if tr == nil {
				tr = analysis.NewTracker(m.Name, m.Criteria)
				s.trackers[m.Name] = tr
			}
			r = tr.Add(iv) // what analysis.Judge gives for the series so far

			if s.policy == PolicyThreshold && r.Verdict == analysis.Inconclusive {
				r.Verdict = analysis.Fail
				r.Reason += " (the threshold policy counts a minute without data as failed)"
			}
		}
		cr.Results = append(cr.Results, r)
	}
	s.entry(Entry{Kind: EntryChecks, Reason: fmt.Sprintf("interval %d (%s)", rc.Interval, rollout.Duration(rc.End.Sub(rc.Start))), Checks: cr.Results})
	return cr
}

// interval is one interval's measurements of one metric.
func (s *sim) interval(m rollout.Metric, win window, rc rollout.RunChecks) (analysis.Interval, error) {
	iv := analysis.Interval{At: rc.End}
	if m.Provider != rollout.ProviderBuiltin {
		sm, ok := s.sc.Metrics[m.Name]
		if !ok {
			return iv, errors.New("the scenario gives no synthetic values for this metric (scenario metrics)")
		}
		iv.Canary = analysis.Measurement{Start: rc.Start, End: rc.End, Value: sm.Canary, HasValue: !win.missing, Count: orUnknown(sm.Count)}
		iv.Stable = analysis.Measurement{Start: rc.Start, End: rc.End, Value: sm.Stable, HasValue: !win.missing, Count: orUnknown(sm.Count)}
		return iv, nil
	}
	var err error
	if iv.Canary, err = builtinValue(m.Query, win.canary.measurement(rc.Start, rc.End)); err != nil {
		return iv, err
	}
	iv.Stable, err = builtinValue(m.Query, win.stable.measurement(rc.Start, rc.End))
	return iv, err
}

// thresholdAnalysis is the threshold policy's analysis: one check, an error
// rate of at most 1% (a success rate of at least 99%) in each minute, and
// rollback at the fifth failed check.
func thresholdAnalysis(a rollout.Analysis) rollout.Analysis {
	maxErrors := analysis.Number(1 - ThresholdSuccessRate)
	a.Interval = rollout.Duration(ThresholdInterval)
	a.FailureLimit = ThresholdFailedChecks - 1
	a.Metrics = []rollout.Metric{{
		Name: "error-rate", Provider: rollout.ProviderBuiltin, Query: "error-rate",
		Criteria: analysis.Criteria{Max: &maxErrors},
	}}
	return a
}

func orUnknown(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// builtinValue fills in the value the built-in provider reports for query.
func builtinValue(query string, m analysis.Measurement) (analysis.Measurement, error) {
	secs := m.End.Sub(m.Start).Seconds()
	switch {
	case query == "error-rate":
		if m.Requests > 0 {
			m.Value, m.HasValue = float64(m.Errors)/float64(m.Requests), true
		}
	case query == "request-rate":
		if secs > 0 {
			m.Value, m.HasValue = float64(m.Requests)/secs, true
		}
	case strings.HasPrefix(query, "latency-p"):
		q, err := strconv.ParseFloat(strings.TrimPrefix(query, "latency-p"), 64)
		if err != nil || q <= 0 || q >= 100 {
			return m, fmt.Errorf("unknown query %q", query)
		}
		if v := m.Latency.Quantile(q / 100); !math.IsNaN(v) {
			m.Value, m.HasValue = v, true
		}
	case query == "slow-rate":
		// The share of slow requests depends on the check's bound; the
		// analysis derives it from the latency histogram.
	default:
		return m, fmt.Errorf("unknown query %q", query)
	}
	return m, nil
}

func (s *sim) verdict() {
	v := Verdict{Phase: s.st.Phase, At: rollout.Duration(s.now.Sub(Epoch)), Reason: s.st.Message}
	if s.st.Pause != nil {
		v.Reason = s.st.Pause.Reason
	}
	if !s.runStart.IsZero() {
		served := s.w.measure(s.runStart, s.now, true)
		v.CanaryRequests, v.CanaryErrors = served.canary.requests, served.canary.errors
	}
	s.res.Verdict = v
}

func describeCommand(o OperatorAction) string {
	parts := []string{"aviary " + o.Command}
	if o.Full {
		parts = append(parts, "--full")
	}
	if o.Gate != "" {
		parts = append(parts, "--gate", o.Gate)
	}
	return strings.Join(parts, " ")
}
