package analysis

import "math"

// This file holds the anytime-valid count test behind `test: sequential`.
//
// The question is the one of Lindon & Malek, "Anytime-valid inference for
// multinomial count data" (NeurIPS 2022): is the canary's share of the
// events (errors, slow requests) larger than its share of the traffic says it
// should be? Their test conditions on the events and mixes the multinomial
// likelihood ratio over a Dirichlet prior, which needs a fixed traffic
// allocation. A canary's weight grows between intervals, so here every
// interval is its own block with its own allocation, and the mixture is over
// a grid of alternatives shared by all blocks.
//
// In interval i the canary served n_c requests with X_c events and the stable
// n_s requests with X_s events. The null hypothesis (the canary is acceptable)
// is p_c <= r*p_s + d in every interval, where p_c and p_s are the versions'
// event probabilities in that interval (they may change from interval to
// interval), r is the tolerated ratio and d the tolerated increase. With
// k = r*n_c/n_s and a bet u in (-1, 1/k), the interval's e-value is
//
//	e(u) = (1+u)^X_c * (1-k*u)^X_s * exp(-d*n_c*u).
//
// Each request's outcome is an independent Bernoulli given the counts, so
// E[e(u)] = (1+u*p_c)^n_c * (1-k*u*p_s)^n_s * exp(-d*n_c*u)
// <= exp(n_c*u*(p_c - r*p_s - d)) (by 1+x <= e^x and k*n_s = r*n_c),
// which is at most 1 for u >= 0 under the null, whatever p_s is. The bound
// holds for Poisson counts too, and for fractional "soft" counts in [0,1] per
// request (by convexity of (1+u)^y), which is what histogram interpolation
// produces. Products of such e-values over intervals, with bets chosen before
// each interval's data is seen, are test supermartingales; a mixture over a
// fixed grid of bets is one too; so by Ville's inequality the chance that the
// mixture ever reaches 1/alpha under the null is at most alpha, however often
// it is looked at and whenever the run stops.
//
// The bets are u = (R-1)/(1+R*k) for a grid of R: then e(u) is exactly the
// likelihood ratio of "the canary's share of this interval's events is
// R*k/(1+R*k)" against the null share k/(1+k) (Lindon & Malek's statistic
// with this interval's allocation), times exp(-d*n_c*u) for the tolerated
// increase. R > 1 bets on harm (evidence against the null: Fail); R < 1 bets
// on safety, testing the opposite null p_c >= r*p_s + d in every interval
// (evidence against it: the canary is within the tolerance; u < 0 and the
// same bound applies with the inequality turned).
//
// With r = 0 the stable counts drop out and the test is a one-sample test of
// p_c <= d.

// Counts is one interval of a count test: the requests each version served
// and how many of them were events (errors, or requests slower than a bound).
// Events may be fractional when they are estimated from histogram buckets.
type Counts struct {
	CanaryRequests float64 `json:"canaryRequests"`
	CanaryEvents   float64 `json:"canaryEvents"`
	StableRequests float64 `json:"stableRequests"`
	StableEvents   float64 `json:"stableEvents"`
}

// Tolerance is the largest acceptable canary event rate: Ratio times the
// stable's rate plus Increase. Ratio 0 compares the canary with the fixed
// rate Increase alone (a one-sample test; stable counts are ignored).
type Tolerance struct {
	Ratio    float64 `json:"ratio"`
	Increase float64 `json:"increase"`
}

// Limit is the tolerated canary rate when the stable's rate is stable.
func (t Tolerance) Limit(stable float64) float64 {
	if t.Ratio == 0 {
		return t.Increase
	}
	return t.Ratio*stable + t.Increase
}

