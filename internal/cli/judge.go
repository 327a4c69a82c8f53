package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"aviary/internal/analysis"
	"github.com/spf13/cobra"
)

// judgeOptions are the flags of aviary judge.
type judgeOptions struct {
	canary, baseline string
	test             string
	alpha            string
	maxIncrease      string
	maxRatio         string
	slowerThan       string
	out              string
}

func newJudgeCmd(stdin io.Reader) *cobra.Command {
	var o judgeOptions
	cmd := &cobra.Command{
		Use:   "judge --canary FILE --baseline FILE [--test mann-whitney|sequential] [-o json]",
		Short: "Compare two samples offline with aviary's statistics (no server needed)",
		Long: `judge compares a canary sample with a baseline sample, each a file with one
number per line (blank lines and lines starting with # are ignored; numbers
may be written as 0.25, 2.5% or 250ms), and prints the test statistic, its
p-value, the effect estimate with its interval, and the verdict.

  --test mann-whitney (default)  one-sided Mann-Whitney U test of "the canary's
                                 values tend to be larger" (normal approximation
                                 with tie and continuity corrections), and the
                                 Hodges-Lehmann shift with Moses' interval.
  --test sequential              the anytime-valid count test aviary runs on
                                 errors: each value is an event (1) or not (0),
                                 or with --slower-than D, a value above D is one.

--max-increase and --max-ratio set the tolerance: the canary fails only when
it is worse than baseline x ratio + increase. The exit code is 0 whatever the
verdict, 1 when the samples cannot be read, 2 for a usage error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJudge(cmd.OutOrStdout(), stdin, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.canary, "canary", "", "the canary's sample (- for standard input)")
	f.StringVar(&o.baseline, "baseline", "", "the baseline's (stable's) sample")
	f.StringVar(&o.test, "test", analysis.TestMannWhitney, "statistical test: mann-whitney or sequential")
	f.StringVar(&o.alpha, "alpha", "", "significance level (default 0.01); the interval's level is 1-alpha")
	f.StringVar(&o.maxIncrease, "max-increase", "", "tolerated increase over the baseline (e.g. 10ms, 0.5%)")
	f.StringVar(&o.maxRatio, "max-ratio", "", "tolerated ratio to the baseline (e.g. 1.2)")
	f.StringVar(&o.slowerThan, "slower-than", "", "sequential: count values above this bound as events (e.g. 500ms)")
	f.StringVarP(&o.out, "output", "o", outTable, "output format: table or json")
	return cmd
}

// judgeSide is one sample as reported.
type judgeSide struct {
	File   string   `json:"file"`
	Count  int      `json:"count"`
	Median float64  `json:"median"`
	Events *float64 `json:"events,omitempty"`
	Rate   *float64 `json:"rate,omitempty"`
}

// judgeOutput is aviary judge's result; its JSON form is documented in
// docs/analysis.md.
type judgeOutput struct {
	Test      string     `json:"test"`
	Canary    judgeSide  `json:"canary"`
	Baseline  judgeSide  `json:"baseline"`
	Alpha     float64    `json:"alpha"`
	Tolerance tolerance  `json:"tolerance"`
	Statistic float64    `json:"statistic"`
	Z         *float64   `json:"z,omitempty"`
	P         float64    `json:"p"`
	E         *float64   `json:"e,omitempty"`
	Effect    *float64   `json:"effect,omitempty"`
	Interval  *intervalJ `json:"interval,omitempty"`
	Verdict   string     `json:"verdict"`
	Reason    string     `json:"reason"`
}

type tolerance struct {
	Ratio    float64 `json:"ratio"`
	Increase float64 `json:"increase"`
}

type intervalJ struct {
	Lower *float64 `json:"lower"`
	Upper *float64 `json:"upper"`
	Level float64  `json:"level"`
}

func runJudge(w io.Writer, stdin io.Reader, o judgeOptions) error {
	if err := checkOutput(o.out, outTable, outJSON); err != nil {
		return err
	}
	if o.canary == "" || o.baseline == "" {
		return usagef("give both samples: --canary FILE --baseline FILE")
	}
	if o.canary == "-" && o.baseline == "-" {
		return usagef("only one of --canary and --baseline can be standard input")
	}
	c := analysis.Criteria{Compare: analysis.CompareBaseline, Test: o.test}
	for _, n := range []struct {
		flag, val string
		dst       **analysis.Number
	}{{"alpha", o.alpha, &c.Alpha}, {"max-increase", o.maxIncrease, &c.MaxIncrease}, {"max-ratio", o.maxRatio, &c.MaxRatio}, {"slower-than", o.slowerThan, &c.SlowerThan}} {
		if n.val == "" {
			continue
		}
		v, err := analysis.ParseNumber(n.val)
		if err != nil {
			return usagef("--%s: %v", n.flag, err)
		}
		num := analysis.Number(v)
		*n.dst = &num
	}
	if o.test != analysis.TestMannWhitney && o.test != analysis.TestSequential {
		return usagef("unknown test %q (want mann-whitney or sequential)", o.test)
	}
	if o.test == analysis.TestMannWhitney && c.SlowerThan != nil {
		return usagef("--slower-than is for --test sequential")
	}
	if ps := c.Validate(); len(ps) > 0 {
		return usagef("%s", judgeProblem(ps[0]))
	}
	canary, err := readSample(stdin, o.canary)
	if err != nil {
		return err
	}
	baseline, err := readSample(stdin, o.baseline)
	if err != nil {
		return err
	}
	var out judgeOutput
	if o.test == analysis.TestSequential {
		out, err = judgeSequential(c, o, canary, baseline)
		if err != nil {
			return err
		}
	} else {
		out = judgeRanks(c, o, canary.values, baseline.values)
	}
	if out.Verdict == analysis.Error.String() {
		return fmt.Errorf("%s", out.Reason)
	}
	if o.out == outJSON {
		return writeJSON(w, out)
	}
	return writeJudge(w, out)
}

// judgeProblem turns a criteria problem into the flag it came from.
func judgeProblem(p analysis.Problem) string {
	flag := map[string]string{"maxIncrease": "max-increase", "maxRatio": "max-ratio", "slowerThan": "slower-than"}[p.Field]
	if flag == "" {
		flag = p.Field
	}
	msg := strings.NewReplacer("maxIncrease", "--max-increase", "maxRatio", "--max-ratio", "slowerThan", "--slower-than").Replace(p.Message)
	return "--" + flag + ": " + msg
}

// sample is the numbers of a file and the line each came from.
type sample struct {
	file   string
	values []float64
	lines  []int
}

// readSample reads one number per line; blank lines and lines starting with
// # are skipped.
func readSample(stdin io.Reader, file string) (sample, error) {
	s := sample{file: file}
	data, err := readInput(stdin, file)
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		v, err := analysis.ParseNumber(t)
		if err != nil {
			return s, fmt.Errorf("%s:%d: %v", displayName(file), line, err)
		}
		s.values = append(s.values, v)
		s.lines = append(s.lines, line)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("%s: %w", displayName(file), err)
	}
	if len(s.values) == 0 {
		return s, fmt.Errorf("%s holds no numbers", displayName(file))
	}
	return s, nil
}

func sideOf(file string, xs []float64) judgeSide {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return judgeSide{File: displayName(file), Count: n, Median: med}
}

func judgeRanks(c analysis.Criteria, o judgeOptions, canary, baseline []float64) judgeOutput {
	r := analysis.JudgeSamples("sample", c, canary, baseline)
	out := newJudgeOutput(c, o, r, canary, baseline)
	if rt, err := analysis.MannWhitney(canary, baseline, 1-out.Alpha); err == nil && r.Verdict != analysis.Inconclusive {
		z := rt.Z
		out.Z = &z
	}
	return out
}

// judgeSequential turns each sample into a count of events and runs the
// count test on them as one interval.
func judgeSequential(c analysis.Criteria, o judgeOptions, cs, bs sample) (judgeOutput, error) {
	events := func(s sample) (int64, error) {
		var n int64
		for i, v := range s.values {
			switch {
			case c.SlowerThan != nil:
				if v > float64(*c.SlowerThan) {
					n++
				}
			case v == 1:
				n++
			case v != 0:
				return 0, fmt.Errorf("%s:%d: %g: without --slower-than, --test sequential takes 0 (ok) or 1 (error) per line", displayName(s.file), s.lines[i], v)
			}
		}
		return n, nil
	}
	canary, baseline := cs.values, bs.values
	ce, err := events(cs)
	if err != nil {
		return judgeOutput{}, err
	}
	be, err := events(bs)
	if err != nil {
		return judgeOutput{}, err
	}
	seqC := c
	seqC.SlowerThan = nil // the events are counted here
	m := func(n int, x int64) analysis.Measurement {
		return analysis.Measurement{Requests: int64(n), Errors: x, Count: int64(n), Value: float64(x) / float64(n), HasValue: true}
	}
	r := analysis.Judge("sample", seqC, []analysis.Interval{{Canary: m(len(canary), ce), Stable: m(len(baseline), be)}})
	out := newJudgeOutput(c, o, r, canary, baseline)
	for _, s := range []struct {
		side *judgeSide
		ev   int64
	}{{&out.Canary, ce}, {&out.Baseline, be}} {
		ev, rate := float64(s.ev), float64(s.ev)/float64(s.side.Count)
		s.side.Events, s.side.Rate = &ev, &rate
	}
	e := r.E
	out.E = &e
	out.Statistic = r.E
	return out, nil
}

func newJudgeOutput(c analysis.Criteria, o judgeOptions, r analysis.Result, canary, baseline []float64) judgeOutput {
	out := judgeOutput{
		Test:      o.test,
		Canary:    sideOf(o.canary, canary),
		Baseline:  sideOf(o.baseline, baseline),
		Alpha:     analysis.DefaultAlpha,
		Tolerance: tolerance{Ratio: 1},
		Statistic: r.Statistic,
		P:         r.P,
		Verdict:   r.Verdict.String(),
		Reason:    strings.TrimPrefix(r.Reason, "sample: "),
	}
	if c.Alpha != nil {
		out.Alpha = float64(*c.Alpha)
	}
	if c.MaxRatio != nil {
		out.Tolerance.Ratio = float64(*c.MaxRatio)
	}
	if c.MaxIncrease != nil {
		out.Tolerance.Increase = float64(*c.MaxIncrease)
	}
	if r.EffectBounds != nil {
		eff := r.Effect
		out.Effect = &eff
		iv := &intervalJ{Level: r.EffectBounds.Level}
		if lo := r.EffectBounds.Lower; !math.IsInf(lo, 0) {
			iv.Lower = &lo
		}
		if hi := r.EffectBounds.Upper; !math.IsInf(hi, 0) {
			iv.Upper = &hi
		}
		out.Interval = iv
	}
	return out
}

// writeJudge prints the comparison as a short table.
func writeJudge(w io.Writer, o judgeOutput) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	side := func(name string, s judgeSide) {
		if s.Events != nil {
			fmt.Fprintf(tw, "%s\t%s: %s values, %s events (%s)\n", name, s.File, thousands(int64(s.Count)), g(*s.Events), pct(*s.Rate))
			return
		}
		fmt.Fprintf(tw, "%s\t%s: %s values, median %s\n", name, s.File, thousands(int64(s.Count)), g(s.Median))
	}
	side("canary", o.Canary)
	side("baseline", o.Baseline)
	tol := "none"
	if o.Tolerance.Ratio != 1 || o.Tolerance.Increase != 0 {
		tol = fmt.Sprintf("canary may be up to baseline x %s + %s", g(o.Tolerance.Ratio), g(o.Tolerance.Increase))
	}
	switch o.Test {
	case analysis.TestSequential:
		fmt.Fprintf(tw, "test\tsequential: anytime-valid count test of the canary's share of the events (one-sided: canary worse)\n")
		fmt.Fprintf(tw, "tolerance\t%s\n", tol)
		if o.E != nil {
			fmt.Fprintf(tw, "statistic\te-value %s\n", g(*o.E))
		}
		fmt.Fprintf(tw, "p-value\t%s (alpha %s)\n", g(o.P), g(o.Alpha))
		if o.Effect != nil {
			fmt.Fprintf(tw, "effect\t%s (canary rate minus baseline rate; %s confidence sequence %s)\n", signedPct(*o.Effect), pct(o.Interval.Level), intervalText(o.Interval, pct))
		}
	default:
		fmt.Fprintf(tw, "test\tmann-whitney: U test, one-sided (canary larger), normal approximation with tie and continuity corrections\n")
		fmt.Fprintf(tw, "tolerance\t%s\n", tol)
		if o.Z != nil {
			fmt.Fprintf(tw, "statistic\tU = %s (z = %s)\n", g(o.Statistic), g(*o.Z))
			fmt.Fprintf(tw, "p-value\t%s (alpha %s)\n", g(o.P), g(o.Alpha))
		}
		if o.Effect != nil {
			fmt.Fprintf(tw, "effect\t%s (Hodges-Lehmann shift, canary minus baseline; %s interval %s)\n", signed(*o.Effect), pct(o.Interval.Level), intervalText(o.Interval, g))
		}
	}
	fmt.Fprintf(tw, "verdict\t%s\n", o.Verdict)
	fmt.Fprintf(tw, "reason\t%s\n", o.Reason)
	return tw.Flush()
}

func g(v float64) string { return fmt.Sprintf("%.4g", v) }

func signed(v float64) string {
	if v > 0 {
		return "+" + g(v)
	}
	return g(v)
}

func pct(v float64) string { return fmt.Sprintf("%.4g%%", v*100) }

func signedPct(v float64) string {
	if v > 0 {
		return "+" + pct(v)
	}
	return pct(v)
}

func intervalText(iv *intervalJ, f func(float64) string) string {
	lo, hi := "-inf", "+inf"
	if iv.Lower != nil {
		lo = f(*iv.Lower)
	}
	if iv.Upper != nil {
		hi = f(*iv.Upper)
	}
	return "[" + lo + ", " + hi + "]"
}
