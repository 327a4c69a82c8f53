package rollout

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"aviary/internal/analysis"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

const propertySpec = `
apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: v1
  upstreams: ["http://127.0.0.1:9001"]
  traffic: {listen: "127.0.0.1:8080"}
  progressDeadline: 5m
  strategy:
    canary:
      steps:
        - setWeight: 5
        - pause: {duration: 1m}
        - analysis: {duration: 1m}
        - setWeight: 25
        - gate: {name: qa}
        - setWeight: 50
        - pause: {}
        - setWeight: 75
        - analysis: {}
  analysis:
    interval: 30s
    failureLimit: 2
    errorLimit: 1
    decision: %s
    metrics:
      - {name: error-rate, compare: baseline, maxIncrease: 1%%}
      - {name: latency-p99, max: 1}
  webhooks:
    - {name: go, type: confirm-rollout, url: "http://127.0.0.1:9100/go"}
    - {name: smoke, type: pre-rollout, url: "http://127.0.0.1:9100/smoke"}
    - {name: more, type: confirm-traffic-increase, url: "http://127.0.0.1:9100/more"}
    - {name: kill, type: rollback, url: "http://127.0.0.1:9100/kill"}
`

func propertySpecFor(t *testing.T, decision string) Spec {
	var m Manifest
	if err := yaml.UnmarshalStrict(fmt.Appendf(nil, propertySpec, decision), &m); err != nil {
		t.Fatal(err)
	}
	if errs := m.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return m.Normalize().Spec
}

// step is one call of Next in a random history.
type step struct {
	at      time.Time
	version string
	obs     Observations
}

// randomHistory makes a history of calls that a shell could make: wake-ups,
// answers to pending checks and hooks, commands and new versions.
func randomHistory(r *rand.Rand, spec Spec, n int) []step {
	var steps []step
	var st Status
	now := scriptEpoch
	version := "v1"
	verdicts := []analysis.Verdict{analysis.Pass, analysis.Pass, analysis.Pass, analysis.Fail, analysis.Inconclusive, analysis.Error}
	ops := []string{OpPromote, OpAbort, OpPause, OpResume, OpRetry, OpRollback, OpApprove}
	var applied int64
	for range n {
		s := step{version: version}
		switch k := r.IntN(10); {
		case k < 4 && !st.WakeAt.IsZero():
			now = st.WakeAt
		case k < 6 && st.Analysis.Pending:
			cr := &CheckResults{Run: st.Run, Interval: st.Analysis.Interval}
			for _, m := range spec.Analysis.Metrics {
				v := verdicts[r.IntN(len(verdicts))]
				cr.Results = append(cr.Results, analysis.Result{Metric: m.Name, Verdict: v, Reason: m.Name + " " + v.String()})
			}
			s.obs.Checks = cr
		case k < 7 && len(st.Hooks) > 0:
			h := st.Hooks[r.IntN(len(st.Hooks))]
			s.obs.Hooks = []HookResult{{Name: h.Name, Key: h.Key, OK: r.IntN(3) > 0}}
		case k < 9:
			s.obs.Commands = []Command{{Op: ops[r.IntN(len(ops))], Full: r.IntN(4) == 0}}
		default:
			version = fmt.Sprintf("v%d", 2+r.IntN(3))
			s.version = version
		}
		now = now.Add(time.Duration(r.IntN(20)) * time.Second)
		s.at = now
		s.obs.Applied = applied
		sp := spec
		sp.Version = s.version
		var actions []Action
		st, actions = Next(s.at, sp, st, s.obs)
		for _, a := range actions {
			if sr, ok := a.(SetRoute); ok {
				applied = sr.Route.Generation
			}
		}
		steps = append(steps, s)
	}
	return steps
}

type outcome struct {
	Status  Status
	Actions []Action
}

func replay(t *testing.T, spec Spec, h []step, roundTrip bool) []outcome {
	var st Status
	var out []outcome
	for _, s := range h {
		if roundTrip {
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			st = Status{}
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
		}
		sp := spec
		sp.Version = s.version
		var before []byte
		if !roundTrip {
			before, _ = json.Marshal(st)
		}
		next, actions := Next(s.at, sp, st, s.obs)
		if before != nil && string(before) != string(mustJSON(st)) {
			t.Fatalf("Next changed its input status")
		}
		st = next
		out = append(out, outcome{st, actions})
	}
	return out
}