// SequentialResult is the state of a sequential count test after a series of
// intervals.
type SequentialResult struct {
	// Intervals is the number of intervals that carried any requests.
	Intervals int `json:"intervals"`
	// Totals over the series.
	CanaryRequests float64 `json:"canaryRequests"`
	CanaryEvents   float64 `json:"canaryEvents"`
	StableRequests float64 `json:"stableRequests"`
	StableEvents   float64 `json:"stableEvents"`
	// E is the e-value against "the canary is within the tolerance" after the
	// last interval, MaxE its largest value after any interval (at least 1),
	// and P = 1/MaxE the anytime-valid p-value.
	E    float64 `json:"e"`
	MaxE float64 `json:"maxE"`
	P    float64 `json:"p"`
	// SafeE, SafeMaxE and SafeP are the same for the opposite null, "the
	// canary is beyond the tolerance": a small SafeP is evidence that it is
	// within it.
	SafeE    float64 `json:"safeE"`
	SafeMaxE float64 `json:"safeMaxE"`
	SafeP    float64 `json:"safeP"`
	// Effect is the canary's pooled event rate minus the stable's (for a
	// one-sample test, Ratio 0: the canary's rate), and [EffectLower,
	// EffectUpper] a confidence sequence for it at level 1-alpha: over the
	// whole run, the chance that the true difference ever falls outside is
	// at most alpha, if the difference is the same in every interval.
	Effect      float64 `json:"effect"`
	EffectLower float64 `json:"effectLower"`
	EffectUpper float64 `json:"effectUpper"`
}

// CanaryRate is the canary's pooled event rate (NaN without requests).
func (r SequentialResult) CanaryRate() float64 { return rate(r.CanaryEvents, r.CanaryRequests) }

// StableRate is the stable's pooled event rate (NaN without requests).
func (r SequentialResult) StableRate() float64 { return rate(r.StableEvents, r.StableRequests) }

func rate(events, requests float64) float64 {
	if requests <= 0 {
		return math.NaN()
	}
	return events / requests
}

// The mixing grid: R = exp(±step*j) for j = 1..points, weighted by a
// half-normal prior on log R with scale priorScale, normalised to 1. Effects
// from R = 1.1 to R = e^7 (about 1100) are covered; beyond that the largest
// bet still grows the e-value nearly as fast as the best one.
const (
	gridStep   = 0.1
	gridPoints = 70
	priorScale = 2.0
)

type betGrid struct {
	logR []float64
	r    []float64
	logW []float64
}

var (
	harmGrid = newBetGrid(+1)
	safeGrid = newBetGrid(-1)
)

func newBetGrid(sign float64) betGrid {
	g := betGrid{
		logR: make([]float64, gridPoints),
		r:    make([]float64, gridPoints),
		logW: make([]float64, gridPoints),
	}
	var sum float64
	for j := range gridPoints {
		x := gridStep * float64(j+1)
		g.logR[j] = sign * x
		g.r[j] = math.Exp(sign * x)
		w := math.Exp(-x * x / (2 * priorScale * priorScale))
		g.logW[j] = w
		sum += w
	}
	for j := range g.logW {
		g.logW[j] = math.Log(g.logW[j] / sum)
	}
	return g
}

// mixture accumulates, for each grid point j, log e_j = a[j] - d*b[j] over
// the intervals seen, where a[j] is the likelihood-ratio part and b[j] the sum
// of n_c*u (so the tolerated increase d can be varied afterwards).
type mixture struct {
	g    betGrid
	a, b []float64
}

func newMixture(g betGrid) *mixture {
	return &mixture{g: g, a: make([]float64, len(g.r)), b: make([]float64, len(g.r))}
}

// add accumulates one interval for the tolerated ratio r. It reports false
// when the interval carries no information (no requests, or no stable
// requests to compare with).
func (m *mixture) add(c Counts, r float64) bool {
	if c.CanaryRequests <= 0 {
		return false
	}
	var k float64
	if r > 0 {
		if c.StableRequests <= 0 {
			return false
		}
		k = r * c.CanaryRequests / c.StableRequests
	}
	l1k := math.Log1p(k)
	total := c.CanaryEvents
	if r > 0 {
		total += c.StableEvents
	}
	for j, R := range m.g.r {
		// log(1+u) = log R + log(1+k) - log(1+R k), log(1-k u) = log(1+k) - log(1+R k).
		shared := l1k - math.Log1p(R*k)
		m.a[j] += c.CanaryEvents*m.g.logR[j] + total*shared
		m.b[j] += c.CanaryRequests * (R - 1) / (1 + R*k)
	}
	return true
}

