package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Monte Carlo checks of the sequential test: seeded, bounded, and small
// enough for `go test -race` (a few seconds); -short runs fewer runs.
// BenchmarkMonteCarlo runs the same scenarios with more runs and reports the
// rates: go test -run '^$' -bench MonteCarlo -benchtime 1x ./internal/analysis

// binomial draws Binomial(n, p) exactly by counting geometric waiting times
// (Devroye's second waiting-time method): O(n*p) work.
func binomial(rng *rand.Rand, n int, p float64) int {
	if p <= 0 || n <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	lq := math.Log1p(-p)
	x, sum := 0, 0
	for {
		sum += int(math.Floor(math.Log(1-rng.Float64())/lq)) + 1
		if sum > n {
			return x
		}
		x++
	}
}

// poisson draws request counts: exact for small means, normal beyond (the
// tests condition on the counts, so their distribution does not matter).
func poisson(rng *rand.Rand, mean float64) int {
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	limit, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

// scenario is a run of intervals: canaryRate requests per interval at the
// first weight, weights growing every len/4 intervals, and the error
// probabilities of each version in interval i.
type scenario struct {
	name      string
	perMinute float64 // canary requests per interval at 5% weight
	intervals int
	rates     func(rng *rand.Rand, i int) (canary, stable float64)
}

var weights = []float64{0.05, 0.10, 0.25, 0.50}

func (s scenario) run(rng *rand.Rand) []Counts {
	cs := make([]Counts, s.intervals)
	for i := range cs {
		w := weights[min(len(weights)-1, i*len(weights)/s.intervals)]
		total := s.perMinute / 0.05
		nc, ns := poisson(rng, total*w), poisson(rng, total*(1-w))
		pc, ps := s.rates(rng, i)
		cs[i] = Counts{float64(nc), float64(binomial(rng, nc, pc)), float64(ns), float64(binomial(rng, ns, ps))}
	}
	return cs
}

func constant(pc, ps float64) func(*rand.Rand, int) (float64, float64) {
	return func(*rand.Rand, int) (float64, float64) { return pc, ps }
}

// rejectionRate is the share of runs in which the test ever rejected (the
// anytime p-value after the last interval is the minimum over all looks).
func rejectionRate(s scenario, tol Tolerance, alpha float64, runs int, seed uint64, safe bool) float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	hits := 0
	for range runs {
		r := Sequential(s.run(rng), tol, alpha)
		p := r.P
		if safe {
			p = r.SafeP
		}
		if p <= alpha {
			hits++
		}
	}
	return float64(hits) / float64(runs)
}

type mcCase struct {
	s     scenario
	tol   Tolerance
	alpha float64
	safe  bool // test the opposite null (Pass by proof)
}

// nullCases are canaries exactly at, or within, the tolerance: the test may
// reject at most alpha of them, however often it is looked at.
var nullCases = []mcCase{
	{s: scenario{"healthy 0.5% errors, 300/min", 300, 40, constant(0.005, 0.005)}, tol: Tolerance{1.25, 0.0002}, alpha: 0.01},
	{s: scenario{"at the limit 1.25x1%+0.02%, 300/min", 300, 40, constant(1.25*0.01+0.0002, 0.01)}, tol: Tolerance{1.25, 0.0002}, alpha: 0.01},
	{s: scenario{"at the limit, no tolerance, 2%, 30/min", 30, 40, constant(0.02, 0.02)}, tol: Tolerance{1, 0}, alpha: 0.01},
	{s: scenario{"shared bursts, no tolerance, 3000/min", 3000, 40, func(rng *rand.Rand, i int) (float64, float64) {
		p := 0.005 * math.Exp(rng.NormFloat64()-0.5)
		return p, p
	}}, tol: Tolerance{1, 0}, alpha: 0.01},
	{s: scenario{"at max 1% (one-sample), 300/min", 300, 40, constant(0.01, 0)}, tol: Tolerance{0, 0.01}, alpha: 0.01},
	{s: scenario{"safety: at the limit 1x+0.5%", 300, 40, constant(0.01, 0.005)}, tol: Tolerance{1, 0.005}, alpha: 0.01, safe: true},
}

