package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// crashEnv names the database the crash child commits to, crashSeedEnv its
// random seed, crashDurabilityEnv its Options.Durability.
const (
	crashEnv           = "AVIARY_STORE_CRASH_DB"
	crashSeedEnv       = "AVIARY_STORE_CRASH_SEED"
	crashDurabilityEnv = "AVIARY_STORE_CRASH_DURABILITY"
	crashKills         = 24
	crashNames         = 8
)

// crashState is what a rollout's status says was committed with it, so
// that a reader can check the rest of the database against it.
type crashState struct {
	Commit, Of, Events, Points, Revisions, Runs int
	Generation                                  int64
}

func (s crashState) message() string {
	return fmt.Sprintf("commit=%d of=%d events=%d points=%d revisions=%d", s.Commit, s.Of, s.Events, s.Points, s.Revisions)
}

func parseCrashState(st rollout.Status) (crashState, error) {
	var s crashState
	_, err := fmt.Sscanf(st.Message, "commit=%d of=%d events=%d points=%d revisions=%d", &s.Commit, &s.Of, &s.Events, &s.Points, &s.Revisions)
	s.Runs, s.Generation = st.Run, st.RouteGeneration
	return s, err
}

// TestCrashChild is the child process of TestCrash: it resumes from the
// database and commits transitions in a loop, printing "ok N" after each
// Commit N returned, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the child of TestCrash")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx := context.Background()
	durability, _ := strconv.Atoi(os.Getenv(crashDurabilityEnv))
	db, err := Open(ctx, path, Options{Durability: Durability(durability)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	recs, err := db.Load(ctx)
	if err != nil {
		fmt.Println("load:", err)
		os.Exit(3)
	}
	states := map[string]*crashState{}
	commit := 0
	for _, r := range recs {
		s, err := parseCrashState(r.Status)
		if err != nil {
			fmt.Println("parse:", err)
			os.Exit(3)
		}
		states[r.Name] = &s
		commit = max(commit, s.Commit)
	}
	fmt.Println("ready")
	for commit++; ; commit++ {
		var ts []Transition
		of := 1 + rng.IntN(4)
		for _, i := range rng.Perm(crashNames)[:of] {
			ts = append(ts, crashTransition(fmt.Sprint("r", i), states, commit, of, rng))
		}
		if err := db.Commit(ctx, ts...); err != nil {
			fmt.Println("commit:", err)
			os.Exit(3)
		}
		fmt.Printf("ok %d\n", commit)
	}
}

// crashTransition is the next transition of the named rollout, updating its
// state: a status that counts what was committed, a route one generation
// up, one to three events, up to two points, now and then a new revision, and
// every tenth transition a run that ends and the next that starts.
func crashTransition(name string, states map[string]*crashState, commit, of int, rng *rand.Rand) Transition {
	s, ok := states[name]
	if !ok {
		s = &crashState{Runs: 1}
		states[name] = s
	}
	now := t0.Add(time.Duration(commit) * time.Second)
	t := Transition{Name: name, At: now}
	if !ok || rng.IntN(7) == 0 {
		s.Revisions++
		t.Manifest = &rollout.Manifest{APIVersion: "aviary.dev/v1alpha1", Kind: "Rollout",
			Metadata: rollout.Metadata{Name: name}, Spec: rollout.Spec{Version: fmt.Sprint("v", s.Revisions)}}
	}
	if s.Generation > 0 && s.Generation%10 == 0 {
		t.Finished = []rollout.Finish{{Run: s.Runs, Outcome: rollout.PhaseFailed, Reason: fmt.Sprint("commit=", commit)}}
		s.Runs++
	}
	s.Commit, s.Of = commit, of
	s.Generation++
	for range 1 + rng.IntN(3) {
		s.Events++
		t.Events = append(t.Events, rollout.Event{Time: now, Run: s.Runs, Type: rollout.EventWeight, Reason: fmt.Sprintf("commit=%d event=%d", commit, s.Events)})
	}
	for range rng.IntN(3) {
		s.Points++
		t.Points = append(t.Points, Point{Run: s.Runs, Interval: s.Points, Metric: "error-rate", At: now,
			Result: analysis.Result{Metric: "error-rate", Verdict: analysis.Pass, Reason: fmt.Sprint("commit=", commit)}})
	}
	t.Status = rollout.Status{Phase: rollout.PhaseProgressing, Message: s.message(), Run: s.Runs, RunStartedAt: t0,
		Stable: rollout.Backend{Version: "v0"}, Canary: &rollout.Backend{Version: fmt.Sprint("v", s.Runs)}, RouteGeneration: s.Generation}
	t.Route = &rollout.Route{Generation: s.Generation, Stable: rollout.Backend{Version: "v0"}, Weight: int(s.Generation % 100)}
	return t
}

// TestCrash kills a process that commits transitions with SIGKILL at random
// moments, and checks after each kill that the database opens cleanly, that
// every rollout's status, route, events, points, runs and revisions come from
// the same transitions (no partial transition), that the last Commit is there
// entirely or not at all, that no acknowledged Commit was lost, and that no
// route generation went back.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	generations := map[string]int64{}
	acked, commits := 0, 0 // the last commit acknowledged, and present
	unacked := 0           // kills after a Commit wrote but before the child said so
	start := time.Now()
	for kill := range crashKills {
		// Most kills land while commits run; every fourth one soon after
		// the start, while the child opens, recovers or migrates.
		delay := time.Duration(5+rng.IntN(60)) * time.Millisecond
		early := kill%4 == 0
		if early {
			delay = time.Duration(rng.IntN(15)) * time.Millisecond
		}
		// Both durability settings must survive a process crash.
		durability := Durability(kill % 2)
		ack := runCrashChild(t, path, seed+uint64(kill), durability, delay, early)
		acked = max(acked, ack)
		// The child resumes after the last commit present and commits one
		// at a time: at most one more than it acknowledged can be there.
		most := max(acked, commits) + 1
		if commits = verifyCrash(t, path, acked, most, generations); commits == most {
			unacked++
		}
		if t.Failed() {
			t.Fatalf("after kill %d", kill+1)
		}
	}
	t.Logf("%d kills in %s: %d commits survived, the last acknowledged was %d; %d kills landed between a Commit and its acknowledgement",
		crashKills, time.Since(start).Round(time.Millisecond), commits, acked, unacked)
	if acked == 0 {
		t.Fatal("the child never committed: the test tested nothing")
	}
}