// logE is the log of the mixture e-value for tolerated increase d.
func (m *mixture) logE(d float64) float64 {
	mx := math.Inf(-1)
	for j := range m.a {
		mx = math.Max(mx, m.g.logW[j]+m.a[j]-d*m.b[j])
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	// Terms more than 40 below the largest add less than 1e-17 each.
	var s float64
	for j := range m.a {
		if v := m.g.logW[j] + m.a[j] - d*m.b[j] - mx; v > -40 {
			s += math.Exp(v)
		}
	}
	return mx + math.Log(s)
}

// root returns the boundary of the set of d in [lo, hi] rejected at level
// (m.logE(d) >= level). For the harm grid logE decreases in d and the
// rejected set lies below the boundary (a lower confidence bound); for the
// safe grid it increases and the rejected set lies above (an upper bound).
// It returns lo or hi when the whole interval is on one side.
func (m *mixture) root(level, lo, hi float64, decreasing bool) float64 {
	rejected := func(d float64) bool { return m.logE(d) >= level }
	if decreasing {
		if !rejected(lo) {
			return lo
		}
		if rejected(hi) {
			return hi
		}
	} else {
		if !rejected(hi) {
			return hi
		}
		if rejected(lo) {
			return lo
		}
	}
	// Invariant: rejected(lo) == decreasing, rejected(hi) != decreasing.
	for hi-lo > 1e-9 {
		mid := lo + (hi-lo)/2
		if rejected(mid) == decreasing {
			lo = mid
		} else {
			hi = mid
		}
	}
	// Return the rejected end: the interval reported is never narrower.
	if decreasing {
		return lo
	}
	return hi
}

// maxLogE bounds reported e-values so that they stay finite (and
// JSON-encodable): e-values beyond 1e300 are reported as 1e300.
const maxLogE = 690.0

func expCapped(l float64) float64 { return math.Exp(math.Min(l, maxLogE)) }

// Sequential runs the anytime-valid count test over intervals (oldest first)
// for the tolerance tol, and returns the e-values and anytime p-values of
// both directions, and the effect with a confidence sequence at level
// 1-alpha (alpha in (0,1)). It is a pure function of its arguments.
func Sequential(intervals []Counts, tol Tolerance, alpha float64) SequentialResult {
	harm, safe := newMixture(harmGrid), newMixture(safeGrid)
	var res SequentialResult
	var maxHarm, maxSafe float64 // log of the running maxima, E_0 = 1
	for _, c := range intervals {
		if !validCounts(c) {
			continue
		}
		if c.CanaryRequests > 0 || c.StableRequests > 0 {
			res.Intervals++
		}
		res.CanaryRequests += c.CanaryRequests
		res.CanaryEvents += c.CanaryEvents
		res.StableRequests += c.StableRequests
		res.StableEvents += c.StableEvents
		if harm.add(c, tol.Ratio) {
			safe.add(c, tol.Ratio)
			maxHarm = math.Max(maxHarm, harm.logE(tol.Increase))
			maxSafe = math.Max(maxSafe, safe.logE(tol.Increase))
		}
	}
	lh, ls := harm.logE(tol.Increase), safe.logE(tol.Increase)
	res.E, res.MaxE, res.P = expCapped(lh), expCapped(maxHarm), math.Min(1, math.Exp(-maxHarm))
	res.SafeE, res.SafeMaxE, res.SafeP = expCapped(ls), expCapped(maxSafe), math.Min(1, math.Exp(-maxSafe))

	// The effect and its confidence sequence: canary minus stable rate
	// (r = 1), or the canary's rate (r = 0), each bound at alpha/2.
	cr := 1.0
	if tol.Ratio == 0 {
		cr = 0
	}
	ch, cs := harm, safe
	if cr != tol.Ratio {
		ch, cs = newMixture(harmGrid), newMixture(safeGrid)
		for _, c := range intervals {
			if validCounts(c) && ch.add(c, cr) {
				cs.add(c, cr)
			}
		}
	}
	lo, hi := -1.0, 1.0
	if cr == 0 {
		lo = 0
	}
	level := math.Log(2 / alpha)
	res.EffectLower = ch.root(level, lo, hi, true)
	res.EffectUpper = cs.root(level, lo, hi, false)
	switch {
	case res.CanaryRequests <= 0:
		res.Effect = math.NaN()
	case cr == 0:
		res.Effect = res.CanaryEvents / res.CanaryRequests
	case res.StableRequests <= 0:
		res.Effect = math.NaN()
	default:
		res.Effect = res.CanaryEvents/res.CanaryRequests - res.StableEvents/res.StableRequests
	}
	return res
}

// validCounts reports whether c is usable: finite, non-negative, and no more
// events than requests.
func validCounts(c Counts) bool {
	for _, v := range [...]float64{c.CanaryRequests, c.CanaryEvents, c.StableRequests, c.StableEvents} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return c.CanaryEvents <= c.CanaryRequests && c.StableEvents <= c.StableRequests
}
