package server

import (
	"fmt"
	"net/http"
	"time"

	"aviary/internal/controller"
	"aviary/internal/store"
)

// Event types of the streams.
const (
	// EventRollout carries a RolloutChange (GET /api/v1/watch).
	EventRollout = "rollout"
	// EventRoute carries a RouteEntry (GET /api/v1/routes/watch).
	EventRoute = "route"
	// EventDeleted carries a Deleted.
	EventDeleted = "deleted"
	// EventResync carries a Resync: forget what you know; the Count
	// rollout (or route) events that follow are the complete state.
	EventResync = "resync"
)

// RolloutChange is the data of a rollout event: the rollout's status and
// the events its transition recorded (none in a resync).
type RolloutChange struct {
	Rollout Status  `json:"rollout"`
	Events  []Event `json:"events"`
}

// Deleted is the data of a deleted event.
type Deleted struct {
	Name string `json:"name"`
}

// Resync is the data of a resync event.
type Resync struct {
	Count int `json:"count"`
}

// emitter writes server-sent events and flushes each.
type emitter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (e emitter) event(typ string, v any) error {
	b, err := marshal(v, false)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e emitter) comment(text string) error {
	if _, err := fmt.Fprintf(e.w, ": %s\n\n", text); err != nil {
		return err
	}
	return e.rc.Flush()
}

// streamFuncs shape a stream: snapshot sends the complete state after a
// resync event; change sends one change.
type streamFuncs struct {
	snapshot func(e emitter, recs []store.Record) error
	change   func(e emitter, c controller.Change) error
	filter   func(name string) bool
	// forget, when set, hears of deleted rollouts.
	forget func(name string)
}

// stream subscribes to the controller's changes and sends them as
// server-sent events until the client leaves or the server closes. It opens
// with a resync and the complete state, and sends another whenever the
// subscription fell behind, so that a client never has to read the state
// separately and never misses a change.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, f streamFuncs) error {
	changes, cancel := s.opts.Controller.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	e := emitter{w: w, rc: http.NewResponseController(w)}
	// A stream outlives any write timeout the http.Server sets for calls.
	_ = e.rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	resync := func() error {
		var recs []store.Record
		for _, rec := range s.opts.Controller.List() {
			if f.filter(rec.Name) {
				recs = append(recs, rec)
			}
		}
		if err := e.event(EventResync, Resync{Count: len(recs)}); err != nil {
			return err
		}
		return f.snapshot(e, recs)
	}
	if _, err := fmt.Fprintf(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	if err := resync(); err != nil {
		return nil // the client left: nothing to answer
	}
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-s.closed:
			return nil
		case <-heartbeat.C:
			err = e.comment("heartbeat")
		case c, ok := <-changes:
			switch {
			case !ok:
				return nil
			case c.Resync:
				err = resync()
			case !f.filter(c.Name):
			case c.Deleted:
				if f.forget != nil {
					f.forget(c.Name)
				}
				err = e.event(EventDeleted, Deleted{Name: c.Name})
			default:
				err = f.change(e, c)
			}
		}
		if err != nil {
			return nil
		}
	}
}

// watch streams rollout changes: every rollout, or the one named by ?name=.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" {
		if _, err := s.opts.Controller.Get(name); err != nil {
			return err
		}
	}
	return s.stream(w, r, streamFuncs{
		filter: func(n string) bool { return name == "" || n == name },
		snapshot: func(e emitter, recs []store.Record) error {
			now := s.opts.Now()
			for _, rec := range recs {
				if err := e.event(EventRollout, RolloutChange{Rollout: NewStatus(rec, now), Events: []Event{}}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(e emitter, c controller.Change) error {
			evs := make([]Event, len(c.Events))
			steps := stepCount(c.Record)
			for i, ev := range c.Events {
				evs[i] = newEvent(0, c.Name, ev, steps)
			}
			return e.event(EventRollout, RolloutChange{Rollout: NewStatus(c.Record, s.opts.Now()), Events: evs})
		},
	})
}

// watchRoutes streams route changes for data-plane processes: an entry is
// sent when a rollout's route generation or spec revision changed.
func (s *Server) watchRoutes(w http.ResponseWriter, r *http.Request) error {
	type version struct{ gen, rev int64 }
	sent := map[string]version{}
	versionOf := func(rec store.Record) version {
		v := version{rev: rec.Revision}
		if rec.Route != nil {
			v.gen = rec.Route.Generation
		}
		return v
	}
	return s.stream(w, r, streamFuncs{
		filter: func(string) bool { return true },
		forget: func(name string) { delete(sent, name) },
		snapshot: func(e emitter, recs []store.Record) error {
			clear(sent)
			for _, rec := range recs {
				sent[rec.Name] = versionOf(rec)
				if err := e.event(EventRoute, newRouteEntry(rec)); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(e emitter, c controller.Change) error {
			v := versionOf(c.Record)
			if old, ok := sent[c.Name]; ok && old.gen >= v.gen && old.rev >= v.rev {
				return nil
			}
			sent[c.Name] = v
			return e.event(EventRoute, newRouteEntry(c.Record))
		},
	})
}
