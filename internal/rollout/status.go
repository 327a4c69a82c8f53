package rollout

import (
	"time"

	"aviary/internal/analysis"
)

// Phase is where a rollout stands.
type Phase string

// Phases of DESIGN.md §4.
const (
	// PhaseNone is a rollout the core has not seen yet.
	PhaseNone Phase = ""
	// PhaseInitialized: the stable version serves; no run has happened yet
	// (or the last one was withdrawn before it ended).
	PhaseInitialized Phase = "Initialized"
	// PhaseProgressing: a run moves through its steps.
	PhaseProgressing Phase = "Progressing"
	// PhasePaused: a run holds its weight until a person acts.
	PhasePaused Phase = "Paused"
	// PhasePromoting: the canary takes all traffic and becomes stable.
	PhasePromoting Phase = "Promoting"
	// PhaseSucceeded: the last run promoted its canary.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the last run was rolled back.
	PhaseFailed Phase = "Failed"
)

// Active reports whether a run is in progress.
func (p Phase) Active() bool {
	return p == PhaseProgressing || p == PhasePaused || p == PhasePromoting
}

// Status is everything the core remembers about a rollout between calls. It
// round-trips through JSON, so a restarted shell resumes exactly where it
// stopped.
type Status struct {
	Phase   Phase  `json:"phase"`
	Message string `json:"message,omitempty"`

	// Stable is the version serving by default.
	Stable Backend `json:"stable"`
	// Canary is the version of the current or last run.
	Canary *Backend `json:"canary,omitempty"`
	// Weight is the canary's current weight.
	Weight int `json:"weight"`

	// Run counts runs; the current or last one is number Run.
	Run          int       `json:"run"`
	RunStartedAt time.Time `json:"runStartedAt,omitzero"`
	// Ready is set once the run's opening hooks have passed and the canary
	// may get traffic.
	Ready bool `json:"ready,omitempty"`
	// Step is the index of the current step; len(steps) once all are done.
	Step          int       `json:"step"`
	StepStartedAt time.Time `json:"stepStartedAt,omitzero"`
	// LastProgressAt is when the run last moved forward; the progress
	// deadline counts from it.
	LastProgressAt time.Time `json:"lastProgressAt,omitzero"`

	// Approved is set when a person passed the current step's gate (or the
	// opening gates) with promote or approve.
	Approved bool `json:"approved,omitempty"`
	// Waiting says what the run waits for, when it waits on something other
	// than time or analysis.
	Waiting *Wait `json:"waiting,omitempty"`
	// Pause says why a run is Paused.
	Pause *PauseInfo `json:"pause,omitempty"`

	Analysis AnalysisStatus `json:"analysis"`
	// Hooks tracks webhook calls of the current run.
	Hooks []HookStatus `json:"hooks,omitempty"`

	// Previous is the stable version before the last promotion, kept for the
	// rollback window.
	Previous   *Backend  `json:"previous,omitempty"`
	PromotedAt time.Time `json:"promotedAt,omitzero"`
	// Rejected is the last version that failed; it is not released again
	// until the spec changes or the run is retried.
	Rejected *Backend `json:"rejected,omitempty"`

	// RouteGeneration is the generation of the last route emitted.
	RouteGeneration int64 `json:"routeGeneration"`
	// WakeAt is when the shell must call Next again even if nothing is
	// observed (zero: only on observations).
	WakeAt time.Time `json:"wakeAt,omitzero"`
}

// Wait kinds.
const (
	WaitWebhook  = "webhook"  // a confirm-* webhook has not said go yet
	WaitPause    = "pause"    // a pause step without a duration: `aviary promote`
	WaitGate     = "gate"     // a gate step: `aviary approve --gate NAME`
	WaitDecision = "decision" // a person must decide (manual mode, hybrid on failure)
)

// Wait is what a run waits for and since when.
type Wait struct {
	Kind  string    `json:"kind"`
	Name  string    `json:"name,omitempty"`
	Since time.Time `json:"since"`
}

// Pause causes.
const (
	PauseOperator = "operator" // `aviary pause`
	PauseErrors   = "errors"   // too many consecutive measurement errors
	PauseDeadline = "deadline" // no progress within the progress deadline
	PauseFailure  = "failure"  // hybrid mode: checks failed, a person decides
)

// PauseInfo says why and since when a run is paused.
type PauseInfo struct {
	Cause  string    `json:"cause"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// AnalysisStatus is the running tally of a run's checks.
type AnalysisStatus struct {
	// Interval counts intervals requested in this run; the pending or last
	// one is number Interval.
	Interval int `json:"interval"`
	// Start and End bound the pending or last interval's window.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Pending is set while the results of interval Interval are awaited;
	// RequestedAt is when they were (last) asked for.
	Pending     bool      `json:"pending,omitempty"`
	RequestedAt time.Time `json:"requestedAt,omitzero"`
	// Failures counts intervals with a failed check; ConsecutiveErrors
	// counts the latest intervals in a row that could not be measured.
	Failures          int `json:"failures"`
	ConsecutiveErrors int `json:"consecutiveErrors"`
	// StepPassed is set when an interval that began within the current step
	// passed every check.
	StepPassed bool `json:"stepPassed,omitempty"`
	// Checks are the latest results, one per metric.
	Checks []analysis.Result `json:"checks,omitempty"`
}

// HookStatus tracks one webhook within a run.
type HookStatus struct {
	Name string `json:"name"`
	// Key identifies the call awaited; results with another key are stale.
	Key      string    `json:"key,omitempty"`
	CalledAt time.Time `json:"calledAt,omitzero"`
	Passed   bool      `json:"passed,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// hook returns the status of the named hook, creating it.
func (s *Status) hook(name string) *HookStatus {
	for i := range s.Hooks {
		if s.Hooks[i].Name == name {
			return &s.Hooks[i]
		}
	}
	s.Hooks = append(s.Hooks, HookStatus{Name: name})
	return &s.Hooks[len(s.Hooks)-1]
}

// clone returns a deep copy of s, so that Next never changes its input.
func (s Status) clone() Status {
	c := s
	c.Canary = s.Canary.clone()
	c.Previous = s.Previous.clone()
	c.Rejected = s.Rejected.clone()
	if s.Waiting != nil {
		w := *s.Waiting
		c.Waiting = &w
	}
	if s.Pause != nil {
		p := *s.Pause
		c.Pause = &p
	}
	c.Stable.Upstreams = append([]string(nil), s.Stable.Upstreams...)
	c.Analysis.Checks = append([]analysis.Result(nil), s.Analysis.Checks...)
	c.Hooks = append([]HookStatus(nil), s.Hooks...)
	return c
}

func (b *Backend) clone() *Backend {
	if b == nil {
		return nil
	}
	c := Backend{Version: b.Version, Upstreams: append([]string(nil), b.Upstreams...)}
	return &c
}