// powerCases are clear regressions, with the share of runs that must be
// caught within the scenario's intervals.
var powerCases = []struct {
	mcCase
	want float64
}{
	{mcCase{s: scenario{"10% vs 0.5% errors, 300/min, 1 interval", 300, 1, constant(0.10, 0.005)}, tol: Tolerance{1.25, 0.0002}, alpha: 0.005}, 0.99},
	{mcCase{s: scenario{"3% vs 0.5% errors, 300/min, 5 intervals", 300, 5, constant(0.03, 0.005)}, tol: Tolerance{1.25, 0.0002}, alpha: 0.005}, 0.95},
	{mcCase{s: scenario{"0.5% vs 0.1% errors, 300/min, 20 intervals", 300, 20, constant(0.005, 0.001)}, tol: Tolerance{1.25, 0.0002}, alpha: 0.005}, 0.90},
	{mcCase{s: scenario{"safety: 0.5% vs 0.5% within +0.5%, 3000/min, 10 intervals", 3000, 10, constant(0.005, 0.005)}, tol: Tolerance{1, 0.005}, alpha: 0.01, safe: true}, 0.95},
}

func mcRuns(t testing.TB, full int) int {
	if testing.Short() {
		return full / 4
	}
	return full
}

func TestSequentialTypeI(t *testing.T) {
	runs := mcRuns(t, 400)
	for i, c := range nullCases {
		t.Run(c.s.name, func(t *testing.T) {
			t.Parallel()
			rate := rejectionRate(c.s, c.tol, c.alpha, runs, uint64(100+i), c.safe)
			// alpha plus three binomial standard errors.
			limit := c.alpha + 3*math.Sqrt(c.alpha*(1-c.alpha)/float64(runs))
			t.Logf("rejected %.4f of %d runs (alpha %g)", rate, runs, c.alpha)
			if rate > limit {
				t.Errorf("type-I error %.4f over %d runs, want <= %g (alpha %g)", rate, runs, limit, c.alpha)
			}
		})
	}
}

func TestSequentialPower(t *testing.T) {
	runs := mcRuns(t, 200)
	for i, c := range powerCases {
		t.Run(c.s.name, func(t *testing.T) {
			t.Parallel()
			rate := rejectionRate(c.s, c.tol, c.alpha, runs, uint64(200+i), c.safe)
			t.Logf("detected in %.4f of %d runs", rate, runs)
			if rate < c.want {
				t.Errorf("detected in %.4f of %d runs, want >= %g", rate, runs, c.want)
			}
		})
	}
}

// TestNaiveRepeatedTestInflates shows why the sequential test exists: a
// fixed-horizon z-test of the pooled rates, repeated after every interval,
// fails healthy canaries far more often than its level.
func TestNaiveRepeatedTestInflates(t *testing.T) {
	runs := mcRuns(t, 300)
	s := scenario{"healthy", 300, 40, constant(0.005, 0.005)}
	rng := rand.New(rand.NewPCG(300, 7))
	naive, seq := 0, 0
	for range runs {
		cs := s.run(rng)
		var nc, xc, ns, xs float64
		rejected := false
		for _, c := range cs {
			nc, xc, ns, xs = nc+c.CanaryRequests, xc+c.CanaryEvents, ns+c.StableRequests, xs+c.StableEvents
			p := (xc + xs) / (nc + ns)
			se := math.Sqrt(p * (1 - p) * (1/nc + 1/ns))
			if se > 0 && (xc/nc-xs/ns)/se > normalQuantile(0.99) {
				rejected = true
			}
		}
		if rejected {
			naive++
		}
		if Sequential(cs, Tolerance{1, 0}, 0.01).P <= 0.01 {
			seq++
		}
	}
	t.Logf("healthy canaries failed: repeated z-test %d/%d, sequential %d/%d", naive, runs, seq, runs)
	if naive <= 2*seq || float64(naive)/float64(runs) < 0.03 {
		t.Errorf("repeated z-test failed %d/%d and the sequential test %d/%d: expected the z-test to inflate", naive, runs, seq, runs)
	}
}

