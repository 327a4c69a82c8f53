package rollout

import (
	"fmt"
	"strings"
	"time"

	"aviary/internal/analysis"
)

// Next decides what a rollout does next. It is a pure, deterministic function
// of the time, the spec, the status the previous call returned (the zero
// Status for a rollout never seen) and what was observed since; it returns
// the next status and the actions the shell must carry out, in order. The
// shell calls Next whenever it observes something and at the returned
// status's WakeAt. Next does not change its arguments.
func Next(now time.Time, spec Spec, st Status, obs Observations) (Status, []Action) {
	m := &machine{now: now, spec: spec.normalize(), st: st.clone()}
	m.run(obs)
	m.st.WakeAt = m.wake()
	return m.st, m.actions
}

// machine carries one call of Next.
type machine struct {
	now     time.Time
	spec    Spec
	st      Status
	actions []Action
}

func (m *machine) run(obs Observations) {
	if m.st.Phase == PhaseNone {
		m.initialize()
		return
	}
	for _, c := range obs.Commands {
		m.command(c)
	}
	for _, h := range obs.Hooks {
		m.hookResult(h)
	}
	if obs.Checks != nil {
		m.checkResults(*obs.Checks)
	}
	m.specChange()
	for range 2 * (len(m.spec.Strategy.Canary.Steps) + 2) {
		if m.st.Phase != PhaseProgressing || !m.progress() {
			break
		}
	}
	if m.st.Phase == PhasePromoting {
		m.finishPromotion(obs.Applied)
	}
	m.deadline()
	m.schedule()
}

// desired is the release the spec asks for.
func (m *machine) desired() Backend {
	return Backend{Version: m.spec.Version, Upstreams: append([]string(nil), m.spec.Upstreams...)}
}

func (m *machine) emit(a Action) { m.actions = append(m.actions, a) }

// event records a transition; its reason becomes the status message.
func (m *machine) event(typ, severity, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	m.st.Message = reason
	m.emit(Notify{Event: Event{
		Time: m.now, Run: m.st.Run, Type: typ, Severity: severity,
		Phase: m.st.Phase, Weight: m.st.Weight, Step: m.st.Step, Reason: reason,
	}})
}

// route emits the routing for the current state: the stable version alone,
// or with the canary at its weight (and, once the run is ready, its match
// rules and mirroring).
func (m *machine) route(withCanary bool) {
	m.st.RouteGeneration++
	r := Route{Generation: m.st.RouteGeneration, Stable: *m.st.Stable.clone()}
	if withCanary && m.st.Canary != nil {
		r.Canary = m.st.Canary.clone()
		r.Weight = m.st.Weight
		if m.st.Ready {
			c := m.spec.Strategy.Canary
			r.Match, r.Stickiness, r.Mirror = c.Match, c.Stickiness, c.Mirror
		}
	}
	m.emit(SetRoute{Route: r})
}

func (m *machine) initialize() {
	m.st.Stable = m.desired()
	m.st.Phase = PhaseInitialized
	m.route(false)
	m.event(EventInitialized, SeverityInfo, "%s is stable: the first version of a rollout is released without analysis", m.st.Stable.Version)
}

// specChange starts, restarts or withdraws a run when the spec's release
// differs from what runs.
func (m *machine) specChange() {
	want := m.desired()
	st := &m.st
	if st.Phase.Active() {
		switch {
		case st.Canary.Equal(want):
		case st.Stable.Equal(want):
			m.endRun(EventWithdrawn, "withdrawn: the spec went back to the stable version %s; %s no longer receives traffic", want.Version, st.Canary.Version)
		default:
			old := st.Canary.Version
			m.endRun(EventSuperseded, "superseded: %s replaces %s mid-run at weight %d%%", want.Version, old, st.Weight)
			m.startRun(want, fmt.Sprintf("restarted from weight 0 on %s, which replaced %s", want.Version, old))
		}
		return
	}
	if st.Stable.Equal(want) || (st.Rejected != nil && st.Rejected.Equal(want)) {
		return
	}
	m.startRun(want, "")
}

