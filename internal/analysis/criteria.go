package analysis

import (
	"fmt"
	"math"
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
	// TestNone compares the latest interval's values directly.
	TestNone = ""
	// TestSequential is the anytime-valid count test (see Sequential) on
	// error counts, or on slow-request counts when SlowerThan or
	// SlowerThanQuantile is set. It is valid when looked at every interval.
	TestSequential = "sequential"
	// TestMannWhitney is the fixed-horizon Mann-Whitney U test (see
	// MannWhitney) on the latest interval's samples or latency histograms.
	TestMannWhitney = "mann-whitney"
)

// DefaultAlpha is the significance level of the statistical tests when
// Criteria.Alpha is not set.
const DefaultAlpha = 0.01

// minRankSamples is the smallest sample per version for which Judge runs
// the Mann-Whitney test (its normal approximation needs some size).
const minRankSamples = 10

// Criteria say how one metric's values are judged.
type Criteria struct {
	// Min and Max bound the canary's value (as Flagger's thresholdRange).
	// With test: sequential and no comparison, Max is the largest tolerated
	// event rate (a one-sample sequential test).
	Min *Number `json:"min,omitempty"`
	Max *Number `json:"max,omitempty"`
	// Compare is "" (judge the canary alone) or "baseline" (against stable).
	Compare string `json:"compare,omitempty"`
	// MaxIncrease and MaxRatio set the tolerated canary value against the
	// stable's: canary <= stable * MaxRatio + MaxIncrease (MaxRatio 1 and
	// MaxIncrease 0 when not set).
	MaxIncrease *Number `json:"maxIncrease,omitempty"`
	MaxRatio    *Number `json:"maxRatio,omitempty"`
	// Test is the statistical test: "" (compare the latest values),
	// "sequential" or "mann-whitney".
	Test string `json:"test,omitempty"`
	// MinSamples is the sample size (per version) below which the check is
	// Inconclusive. For sequential tests it counts requests over the whole
	// run and only holds back a Pass: evidence of harm fails the check at
	// any size. With MinSamples set, a sequential test also passes once the
	// canary has that many requests, shows no significant harm and its
	// observed rate is within the tolerance; without it, a sequential test
	// passes only when the data exclude harm anytime-validly.
	MinSamples int64 `json:"minSamples,omitempty"`
	// Alpha is the significance level of a statistical test (default 0.01):
	// the largest tolerated chance that the test fails a canary that is
	// within the tolerance.
	Alpha *Number `json:"alpha,omitempty"`
	// SlowerThan, in seconds, makes the sequential test count requests
	// slower than this bound instead of errors.
	SlowerThan *Number `json:"slowerThan,omitempty"`
	// SlowerThanQuantile makes the sequential test count requests slower
	// than the stable version's q-quantile (e.g. 0.99) over the run's
	// earlier intervals, a bound that follows the service's own speed.
	SlowerThanQuantile *Number `json:"slowerThanQuantile,omitempty"`
}

// Problem is one thing wrong with a configuration: Field is a path relative
// to the configuration's own root (e.g. "maxIncrease").
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// alpha is the significance level in force.
func (c Criteria) alpha() float64 {
	if c.Alpha == nil {
		return DefaultAlpha
	}
	return float64(*c.Alpha)
}

// tolerance is the tolerance in force for a baseline comparison.
func (c Criteria) tolerance() Tolerance {
	t := Tolerance{Ratio: 1}
	if c.MaxRatio != nil {
		t.Ratio = float64(*c.MaxRatio)
	}
	if c.MaxIncrease != nil {
		t.Increase = float64(*c.MaxIncrease)
	}
	return t
}

func (c Criteria) slowTest() bool { return c.SlowerThan != nil || c.SlowerThanQuantile != nil }

