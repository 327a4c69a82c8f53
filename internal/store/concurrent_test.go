package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Readers run while writers commit: every snapshot is consistent (a
// rollout's route and status come from the same transition), a reader never
// sees a generation go back, and a reader that pages the event log with
// AfterID sees every event exactly once.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	const writers, commits = 4, 60
	for w := range writers {
		mustCommit(t, db, Transition{Name: fmt.Sprint("r", w), At: at(0), Manifest: spec(t, fmt.Sprint("r", w), "v1"), Status: initialized()})
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("r", w)
			for i := 1; i <= commits; i++ {
				st := running(1, i%100, at(1))
				st.RouteGeneration = int64(i)
				err := db.Commit(ctx, Transition{Name: name, At: at(i), Status: st, Route: route(int64(i), i%100),
					Events: []rollout.Event{event(i, rollout.EventWeight)}, Points: []Point{point(1, i, "error-rate", analysis.Pass)}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() { readSnapshots(t, db, stop) })
	}
	var followed []EventRecord
	readers.Go(func() { followed = followEvents(t, db, stop) })

	wg.Wait()
	close(stop)
	readers.Wait()
	all, err := db.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*commits {
		t.Errorf("got %d events, want %d", len(all), writers*commits)
	}
	diff(t, "events seen by the follower", followed, all)
}

// readSnapshots loads every rollout until stop, checking each snapshot.
func readSnapshots(t *testing.T, db *DB, stop <-chan struct{}) {
	ctx := context.Background()
	seen := map[string]int64{}
	for {
		select {
		case <-stop:
			return
		default:
		}
		recs, err := db.Load(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		for _, r := range recs {
			if r.Route != nil && r.Route.Generation != r.Status.RouteGeneration {
				t.Errorf("%s: route generation %d with status of generation %d", r.Name, r.Route.Generation, r.Status.RouteGeneration)
			}
			if g := r.Status.RouteGeneration; g < seen[r.Name] {
				t.Errorf("%s: generation went back from %d to %d", r.Name, seen[r.Name], g)
			}
			seen[r.Name] = r.Status.RouteGeneration
			pts, err := db.Series(ctx, r.Name, 1)
			if err != nil {
				t.Error(err)
				return
			}
			// Series reads a later snapshot: at least as many points.
			if r.Route != nil && int64(len(pts)) < r.Route.Generation {
				t.Errorf("%s: %d points after generation %d", r.Name, len(pts), r.Route.Generation)
			}
		}
	}
}

// followEvents pages the global event log as it grows, until stop and one
// last time after, and returns what it saw.
func followEvents(t *testing.T, db *DB, stop <-chan struct{}) []EventRecord {
	var out []EventRecord
	var after int64
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		for {
			page, err := db.Events(context.Background(), EventQuery{AfterID: after, Limit: 7})
			if err != nil {
				t.Error(err)
				return out
			}
			if len(page) == 0 {
				break
			}
			out = append(out, page...)
			after = page[len(page)-1].ID
		}
	}
	return out
}

// Concurrent Commits are written in groups; a refused one does not take the
// others of its group down, and leaves nothing behind.
func TestConcurrentCommitsIndependent(t *testing.T) {
	db, _ := tempDB(t)
	ctx := context.Background()
	const n = 40
	for i := range n {
		name := fmt.Sprint("r", i)
		mustCommit(t, db, Transition{Name: name, At: at(0), Manifest: spec(t, name, "v1"), Status: initialized(), Route: route(10, 0)})
	}
	var wg sync.WaitGroup
	results := make([]error, n*5)
	for i := range n {
		for j := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gen := int64(10 + j + 1)
				if j == 2 {
					gen = 3 // stale: refused
				}
				// Generations 11..15 race each other: some are refused
				// because a higher one won; each Commit is its own unit.
				name := fmt.Sprint("r", i)
				results[i*5+j] = db.Commit(ctx, Transition{Name: name, At: at(j + 1), Status: initialized(), Route: route(gen, 0),
					Events: []rollout.Event{{Time: at(j + 1), Type: "Test", Reason: fmt.Sprint(gen)}}})
			}()
		}
	}
	wg.Wait()
	for i := range n {
		name := fmt.Sprint("r", i)
		accepted, top := map[string]bool{}, int64(10)
		for j := range 5 {
			gen, err := int64(10+j+1), results[i*5+j]
			switch {
			case j == 2 && !errors.Is(err, ErrStaleRoute):
				t.Errorf("%s: the stale route: got %v, want ErrStaleRoute", name, err)
			case err == nil:
				accepted[fmt.Sprint(gen)] = true
				top = max(top, gen)
			case !errors.Is(err, ErrStaleRoute):
				t.Errorf("%s commit %d: %v", name, j, err)
			}
		}
		evs, err := db.Events(ctx, EventQuery{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range evs {
			got[e.Event.Reason] = true
		}
		// The events are exactly those of the accepted Commits.
		diff(t, name+"'s events", got, accepted)
		if rec, _ := db.Get(ctx, name); rec.Route.Generation != top {
			t.Errorf("%s: stored generation %d, want the highest accepted %d", name, rec.Route.Generation, top)
		}
	}
}

// A nil error means committed, an error means not committed, even when the
// context ends while the Commit waits, and when Close races the Commits.
func TestCommitOutcomeIsExact(t *testing.T) {
	db, path := tempDB(t)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	const n = 300
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*100*time.Microsecond)
			defer cancel()
			results[i] = db.Commit(ctx, Transition{Name: "web", At: at(i), Status: initialized(),
				Events: []rollout.Event{{Time: at(i), Type: "Test", Reason: fmt.Sprint(i)}}})
		}()
		if i == n*2/3 {
			wg.Add(1)
			go func() { defer wg.Done(); db.Close() }()
		}
	}
	wg.Wait()
	db = open(t, path)
	evs, err := db.Events(context.Background(), EventQuery{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, e := range evs {
		present[e.Event.Reason] = true
	}
	var ok, canceled, closed int
	for i, err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, context.DeadlineExceeded):
			canceled++
		case errors.Is(err, ErrClosed):
			closed++
		default:
			t.Errorf("commit %d: %v", i, err)
		}
		if present[fmt.Sprint(i)] != (err == nil) {
			t.Errorf("commit %d returned %v, its event present: %v", i, err, present[fmt.Sprint(i)])
		}
	}
	t.Logf("%d committed, %d timed out, %d after Close", ok, canceled, closed)
}

