package server

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"aviary/internal/rollout"
	"aviary/internal/store"
)

// userHeader names the person behind a call. The token is shared, so the
// header is a label for events ("aborted by alice"), not an identity the
// server checks.
const userHeader = "X-Aviary-User"

// DefaultUser is recorded when a call names no user.
const DefaultUser = "api"

// user is the caller's name from X-Aviary-User: printable, at most 64
// characters, DefaultUser when absent.
func user(r *http.Request) string {
	u := strings.TrimSpace(r.Header.Get(userHeader))
	u = strings.Map(func(c rune) rune {
		if unicode.IsPrint(c) {
			return c
		}
		return -1
	}, u)
	if len(u) > 64 {
		u = u[:64]
	}
	if u == "" {
		return DefaultUser
	}
	return u
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) error {
	recs := s.opts.Controller.List()
	now := s.opts.Now()
	out := List{Rollouts: make([]Status, len(recs))}
	for i, rec := range recs {
		out.Rollouts[i] = NewStatus(rec, now)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.opts.Controller.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, NewStatus(rec, s.opts.Now()))
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.opts.Controller.Delete(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "deleted": true})
	return nil
}

// commandRequest is the optional body of an operation.
type commandRequest struct {
	Full   bool   `json:"full"`
	Gate   string `json:"gate"`
	Reason string `json:"reason"`
}

// command carries out one operation (promote, abort, …) on a rollout.
func (s *Server) command(op string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req commandRequest
		if err := decodeJSON(r, &req, true); err != nil {
			return err
		}
		switch {
		case req.Full && op != rollout.OpPromote:
			return invalidError{what: "the request", fields: rollout.FieldErrors{{Path: "full", Message: fmt.Sprintf("full applies to promote, not to %s", op)}}}
		case req.Gate != "" && op != rollout.OpApprove:
			return invalidError{what: "the request", fields: rollout.FieldErrors{{Path: "gate", Message: fmt.Sprintf("gate applies to approve, not to %s", op)}}}
		case len(req.Reason) > 1024:
			return invalidError{what: "the request", fields: rollout.FieldErrors{{Path: "reason", Message: "keep the reason under 1024 bytes"}}}
		}
		cmd := rollout.Command{Op: op, Full: req.Full, Gate: req.Gate, By: user(r), Reason: req.Reason}
		rec, err := s.opts.Controller.Command(r.Context(), r.PathValue("name"), cmd)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, NewStatus(rec, s.opts.Now()))
		return nil
	}
}

// Limits of an events page.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rec, err := s.opts.Controller.Get(name)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	after, err := intParam(q.Get("after"), "after", 0, 0)
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", DefaultEventLimit, 1)
	if err != nil {
		return err
	}
	if limit > MaxEventLimit {
		return badRequest("limit=%d is more than the maximum of %d", limit, MaxEventLimit)
	}
	evs, err := s.opts.History.Events(r.Context(), store.EventQuery{Name: name, AfterID: after, Limit: int(limit)})
	if err != nil {
		return fmt.Errorf("read events of %q: %w", name, err)
	}
	out := Events{Events: make([]Event, len(evs)), Next: after}
	steps := stepCount(rec)
	for i, e := range evs {
		out.Events[i] = newEvent(e.ID, e.Rollout, e.Event, steps)
		out.Next = e.ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// intParam parses a whole-number query parameter of at least lowest.
func intParam(v, name string, def, lowest int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lowest {
		return 0, badRequest("%s=%q: want a whole number of at least %d", name, v, lowest)
	}
	return n, nil
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := s.opts.Controller.Get(name); err != nil {
		return err
	}
	runs, err := s.opts.History.Runs(r.Context(), name)
	if err != nil {
		return fmt.Errorf("read runs of %q: %w", name, err)
	}
	out := Runs{Runs: make([]Run, len(runs))}
	for i, r := range runs {
		out.Runs[i] = newRun(r)
	}
	sort.Slice(out.Runs, func(i, j int) bool { return out.Runs[i].Run > out.Runs[j].Run })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) measurements(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rec, err := s.opts.Controller.Get(name)
	if err != nil {
		return err
	}
	run, err := intParam(r.PathValue("run"), "run", 0, 1)
	if err != nil {
		return err
	}
	if run > int64(rec.Status.Run) {
		return notFound("rollout %q has no run %d (its last run is %d)", name, run, rec.Status.Run)
	}
	points, err := s.opts.History.Series(r.Context(), name, int(run))
	if err != nil {
		return fmt.Errorf("read measurements of %q run %d: %w", name, run, err)
	}
	out := Measurements{Run: int(run), Points: make([]Point, len(points))}
	for i, p := range points {
		out.Points[i] = newPoint(p)
	}
	sort.SliceStable(out.Points, func(i, j int) bool { return out.Points[i].Interval < out.Points[j].Interval })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) revisions(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := s.opts.Controller.Get(name); err != nil {
		return err
	}
	revs, err := s.opts.History.Revisions(r.Context(), name)
	if err != nil {
		return fmt.Errorf("read revisions of %q: %w", name, err)
	}
	out := Revisions{Revisions: make([]Revision, len(revs))}
	for i, r := range revs {
		out.Revisions[i] = Revision{Revision: r.Revision, AppliedAt: r.AppliedAt, Manifest: r.Manifest}
	}
	sort.Slice(out.Revisions, func(i, j int) bool { return out.Revisions[i].Revision < out.Revisions[j].Revision })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listRoutes(w http.ResponseWriter, _ *http.Request) error {
	recs := s.opts.Controller.List()
	out := Routes{Routes: make([]RouteEntry, len(recs))}
	for i, rec := range recs {
		out.Routes[i] = newRouteEntry(rec)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
