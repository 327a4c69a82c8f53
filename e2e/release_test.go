package e2e

import (
	"strings"
	"testing"
	"time"

	"aviary/internal/demo"
	"aviary/internal/rollout"
	"aviary/internal/server"
)

// release is one rollout under load in a fresh server.
type release struct {
	*env
	name   string
	listen string
	v1, v2 *upstream
	load   *demo.Load
}

func newRelease(t *testing.T, steps string, extra ...string) *release {
	r := &release{env: newEnv(t, extra...), name: "web", listen: freeAddr(t)}
	r.v1 = newUpstream(t, "v1", 0.002)
	r.v2 = newUpstream(t, "v2", 0.002)
	r.apply(manifest(r.name, "v1", r.v1.URL, r.listen, steps))
	r.waitPhase(r.name, rollout.PhaseInitialized, 10*time.Second)
	load, err := demo.StartLoad(withContext(t), demo.LoadOptions{URL: "http://" + r.listen + "/", RPS: 150})
	if err != nil {
		t.Fatal(err)
	}
	r.load = load
	t.Cleanup(load.Stop)
	return r
}

func (r *release) releaseV2() {
	r.t.Helper()
	r.must("release", r.name, "--version", "v2", "--upstream", r.v2.URL)
}

const quickSteps = `[{setWeight: 20}, {analysis: {duration: 2s}}, {setWeight: 50}, {analysis: {duration: 2s}}]`

func hasEvent(evs []server.Event, typ, text string) bool {
	for _, e := range evs {
		if e.Type == typ && strings.Contains(e.Reason, text) {
			return true
		}
	}
	return false
}

func TestHealthyReleasePromoted(t *testing.T) {
	r := newRelease(t, quickSteps)
	r.releaseV2()
	st := r.waitPhase(r.name, rollout.PhaseSucceeded, 60*time.Second)
	if st.StableVersion != "v2" {
		t.Fatalf("stable is %s, want v2", st.StableVersion)
	}
	if r.v2.served.Load() == 0 {
		t.Fatal("the canary never served a request")
	}
	out := r.must("history", r.name)
	if !strings.Contains(out, "Succeeded") || !strings.Contains(out, "v2") {
		t.Fatalf("history lacks the promoted run:\n%s", out)
	}
	// After the promotion the new stable serves everything.
	before := r.v1.served.Load()
	time.Sleep(time.Second)
	if after := r.v1.served.Load(); after != before {
		t.Fatalf("v1 still served %d requests after the promotion", after-before)
	}
}

func TestFaultyReleaseRolledBack(t *testing.T) {
	r := newRelease(t, quickSteps)
	r.v2.setFailure(0.3)
	r.releaseV2()
	st := r.waitPhase(r.name, rollout.PhaseFailed, 60*time.Second)
	if st.StableVersion != "v1" || !strings.Contains(st.Message, "rolled back: error-rate") {
		t.Fatalf("stable %s, message %q", st.StableVersion, st.Message)
	}
	if !hasEvent(r.events(r.name), rollout.EventRolledBack, "sequential test p=") {
		t.Fatal("no RolledBack event naming the test and its numbers")
	}
	out := r.must("events", r.name)
	if !strings.Contains(out, "RolledBack") {
		t.Fatalf("aviary events lacks the rollback:\n%s", out)
	}
	// The failed version is not released again by itself.
	time.Sleep(2 * time.Second)
	if st := r.status(r.name); st.Phase != rollout.PhaseFailed || st.Run != 1 {
		t.Fatalf("after the rollback: phase %s run %d", st.Phase, st.Run)
	}
}

func TestManualGateWaitsForPromote(t *testing.T) {
	r := newRelease(t, `[{setWeight: 25}, {pause: {}}, {setWeight: 50}]`)
	r.releaseV2()
	r.waitFor(r.name, "the pause", 30*time.Second, func(st server.Status) bool {
		return st.Waiting != nil && st.Waiting.Kind == rollout.WaitPause
	})
	time.Sleep(3 * time.Second)
	if st := r.status(r.name); st.Phase != rollout.PhaseProgressing || st.CanaryWeight != 25 {
		t.Fatalf("the pause did not hold: %s at %d%%", st.Phase, st.CanaryWeight)
	}
	r.must("promote", r.name)
	r.waitPhase(r.name, rollout.PhaseSucceeded, 30*time.Second)
}

func TestAbortThenRetry(t *testing.T) {
	r := newRelease(t, `[{setWeight: 30}, {pause: {}}, {setWeight: 60}]`)
	r.releaseV2()
	r.waitFor(r.name, "weight 30", 30*time.Second, func(st server.Status) bool { return st.CanaryWeight == 30 })
	r.must("abort", r.name)
	st := r.waitPhase(r.name, rollout.PhaseFailed, 10*time.Second)
	if !strings.Contains(st.Message, "aborted by") {
		t.Fatalf("message %q", st.Message)
	}
	if code, _, errOut := r.aviary("abort", r.name); code != 1 || !strings.Contains(errOut, "no run in progress") {
		t.Fatalf("a second abort: exit %d, %s", code, errOut)
	}
	r.must("retry", r.name)
	st = r.waitFor(r.name, "the retried run", 30*time.Second, func(st server.Status) bool { return st.Run == 2 && st.CanaryWeight == 30 })
	r.must("promote", r.name)
	r.waitPhase(r.name, rollout.PhaseSucceeded, 30*time.Second)
}