// Commits queued while the writer waits are written as one group: refused
// ones leave nothing and do not affect the others; a group whose Commits
// are all refused writes nothing at all.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviary.db")
	db, err := Open(context.Background(), path, Options{Durability: DurableCrash})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	mustCommit(t, db,
		Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized(), Route: route(5, 0)},
		Transition{Name: "api", At: at(0), Manifest: spec(t, "api", "v1"), Status: initialized(), Route: route(5, 0)})

	// Another connection holds the write lock: the writer takes the first
	// Commit and waits for the lock; the next ones queue behind it.
	lock, err := raw(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	commit := func(name string, gen int64, reason string) <-chan error {
		out := make(chan error, 1)
		go func() {
			out <- db.Commit(ctx, Transition{Name: name, At: at(1), Status: initialized(), Route: route(gen, 0),
				Events: []rollout.Event{{Time: at(1), Type: "Test", Reason: reason}}})
		}()
		return out
	}
	queued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(db.queue) != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d Commits queued, want %d", len(db.queue), n)
			}
		}
	}
	group := func(commits func() []<-chan error) []error {
		t.Helper()
		if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		// A no-op request, taken by the writer, which then waits for the lock.
		first := &request{apply: func(*wtx) error { return nil }, done: make(chan error, 1)}
		db.queue <- first
		for first.state.Load() != taken {
			time.Sleep(time.Millisecond)
		}
		chans := commits()
		queued(len(chans))
		if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if err := <-first.done; err != nil {
			t.Fatal(err)
		}
		var errs []error
		for _, c := range chans {
			errs = append(errs, <-c)
		}
		return errs
	}

	errs := group(func() []<-chan error {
		return []<-chan error{commit("web", 6, "b"), commit("web", 4, "stale"), commit("api", 6, "d"), commit("nope", 1, "missing")}
	})
	if errs[0] != nil || !errors.Is(errs[1], ErrStaleRoute) || errs[2] != nil || !errors.Is(errs[3], ErrNotFound) {
		t.Fatalf("group results: got %v; want nil, ErrStaleRoute, nil, ErrNotFound", errs)
	}
	// The group's order is the order its Commits queued in.
	got := map[string]bool{}
	evs, _ := db.Events(ctx, EventQuery{})
	for _, e := range evs {
		got[e.Rollout+":"+e.Event.Reason] = true
	}
	diff(t, "events after the group", got, map[string]bool{"web:b": true, "api:d": true})

	before, beforeFiles := take(t, db), files(t, path)
	errs = group(func() []<-chan error {
		return []<-chan error{commit("web", 1, "stale"), commit("api", 2, "stale")}
	})
	for i, err := range errs {
		if !errors.Is(err, ErrStaleRoute) {
			t.Errorf("commit %d of the refused group: got %v, want ErrStaleRoute", i, err)
		}
	}
	diff(t, "state after the refused group", take(t, db), before)
	if got := files(t, path); !bytes.Equal(got[0], beforeFiles[0]) || !bytes.Equal(got[1], beforeFiles[1]) {
		t.Errorf("the refused group changed the files")
	}
}