// runCrashChild starts the child, kills it after delay (counted from its
// "ready" line, or from its start when early) and returns the last commit it
// acknowledged.
func runCrashChild(t *testing.T, path string, seed uint64, d Durability, delay time.Duration, early bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashSeedEnv+"="+strconv.FormatUint(seed, 10),
		crashDurabilityEnv+"="+strconv.Itoa(int(d)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	last := make(chan int, 1)
	go func() {
		ack, signalled := 0, false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready" && !signalled:
				close(ready)
				signalled = true
			case strings.HasPrefix(line, "ok "):
				ack, _ = strconv.Atoi(line[3:])
			default:
				t.Errorf("child: %s", line)
			}
		}
		if !signalled {
			close(ready)
		}
		last <- ack
	}()
	if !early {
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
			t.Error("the child did not open the database within 20s")
		}
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Errorf("the child ended before it was killed: %v", err)
	}
	return <-last
}

// verifyCrash opens the database as a restarted server would and checks it:
// the last commit present must be between acked (none lost) and most. It
// returns the last commit present.
func verifyCrash(t *testing.T, path string, acked, most int, generations map[string]int64) int {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	defer db.Close()
	recs, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, events := 0, 0
	var states []crashState
	for _, r := range recs {
		s, err := parseCrashState(r.Status)
		if err != nil {
			t.Fatalf("%s: status %q: %v", r.Name, r.Status.Message, err)
		}
		states = append(states, s)
		last = max(last, s.Commit)
		events += s.Events
		verifyRollout(t, db, r, s)
		if s.Generation < generations[r.Name] {
			t.Errorf("%s: route generation went back from %d to %d", r.Name, generations[r.Name], s.Generation)
		}
		generations[r.Name] = s.Generation
	}
	// The last Commit is there entirely: every rollout it touched says so.
	n, of := 0, 0
	for _, s := range states {
		if s.Commit == last {
			n, of = n+1, s.Of
		}
	}
	if n != of {
		t.Errorf("commit %d touched %d rollouts, %d of them hold it", last, of, n)
	}
	if last < acked || last > most {
		t.Errorf("the last commit present is %d, want %d to %d (acknowledged: %d)", last, acked, most, acked)
	}
	all, err := db.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != events {
		t.Errorf("the event log holds %d events, the statuses count %d", len(all), events)
	}
	return last
}

// verifyRollout checks that everything stored for r came with the
// transitions its status counts.
func verifyRollout(t *testing.T, db *DB, r Record, s crashState) {
	t.Helper()
	ctx := context.Background()
	if r.Route == nil || r.Route.Generation != s.Generation {
		t.Errorf("%s: route %+v with a status of generation %d", r.Name, r.Route, s.Generation)
	}
	evs, err := db.Events(ctx, EventQuery{Name: r.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != s.Events {
		t.Errorf("%s: %d events, the status counts %d", r.Name, len(evs), s.Events)
	} else if want := fmt.Sprintf("commit=%d event=%d", s.Commit, s.Events); evs[len(evs)-1].Event.Reason != want {
		t.Errorf("%s: last event %q, want %q", r.Name, evs[len(evs)-1].Event.Reason, want)
	}
	points := 0
	for run := 1; run <= s.Runs; run++ {
		pts, err := db.Series(ctx, r.Name, run)
		if err != nil {
			t.Fatal(err)
		}
		points += len(pts)
	}
	if points != s.Points {
		t.Errorf("%s: %d points, the status counts %d", r.Name, points, s.Points)
	}
	revs, err := db.Revisions(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != s.Revisions || r.Revision != int64(s.Revisions) {
		t.Errorf("%s: %d revisions (record says %d), the status counts %d", r.Name, len(revs), r.Revision, s.Revisions)
	}
	runs, err := db.Runs(ctx, r.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != s.Runs {
		t.Errorf("%s: %d runs, the status says run %d", r.Name, len(runs), s.Runs)
	}
	for i, run := range runs {
		if open := run.EndedAt == nil; open != (i == 0) {
			t.Errorf("%s: run %d open=%v; only the newest run may be open", r.Name, run.Run, open)
		}
	}
}
