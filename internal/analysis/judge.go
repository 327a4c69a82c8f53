package analysis

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Interval is one interval's measurements of one metric: what the canary and
// the stable did in that interval alone (not cumulative).
type Interval struct {
	At     time.Time   `json:"at"`
	Canary Measurement `json:"canary"`
	Stable Measurement `json:"stable"`
}

// Judge evaluates a metric over a run's intervals so far (oldest first) and
// returns the verdict after the latest one. It is a pure function of its
// arguments, so a restarted server recomputes the same verdicts from the same
// series.
//
// What each verdict means depends on the criteria:
//
//   - Threshold (min/max) and fixed baseline comparisons (no test) judge the
//     latest interval's values: Fail when the canary's value is outside the
//     range or above stable*MaxRatio+MaxIncrease, Pass when inside, and
//     Inconclusive without a value or with fewer than MinSamples samples.
//   - test: sequential judges the whole series with the anytime-valid count
//     test (see Sequential). Fail when the anytime p-value of "the canary is
//     within the tolerance" is at most Alpha: the chance of that ever
//     happening to a canary within the tolerance, however many intervals are
//     judged, is at most Alpha, and once reached it stays (the p-value is a
//     running minimum). Pass, once the canary has MinSamples requests, when
//     harm beyond the tolerance is excluded anytime-validly (the opposite
//     test's p-value is at most Alpha), or when MinSamples is set and the
//     canary's observed rate is within the tolerance with no significant
//     harm. Inconclusive otherwise, and always without canary (or, against
//     the baseline, stable) requests.
//   - test: mann-whitney judges the latest interval's samples (or latency
//     histograms) with a one-sided Mann-Whitney U test of "the canary's
//     values, less MaxIncrease and divided by MaxRatio, tend to be larger
//     than the stable's": Fail when p <= Alpha, Pass otherwise, Inconclusive
//     with fewer than max(MinSamples, 10) values per version. It is a
//     fixed-horizon test of one interval: each look has an Alpha chance of
//     failing a healthy canary, so pair it with failureLimit, or prefer the
//     sequential tests for continuous monitoring.
//
// Error means the check could not be judged: invalid criteria, a failed
// measurement (Measurement.Err), or data the test cannot use (a value that is
// not a number, no request counts for a sequential error test, no latency
// histogram for a slow-request test, more errors than requests) in the
// latest interval. Such older intervals are skipped.
func Judge(metric string, c Criteria, series []Interval) Result {
	r := Result{Metric: metric, CanaryCount: -1, Test: c.Test}
	if ps := c.Validate(); len(ps) > 0 {
		r.Verdict = Error
		more := ""
		if len(ps) > 1 {
			more = fmt.Sprintf(" (and %d more problems)", len(ps)-1)
		}
		r.Reason = fmt.Sprintf("%s: invalid criteria: %s%s", metric, ps[0], more)
		return r
	}
	if len(series) == 0 {
		r.Reason = fmt.Sprintf("%s: no measurements yet", metric)
		return r
	}
	last := series[len(series)-1]
	if msg := measurementFailure(last, c); msg != "" {
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: %s", metric, msg)
		return r
	}
	switch c.Test {
	case TestSequential:
		return judgeSequential(r, c, series)
	case TestMannWhitney:
		return judgeRanks(r, c, last)
	}
	return judgeValues(r, c, last)
}

