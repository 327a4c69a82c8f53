package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// snapshot is everything the store answers, for comparisons before and after
// a refused call.
type snapshot struct {
	Records   []Record
	Revisions map[string][]Revision
	Runs      map[string][]Run
	Series    map[string][]Point
	Events    []EventRecord
}

func take(t *testing.T, db *DB) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{Revisions: map[string][]Revision{}, Runs: map[string][]Run{}, Series: map[string][]Point{}}
	var err error
	if s.Records, err = db.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Records {
		if s.Revisions[r.Name], err = db.Revisions(ctx, r.Name); err != nil {
			t.Fatal(err)
		}
		if s.Runs[r.Name], err = db.Runs(ctx, r.Name); err != nil {
			t.Fatal(err)
		}
		for run := 0; run <= r.Status.Run; run++ {
			if s.Series[fmt.Sprint(r.Name, run)], err = db.Series(ctx, r.Name, run); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.Events, err = db.Events(ctx, EventQuery{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// files reads the database file and its write-ahead log.
func files(t *testing.T, path string) [2][]byte {
	t.Helper()
	var out [2][]byte
	for i, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func TestRouteNeverGoesBack(t *testing.T) {
	db, path := tempDB(t)
	ctx := context.Background()
	st := running(1, 10, at(1))
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized(), Route: route(1, 0)})
	mustCommit(t, db, Transition{Name: "web", At: at(1), Status: st, Route: route(5, 10), Events: []rollout.Event{event(1, rollout.EventStarted)}})
	mustCommit(t, db, Transition{Name: "api", At: at(2), Manifest: spec(t, "api", "v1"), Status: initialized(), Route: route(3, 0)})
	before, beforeFiles := take(t, db), files(t, path)

	// One Commit: a valid transition of api, then web's route going back.
	// The whole Commit is refused, api's part included.
	err := db.Commit(ctx,
		Transition{Name: "api", At: at(3), Manifest: spec(t, "api", "v2"), Status: running(1, 5, at(3)), Route: route(4, 5),
			Events: []rollout.Event{event(3, rollout.EventStarted)}, Points: []Point{point(1, 1, "error-rate", analysis.Pass)}},
		Transition{Name: "web", At: at(3), Manifest: spec(t, "web", "v3"), Status: st, Route: route(4, 50),
			Events: []rollout.Event{event(3, rollout.EventWeight)}, Finished: []rollout.Finish{{Run: 1, Outcome: rollout.PhaseFailed}}},
	)
	if !errors.Is(err, ErrStaleRoute) {
		t.Fatalf("got %v, want ErrStaleRoute", err)
	}
	want := `commit "web": route generation 4 is lower than the stored 5`
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %q", err, want)
	}
	diff(t, "state after the refused Commit", take(t, db), before)
	if got := files(t, path); !bytes.Equal(got[0], beforeFiles[0]) || !bytes.Equal(got[1], beforeFiles[1]) {
		t.Errorf("the refused Commit changed the files")
	}

	// The same generation is accepted (a route re-committed), a higher one too.
	mustCommit(t, db, Transition{Name: "web", At: at(4), Status: st, Route: route(5, 10)})
	mustCommit(t, db, Transition{Name: "web", At: at(5), Status: st, Route: route(6, 25)})
	rec, _ := db.Get(ctx, "web")
	diff(t, "route", rec.Route, route(6, 25))
}

func TestRunsDerivedAndFinished(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	runs := func() []Run {
		t.Helper()
		rs, err := db.Runs(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	ptr := func(n int) *time.Time { x := at(n); return &x }

	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	diff(t, "runs before the first run", runs(), []Run(nil))

	// Run 1 starts, goes on, is promoted, then rolled back within the window.
	mustCommit(t, db, Transition{Name: "web", At: at(10), Manifest: spec(t, "web", "v2"), Status: running(1, 0, at(10))})
	mustCommit(t, db, Transition{Name: "web", At: at(20), Status: running(1, 10, at(10))})
	diff(t, "run 1 going on", runs(), []Run{{Run: 1, Version: "v2", StableVersion: "v1", StartedAt: at(10)}})

	done := running(1, 100, at(10))
	done.Phase = rollout.PhaseSucceeded
	mustCommit(t, db, Transition{Name: "web", At: at(30), Status: done,
		Finished: []rollout.Finish{{Run: 1, Outcome: rollout.PhaseSucceeded, Version: "v2", Reason: "promoted"}}})
	diff(t, "run 1 promoted", runs(), []Run{{Run: 1, Version: "v2", StableVersion: "v1", StartedAt: at(10),
		EndedAt: ptr(30), Outcome: rollout.PhaseSucceeded, Reason: "promoted"}})

	done.Phase = rollout.PhaseFailed
	mustCommit(t, db, Transition{Name: "web", At: at(40), Status: done,
		Finished: []rollout.Finish{{Run: 1, Outcome: rollout.PhaseFailed, Version: "v2", Reason: "rolled back by alice"}}})
	diff(t, "run 1 rolled back after promotion", runs(), []Run{{Run: 1, Version: "v2", StableVersion: "v1", StartedAt: at(10),
		EndedAt: ptr(40), Outcome: rollout.PhaseFailed, Reason: "rolled back by alice"}})

	// Run 2 starts; run 3 supersedes it in one transition.
	two := running(2, 0, at(50))
	two.Canary.Version = "v3"
	mustCommit(t, db, Transition{Name: "web", At: at(50), Manifest: spec(t, "web", "v3"), Status: two})
	three := running(3, 0, at(60))
	three.Canary.Version = "v4"
	mustCommit(t, db, Transition{Name: "web", At: at(60), Manifest: spec(t, "web", "v4"), Status: three,
		Finished: []rollout.Finish{{Run: 2, Outcome: rollout.PhaseFailed, Version: "v3", Reason: "superseded"}}})
	// A merged transition that never recorded run 4 still records its end.
	five := running(5, 0, at(70))
	five.Canary.Version = "v6"
	mustCommit(t, db, Transition{Name: "web", At: at(70), Status: five, Finished: []rollout.Finish{
		{Run: 3, Outcome: rollout.PhaseFailed, Version: "v4", Reason: "superseded"},
		{Run: 4, Outcome: rollout.PhaseFailed, Version: "v5", Reason: "superseded"},
	}})
	diff(t, "runs, newest first", runs(), []Run{
		{Run: 5, Version: "v6", StableVersion: "v1", StartedAt: at(70)},
		{Run: 4, Version: "v5", StartedAt: at(70), EndedAt: ptr(70), Outcome: rollout.PhaseFailed, Reason: "superseded"},
		{Run: 3, Version: "v4", StableVersion: "v1", StartedAt: at(60), EndedAt: ptr(70), Outcome: rollout.PhaseFailed, Reason: "superseded"},
		{Run: 2, Version: "v3", StableVersion: "v1", StartedAt: at(50), EndedAt: ptr(60), Outcome: rollout.PhaseFailed, Reason: "superseded"},
		{Run: 1, Version: "v2", StableVersion: "v1", StartedAt: at(10), EndedAt: ptr(40), Outcome: rollout.PhaseFailed, Reason: "rolled back by alice"},
	})
}

func TestEventsPaging(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db,
		Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()},
		Transition{Name: "api", At: at(0), Manifest: spec(t, "api", "v1"), Status: initialized()})
	want := map[string][]rollout.Event{}
	var all []string
	for i := 1; i <= 7; i++ {
		for _, name := range []string{"web", "api"} {
			evs := []rollout.Event{event(i, rollout.EventWeight), event(i, rollout.EventStep)}
			evs[0].Reason, evs[1].Reason = fmt.Sprintf("%s %d a", name, i), fmt.Sprintf("%s %d b", name, i)
			if name == "api" && i%3 == 0 {
				evs = nil // not every transition has events
			}
			mustCommit(t, db, Transition{Name: name, At: at(i), Status: initialized(), Events: evs})
			want[name] = append(want[name], evs...)
			for _, e := range evs {
				all = append(all, e.Reason)
			}
		}
	}

	page := func(q EventQuery) []EventRecord {
		t.Helper()
		var out []EventRecord
		for {
			got, err := db.Events(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > q.Limit {
				t.Fatalf("page of %d events, limit %d", len(got), q.Limit)
			}
			if len(got) == 0 {
				return out
			}
			out = append(out, got...)
			q.AfterID = got[len(got)-1].ID
		}
	}
	for _, name := range []string{"web", "api"} {
		got := page(EventQuery{Name: name, Limit: 3})
		var evs []rollout.Event
		for i, r := range got {
			if r.Rollout != name {
				t.Errorf("%s's event %d belongs to %q", name, r.ID, r.Rollout)
			}
			if i > 0 && r.ID <= got[i-1].ID {
				t.Errorf("IDs out of order: %d after %d", r.ID, got[i-1].ID)
			}
			evs = append(evs, r.Event)
		}
		diff(t, name+"'s events paged by 3", evs, want[name])
	}
	var reasons []string
	for _, r := range page(EventQuery{Limit: 4}) {
		reasons = append(reasons, r.Event.Reason)
	}
	diff(t, "all events paged by 4, in commit order", reasons, all)

	unlimited, err := db.Events(ctx, EventQuery{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(unlimited) != len(want["web"]) {
		t.Errorf("Limit 0: got %d events, want all %d", len(unlimited), len(want["web"]))
	}
	after, _ := db.Events(ctx, EventQuery{AfterID: unlimited[len(unlimited)-1].ID})
	for _, r := range after {
		if r.Rollout != "api" {
			t.Errorf("after web's last event: got one of %q", r.Rollout)
		}
	}
}

func TestSeries(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: running(1, 10, at(0))})
	// Out of order across commits: the series comes back by interval, then metric.
	mustCommit(t, db, Transition{Name: "web", At: at(60), Status: running(1, 10, at(0)), Points: []Point{
		point(1, 2, "latency-p99", analysis.Pass), point(1, 2, "error-rate", analysis.Inconclusive)}})
	mustCommit(t, db, Transition{Name: "web", At: at(30), Status: running(1, 10, at(0)), Points: []Point{
		point(1, 1, "latency-p99", analysis.Pass), point(1, 1, "error-rate", analysis.Pass)}})
	// A rollout that mirrors traffic: the point carries its shadow.
	shadowed := point(2, 1, "error-rate", analysis.Fail)
	shadowed.Shadow = &Shadow{Canary: analysis.Measurement{Start: at(60), End: at(90), Value: 0.05, HasValue: true, Count: 400, Requests: 400, Errors: 20},
		Result: analysis.Result{Metric: "error-rate", Verdict: analysis.Fail, Canary: 0.05, HasCanary: true, CanaryCount: 400, Reason: "shadow: canary 5% vs stable 0.3%"}}
	mustCommit(t, db, Transition{Name: "web", At: at(90), Status: running(2, 10, at(90)), Points: []Point{shadowed}})
	// The same interval measured again replaces the point.
	again := point(1, 2, "error-rate", analysis.Fail)
	again.Result.Reason = "measured again"
	mustCommit(t, db, Transition{Name: "web", At: at(95), Status: running(2, 10, at(90)), Points: []Point{again}})

	got, err := db.Series(ctx, "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "run 1", got, []Point{point(1, 1, "error-rate", analysis.Pass), point(1, 1, "latency-p99", analysis.Pass),
		again, point(1, 2, "latency-p99", analysis.Pass)})
	got, _ = db.Series(ctx, "web", 2)
	diff(t, "run 2", got, []Point{shadowed})
	got, err = db.Series(ctx, "web", 9)
	if err != nil || len(got) != 0 {
		t.Errorf("a run without points: got %v, %v; want an empty series", got, err)
	}
}

func TestCommitCanceled(t *testing.T) {
	db, _ := tempDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.Commit(ctx, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if all, _ := db.Load(context.Background()); len(all) != 0 {
		t.Errorf("a canceled Commit wrote %d rollouts", len(all))
	}
}

// Prune keeps the measurements of each rollout's last runs and deletes the
// older ones, in batches, leaving runs and events alone.
func TestPrune(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()},
		Transition{Name: "api", At: at(0), Manifest: spec(t, "api", "v1"), Status: initialized()})
	// web: 120 runs with two points each (more than one batch); api: 2 runs.
	for run := 1; run <= 120; run++ {
		mustCommit(t, db, Transition{Name: "web", At: at(run), Status: running(run, 10, at(run)),
			Points: []Point{point(run, 1, "error-rate", analysis.Pass), point(run, 2, "error-rate", analysis.Pass)}})
	}
	for run := 1; run <= 2; run++ {
		mustCommit(t, db, Transition{Name: "api", At: at(run), Status: running(run, 10, at(run)),
			Points: []Point{point(run, 1, "error-rate", analysis.Pass)}})
	}
	runsBefore, _ := db.Runs(ctx, "web")
	eventsBefore, _ := db.Events(ctx, EventQuery{})

	if _, err := db.Prune(ctx, 0); err == nil {
		t.Error("Prune(0) would delete the current run's measurements: want an error")
	}
	n, err := db.Prune(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*117 {
		t.Errorf("pruned %d points, want %d (web's runs 1-117, two points each)", n, 2*117)
	}
	for run := 1; run <= 120; run++ {
		pts, err := db.Series(ctx, "web", run)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 2, false: 0}[run > 117]; len(pts) != want {
			t.Errorf("web run %d: %d points left, want %d", run, len(pts), want)
		}
	}
	for run := 1; run <= 2; run++ {
		if pts, _ := db.Series(ctx, "api", run); len(pts) != 1 {
			t.Errorf("api run %d: %d points left, want its 1 (within the last 3 runs)", run, len(pts))
		}
	}
	runsAfter, _ := db.Runs(ctx, "web")
	eventsAfter, _ := db.Events(ctx, EventQuery{})
	if len(runsAfter) != len(runsBefore) || len(eventsAfter) != len(eventsBefore) {
		t.Errorf("runs %d -> %d, events %d -> %d: pruning measurements removed history", len(runsBefore), len(runsAfter), len(eventsBefore), len(eventsAfter))
	}
	if n, err := db.Prune(ctx, 3); err != nil || n != 0 {
		t.Errorf("a second Prune deleted %d (%v), want nothing", n, err)
	}
}