func TestRollbackAfterPromotion(t *testing.T) {
	r := newRelease(t, quickSteps)
	r.releaseV2()
	r.waitPhase(r.name, rollout.PhaseSucceeded, 60*time.Second)
	r.must("rollback", r.name)
	st := r.waitPhase(r.name, rollout.PhaseFailed, 10*time.Second)
	if st.StableVersion != "v1" {
		t.Fatalf("stable %s after rollback, want v1", st.StableVersion)
	}
	before := r.v2.served.Load()
	time.Sleep(time.Second)
	if after := r.v2.served.Load(); after != before {
		t.Fatalf("v2 served %d requests after the rollback", after-before)
	}
	if !hasEvent(r.events(r.name), rollout.EventRolledBack, "after promotion: v1 restored in one step") {
		t.Fatal("no event recording the rollback and why")
	}
}

func TestNewVersionMidRunRestarts(t *testing.T) {
	r := newRelease(t, `[{setWeight: 40}, {pause: {}}, {setWeight: 80}]`)
	v3 := newUpstream(t, "v3", 0.002)
	r.releaseV2()
	r.waitFor(r.name, "weight 40", 30*time.Second, func(st server.Status) bool { return st.CanaryWeight == 40 })
	r.must("release", r.name, "--version", "v3", "--upstream", v3.URL)
	st := r.waitFor(r.name, "run 2 on v3", 30*time.Second, func(st server.Status) bool {
		return st.Run == 2 && st.CanaryVersion == "v3" && st.CanaryWeight == 40
	})
	if !hasEvent(r.events(r.name), rollout.EventSuperseded, "v3 replaces v2") {
		t.Fatal("no Superseded event")
	}
	if st.StableVersion != "v1" {
		t.Fatalf("stable %s, want v1", st.StableVersion)
	}
	r.must("promote", r.name)
	if st := r.waitPhase(r.name, rollout.PhaseSucceeded, 30*time.Second); st.StableVersion != "v3" {
		t.Fatalf("stable %s, want v3", st.StableVersion)
	}
}

// SIGTERM stops the server gracefully: the proxies drain and it exits 0.
func TestGracefulShutdown(t *testing.T) {
	r := newRelease(t, quickSteps)
	r.server.stop(t)
	if !strings.Contains(r.server.log.String(), "draining proxies") {
		t.Fatalf("no drain on SIGTERM:\n%s", r.server.log.String())
	}
}

// With mirroring, the canary gets copies of stable's requests on top of its
// share; their results are recorded apart, as shadow measurements, through
// the real proxy and the built-in provider.
func TestMirroredRequestsMeasured(t *testing.T) {
	r := &release{env: newEnv(t), name: "web", listen: freeAddr(t)}
	r.v1 = newUpstream(t, "v1", 0.002)
	r.v2 = newUpstream(t, "v2", 0.002)
	mirrored := strings.Replace(manifest(r.name, "v1", r.v1.URL, r.listen, `[{setWeight: 10}, {analysis: {duration: 2s}}, {pause: {}}]`),
		"      steps:", "      mirror: {percent: 50}\n      steps:", 1)
	r.apply(mirrored)
	r.waitPhase(r.name, rollout.PhaseInitialized, 10*time.Second)
	load, err := demo.StartLoad(withContext(t), demo.LoadOptions{URL: "http://" + r.listen + "/", RPS: 150})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(load.Stop)
	r.releaseV2()
	r.waitFor(r.name, "the pause after the analysis", 60*time.Second, func(st server.Status) bool {
		return st.Waiting != nil && st.Waiting.Kind == rollout.WaitPause
	})
	var ms server.Measurements
	if err := get(r.url+"/api/v1/rollouts/web/runs/1/measurements", &ms); err != nil {
		t.Fatal(err)
	}
	var live, shadow int64
	for _, p := range ms.Points {
		live += p.Canary.Requests
		if p.Shadow == nil {
			t.Fatalf("interval %d: no shadow measurement with mirroring on", p.Interval)
		}
		shadow += p.Shadow.Canary.Requests
		if p.Shadow.Check.Verdict == "" || p.Shadow.Check.Reason == "" {
			t.Errorf("interval %d: shadow check %+v has no verdict or reason", p.Interval, p.Shadow.Check)
		}
	}
	// 10% of the traffic is the canary's own; half of stable's 90% is
	// copied to it: the copies outnumber its own requests several times.
	if live == 0 || shadow < 2*live {
		t.Fatalf("measured %d live and %d mirrored canary requests; want mirrored well above live", live, shadow)
	}
	if served := r.v2.served.Load(); served < live+shadow {
		t.Errorf("v2 served %d requests, fewer than the %d measured", served, live+shadow)
	}
	r.must("promote", r.name)
	r.waitPhase(r.name, rollout.PhaseSucceeded, 30*time.Second)
}
