package rollout

import (
	"fmt"
	"strings"
	"time"

	"aviary/internal/analysis"
)

// checkResults takes the verdicts of one interval and applies the rules:
// a failed interval counts towards failureLimit, consecutive errors towards
// errorLimit, Inconclusive waits, and an interval that began within the
// current step and passed every check lets an analysis step complete.
func (m *machine) checkResults(cr CheckResults) {
	if !Accepts(m.st, cr) {
		return // stale
	}
	st := &m.st
	a := &st.Analysis
	a.Pending = false
	a.Checks = append([]analysis.Result(nil), cr.Results...)
	var fails, errs []string
	pass := len(cr.Results) > 0
	for _, r := range cr.Results {
		switch r.Verdict {
		case analysis.Fail:
			fails = append(fails, r.Reason)
		case analysis.Error:
			errs = append(errs, r.Reason)
		}
		pass = pass && r.Verdict == analysis.Pass
	}
	if pass && !a.Start.Before(st.StepStartedAt) {
		a.StepPassed = true
	}
	if len(errs) > 0 {
		a.ConsecutiveErrors++
	} else {
		a.ConsecutiveErrors = 0
	}
	if len(fails) > 0 {
		m.failed(strings.Join(fails, "; "))
	}
	limit := *m.spec.Analysis.ErrorLimit
	if st.Phase == PhaseProgressing && a.ConsecutiveErrors > limit {
		m.pause(PauseErrors, "%d interval(s) in a row could not be measured (errorLimit %d): %s",
			a.ConsecutiveErrors, limit, strings.Join(errs, "; "))
	}
}

// Accepts reports whether st awaits the results cr answers; Next ignores
// results it does not await (stale ones, from an interval asked for again
// or an earlier run), and so should the shell's record of measurements.
func Accepts(st Status, cr CheckResults) bool {
	a := st.Analysis
	return cr.Run == st.Run && cr.Interval == a.Interval && a.Pending &&
		(st.Phase == PhaseProgressing || st.Phase == PhasePaused)
}

// failed counts one failed interval (or webhook) and rolls the run back, or
// in hybrid mode pauses it for a person, once failureLimit is exceeded.
func (m *machine) failed(reason string) {
	st := &m.st
	a := &st.Analysis
	a.Failures++
	limit := m.spec.Analysis.FailureLimit
	if a.Failures <= limit {
		m.event(EventCheckFailed, SeverityWarn, "%s (failure %d of %d tolerated)", reason, a.Failures, limit)
		return
	}
	count := fmt.Sprintf("%d failed interval(s), failureLimit %d", a.Failures, limit)
	switch {
	case m.spec.Analysis.Decision != DecisionHybrid:
		m.rollback("%s (%s)", reason, count)
	case st.Pause == nil || st.Pause.Cause != PauseFailure:
		m.pause(PauseFailure, "%s (%s); hybrid mode: `aviary promote` to continue or `aviary abort` to roll back", reason, count)
	default:
		m.event(EventCheckFailed, SeverityWarn, "%s (%s; waiting for a person)", reason, count)
	}
}

// analysing reports whether the run's checks run: from the moment the
// canary may get traffic until the run ends or starts promoting.
func (m *machine) analysing() bool {
	st := &m.st
	return st.Ready && (st.Phase == PhaseProgressing || st.Phase == PhasePaused)
}

// schedule asks for the next interval's checks when it is due, with the
// hooks that run every interval, and asks again for results that never came.
func (m *machine) schedule() {
	if !m.analysing() {
		return
	}
	st := &m.st
	a := &st.Analysis
	every := m.spec.Analysis.Interval.D()
	if a.Pending {
		if !m.now.Before(a.RequestedAt.Add(every)) {
			a.RequestedAt = m.now
			m.emit(m.runChecks())
		}
		return
	}
	if m.now.Before(a.End.Add(every)) {
		return
	}
	a.Interval++
	a.Start, a.End = a.End, m.now
	stage := fmt.Sprintf("i%d", a.Interval)
	for _, typ := range []string{HookRollback, HookLoad, HookRollout} {
		m.callHooks(typ, stage)
	}
	if len(m.spec.Analysis.Metrics) == 0 {
		return
	}
	a.Pending, a.RequestedAt = true, m.now
	m.emit(m.runChecks())
}

func (m *machine) runChecks() RunChecks {
	st := &m.st
	return RunChecks{
		Run: st.Run, Interval: st.Analysis.Interval, Start: st.Analysis.Start, End: st.Analysis.End,
		Canary: *st.Canary.clone(), Stable: *st.Stable.clone(),
		Shadow: m.spec.Strategy.Canary.Mirror != nil,
	}
}

// wake is the earliest time after now at which Next has something to do
// without new observations.
func (m *machine) wake() time.Time {
	st := &m.st
	var at time.Time
	add := func(t time.Time) {
		if t.After(m.now) && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	every := m.spec.Analysis.Interval.D()
	switch st.Phase {
	case PhasePromoting:
		add(m.now.Add(time.Second))
		return at
	case PhaseProgressing, PhasePaused:
	default:
		return at
	}
	if m.analysing() {
		if st.Analysis.Pending {
			add(st.Analysis.RequestedAt.Add(every))
		} else {
			add(st.Analysis.End.Add(every))
		}
	}
	for _, h := range st.Hooks {
		if !h.Passed && !h.CalledAt.IsZero() && m.awaits(h) {
			add(h.CalledAt.Add(every))
		}
	}
	if st.Phase != PhaseProgressing {
		return at
	}
	steps := m.spec.Strategy.Canary.Steps
	if st.Ready && st.Step < len(steps) {
		s := steps[st.Step]
		switch {
		case s.Pause != nil && s.Pause.Duration > 0:
			add(st.StepStartedAt.Add(s.Pause.Duration.D()))
		case s.Analysis != nil && s.Analysis.Duration > 0:
			add(st.StepStartedAt.Add(s.Analysis.Duration.D()))
		}
	}
	if m.stall() != "" {
		add(st.LastProgressAt.Add(m.spec.ProgressDeadline.D()))
	}
	return at
}

// awaits reports whether the run waits for hook h's answer before it can
// go on (an opening or confirm hook), as opposed to a per-interval call.
func (m *machine) awaits(h HookStatus) bool {
	_, stage, _ := strings.Cut(h.Key, "/")
	return !strings.HasPrefix(stage, "i") && !strings.HasPrefix(stage, "post")
}
