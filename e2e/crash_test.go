package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
)

// The server is killed with SIGKILL at 20 or more random moments during
// runs and restarted each time. Every run must end with the verdict an
// uninterrupted run reaches (healthy promoted, faulty rolled back), and the
// weights recorded and routed must never go back within a run except by
// its rollback.
func TestKillNineDuringRuns(t *testing.T) {
	steps := `[{setWeight: 10}, {analysis: {duration: 2s}}, {setWeight: 30}, {pause: {duration: 3s}}, {setWeight: 60}, {analysis: {duration: 2s}}]`
	r := newRelease(t, steps)
	rng := rand.New(rand.NewPCG(20261122, 1))
	kills := 0
	for run := 2; kills < 20 || run < 6; run++ {
		if run > 12 {
			t.Fatalf("only %d kills in %d runs", kills, run-2)
		}
		version := fmt.Sprintf("v%d", run)
		faulty := run%2 == 1
		failure := 0.002
		if faulty {
			failure = 0.4
		}
		up := newUpstream(t, version, failure)
		r.must("release", r.name, "--version", version, "--upstream", up.URL)
		want := rollout.PhaseSucceeded
		if faulty {
			want = rollout.PhaseFailed
		}
		var last server.Status
		for ended := false; !ended; {
			time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
			r.server.kill()
			kills++
			r.startServer()
			st := r.status(r.name)
			checkMonotone(t, last, st)
			last = st
			ended = st.Run == run-1 && !st.Phase.Active()
		}
		st := r.waitFor(r.name, "run end", 60*time.Second, func(st server.Status) bool { return !st.Phase.Active() })
		if st.Phase != want || st.CanaryVersion != version {
			t.Fatalf("%s (faulty %v) ended %s: %s; an uninterrupted run ends %s", version, faulty, st.Phase, st.Message, want)
		}
		t.Logf("%s ended %s after %d kills so far", version, st.Phase, kills)
	}
	checkRecordedWeights(t, r.events(r.name))
}

// checkMonotone compares two observations of the same rollout.
func checkMonotone(t *testing.T, before, after server.Status) {
	t.Helper()
	if after.RouteGeneration < before.RouteGeneration {
		t.Fatalf("route generation went back from %d to %d", before.RouteGeneration, after.RouteGeneration)
	}
	if after.Run == before.Run && after.Phase.Active() && after.CanaryWeight < before.CanaryWeight {
		t.Fatalf("run %d: weight went back from %d%% to %d%% across a restart", after.Run, before.CanaryWeight, after.CanaryWeight)
	}
}

// checkRecordedWeights: within each run, recorded weight changes only grow.
func checkRecordedWeights(t *testing.T, evs []server.Event) {
	t.Helper()
	weight := map[int]int{}
	changes := 0
	for _, e := range evs {
		if e.Type != rollout.EventWeight {
			continue
		}
		changes++
		if e.Weight < weight[e.Run] {
			t.Fatalf("run %d: recorded weight went back from %d%% to %d%%", e.Run, weight[e.Run], e.Weight)
		}
		weight[e.Run] = e.Weight
	}
	if changes == 0 {
		t.Fatal("no weight changes recorded")
	}
}
