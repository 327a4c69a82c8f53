package store

import (
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Record is a rollout as stored: its latest spec revision, its status and the
// last route emitted for it. Times come back in UTC.
type Record struct {
	Name     string
	Manifest rollout.Manifest
	// Revision is the number of Manifest's revision, counted from 1.
	Revision int64
	Status   rollout.Status
	// Route is the last route emitted, nil before the first.
	Route     *rollout.Route
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Transition is one step of a rollout, committed atomically by DB.Commit: the
// result of one call to rollout.Next (or of an apply).
type Transition struct {
	// Name is the rollout's name.
	Name string
	// At is when the transition happened: the rollout's UpdatedAt, a new
	// revision's AppliedAt, a finished run's EndedAt. It must be set.
	At time.Time
	// Manifest, when non-nil, is stored as a new spec revision, creating the
	// rollout if it does not exist. A manifest identical to the latest
	// revision adds no revision. Its metadata.name must equal Name.
	Manifest *rollout.Manifest
	// Status is the rollout's new status; it is always written.
	Status rollout.Status
	// Route, when non-nil, is the last route emitted. Its Generation must not
	// be lower than the stored route's (ErrStaleRoute); equal replaces it.
	Route *rollout.Route
	// Events are appended to the rollout's event log, in order.
	Events []rollout.Event
	// Finished close run records: outcome, reason, and EndedAt = At. A Finish
	// for a run already closed updates it (a rollback after promotion turns
	// Succeeded into Failed).
	Finished []rollout.Finish
	// Points are appended to their runs' measurement series; a point for a
	// (run, interval, metric) already stored replaces it.
	Points []Point
}

// Revision is one version of a rollout's spec.
type Revision struct {
	Revision  int64
	Manifest  rollout.Manifest
	AppliedAt time.Time
}

// Run is one attempt to release one canary version.
type Run struct {
	Run           int
	Version       string
	StableVersion string
	StartedAt     time.Time
	// EndedAt is nil while the run goes on.
	EndedAt *time.Time
	// Outcome is PhaseSucceeded or PhaseFailed once the run ended, "" while
	// it runs.
	Outcome rollout.Phase
	Reason  string
}

// Point is one check of one metric in one interval of a run: what the
// provider measured for both versions and the verdict.
type Point struct {
	Run      int
	Interval int
	Metric   string
	At       time.Time
	Canary   analysis.Measurement
	Stable   analysis.Measurement
	Result   analysis.Result
	// Shadow is the canary's measurement of its mirrored requests and the
	// metric's check of it against Stable, when the rollout mirrors
	// traffic; nil otherwise.
	Shadow *Shadow
}

// Shadow is a point's shadow (mirrored) measurement and its check.
type Shadow struct {
	Canary analysis.Measurement `json:"canary"`
	Result analysis.Result      `json:"result"`
}

// EventQuery selects events for DB.Events.
type EventQuery struct {
	// Name selects one rollout's events; "" selects every rollout's,
	// including rollouts deleted since.
	Name string
	// AfterID returns only events with a greater ID (0: from the start).
	AfterID int64
	// Limit caps the number of events returned; 0 or less: no cap.
	Limit int
}

// EventRecord is a stored event with its ID in the global event log.
type EventRecord struct {
	// ID grows in commit order across all rollouts.
	ID      int64
	Rollout string
	Event   rollout.Event
}

// EventDeleted is the type of the event Delete appends to the global log.
const EventDeleted = "Deleted"
