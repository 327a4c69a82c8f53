package servertest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/store"
)

// MemStore is an in-memory store with the SQLite store's rules: atomic
// commits, a revision per applied spec, routes that never go back, events
// numbered from 1, runs opened when a status starts one and closed by
// Finish. It serves both the controller (controller.Store) and the API
// (server.History).
type MemStore struct {
	mu        sync.Mutex
	Records   map[string]store.Record     `json:"records"`
	Revs      map[string][]store.Revision `json:"revisions"`
	EventLog  []store.EventRecord         `json:"events"`
	RunLog    map[string][]store.Run      `json:"runs"`
	Points    map[string][]store.Point    `json:"points"`
	LastEvent int64                       `json:"lastEvent"`
	// Commits counts successful commits.
	Commits int `json:"commits"`
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{
		Records: map[string]store.Record{},
		Revs:    map[string][]store.Revision{},
		RunLog:  map[string][]store.Run{},
		Points:  map[string][]store.Point{},
	}
}

// roundTrip copies v through JSON, as a database would.
func roundTrip[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// Dump is the store's complete content as JSON (maps in key order): equal
// dumps mean nothing was written.
func (s *MemStore) Dump() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Load returns every rollout.
func (s *MemStore) Load(context.Context) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Record, 0, len(s.Records))
	for _, r := range s.Records {
		out = append(out, roundTrip(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Commit applies transitions atomically: all or none.
func (s *MemStore) Commit(_ context.Context, ts ...store.Transition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]store.Record{}
	for _, t := range ts {
		r, ok := next[t.Name]
		if !ok {
			r, ok = s.Records[t.Name]
		}
		if !ok && t.Manifest == nil {
			return fmt.Errorf("%s: %w", t.Name, store.ErrNotFound)
		}
		if t.Route != nil && r.Route != nil && t.Route.Generation < r.Route.Generation {
			return fmt.Errorf("%s: route generation %d after %d", t.Name, t.Route.Generation, r.Route.Generation)
		}
		next[t.Name] = apply(r, t)
	}
	for _, t := range ts {
		s.record(t, next[t.Name])
	}
	for k, v := range next {
		s.Records[k] = v
	}
	s.Commits++
	return nil
}

func apply(r store.Record, t store.Transition) store.Record {
	if r.Name == "" {
		r.Name, r.CreatedAt = t.Name, t.At
	}
	if t.Manifest != nil {
		r.Manifest = roundTrip(*t.Manifest)
		r.Revision++
	}
	r.Status = roundTrip(t.Status)
	if t.Route != nil {
		rt := roundTrip(*t.Route)
		r.Route = &rt
	}
	r.UpdatedAt = t.At
	return r
}

// record appends a committed transition's history. The caller holds mu.
func (s *MemStore) record(t store.Transition, r store.Record) {
	if t.Manifest != nil {
		s.Revs[t.Name] = append(s.Revs[t.Name], store.Revision{Revision: r.Revision, Manifest: r.Manifest, AppliedAt: t.At})
	}
	runs := s.RunLog[t.Name]
	if st := t.Status; st.Run > 0 && (len(runs) == 0 || runs[len(runs)-1].Run < st.Run) && st.Canary != nil {
		runs = append(runs, store.Run{Run: st.Run, Version: st.Canary.Version, StableVersion: st.Stable.Version, StartedAt: orTime(st.RunStartedAt, t.At)})
	}
	for _, f := range t.Finished {
		for i := range runs {
			if runs[i].Run == f.Run {
				at := t.At
				runs[i].EndedAt, runs[i].Outcome, runs[i].Reason = &at, f.Outcome, f.Reason
			}
		}
	}
	s.RunLog[t.Name] = runs
	for _, e := range t.Events {
		s.LastEvent++
		s.EventLog = append(s.EventLog, store.EventRecord{ID: s.LastEvent, Rollout: t.Name, Event: roundTrip(e)})
	}
	s.Points[t.Name] = append(s.Points[t.Name], roundTrip(t.Points)...)
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// Series returns one run's measurements.
func (s *MemStore) Series(_ context.Context, name string, run int) ([]store.Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Point
	for _, p := range s.Points[name] {
		if p.Run == run {
			out = append(out, p)
		}
	}
	return out, nil
}

// Delete removes a rollout and its history.
func (s *MemStore) Delete(_ context.Context, name string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Records[name]; !ok {
		return fmt.Errorf("%s: %w", name, store.ErrNotFound)
	}
	delete(s.Records, name)
	delete(s.Revs, name)
	delete(s.RunLog, name)
	delete(s.Points, name)
	kept := s.EventLog[:0]
	for _, e := range s.EventLog {
		if e.Rollout != name {
			kept = append(kept, e)
		}
	}
	s.EventLog = kept
	return nil
}

// Events returns a rollout's events after q.AfterID, oldest first, at most
// q.Limit (0: all).
func (s *MemStore) Events(_ context.Context, q store.EventQuery) ([]store.EventRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.EventRecord
	for _, e := range s.EventLog {
		if e.Rollout == q.Name && e.ID > q.AfterID {
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

// Runs returns a rollout's runs, oldest first.
func (s *MemStore) Runs(_ context.Context, name string) ([]store.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return roundTrip(s.RunLog[name]), nil
}

// Revisions returns a rollout's applied specs, oldest first.
func (s *MemStore) Revisions(_ context.Context, name string) ([]store.Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return roundTrip(s.Revs[name]), nil
}

// Route returns the stored route of a rollout.
func (s *MemStore) Route(name string) *rollout.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Records[name].Route
}
