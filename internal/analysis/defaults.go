package analysis

// DefaultCheck is one check of the default analysis: what the built-in
// provider is asked (Query) and how the answers are judged.
type DefaultCheck struct {
	Name     string
	Query    string
	Criteria Criteria
}

// The default analysis, used when a rollout on the built-in provider lists
// no metrics. Both checks are sequential tests of the canary against the
// stable, so they may be judged at every interval.
const (
	// DefaultCheckAlpha is each default check's significance level. The
	// default analysis has two checks, so the chance that a canary within
	// both tolerances is ever failed by either is at most 2 x 0.005 = 1%.
	DefaultCheckAlpha = 0.005
	// DefaultMaxRatio and DefaultMaxIncrease are the tolerated error rate:
	// 1.25 x the stable's plus 0.02 percentage points. The ratio absorbs
	// small real differences and some version-specific noise that a test
	// with no tolerance would, given enough traffic, rightly call harm;
	// the increase keeps a stable with no errors at all from making a
	// single canary error a regression.
	DefaultMaxRatio    = 1.25
	DefaultMaxIncrease = 0.0002
	// DefaultSlowQuantile sets the slow-request bound at the stable's p99
	// over the run so far: about 1% of a healthy canary's requests are
	// slower than it (less when histogram buckets are coarse, since the
	// bound is a bucket bound).
	DefaultSlowQuantile = 0.99
	// DefaultSlowMaxIncrease is the tolerated increase of the slow share:
	// 0.2 percentage points over 1.25 x the stable's.
	DefaultSlowMaxIncrease = 0.002
	// DefaultMinRequests is the number of canary (and stable) requests
	// after which a default check passes when the canary's observed rate
	// is within the tolerance and the test shows no significant harm.
	// Before that a check can fail but not pass; a canary that never gets
	// that many requests waits, and pauses at the progress deadline.
	DefaultMinRequests = 1000
)

// Builtin provider queries used by the default checks.
const (
	QueryErrorRate  = "error-rate"
	QueryLatencyP99 = "latency-p99"
)

// DefaultChecks returns the default analysis: the sequential error test
// (error counts from the error-rate query) and the slow-request test
// (latency histograms from the latency-p99 query, counting requests slower
// than the stable's p99 so far). Each call returns fresh values.
func DefaultChecks() []DefaultCheck {
	num := func(v float64) *Number { n := Number(v); return &n }
	return []DefaultCheck{
		{
			Name:  "error-rate",
			Query: QueryErrorRate,
			Criteria: Criteria{
				Compare:     CompareBaseline,
				Test:        TestSequential,
				MaxRatio:    num(DefaultMaxRatio),
				MaxIncrease: num(DefaultMaxIncrease),
				Alpha:       num(DefaultCheckAlpha),
				MinSamples:  DefaultMinRequests,
			},
		},
		{
			Name:  "slow-requests",
			Query: QueryLatencyP99,
			Criteria: Criteria{
				Compare:            CompareBaseline,
				Test:               TestSequential,
				SlowerThanQuantile: num(DefaultSlowQuantile),
				MaxRatio:           num(DefaultMaxRatio),
				MaxIncrease:        num(DefaultSlowMaxIncrease),
				Alpha:              num(DefaultCheckAlpha),
				MinSamples:         DefaultMinRequests,
			},
		},
	}
}