// Validate returns every problem with c.
func (c Criteria) Validate() []Problem {
	var ps []Problem
	add := func(f, format string, args ...any) {
		ps = append(ps, Problem{Field: f, Message: fmt.Sprintf(format, args...)})
	}
	for _, n := range []struct {
		field string
		v     *Number
	}{{"min", c.Min}, {"max", c.Max}, {"maxIncrease", c.MaxIncrease}, {"maxRatio", c.MaxRatio}, {"alpha", c.Alpha}, {"slowerThan", c.SlowerThan}, {"slowerThanQuantile", c.SlowerThanQuantile}} {
		if n.v != nil && (math.IsNaN(float64(*n.v)) || math.IsInf(float64(*n.v), 0)) {
			add(n.field, "%s must be a finite number", n.field)
		}
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		add("min", "min %g is greater than max %g", *c.Min, *c.Max)
	}
	switch c.Test {
	case TestNone, TestSequential, TestMannWhitney:
	default:
		add("test", "unknown test %q (want sequential or mann-whitney, or leave it out to compare values)", c.Test)
	}
	switch c.Compare {
	case CompareNone:
		c.validateAlone(add)
	case CompareBaseline:
		c.validateBaseline(add)
	default:
		add("compare", "unknown comparison %q (want baseline, or leave it out to judge the canary alone)", c.Compare)
	}
	if c.MaxIncrease != nil && *c.MaxIncrease < 0 {
		add("maxIncrease", "maxIncrease %g is negative", *c.MaxIncrease)
	}
	if c.MaxRatio != nil && *c.MaxRatio <= 0 {
		add("maxRatio", "maxRatio %g must be positive", *c.MaxRatio)
	}
	if c.MinSamples < 0 {
		add("minSamples", "minSamples %d is negative", c.MinSamples)
	}
	if c.Alpha != nil && (*c.Alpha <= 0 || *c.Alpha > 0.5) {
		add("alpha", "alpha %g must be greater than 0 and at most 0.5 (e.g. 0.01)", *c.Alpha)
	}
	if c.Alpha != nil && c.Test == TestNone {
		add("alpha", "alpha needs a statistical test (test: sequential or mann-whitney)")
	}
	c.validateSlow(add)
	return ps
}

type addFunc func(field, format string, args ...any)

func (c Criteria) validateAlone(add addFunc) {
	if c.MaxIncrease != nil {
		add("maxIncrease", "maxIncrease needs compare: baseline")
	}
	if c.MaxRatio != nil {
		add("maxRatio", "maxRatio needs compare: baseline")
	}
	switch c.Test {
	case TestNone:
		if c.Min == nil && c.Max == nil {
			add("max", "a check needs min, max, or compare: baseline")
		}
	case TestSequential:
		if c.Min != nil {
			add("min", "a sequential test judges an upper limit on a rate; use max")
		}
		if c.Max == nil {
			add("max", "test: sequential needs compare: baseline, or max (the largest tolerated rate)")
		} else if *c.Max < 0 || *c.Max >= 1 {
			add("max", "max %g is not a rate: a sequential test judges an error or slow-request rate, from 0 up to but not including 1 (e.g. 1%%)", *c.Max)
		}
	case TestMannWhitney:
		add("test", "test mann-whitney needs compare: baseline")
	}
}

func (c Criteria) validateBaseline(add addFunc) {
	switch c.Test {
	case TestNone:
		if c.MaxIncrease == nil && c.MaxRatio == nil {
			add("maxIncrease", "compare: baseline needs maxIncrease or maxRatio")
		}
	case TestSequential, TestMannWhitney:
		if c.Min != nil {
			add("min", "min cannot be combined with test %s against the baseline; judge it in a separate check", c.Test)
		}
		if c.Max != nil {
			add("max", "max cannot be combined with test %s against the baseline; judge it in a separate check", c.Test)
		}
	}
	if c.Test == TestSequential && c.MaxIncrease != nil && *c.MaxIncrease >= 1 {
		add("maxIncrease", "maxIncrease %g is not a rate: a sequential test judges an error or slow-request rate, so the tolerated increase is below 1 (e.g. 0.5%%)", *c.MaxIncrease)
	}
}

func (c Criteria) validateSlow(add addFunc) {
	if c.SlowerThan != nil && c.SlowerThanQuantile != nil {
		add("slowerThanQuantile", "set either slowerThan or slowerThanQuantile, not both")
	}
	if c.SlowerThan != nil {
		if *c.SlowerThan <= 0 {
			add("slowerThan", "slowerThan %g must be a positive duration (e.g. 500ms)", *c.SlowerThan)
		}
		if c.Test != TestSequential {
			add("slowerThan", "slowerThan needs test: sequential")
		}
	}
	if c.SlowerThanQuantile != nil {
		if *c.SlowerThanQuantile <= 0 || *c.SlowerThanQuantile >= 1 {
			add("slowerThanQuantile", "slowerThanQuantile %g must be between 0 and 1 (e.g. 0.99 for the stable's p99)", *c.SlowerThanQuantile)
		}
		if c.Test != TestSequential {
			add("slowerThanQuantile", "slowerThanQuantile needs test: sequential")
		}
		if c.Compare != CompareBaseline {
			add("slowerThanQuantile", "slowerThanQuantile needs compare: baseline (the bound comes from the stable version)")
		}
	}
}
