package cli

import (
	"strings"
	"testing"
)

func TestValidatePrintsNormalizedSpec(t *testing.T) {
	code, out, errOut := runCLI(t, "", "validate", "-f", "../../examples/web.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "validate-web.yaml", out)
}

func TestValidateListsEveryProblem(t *testing.T) {
	spec := `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: v2
  upstreams: ["127.0.0.1:9002"]
  traffic: {listen: "127.0.0.1:8080", balance: random}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - setWeight: 20
  analysis:
    failureLimit: -1
`
	code, out, errOut := runCLI(t, spec, "validate", "-f", "-")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want exit 1 and nothing printed", code, out)
	}
	golden(t, "validate-invalid.txt", errOut)
	for _, want := range []string{"4 problem(s)", "spec.upstreams[0] (line 6)", "spec.traffic.balance (line 7)",
		"spec.strategy.canary.steps[1].setWeight (line 12)", "spec.analysis.failureLimit (line 14)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"validate"}, {"bogus"}, {"validate", "-f", "x", "--nope"}, {"version", "extra"}} {
		if code, _, _ := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
