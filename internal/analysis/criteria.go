package analysis

import (
	"fmt"
	"math"
	"time"
)

// Comparison modes.
const (
	// CompareNone judges the canary's value alone (min/max).
	CompareNone = ""
	// CompareBaseline judges the canary against the stable version.
	CompareBaseline = "baseline"
)

// Test names.
const (
	TestNone       = ""
	TestSequential = "sequential"
)

// Criteria say how one metric's values are judged.
type Criteria struct {
	// Min and Max bound the canary's value (as Flagger's thresholdRange).
	Min *Number `json:"min,omitempty"`
	Max *Number `json:"max,omitempty"`
	// Compare is "" (judge the canary alone) or "baseline" (against stable).
	Compare string `json:"compare,omitempty"`
	// MaxIncrease tolerates canary <= stable + MaxIncrease.
	MaxIncrease *Number `json:"maxIncrease,omitempty"`
	// MaxRatio tolerates canary <= stable * MaxRatio.
	MaxRatio *Number `json:"maxRatio,omitempty"`
	// Test is the statistical test behind a baseline comparison.
	Test string `json:"test,omitempty"`
	// MinSamples is the sample size (per version) below which the check is
	// Inconclusive.
	MinSamples int64 `json:"minSamples,omitempty"`
}

// Problem is one thing wrong with a configuration: Field is a path relative
// to the configuration's own root (e.g. "maxIncrease").
type Problem struct {
	Field   string
	Message string
}

// Validate returns every problem with c.
func (c Criteria) Validate() []Problem {
	var ps []Problem
	add := func(f, format string, args ...any) {
		ps = append(ps, Problem{Field: f, Message: fmt.Sprintf(format, args...)})
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		add("min", "min %g is greater than max %g", *c.Min, *c.Max)
	}
	switch c.Compare {
	case CompareNone:
		if c.MaxIncrease != nil {
			add("maxIncrease", "maxIncrease needs compare: baseline")
		}
		if c.MaxRatio != nil {
			add("maxRatio", "maxRatio needs compare: baseline")
		}
		if c.Test != TestNone {
			add("test", "test %q needs compare: baseline", c.Test)
		}
		if c.Min == nil && c.Max == nil {
			add("max", "a check needs min, max, or compare: baseline")
		}
	case CompareBaseline:
		if c.MaxIncrease == nil && c.MaxRatio == nil {
			add("maxIncrease", "compare: baseline needs maxIncrease or maxRatio")
		}
	default:
		add("compare", "unknown comparison %q (want baseline, or leave it out to judge the canary alone)", c.Compare)
	}
	if c.MaxIncrease != nil && *c.MaxIncrease < 0 {
		add("maxIncrease", "maxIncrease %g is negative", *c.MaxIncrease)
	}
	if c.MaxRatio != nil && *c.MaxRatio <= 0 {
		add("maxRatio", "maxRatio %g must be positive", *c.MaxRatio)
	}
	switch c.Test {
	case TestNone, TestSequential:
	default:
		add("test", "unknown test %q (want sequential)", c.Test)
	}
	if c.MinSamples < 0 {
		add("minSamples", "minSamples %d is negative", c.MinSamples)
	}
	return ps
}

// Interval is one interval's measurements of one metric.
type Interval struct {
	At     time.Time   `json:"at"`
	Canary Measurement `json:"canary"`
	Stable Measurement `json:"stable"`
}

// Judge evaluates a metric over a run's intervals so far (oldest first) and
// returns the verdict for the latest one.
func Judge(metric string, c Criteria, series []Interval) Result {
	r := Result{Metric: metric, CanaryCount: -1}
	if len(series) == 0 {
		r.Reason = fmt.Sprintf("%s: no measurements yet", metric)
		return r
	}
	last := series[len(series)-1]
	can, st := last.Canary, last.Stable
	r.CanaryCount = can.Count
	if can.HasValue {
		r.Canary, r.HasCanary = can.Value, true
	}
	if !can.HasValue {
		r.Reason = fmt.Sprintf("%s: no canary data in the last interval", metric)
		return r
	}
	if c.MinSamples > 0 && can.Count >= 0 && can.Count < c.MinSamples {
		r.Reason = fmt.Sprintf("%s: canary %s from %d samples, fewer than the %d needed", metric, fmtValue(can.Value), can.Count, c.MinSamples)
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
		r.Reason = fmt.Sprintf("%s: stable %s from %d samples, fewer than the %d needed", metric, fmtValue(st.Value), st.Count, c.MinSamples)
		return r
	}
	limit := math.Inf(1)
	if c.MaxIncrease != nil {
		limit = st.Value + float64(*c.MaxIncrease)
	}
	if c.MaxRatio != nil {
		limit = math.Min(limit, st.Value*float64(*c.MaxRatio))
	}
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

func fmtValue(v float64) string { return fmt.Sprintf("%.4g", v) }

func fmtRange(min, max *Number) string {
	switch {
	case min != nil && max != nil:
		return fmt.Sprintf("[%s, %s]", fmtValue(float64(*min)), fmtValue(float64(*max)))
	case min != nil:
		return fmt.Sprintf(">= %s", fmtValue(float64(*min)))
	case max != nil:
		return fmt.Sprintf("<= %s", fmtValue(float64(*max)))
	}
	return "any range"
}