func (m *machine) startRun(b Backend, why string) {
	st := &m.st
	st.Run++
	st.Canary = &b
	st.Phase = PhaseProgressing
	st.Weight = 0
	st.RunStartedAt, st.StepStartedAt, st.LastProgressAt = m.now, m.now, m.now
	st.Ready, st.Approved = false, false
	st.Step = 0
	st.Waiting, st.Pause = nil, nil
	st.Analysis = AnalysisStatus{}
	st.Hooks = nil
	st.Rejected = nil
	m.route(true)
	if why == "" {
		why = "started"
	}
	m.event(EventStarted, SeverityInfo, "run %d %s: canary %s against stable %s, %d steps, checks every %s",
		st.Run, why, b.Version, st.Stable.Version, len(m.spec.Strategy.Canary.Steps), m.spec.Analysis.Interval)
}

// endRun ends the current run without promotion: the stable version takes
// all traffic back.
func (m *machine) endRun(typ, format string, args ...any) {
	st := &m.st
	st.Weight = 0
	st.Ready, st.Approved = false, false
	st.Waiting, st.Pause = nil, nil
	st.Analysis.Pending = false
	st.Rejected = st.Canary.clone()
	st.Phase = PhaseFailed
	m.route(false)
	severity := SeverityError
	if typ != EventRolledBack {
		severity = SeverityWarn
	}
	m.event(typ, severity, format, args...)
	m.emit(Finish{Run: st.Run, Outcome: PhaseFailed, Version: st.Canary.Version, Reason: st.Message})
	m.callHooks(HookPostRollout, "post")
}

// rollback ends the run because the evidence (or a person, or a webhook)
// says so.
func (m *machine) rollback(format string, args ...any) {
	m.endRun(EventRolledBack, "rolled back: "+format, args...)
}

// progress moves the run forward by one step if it can, and reports
// whether it did.
func (m *machine) progress() bool {
	st := &m.st
	if !st.Ready {
		return m.open()
	}
	steps := m.spec.Strategy.Canary.Steps
	if st.Step >= len(steps) {
		if m.decide("promotion") && m.confirm(HookConfirmPromotion, "promotion") {
			m.startPromotion(fmt.Sprintf("all %d steps passed in %s", len(steps), fmtDuration(m.now.Sub(st.RunStartedAt))))
		}
		return false
	}
	s := steps[st.Step]
	switch {
	case s.SetWeight != nil:
		return m.setWeight(*s.SetWeight)
	case s.Pause != nil && s.Pause.Duration > 0:
		if !st.Approved && m.now.Before(st.StepStartedAt.Add(s.Pause.Duration.D())) {
			return false
		}
		m.nextStep("pause of %s over", s.Pause.Duration)
		return true
	case s.Pause != nil:
		if !st.Approved {
			m.wait(WaitPause, "", "waiting at step %s for `aviary promote`", m.stepOf())
			return false
		}
		m.nextStep("pause passed by promote")
		return true
	case s.Gate != nil:
		if !st.Approved {
			m.wait(WaitGate, s.Gate.Name, "waiting at gate %s (step %s) for `aviary approve --gate %s`", s.Gate.Name, m.stepOf(), s.Gate.Name)
			return false
		}
		m.nextStep("gate %s approved", s.Gate.Name)
		return true
	case s.Analysis != nil:
		return m.analysisStep(*s.Analysis)
	}
	m.nextStep("empty step skipped")
	return true
}