// JudgeSamples judges two samples (e.g. latencies read from files) as one
// interval: Value is each sample's median. With test: mann-whitney it runs
// the rank test; without a test it compares the medians.
func JudgeSamples(metric string, c Criteria, canary, stable []float64) Result {
	m := func(xs []float64) Measurement {
		ms := Measurement{Count: int64(len(xs)), Samples: xs}
		if len(xs) > 0 {
			s := append([]float64(nil), xs...)
			sort.Float64s(s)
			ms.Value, ms.HasValue = median(s), true
		}
		return ms
	}
	return Judge(metric, c, []Interval{{Canary: m(canary), Stable: m(stable)}})
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// measurementFailure explains why the latest interval cannot be judged, or
// returns "".
func measurementFailure(iv Interval, c Criteria) string {
	sides := []struct {
		name string
		m    Measurement
	}{{"canary", iv.Canary}}
	if c.Compare == CompareBaseline {
		sides = append(sides, struct {
			name string
			m    Measurement
		}{"stable", iv.Stable})
	}
	for _, s := range sides {
		if s.m.Err != "" {
			return fmt.Sprintf("%s measurement failed: %s", s.name, s.m.Err)
		}
		if s.m.HasValue && (math.IsNaN(s.m.Value) || math.IsInf(s.m.Value, 0)) {
			return fmt.Sprintf("%s value is %v, not a number that can be judged", s.name, s.m.Value)
		}
	}
	return ""
}

// judgeValues judges the latest interval's values against min/max and the
// tolerated stable*MaxRatio+MaxIncrease.
func judgeValues(r Result, c Criteria, last Interval) Result {
	metric := r.Metric
	can, st := last.Canary, last.Stable
	r.CanaryCount = can.Count
	if !can.HasValue {
		r.Reason = fmt.Sprintf("%s: no canary data in the last interval", metric)
		return r
	}
	r.Canary, r.HasCanary = can.Value, true
	if c.MinSamples > 0 && can.Count >= 0 && can.Count < c.MinSamples {
		r.Reason = fmt.Sprintf("%s: canary %s from %s samples, fewer than the %s needed", metric, fmtValue(can.Value), fmtCount(can.Count), fmtCount(c.MinSamples))
		return r
	}
	if c.Min != nil && can.Value < float64(*c.Min) {
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: canary %s is below min %s", metric, fmtValue(can.Value), fmtValue(float64(*c.Min)))
		return r
	}
	if c.Max != nil && can.Value > float64(*c.Max) {
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: canary %s is above max %s", metric, fmtValue(can.Value), fmtValue(float64(*c.Max)))
		return r
	}
	if c.Compare != CompareBaseline {
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%s: canary %s within %s", metric, fmtValue(can.Value), fmtRange(c.Min, c.Max))
		return r
	}
	r.StableCount = st.Count
	if !st.HasValue {
		r.Reason = fmt.Sprintf("%s: canary %s but no stable data to compare with", metric, fmtValue(can.Value))
		return r
	}
	r.Stable, r.HasStable = st.Value, true
	if c.MinSamples > 0 && st.Count >= 0 && st.Count < c.MinSamples {
		r.Reason = fmt.Sprintf("%s: stable %s from %s samples, fewer than the %s needed", metric, fmtValue(st.Value), fmtCount(st.Count), fmtCount(c.MinSamples))
		return r
	}
	limit := c.tolerance().Limit(st.Value)
	r.Effect = can.Value - st.Value
	if can.Value > limit {
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: canary %s vs stable %s exceeds the tolerated %s", metric, fmtValue(can.Value), fmtValue(st.Value), fmtValue(limit))
		return r
	}
	r.Verdict = Pass
	r.Reason = fmt.Sprintf("%s: canary %s vs stable %s within the tolerated %s", metric, fmtValue(can.Value), fmtValue(st.Value), fmtValue(limit))
	return r
}

// judgeRanks runs the Mann-Whitney test on the latest interval.
func judgeRanks(r Result, c Criteria, last Interval) Result {
	metric := r.Metric
	tol := c.tolerance()
	x0, xMsg := rankSample(last.Canary, Tolerance{Ratio: 1})
	x, _ := rankSample(last.Canary, tol)
	y, yMsg := rankSample(last.Stable, Tolerance{Ratio: 1})
	for _, msg := range []string{xMsg, yMsg} {
		if msg != "" {
			r.Verdict = Error
			r.Reason = fmt.Sprintf("%s: %s", metric, msg)
			return r
		}
	}
	n, m := totalWeight(x0), totalWeight(y)
	r.CanaryCount, r.StableCount = n, m
	if n > 0 {
		r.Canary, r.HasCanary = weightedMedian(x0), true
	}
	if m > 0 {
		r.Stable, r.HasStable = weightedMedian(y), true
	}
	need := max(c.MinSamples, minRankSamples)
	if n < need || m < need {
		r.Reason = fmt.Sprintf("%s: %s canary and %s stable values, fewer than the %s per version the Mann-Whitney test needs", metric, fmtCount(n), fmtCount(m), fmtCount(need))
		return r
	}
	alpha := c.alpha()
	shift, err := rankTest(x0, y, 1-alpha)
	test := shift
	if err == nil && tol != (Tolerance{Ratio: 1}) {
		test, err = rankTest(x, y, 1-alpha)
	}
	if err != nil { // unreachable: sizes were checked
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: %v", metric, err)
		return r
	}
	r.Statistic, r.P = test.U, test.PGreater
	r.Effect = shift.Shift
	r.EffectBounds = &Bounds{Lower: shift.ShiftLower, Upper: shift.ShiftUpper, Level: 1 - alpha}
	numbers := fmt.Sprintf("Mann-Whitney U=%s p=%s %s %s; shift %s [%s, %s]; %s and %s values",
		fmtValue(test.U), fmtP(test.PGreater), cmpWord(test.PGreater <= alpha), fmtP(alpha),
		fmtSigned(shift.Shift), fmtValue(shift.ShiftLower), fmtValue(shift.ShiftUpper), fmtCount(n), fmtCount(m))
	what := fmt.Sprintf("canary median %s vs stable %s", fmtValue(r.Canary), fmtValue(r.Stable))
	if test.PGreater <= alpha {
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: %s, larger beyond the tolerance%s (%s)", metric, what, fmtTolerance(tol), numbers)
		return r
	}
	r.Verdict = Pass
	r.Reason = fmt.Sprintf("%s: %s, not significantly larger%s (%s)", metric, what, fmtTolerance(tol), numbers)
	return r
}

// rankSample returns a measurement's values for the rank test, mapped to
// (v - Increase)/Ratio: its samples, else its latency histogram's buckets.
func rankSample(m Measurement, t Tolerance) ([]weighted, string) {
	if len(m.Samples) > 0 {
		s := make([]float64, len(m.Samples))
		for i, v := range m.Samples {
			s[i] = (v - t.Increase) / t.Ratio
		}
		w, err := fromSample(s)
		if err != nil {
			return nil, fmt.Sprintf("samples: %v", err)
		}
		return w, ""
	}
	if m.Latency.Total() > 0 {
		return fromHistogram(m.Latency, t), ""
	}
	if m.HasValue && m.Count != 0 {
		return nil, "test mann-whitney needs samples or a latency histogram, and the provider reported only a value"
	}
	return nil, ""
}

func weightedMedian(xs []weighted) float64 {
	n := totalWeight(xs)
	at := func(k int64) float64 { // k-th smallest, 1-based
		for _, x := range xs {
			if k <= x.w {
				return x.v
			}
			k -= x.w
		}
		return math.NaN()
	}
	if n%2 == 1 {
		return at((n + 1) / 2)
	}
	return (at(n/2) + at(n/2+1)) / 2
}

func cmpWord(below bool) string {
	if below {
		return "<="
	}
	return ">"
}

func fmtTolerance(t Tolerance) string {
	var parts []string
	if t.Ratio != 1 {
		parts = append(parts, fmt.Sprintf("%s x stable", fmtValue(t.Ratio)))
	}
	if t.Increase != 0 {
		parts = append(parts, "+ "+fmtValue(t.Increase))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (tolerated: " + strings.Join(parts, " ") + ")"
}
