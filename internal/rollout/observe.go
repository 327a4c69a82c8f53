package rollout

import "aviary/internal/analysis"

// Observations are what the shell learned since the last call to Next.
type Observations struct {
	// Commands are operations from people, in the order they were given.
	Commands []Command `json:"commands,omitempty"`
	// Checks are verdicts for an interval requested by RunChecks.
	Checks *CheckResults `json:"checks,omitempty"`
	// Hooks are answers of webhooks called by CallHook.
	Hooks []HookResult `json:"hooks,omitempty"`
	// Applied is the highest route generation the router has applied.
	Applied int64 `json:"applied,omitempty"`
}

// CheckResults are the verdicts of one interval.
type CheckResults struct {
	Run      int               `json:"run"`
	Interval int               `json:"interval"`
	Results  []analysis.Result `json:"results"`
}

// HookResult is a webhook's answer: OK when it answered 2xx in time.
type HookResult struct {
	Name    string `json:"name"`
	Key     string `json:"key"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// Operations people can ask for.
const (
	OpPromote  = "promote"
	OpAbort    = "abort"
	OpPause    = "pause"
	OpResume   = "resume"
	OpRetry    = "retry"
	OpRollback = "rollback"
	OpApprove  = "approve"
)

// Command is an operation asked for by a person (or a script).
type Command struct {
	Op string `json:"op"`
	// Full skips to 100% (promote only).
	Full bool `json:"full,omitempty"`
	// Gate names the gate an approval answers (approve only; empty: the
	// gate the run waits at).
	Gate string `json:"gate,omitempty"`
	// By and Reason are recorded in the event.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}
