package analysis

import (
	"encoding/json"
	"fmt"
	"math"
)

// Verdict is the outcome of one check.
type Verdict int

const (
	// Inconclusive means there is not enough data to judge yet. It is the zero
	// value: no evidence is never a pass.
	Inconclusive Verdict = iota
	// Pass means the evidence says the canary is acceptable.
	Pass
	// Fail means the evidence says the canary is worse than allowed.
	Fail
	// Error means the check could not be measured (a provider failed).
	Error
)

var verdictNames = [...]string{Inconclusive: "Inconclusive", Pass: "Pass", Fail: "Fail", Error: "Error"}

func (v Verdict) String() string {
	if v < 0 || int(v) >= len(verdictNames) {
		return fmt.Sprintf("Verdict(%d)", int(v))
	}
	return verdictNames[v]
}

// ParseVerdict parses the name of a verdict as written by String.
func ParseVerdict(s string) (Verdict, error) {
	for i, n := range verdictNames {
		if n == s {
			return Verdict(i), nil
		}
	}
	return Inconclusive, fmt.Errorf("unknown verdict %q (want Pass, Fail, Inconclusive or Error)", s)
}

// MarshalText writes the verdict's name.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a verdict's name.
func (v *Verdict) UnmarshalText(b []byte) error {
	p, err := ParseVerdict(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// Result is one check evaluated once: the numbers it saw and its verdict.
type Result struct {
	// Metric is the name of the metric in the spec.
	Metric string `json:"metric"`
	// Verdict is the outcome.
	Verdict Verdict `json:"verdict"`
	// Canary is the canary's value of the metric (NaN-free: HasCanary tells
	// whether there was one).
	Canary    float64 `json:"canary"`
	HasCanary bool    `json:"hasCanary"`
	// Stable is the stable version's value when the check compared against it.
	Stable    float64 `json:"stable,omitempty"`
	HasStable bool    `json:"hasStable,omitempty"`
	// CanaryCount and StableCount are the sample sizes behind the values
	// (requests, or points), or -1 when the provider does not know them.
	CanaryCount int64 `json:"canaryCount"`
	StableCount int64 `json:"stableCount,omitempty"`
	// Statistic, P and E are the test statistic, p-value and e-value of a
	// statistical test, when one ran (zero otherwise).
	Statistic float64 `json:"statistic,omitempty"`
	P         float64 `json:"p,omitempty"`
	E         float64 `json:"e,omitempty"`
	// Effect is the estimated effect, when one was estimated: canary minus
	// stable (fixed comparisons: the values; sequential tests: the event
	// rates; Mann-Whitney: the Hodges-Lehmann shift), or for a one-sample
	// sequential test the canary's event rate.
	Effect float64 `json:"effect,omitempty"`
	// EffectBounds, when set, bound Effect: a confidence sequence for
	// sequential tests, a confidence interval for Mann-Whitney.
	EffectBounds *Bounds `json:"effectBounds,omitempty"`
	// Test names the statistical test that ran ("sequential",
	// "mann-whitney"), if any.
	Test string `json:"test,omitempty"`
	// Reason is a one-line explanation naming the numbers behind the verdict.
	Reason string `json:"reason"`
}

// Bounds is a confidence interval or sequence at level Level. An unbounded
// end is infinite in Go and null in JSON.
type Bounds struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Level float64 `json:"level"`
}

type boundsJSON struct {
	Lower *float64 `json:"lower"`
	Upper *float64 `json:"upper"`
	Level float64  `json:"level"`
}

// MarshalJSON writes infinite ends as null.
func (b Bounds) MarshalJSON() ([]byte, error) {
	j := boundsJSON{Level: b.Level}
	if !math.IsInf(b.Lower, 0) && !math.IsNaN(b.Lower) {
		j.Lower = &b.Lower
	}
	if !math.IsInf(b.Upper, 0) && !math.IsNaN(b.Upper) {
		j.Upper = &b.Upper
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads null ends as infinite.
func (b *Bounds) UnmarshalJSON(data []byte) error {
	var j boundsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*b = Bounds{Lower: math.Inf(-1), Upper: math.Inf(1), Level: j.Level}
	if j.Lower != nil {
		b.Lower = *j.Lower
	}
	if j.Upper != nil {
		b.Upper = *j.Upper
	}
	return nil
}
