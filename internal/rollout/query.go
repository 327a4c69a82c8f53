package rollout

import "time"

// Roles of a version in a run.
const (
	RoleStable = "stable"
	RoleCanary = "canary"
)

// Query asks a provider for one metric of one version over one window.
type Query struct {
	// Rollout is the rollout's name.
	Rollout string `json:"rollout"`
	// Metric is the metric as written in the spec.
	Metric Metric `json:"metric"`
	// Version and Role name the version measured: RoleStable or RoleCanary.
	Version string `json:"version"`
	Role    string `json:"role"`
	// Shadow asks for the canary's mirrored (shadow) traffic instead of its
	// live traffic.
	Shadow bool `json:"shadow,omitempty"`
	// Start and End bound the window [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Interval is the window's length.
func (q Query) Interval() time.Duration { return q.End.Sub(q.Start) }