// open passes the run's opening gates (confirm-rollout, pre-rollout) and
// lets the canary receive traffic.
func (m *machine) open() bool {
	if !m.confirm(HookConfirmRollout, "open") {
		return false
	}
	if !m.st.Approved && !m.preRollout() {
		return false
	}
	st := &m.st
	st.Ready, st.Approved, st.Waiting = true, false, nil
	st.StepStartedAt, st.LastProgressAt = m.now, m.now
	st.Analysis.End = m.now
	m.route(true)
	if rules := m.trafficRules(); rules != "" || len(m.hooksOf(HookConfirmRollout))+len(m.hooksOf(HookPreRollout)) > 0 {
		m.event(EventReady, SeverityInfo, "canary %s may receive traffic%s", st.Canary.Version, prefixed(": ", rules))
	}
	return true
}

// trafficRules describes the match and mirror rules, or "" when none.
func (m *machine) trafficRules() string {
	c := m.spec.Strategy.Canary
	var parts []string
	if n := len(c.Match); n > 0 {
		parts = append(parts, fmt.Sprintf("%d match rule(s)", n))
	}
	if c.Mirror != nil {
		parts = append(parts, fmt.Sprintf("%d%% of stable requests mirrored", c.Mirror.Percent))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + " at weight 0%"
}

func (m *machine) setWeight(w int) bool {
	st := &m.st
	if w > st.Weight && !(m.decide("weight") && m.confirm(HookConfirmTrafficIncrease, fmt.Sprintf("s%d", st.Step))) {
		return false
	}
	old := st.Weight
	st.Weight = w
	m.route(true)
	m.event(EventWeight, SeverityInfo, "weight %d%% -> %d%% (step %s)", old, w, m.stepOf())
	m.advanceStep()
	return true
}

func (m *machine) analysisStep(s AnalysisStep) bool {
	st := &m.st
	switch {
	case st.Approved:
		m.nextStep("analysis skipped by promote at weight %d%%", st.Weight)
	case st.Analysis.StepPassed && !m.now.Before(st.StepStartedAt.Add(s.Duration.D())):
		m.event(EventAnalysisDone, SeverityInfo, "analysis passed at weight %d%% (step %s): %s", st.Weight, m.stepOf(), summarize(st.Analysis.Checks))
		m.advanceStep()
	default:
		return false
	}
	return true
}

// nextStep records the end of the current step and moves to the next.
func (m *machine) nextStep(format string, args ...any) {
	m.event(EventStep, SeverityInfo, "step %s: %s", m.stepOf(), fmt.Sprintf(format, args...))
	m.advanceStep()
}

func (m *machine) advanceStep() {
	st := &m.st
	st.Step++
	st.StepStartedAt, st.LastProgressAt = m.now, m.now
	st.Waiting = nil
	st.Approved = false
	st.Analysis.StepPassed = false
}

// stepOf names the current step as "3/6".
func (m *machine) stepOf() string {
	return fmt.Sprintf("%d/%d", m.st.Step+1, len(m.spec.Strategy.Canary.Steps))
}

// wait records what the run waits for; the event is emitted once per wait.
func (m *machine) wait(kind, name, format string, args ...any) {
	if w := m.st.Waiting; w != nil && w.Kind == kind && w.Name == name {
		return
	}
	m.st.Waiting = &Wait{Kind: kind, Name: name, Since: m.now}
	m.event(EventWaiting, SeverityInfo, format, args...)
}

// decide passes a decision point: in manual mode every increase of traffic
// and the promotion wait for a person.
func (m *machine) decide(what string) bool {
	if m.spec.Analysis.Decision != DecisionManual || m.st.Approved {
		return true
	}
	m.wait(WaitDecision, what, "manual decision: waiting for `aviary promote` before the %s (step %s, weight %d%%)", what, m.stepOf(), m.st.Weight)
	return false
}

func (m *machine) startPromotion(why string) {
	st := &m.st
	st.Phase = PhasePromoting
	st.Weight = 100
	st.Waiting, st.Pause = nil, nil
	st.Approved = false
	st.Analysis.Pending = false
	m.route(true)
	m.event(EventPromoting, SeverityInfo, "promoting %s: %s", st.Canary.Version, why)
}

// finishPromotion makes the canary stable once the router has applied the
// promoting route.
func (m *machine) finishPromotion(applied int64) {
	st := &m.st
	if applied < st.RouteGeneration {
		return
	}
	prev := st.Stable
	st.Previous = &prev
	st.Stable = *st.Canary.clone()
	st.Weight = 0
	st.Ready = false
	st.PromotedAt = m.now
	st.Phase = PhaseSucceeded
	m.route(false)
	m.event(EventPromoted, SeverityInfo, "promoted %s after %s (replaces %s; `aviary rollback` restores it until %s)",
		st.Stable.Version, fmtDuration(m.now.Sub(st.RunStartedAt)), prev.Version, m.now.Add(m.spec.RollbackWindow.D()).UTC().Format(time.RFC3339))
	m.emit(Finish{Run: st.Run, Outcome: PhaseSucceeded, Version: st.Stable.Version, Reason: st.Message})
	m.callHooks(HookPostRollout, "post")
}

// pause holds the run for a person.
func (m *machine) pause(cause, format string, args ...any) {
	st := &m.st
	reason := fmt.Sprintf(format, args...)
	st.Phase = PhasePaused
	st.Pause = &PauseInfo{Cause: cause, Reason: reason, Since: m.now}
	if cause != PauseOperator {
		st.Waiting = &Wait{Kind: WaitDecision, Name: cause, Since: m.now}
	}
	m.event(EventPaused, SeverityWarn, "paused: %s", reason)
}

// resume continues a paused run.
func (m *machine) resume(by string) {
	st := &m.st
	cause := ""
	if st.Pause != nil {
		cause = st.Pause.Cause
	}
	st.Phase = PhaseProgressing
	st.Pause = nil
	if st.Waiting != nil && st.Waiting.Kind == WaitDecision && st.Waiting.Name == cause {
		st.Waiting = nil
	}
	st.Analysis.ConsecutiveErrors = 0
	if cause == PauseFailure {
		st.Analysis.Failures = 0
	}
	st.LastProgressAt = m.now
	m.event(EventResumed, SeverityInfo, "resumed by %s at step %s, weight %d%%", by, m.stepOf(), st.Weight)
}

// deadline pauses a run that waits on evidence or a webhook for longer than
// the progress deadline. Waiting for a person or for time is not a stall.
func (m *machine) deadline() {
	st := &m.st
	if st.Phase != PhaseProgressing || m.now.Before(st.LastProgressAt.Add(m.spec.ProgressDeadline.D())) {
		return
	}
	what := m.stall()
	if what == "" {
		return
	}
	m.pause(PauseDeadline, "no progress for %s (progressDeadline): %s", fmtDuration(m.now.Sub(st.LastProgressAt)), what)
}

// stall describes what holds the run back, or "" when it waits for a person
// or a timer.
func (m *machine) stall() string {
	st := &m.st
	if w := st.Waiting; w != nil {
		if w.Kind != WaitWebhook {
			return ""
		}
		h := st.hook(w.Name)
		return fmt.Sprintf("webhook %s has not answered 2xx after %d attempt(s)%s", w.Name, h.Attempts, prefixed(": ", h.Message))
	}
	steps := m.spec.Strategy.Canary.Steps
	if !st.Ready {
		return "the opening webhooks have not passed"
	}
	if st.Step < len(steps) && steps[st.Step].Analysis != nil {
		return "analysis at weight " + fmt.Sprint(st.Weight) + "% has not passed: " + summarize(st.Analysis.Checks)
	}
	return ""
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// summarize joins the reasons of check results.
func summarize(rs []analysis.Result) string {
	if len(rs) == 0 {
		return "no checks have reported yet"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s [%s]", r.Reason, r.Verdict)
	}
	return strings.Join(parts, "; ")
}

// fmtDuration formats a duration to the second.
func fmtDuration(d time.Duration) string {
	return formatDuration(d.Round(time.Second))
}
