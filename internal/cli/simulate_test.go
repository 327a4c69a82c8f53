package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"aviary/internal/rollout"
	"aviary/internal/simulate"
)

// The examples' simulations: a healthy canary promoted, a bad one rolled
// back, a quiet one paused rather than failed.
func TestSimulateExamples(t *testing.T) {
	cases := []struct {
		scenario string
		want     rollout.Phase
		reason   string
	}{
		{"healthy", rollout.PhaseSucceeded, "promoted v2"},
		{"bad", rollout.PhaseFailed, "rolled back: error-rate"},
		{"quiet", rollout.PhasePaused, "no progress for 10m"},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			args := []string{"simulate", "-f", "../../examples/web.yaml", "--scenario", "../../examples/scenarios/" + c.scenario + ".yaml"}
			code, out, errOut := runCLI(t, "", append(args, "-o", "json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var res simulate.Result
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Phase != c.want || !strings.Contains(res.Verdict.Reason, c.reason) {
				t.Fatalf("verdict %s %q, want %s containing %q", res.Verdict.Phase, res.Verdict.Reason, c.want, c.reason)
			}
			golden(t, "simulate-"+c.scenario+".json", out)
			code, out, errOut = runCLI(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, "simulate-"+c.scenario+".txt", out)
		})
	}
}

// The same seed gives the same run; another seed another one.
func TestSimulateDeterministic(t *testing.T) {
	args := []string{"simulate", "-f", "../../examples/web.yaml", "--scenario", "../../examples/scenarios/healthy.yaml", "-o", "json"}
	_, a, _ := runCLI(t, "", append(args, "--seed", "7")...)
	_, b, _ := runCLI(t, "", append(args, "--seed", "7")...)
	_, c, _ := runCLI(t, "", append(args, "--seed", "8")...)
	if a != b {
		t.Fatal("the same seed gave different runs")
	}
	if a == c {
		t.Fatal("different seeds gave the same run")
	}
}

func TestSimulateErrors(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{"no scenario", []string{"simulate", "-f", "../../examples/web.yaml"}, "", 2, "give a scenario"},
		{"bad output", []string{"simulate", "-f", "../../examples/web.yaml", "--scenario", "x", "-o", "xml"}, "", 2, "unknown output format"},
		{"missing spec", []string{"simulate", "-f", "nope.yaml", "--scenario", "x"}, "", 1, "nope.yaml"},
		{"invalid scenario", []string{"simulate", "-f", "../../examples/web.yaml", "--scenario", "-"},
			"traffic: {rps: -3}\ncanary: {errorRate: 150%}\nbogus: 1\n", 1, `bogus (line 3): unknown field "bogus"`},
		{"scenario values", []string{"simulate", "-f", "../../examples/web.yaml", "--scenario", "-"},
			"traffic: {rps: -3}\ncanary: {errorRate: 150%}\n", 1, "canary.errorRate: must be between 0 and 100%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", code, errOut, c.code, c.msg)
			}
		})
	}
}