// Next is deterministic, and a status restored from JSON continues exactly
// as the original: a restarted shell resumes the same run identically.
func TestRestartEquivalence(t *testing.T) {
	for _, decision := range []string{DecisionAuto, DecisionManual, DecisionHybrid} {
		spec := propertySpecFor(t, decision)
		for seed := range seeds(20) {
			r := rand.New(rand.NewPCG(seed, 7))
			h := randomHistory(r, spec, 300)
			a := replay(t, spec, h, false)
			b := replay(t, spec, h, true)
			c := replay(t, spec, h, false)
			if fingerprint(t, a) != fingerprint(t, c) {
				t.Fatalf("%s seed %d: Next is not deterministic:\n%s", decision, seed, cmp.Diff(a, c))
			}
			if fingerprint(t, a) != fingerprint(t, b) {
				t.Fatalf("%s seed %d: restored status diverges (-uninterrupted +restored):\n%s", decision, seed, cmp.Diff(a, b))
			}
		}
	}
}

// fingerprint encodes outcomes with their action types, for a fast exact
// comparison (go-cmp only explains a difference).
func fingerprint(t *testing.T, os []outcome) string {
	type typed struct {
		Type   string
		Action Action
	}
	var all []any
	for _, o := range os {
		all = append(all, o.Status)
		for _, a := range o.Actions {
			all = append(all, typed{fmt.Sprintf("%T", a), a})
		}
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Invariants over random histories: weights stay within 0-100; within a
// run, the routed weight never goes back except when the run ends; route
// generations increase; WakeAt is in the future; every event has a reason.
func TestInvariants(t *testing.T) {
	for _, decision := range []string{DecisionAuto, DecisionManual, DecisionHybrid} {
		spec := propertySpecFor(t, decision)
		phases := map[Phase]bool{}
		for seed := range seeds(40) {
			r := rand.New(rand.NewPCG(seed, 11))
			h := randomHistory(r, spec, 300)
			var gen int64
			lastWeight, lastRun := 0, 0
			for i, o := range replay(t, spec, h, false) {
				st := o.Status
				phases[st.Phase] = true
				if st.Weight < 0 || st.Weight > 100 {
					t.Fatalf("seed %d step %d: weight %d", seed, i, st.Weight)
				}
				if !st.WakeAt.IsZero() && !st.WakeAt.After(h[i].at) {
					t.Fatalf("seed %d step %d: WakeAt %v not after %v", seed, i, st.WakeAt, h[i].at)
				}
				for _, a := range o.Actions {
					switch a := a.(type) {
					case SetRoute:
						if a.Route.Generation != gen+1 {
							t.Fatalf("seed %d step %d: generation %d after %d", seed, i, a.Route.Generation, gen)
						}
						gen = a.Route.Generation
						if a.Route.Canary != nil && st.Run == lastRun && a.Route.Weight < lastWeight {
							t.Fatalf("seed %d step %d: weight went back from %d to %d within run %d", seed, i, lastWeight, a.Route.Weight, st.Run)
						}
						lastWeight = a.Route.Weight
						if a.Route.Canary == nil {
							lastWeight = 0
						}
						lastRun = st.Run
					case Notify:
						if a.Event.Reason == "" || a.Event.Type == "" {
							t.Fatalf("seed %d step %d: event without reason: %+v", seed, i, a.Event)
						}
					}
				}
			}
		}
		for _, p := range []Phase{PhaseInitialized, PhaseProgressing, PhasePaused, PhasePromoting, PhaseSucceeded, PhaseFailed} {
			if !phases[p] {
				t.Errorf("%s: random histories never reached %s", decision, p)
			}
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// seeds is n, or a fifth of it under the race detector.
func seeds(n uint64) uint64 {
	if raceEnabled {
		return n / 5
	}
	return n
}
