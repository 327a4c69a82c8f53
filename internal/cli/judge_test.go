package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

const judgeData = "testdata/judge/"

// Golden outputs of aviary judge; the verdicts are asserted as well, so an
// -update cannot quietly accept a wrong one.
func TestJudgeGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		verdict string
	}{
		{"judge-slower", []string{"--canary", judgeData + "canary-slower.txt", "--baseline", judgeData + "baseline-latency.txt"}, "Fail"},
		{"judge-same", []string{"--canary", judgeData + "canary-same.txt", "--baseline", judgeData + "baseline-latency.txt", "--max-increase", "5ms", "--alpha", "0.05"}, "Pass"},
		{"judge-errors", []string{"--test", "sequential", "--canary", judgeData + "canary-errors.txt", "--baseline", judgeData + "baseline-errors.txt", "--max-ratio", "1.25"}, "Fail"},
		{"judge-slow-requests", []string{"--test", "sequential", "--slower-than", "100ms", "--canary", judgeData + "canary-same.txt", "--baseline", judgeData + "baseline-latency.txt"}, "Inconclusive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"judge"}, c.args...)
			code, out, errOut := runCLI(t, "", append(args, "-o", "json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var res judgeOutput
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.Verdict != c.verdict {
				t.Fatalf("verdict %s (%s), want %s", res.Verdict, res.Reason, c.verdict)
			}
			golden(t, c.name+".json", out)
			code, out, errOut = runCLI(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, c.name+".txt", out)
		})
	}
}

// The slower canary's shift estimate covers the 8ms it was made slower by.
func TestJudgeShift(t *testing.T) {
	_, out, _ := runCLI(t, "", "judge", "--canary", judgeData+"canary-slower.txt", "--baseline", judgeData+"baseline-latency.txt", "-o", "json")
	var res judgeOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Interval == nil || res.Interval.Lower == nil || res.Interval.Upper == nil || *res.Interval.Lower > 0.008 || *res.Interval.Upper < 0.008 {
		t.Fatalf("interval %+v does not cover the true shift 0.008", res.Interval)
	}
}

// A sample on standard input.
func TestJudgeStdin(t *testing.T) {
	code, out, errOut := runCLI(t, "0.1\n0.2\n0.3\n", "judge", "--canary", "-", "--baseline", judgeData+"baseline-latency.txt")
	if code != 0 || !strings.Contains(out, "canary     standard input: 3 values") || !strings.Contains(out, "verdict    Inconclusive") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

func TestJudgeErrors(t *testing.T) {
	base := judgeData + "baseline-latency.txt"
	cases := []struct {
		name  string
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{"bad line", []string{"--canary", judgeData + "bad.txt", "--baseline", base}, "", 1, `testdata/judge/bad.txt:5: "fast" is not a number`},
		{"missing file", []string{"--canary", "nope.txt", "--baseline", base}, "", 1, "nope.txt"},
		{"empty", []string{"--canary", "-", "--baseline", base}, "# nothing\n\n", 1, "standard input holds no numbers"},
		{"not 0/1", []string{"--test", "sequential", "--canary", base, "--baseline", base}, "", 1, "testdata/judge/baseline-latency.txt:3: 0.0186: without --slower-than, --test sequential takes 0 (ok) or 1 (error)"},
		{"no baseline", []string{"--canary", base}, "", 2, "give both samples"},
		{"unknown test", []string{"--canary", base, "--baseline", base, "--test", "t-test"}, "", 2, `unknown test "t-test"`},
		{"bad alpha", []string{"--canary", base, "--baseline", base, "--alpha", "0.9"}, "", 2, "--alpha: alpha 0.9 must be greater than 0"},
		{"bad number", []string{"--canary", base, "--baseline", base, "--max-ratio", "lots"}, "", 2, `--max-ratio: "lots" is not a number`},
		{"slower-than", []string{"--canary", base, "--baseline", base, "--slower-than", "1s"}, "", 2, "--slower-than is for --test sequential"},
		{"two stdins", []string{"--canary", "-", "--baseline", "-"}, "", 2, "only one of"},
		{"output", []string{"--canary", base, "--baseline", base, "-o", "yaml"}, "", 2, "unknown output format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, c.stdin, append([]string{"judge"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", code, errOut, c.code, c.msg)
			}
		})
	}
}
