package rollout

import "time"

// Action is something the shell must do. The concrete types are SetRoute,
// RunChecks, CallHook, Notify and Finish; the shell executes them in order.
type Action interface{ action() }

// SetRoute applies a route to the rollout's router.
type SetRoute struct {
	Route Route `json:"route"`
}

// RunChecks measures every metric of the spec for the canary and the stable
// version over [Start, End) and reports the verdicts as CheckResults for
// (Run, Interval).
type RunChecks struct {
	Run      int       `json:"run"`
	Interval int       `json:"interval"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Canary   Backend   `json:"canary"`
	Stable   Backend   `json:"stable"`
	// Shadow asks for the canary's mirrored traffic to be measured too.
	Shadow bool `json:"shadow,omitempty"`
}

// CallHook calls the named webhook of the spec and reports a HookResult with
// the same Key. Calls of post-rollout and event hooks are fire-and-forget:
// their results are not awaited.
type CallHook struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Key   string `json:"key"`
	Run   int    `json:"run"`
	Phase Phase  `json:"phase"`
	// Version and Weight describe the canary at the time of the call.
	Version string `json:"version"`
	Weight  int    `json:"weight"`
}

// Notify records an event and sends it to the notifiers whose severity
// filter lets it through.
type Notify struct {
	Event Event `json:"event"`
}

// Finish ends a run: the shell closes its record and stops what serves it
// (load tests, pending calls).
type Finish struct {
	Run     int    `json:"run"`
	Outcome Phase  `json:"outcome"`
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

func (SetRoute) action()  {}
func (RunChecks) action() {}
func (CallHook) action()  {}
func (Notify) action()    {}
func (Finish) action()    {}

// Event types.
const (
	EventInitialized  = "Initialized"
	EventStarted      = "Started"
	EventSuperseded   = "Superseded"
	EventWithdrawn    = "Withdrawn"
	EventWaiting      = "Waiting"
	EventWeight       = "WeightChanged"
	EventStep         = "StepCompleted"
	EventCheckFailed  = "CheckFailed"
	EventPaused       = "Paused"
	EventResumed      = "Resumed"
	EventPromoting    = "Promoting"
	EventPromoted     = "Promoted"
	EventRolledBack   = "RolledBack"
	EventHookFailed   = "HookFailed"
	EventRefused      = "Refused"
	EventRetried      = "Retried"
	EventAnalysisDone = "AnalysisPassed"
	EventApproved     = "Approved"
	EventReady        = "Ready"
)

// Severities of events, as notifiers filter them.
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// Event records a transition with a reason that names the numbers behind it.
type Event struct {
	Time     time.Time `json:"time"`
	Run      int       `json:"run"`
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	Phase    Phase     `json:"phase"`
	Weight   int       `json:"weight"`
	// Step is the index of the run's step when the event happened.
	Step   int    `json:"step"`
	Reason string `json:"reason"`
}
