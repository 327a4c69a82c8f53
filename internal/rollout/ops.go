package rollout

import (
	"fmt"
	"time"
)

// Allowed reports whether a person's command can be carried out now; the
// error says why not and wraps ErrRefused. The shell calls it before it
// records a command, so that the caller hears at once; Next applies the same
// rule and turns a command refused in the meantime into a Refused event.
func Allowed(now time.Time, spec Spec, st Status, c Command) error {
	refuse := func(format string, args ...any) error {
		return refusal{op: c.Op, msg: fmt.Sprintf(format, args...)}
	}
	noRun := func() error {
		return refusal{op: c.Op, msg: fmt.Sprintf("no run in progress (phase %s)", phaseName(st.Phase)), err: ErrNoRun}
	}
	switch c.Op {
	case OpPromote:
		switch {
		case st.Phase == PhasePromoting:
			return refuse("%s is already being promoted", st.Canary.Version)
		case !st.Phase.Active():
			return noRun()
		}
	case OpAbort:
		if !st.Phase.Active() {
			return noRun()
		}
	case OpPause:
		switch st.Phase {
		case PhaseProgressing:
		case PhasePaused:
			return refuse("the run is already paused")
		case PhasePromoting:
			return refuse("%s is being promoted; abort it instead", st.Canary.Version)
		default:
			return noRun()
		}
	case OpResume:
		if st.Phase != PhasePaused {
			return refuse("the run is not paused (phase %s)", phaseName(st.Phase))
		}
	case OpRetry:
		want := Backend{Version: spec.Version, Upstreams: spec.Upstreams}
		switch {
		case st.Phase != PhaseFailed || st.Rejected == nil:
			return refuse("only a failed run can be retried (phase %s)", phaseName(st.Phase))
		case !st.Rejected.Equal(want):
			return refuse("the spec asks for %s, not the failed %s; it is released without retry", spec.Version, st.Rejected.Version)
		}
	case OpRollback:
		return allowRollback(now, spec, st, refuse)
	case OpApprove:
		return allowApprove(st, c, refuse)
	default:
		return refuse("unknown operation %q", c.Op)
	}
	return nil
}

func allowRollback(now time.Time, spec Spec, st Status, refuse func(string, ...any) error) error {
	window := spec.RollbackWindow.D()
	if window == 0 {
		window = DefaultRollbackWindow
	}
	switch {
	case st.Phase.Active():
		return refuse("a run is in progress: abort it to roll back")
	case st.Phase != PhaseSucceeded || st.Previous == nil:
		return refuse("nothing to roll back to: the last run did not promote a new version (phase %s)", phaseName(st.Phase))
	case !now.Before(st.PromotedAt.Add(window)):
		return refuse("the rollback window of %s closed at %s; release %s as a new version instead",
			Duration(window), st.PromotedAt.Add(window).UTC().Format(time.RFC3339), st.Previous.Version)
	}
	return nil
}

func allowApprove(st Status, c Command, refuse func(string, ...any) error) error {
	w := st.Waiting
	switch {
	case !st.Phase.Active():
		return refuse("no run in progress (phase %s)", phaseName(st.Phase))
	case w == nil || w.Kind == WaitWebhook:
		return refuse("the run is not waiting for a person")
	case c.Gate != "" && c.Gate != w.Name:
		if w.Name == "" {
			return refuse("the run waits at a %s, not at gate %q", w.Kind, c.Gate)
		}
		return refuse("the run waits at %s %q, not at gate %q", w.Kind, w.Name, c.Gate)
	}
	return nil
}

func phaseName(p Phase) string {
	if p == PhaseNone {
		return "none: the rollout has not been initialized"
	}
	return string(p)
}

// command carries out a person's command.
func (m *machine) command(c Command) {
	if err := Allowed(m.now, m.spec, m.st, c); err != nil {
		m.event(EventRefused, SeverityWarn, "%v", err)
		return
	}
	by := c.By
	if by == "" {
		by = "operator"
	}
	why := prefixed(": ", c.Reason)
	st := &m.st
	switch c.Op {
	case OpPromote:
		if c.Full {
			m.startPromotion(fmt.Sprintf("promoted fully by %s at step %s, weight %d%%%s", by, m.stepOf(), st.Weight, why))
			return
		}
		m.approve(OpPromote, by, why)
	case OpApprove:
		m.approve(OpApprove, by, why)
	case OpAbort:
		m.rollback("aborted by %s at step %s, weight %d%%%s", by, m.stepOf(), st.Weight, why)
	case OpPause:
		m.pause(PauseOperator, "by %s at step %s, weight %d%%%s", by, m.stepOf(), st.Weight, why)
	case OpResume:
		m.resume(by)
	case OpRetry:
		st.Rejected = nil
		m.startRun(m.desired(), fmt.Sprintf("retried by %s", by))
	case OpRollback:
		m.rollbackPromotion(by, why)
	}
}

// approve passes the gate the run waits at. promote resumes a paused run and
// passes whatever holds its current step; approve answers a wait for a
// person: a decision after a pause for failures, errors or the deadline
// resumes the run, and a gate or pause step is passed.
func (m *machine) approve(op, by, why string) {
	st := &m.st
	if st.Phase == PhasePaused {
		decided := st.Waiting != nil && st.Waiting.Kind == WaitDecision && st.Pause != nil && st.Waiting.Name == st.Pause.Cause
		m.resume(by)
		if decided && op == OpApprove {
			return
		}
	}
	what := "the current step"
	if w := st.Waiting; w != nil {
		what = w.Kind
		if w.Name != "" {
			what += " " + w.Name
		}
	}
	st.Approved = true
	m.event(EventApproved, SeverityInfo, "%s passed by %s at step %s, weight %d%%%s", what, by, m.stepOf(), st.Weight, why)
}

// rollbackPromotion restores the previous stable version in one step.
func (m *machine) rollbackPromotion(by, why string) {
	st := &m.st
	undone := st.Stable
	st.Stable = *st.Previous.clone()
	st.Previous = nil
	st.Rejected = &undone
	st.Canary = undone.clone()
	st.Weight = 0
	st.Phase = PhaseFailed
	m.route(false)
	m.event(EventRolledBack, SeverityError, "rolled back by %s after promotion: %s restored in one step, %s taken out of service %s after its promotion%s",
		by, st.Stable.Version, undone.Version, fmtDuration(m.now.Sub(st.PromotedAt)), why)
	m.emit(Finish{Run: st.Run, Outcome: PhaseFailed, Version: undone.Version, Reason: st.Message})
}