func BenchmarkMonteCarlo(b *testing.B) {
	const runs = 10000
	for range b.N {
		for i, c := range nullCases {
			rate := rejectionRate(c.s, c.tol, c.alpha, runs, uint64(1000+i), c.safe)
			b.Logf("type I  %-55s %.4f (alpha %g, %d runs)", c.s.name, rate, c.alpha, runs)
		}
		for i, c := range powerCases {
			rate := rejectionRate(c.s, c.tol, c.alpha, runs/4, uint64(2000+i), c.safe)
			b.Logf("power   %-55s %.4f (%d runs)", c.s.name, rate, runs/4)
		}
	}
}

// latencyBounds are log-spaced bucket bounds from 5ms to about 20s.
var latencyBounds = func() []float64 {
	var bs []float64
	for b := 0.005; b < 20; b *= 1.25 {
		bs = append(bs, b)
	}
	return append(bs, math.Inf(1))
}()

// latencyHistogram draws Poisson bucket counts for about n requests whose
// latency is lognormal with median med and log-scale sd, of which a share
// slowShare is delayed by extra seconds.
func latencyHistogram(rng *rand.Rand, n, med, sd, slowShare, extra float64) *Histogram {
	cdf := func(x float64) float64 {
		if x <= 0 {
			return 0
		}
		if math.IsInf(x, 1) {
			return 1
		}
		base := normalCDF((math.Log(x) - math.Log(med)) / sd)
		delayed := 0.0
		if x > extra {
			delayed = normalCDF((math.Log(x-extra) - math.Log(med)) / sd)
		}
		return (1-slowShare)*base + slowShare*delayed
	}
	h := &Histogram{}
	prev := 0.0
	for _, u := range latencyBounds {
		c := cdf(u)
		h.Buckets = append(h.Buckets, Bucket{Upper: u, Count: int64(poisson(rng, n*(c-prev)))})
		prev = c
	}
	return h
}

// slowRun judges the default slow-request check over a run and reports
// whether it ever failed.
func slowRun(rng *rand.Rand, perInterval float64, intervals int, slowShare float64, drift bool) bool {
	c := DefaultChecks()[1].Criteria
	series := make([]Interval, intervals)
	for i := range series {
		w := weights[min(len(weights)-1, i*len(weights)/intervals)]
		med := 0.08
		if drift { // the service slows down and recovers, for both versions
			med *= math.Exp(0.5 * math.Sin(float64(i)/3))
		}
		total := perInterval / 0.05
		can := latencyHistogram(rng, total*w, med, 0.5, slowShare, 0.3)
		st := latencyHistogram(rng, total*(1-w), med, 0.5, 0, 0)
		series[i] = Interval{Canary: Measurement{Latency: can, Requests: can.Total()}, Stable: Measurement{Latency: st, Requests: st.Total()}}
	}
	return Judge("slow-requests", c, series).Verdict == Fail
}

// TestSlowRequestTest checks the default slow-request check, whose bound
// (the stable's p99 so far) is data-dependent: it must still fail healthy
// canaries at most alpha of the time, and catch a regression confined to
// 2.5% of the canary's requests.
func TestSlowRequestTest(t *testing.T) {
	runs := mcRuns(t, 200)
	for _, tt := range []struct {
		name      string
		slowShare float64
		drift     bool
		healthy   bool
		want      float64
	}{
		{"healthy", 0, false, true, 0},
		{"healthy, latency drifting for both", 0, true, true, 0},
		{"2.5% of requests +300ms", 0.025, false, false, 0.9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(400, 7))
			fails := 0
			for range runs {
				if slowRun(rng, 300, 20, tt.slowShare, tt.drift) {
					fails++
				}
			}
			rate := float64(fails) / float64(runs)
			t.Logf("failed %.4f of %d runs", rate, runs)
			alpha := DefaultCheckAlpha
			if limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/float64(runs)); tt.healthy && rate > limit {
				t.Errorf("healthy canaries failed in %.4f of %d runs, want <= %.4f", rate, runs, limit)
			}
			if !tt.healthy && rate < tt.want {
				t.Errorf("regression caught in %.4f of %d runs, want >= %g", rate, runs, tt.want)
			}
		})
	}
}
