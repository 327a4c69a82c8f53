package analysis

import "fmt"

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
	// Effect is the estimated effect (canary minus stable, or canary over
	// stable for ratio comparisons), when one was estimated.
	Effect float64 `json:"effect,omitempty"`
	// Reason is a one-line explanation naming the numbers behind the verdict.
	Reason string `json:"reason"`
}
