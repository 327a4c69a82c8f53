// Package store keeps rollouts, their spec revisions, run records, events
// and measurement series in SQLite.
package store

import (
	"errors"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// ErrNotFound means the rollout does not exist.
var ErrNotFound = errors.New("rollout not found")

// Record is a rollout as stored: its latest spec, status and route.
type Record struct {
	Name      string           `json:"name"`
	Manifest  rollout.Manifest `json:"manifest"`
	Revision  int64            `json:"revision"`
	Status    rollout.Status   `json:"status"`
	Route     *rollout.Route   `json:"route,omitempty"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

// Transition is one state change of one rollout, committed atomically.
type Transition struct {
	Name     string
	At       time.Time
	Manifest *rollout.Manifest
	Status   rollout.Status
	Route    *rollout.Route
	Events   []rollout.Event
	Finished []rollout.Finish
	Points   []Point
}

// Revision is one applied spec.
type Revision struct {
	Revision  int64            `json:"revision"`
	Manifest  rollout.Manifest `json:"manifest"`
	AppliedAt time.Time        `json:"appliedAt"`
}

// EventQuery selects events.
type EventQuery struct {
	Name    string
	AfterID int64
	Limit   int
}

// EventRecord is a stored event.
type EventRecord struct {
	ID      int64         `json:"id"`
	Rollout string        `json:"rollout"`
	Event   rollout.Event `json:"event"`
}

// Run is one run's record.
type Run struct {
	Run           int           `json:"run"`
	Version       string        `json:"version"`
	StableVersion string        `json:"stableVersion"`
	StartedAt     time.Time     `json:"startedAt"`
	EndedAt       *time.Time    `json:"endedAt,omitempty"`
	Outcome       rollout.Phase `json:"outcome,omitempty"`
	Reason        string        `json:"reason,omitempty"`
}

// Point is one metric measured over one interval of a run.
type Point struct {
	Run      int                  `json:"run"`
	Interval int                  `json:"interval"`
	Metric   string               `json:"metric"`
	At       time.Time            `json:"at"`
	Canary   analysis.Measurement `json:"canary"`
	Stable   analysis.Measurement `json:"stable"`
	Result   analysis.Result      `json:"result"`
}
