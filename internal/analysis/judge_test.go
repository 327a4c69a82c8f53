package analysis

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func num(v float64) *Number { n := Number(v); return &n }

func errorsInterval(nc, xc, ns, xs int64) Interval {
	m := func(n, x int64) Measurement {
		ms := Measurement{Requests: n, Errors: x, Count: n}
		if n > 0 {
			ms.Value, ms.HasValue = float64(x)/float64(n), true
		}
		return ms
	}
	return Interval{Canary: m(nc, xc), Stable: m(ns, xs)}
}

func repeat(iv Interval, n int) []Interval {
	s := make([]Interval, n)
	for i := range s {
		s[i] = iv
	}
	return s
}

func valued(c, s float64) Interval {
	return Interval{Canary: Measurement{Value: c, HasValue: true, Count: 100}, Stable: Measurement{Value: s, HasValue: true, Count: 100}}
}

// buckets builds a latency histogram on fixed bounds from per-bucket counts.
var testBounds = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, math.Inf(1)}

func hist(counts ...int64) *Histogram {
	h := &Histogram{}
	for i, c := range counts {
		h.Buckets = append(h.Buckets, Bucket{Upper: testBounds[i], Count: c})
	}
	return h
}

func latencyInterval(c, s *Histogram) Interval {
	return Interval{
		Canary: Measurement{Latency: c, Requests: c.Total(), Count: c.Total(), HasValue: true, Value: c.Quantile(0.99)},
		Stable: Measurement{Latency: s, Requests: s.Total(), Count: s.Total(), HasValue: true, Value: s.Quantile(0.99)},
	}
}

func TestJudge(t *testing.T) {
	seqErr := Criteria{Compare: CompareBaseline, Test: TestSequential, MaxRatio: num(1.25), MaxIncrease: num(0.0002)}
	seqErrMin := seqErr
	seqErrMin.MinSamples = 1000
	oneSample := Criteria{Test: TestSequential, Max: num(0.01), MinSamples: 500}
	slowFixed := Criteria{Compare: CompareBaseline, Test: TestSequential, SlowerThan: num(0.5), MaxRatio: num(1.25), MinSamples: 1000}
	slowRel := Criteria{Compare: CompareBaseline, Test: TestSequential, SlowerThanQuantile: num(0.99), MaxRatio: num(1.25), MinSamples: 1000}
	mw := Criteria{Compare: CompareBaseline, Test: TestMannWhitney}
	healthyHist := hist(100, 300, 400, 150, 40, 8, 2, 0, 0)
	slowHist := hist(100, 280, 380, 140, 40, 8, 2, 40, 10)

	rng := rand.New(rand.NewPCG(1, 1))
	sample := func(n int, shift float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = math.Exp(-2+0.3*rng.NormFloat64()) + shift
		}
		return xs
	}
	samples := func(c, s []float64) Interval {
		return Interval{Canary: Measurement{Samples: c, HasValue: true, Count: int64(len(c))}, Stable: Measurement{Samples: s, HasValue: true, Count: int64(len(s))}}
	}

	tests := []struct {
		name     string
		c        Criteria
		series   []Interval
		want     Verdict
		inReason string
	}{
		// Thresholds and fixed comparisons.
		{"no measurements", Criteria{Max: num(1)}, nil, Inconclusive, "no measurements yet"},
		{"max pass", Criteria{Max: num(1)}, []Interval{valued(0.5, 0)}, Pass, "within <= 1"},
		{"max fail", Criteria{Max: num(1)}, []Interval{valued(1.5, 0)}, Fail, "above max 1"},
		{"min fail", Criteria{Min: num(0.99)}, []Interval{valued(0.9, 0)}, Fail, "below min 0.99"},
		{"no canary value", Criteria{Max: num(1)}, []Interval{{}}, Inconclusive, "no canary data"},
		{"too few samples", Criteria{Max: num(1), MinSamples: 500}, []Interval{valued(0.5, 0)}, Inconclusive, "fewer than the 500 needed"},
		{"baseline pass", Criteria{Compare: CompareBaseline, MaxRatio: num(1.2)}, []Interval{valued(0.11, 0.1)}, Pass, "within the tolerated 0.12"},
		{"baseline fail", Criteria{Compare: CompareBaseline, MaxRatio: num(1.2), MaxIncrease: num(0.01)}, []Interval{valued(0.2, 0.1)}, Fail, "exceeds the tolerated 0.13"},
		{"baseline no stable", Criteria{Compare: CompareBaseline, MaxRatio: num(1.2)}, []Interval{{Canary: Measurement{Value: 1, HasValue: true}}}, Inconclusive, "no stable data"},
		{"value is NaN", Criteria{Max: num(1)}, []Interval{valued(math.NaN(), 0)}, Error, "canary value is NaN"},
		{"provider failed", Criteria{Max: num(1)}, []Interval{valued(0.5, 0), {Canary: Measurement{Err: "connection refused"}}}, Error, "canary measurement failed: connection refused"},
		{"invalid criteria", Criteria{Compare: "basline"}, []Interval{valued(1, 1)}, Error, `invalid criteria: compare: unknown comparison "basline"`},

		// Sequential error test.
		{"seq no requests", seqErr, repeat(errorsInterval(0, 0, 0, 0), 3), Inconclusive, "no canary requests yet"},
		{"seq no stable", seqErr, repeat(errorsInterval(300, 0, 0, 0), 3), Inconclusive, "no stable requests to compare with"},
		{"seq clear regression", seqErr, repeat(errorsInterval(300, 30, 5700, 17), 2), Fail, "canary 10% vs stable 0.3%, above 1.25 x stable + 0.02% (sequential test p="},
		{"seq healthy, proof needs more data", seqErr, repeat(errorsInterval(300, 1, 5700, 17), 3), Inconclusive, "neither harm nor safety shown"},
		{"seq healthy, min samples not reached", seqErrMin, repeat(errorsInterval(300, 1, 5700, 17), 3), Inconclusive, "900 canary requests of the 1,000 needed to pass"},
		{"seq healthy, min samples reached", seqErrMin, repeat(errorsInterval(300, 1, 5700, 17), 4), Pass, "with no evidence of harm"},
		{"seq above limit, not significant", seqErrMin, repeat(errorsInterval(300, 2, 5700, 17), 4), Inconclusive, "above 1.25 x stable + 0.02% but not significantly"},
		{"seq safety proven", Criteria{Compare: CompareBaseline, Test: TestSequential, MaxIncrease: num(0.005)}, repeat(errorsInterval(3000, 15, 57000, 285), 10), Pass, "shown within stable + 0.5%"},
		{"seq one-sample pass", oneSample, repeat(errorsInterval(300, 0, 0, 0), 2), Pass, "canary 0%, shown within 1% (sequential test p=1, safety p=0.0078 <= 0.01"},
		{"seq one-sample fail", oneSample, repeat(errorsInterval(300, 15, 0, 0), 2), Fail, "canary 5%, above 1%"},
		{"seq value without counts", seqErr, []Interval{valued(0.01, 0.01)}, Error, "needs request and error counts"},
		{"seq more errors than requests", seqErr, []Interval{errorsInterval(10, 11, 100, 0)}, Error, "more errors than requests"},
		{"seq bad old interval skipped", seqErr, append([]Interval{errorsInterval(10, 11, 100, 0)}, repeat(errorsInterval(300, 30, 5700, 17), 2)...), Fail, "600 canary requests"},
		{"seq failed provider in the past skipped", seqErrMin, append(repeat(errorsInterval(300, 1, 5700, 17), 4), Interval{Stable: Measurement{Err: "timeout"}}, errorsInterval(300, 0, 5700, 15)), Pass, "1,500 canary requests"},
		{"seq failed provider now", seqErrMin, append(repeat(errorsInterval(300, 1, 5700, 17), 4), Interval{Stable: Measurement{Err: "timeout"}}), Error, "stable measurement failed: timeout"},

		// Sequential slow-request test.
		{"slow fixed pass", slowFixed, repeat(latencyInterval(healthyHist, hist(1000, 3000, 4000, 1500, 400, 80, 20, 0, 0)), 2), Pass, "slower than 500ms"},
		{"slow fixed fail", slowFixed, repeat(latencyInterval(slowHist, hist(1000, 3000, 4000, 1500, 400, 80, 20, 0, 0)), 2), Fail, "canary 5.2% vs stable 0.2% slower than 500ms, above 1.25 x stable (sequential test p="},
		{"slow exact counts", slowFixed, repeat(Interval{
			Canary: Measurement{Requests: 1000, Slow: 60, HasSlow: true},
			Stable: Measurement{Requests: 19000, Slow: 190, HasSlow: true},
		}, 2), Fail, "canary 6% vs stable 1% slower than 500ms"},
		{"slow no histogram", slowFixed, []Interval{errorsInterval(300, 1, 5700, 5)}, Error, "needs a latency histogram"},
		{"slow relative waits for the stable", slowRel, []Interval{latencyInterval(slowHist, healthyHist)}, Inconclusive, "waiting for the stable's latency"},
		{"slow relative fail", slowRel, repeat(latencyInterval(slowHist, hist(1000, 3000, 4000, 1500, 400, 80, 20, 0, 0)), 3), Fail, "canary 6% vs stable 1% slower than 250ms (the stable's q0.99 so far)"},
		{"slow relative pass", slowRel, repeat(latencyInterval(healthyHist, hist(1000, 3000, 4000, 1500, 400, 80, 20, 0, 0)), 3), Pass, "with no evidence of harm"},

		// Mann-Whitney.
		{"mw pass", mw, []Interval{samples(sample(200, 0), sample(200, 0))}, Pass, "not significantly larger"},
		{"mw fail", mw, []Interval{samples(sample(200, 0.05), sample(200, 0))}, Fail, "larger beyond the tolerance"},
		{"mw tolerated shift", Criteria{Compare: CompareBaseline, Test: TestMannWhitney, MaxIncrease: num(0.08)}, []Interval{samples(sample(200, 0.05), sample(200, 0))}, Pass, "(tolerated: + 0.08)"},
		{"mw too few", mw, []Interval{samples(sample(5, 0), sample(200, 0))}, Inconclusive, "fewer than the 10 per version"},
		{"mw histograms fail", mw, []Interval{latencyInterval(hist(50, 200, 400, 250, 80, 15, 5, 0, 0), healthyHist)}, Fail, "canary median 0.03536 vs stable 0.03536, larger beyond the tolerance (Mann-Whitney U="},
		{"mw only a value", mw, []Interval{valued(0.2, 0.1)}, Error, "needs samples or a latency histogram"},
		{"mw bad sample", mw, []Interval{samples([]float64{1, math.NaN()}, sample(20, 0))}, Error, "not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge("m", tt.c, tt.series)
			if r.Verdict != tt.want {
				t.Errorf("verdict %v, want %v (%s)", r.Verdict, tt.want, r.Reason)
			}
			if !strings.Contains(r.Reason, tt.inReason) {
				t.Errorf("reason %q does not contain %q", r.Reason, tt.inReason)
			}
			if !strings.HasPrefix(r.Reason, "m: ") || strings.Contains(r.Reason, "\n") {
				t.Errorf("reason %q is not one line starting with the metric", r.Reason)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("result does not encode as JSON: %v", err)
			}
		})
	}
}

func TestJudgeSequentialFailIsSticky(t *testing.T) {
	c := Criteria{Compare: CompareBaseline, Test: TestSequential, MaxRatio: num(1.25), MinSamples: 100}
	series := repeat(errorsInterval(300, 30, 5700, 17), 2)
	for range 20 {
		series = append(series, errorsInterval(300, 0, 5700, 17))
	}
	if r := Judge("m", c, series); r.Verdict != Fail {
		t.Errorf("verdict %v after a healthy stretch, want Fail to stand (%s)", r.Verdict, r.Reason)
	}
}

func TestJudgeIsPure(t *testing.T) {
	c := DefaultChecks()[0].Criteria
	series := repeat(errorsInterval(300, 2, 5700, 9), 6)
	a, b := Judge("m", c, series), Judge("m", c, series)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two calls differ:\n%+v\n%+v", a, b)
	}
}

func TestJudgeSamples(t *testing.T) {
	x := []float64{0.20, 0.21, 0.25, 0.22, 0.3, 0.24, 0.26, 0.23, 0.21, 0.28, 0.27}
	y := []float64{0.10, 0.11, 0.12, 0.13, 0.1, 0.09, 0.12, 0.11, 0.14, 0.1, 0.12}
	r := JudgeSamples("latency", Criteria{Compare: CompareBaseline, Test: TestMannWhitney}, x, y)
	if r.Verdict != Fail || r.EffectBounds == nil || r.Effect <= 0 || r.Canary != 0.24 || r.Stable != 0.11 {
		t.Errorf("got %+v", r)
	}
	r = JudgeSamples("latency", Criteria{Compare: CompareBaseline, MaxRatio: num(3)}, x, y)
	if r.Verdict != Pass {
		t.Errorf("median comparison: got %v (%s), want Pass", r.Verdict, r.Reason)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Criteria
		want []Problem
	}{
		{"max alone", Criteria{Max: num(1)}, nil},
		{"empty", Criteria{}, []Problem{{"max", "a check needs min, max, or compare: baseline"}}},
		{"min above max", Criteria{Min: num(2), Max: num(1)}, []Problem{{"min", "min 2 is greater than max 1"}}},
		{"unknown compare", Criteria{Compare: "stable", Max: num(1)}, []Problem{{"compare", `unknown comparison "stable" (want baseline, or leave it out to judge the canary alone)`}}},
		{"tolerance without baseline", Criteria{Max: num(1), MaxIncrease: num(0.1), MaxRatio: num(2)}, []Problem{{"maxIncrease", "maxIncrease needs compare: baseline"}, {"maxRatio", "maxRatio needs compare: baseline"}}},
		{"baseline without tolerance", Criteria{Compare: CompareBaseline}, []Problem{{"maxIncrease", "compare: baseline needs maxIncrease or maxRatio"}}},
		{"negative tolerance", Criteria{Compare: CompareBaseline, MaxIncrease: num(-1), MaxRatio: num(0)}, []Problem{{"maxIncrease", "maxIncrease -1 is negative"}, {"maxRatio", "maxRatio 0 must be positive"}}},
		{"unknown test", Criteria{Compare: CompareBaseline, MaxRatio: num(2), Test: "t-test"}, []Problem{{"test", `unknown test "t-test" (want sequential or mann-whitney, or leave it out to compare values)`}}},
		{"sequential baseline without tolerance", Criteria{Compare: CompareBaseline, Test: TestSequential}, nil},
		{"sequential one-sample", Criteria{Test: TestSequential, Max: num(0.01)}, nil},
		{"sequential without max", Criteria{Test: TestSequential}, []Problem{{"max", "test: sequential needs compare: baseline, or max (the largest tolerated rate)"}}},
		{"sequential with min", Criteria{Test: TestSequential, Min: num(0.1), Max: num(0.2)}, []Problem{{"min", "a sequential test judges an upper limit on a rate; use max"}}},
		{"sequential max not a rate", Criteria{Test: TestSequential, Max: num(5)}, []Problem{{"max", "max 5 is not a rate: a sequential test judges an error or slow-request rate, from 0 up to but not including 1 (e.g. 1%)"}}},
		{"sequential baseline with max", Criteria{Compare: CompareBaseline, Test: TestSequential, Max: num(0.1)}, []Problem{{"max", "max cannot be combined with test sequential against the baseline; judge it in a separate check"}}},
		{"sequential increase not a rate", Criteria{Compare: CompareBaseline, Test: TestSequential, MaxIncrease: num(2)}, []Problem{{"maxIncrease", "maxIncrease 2 is not a rate: a sequential test judges an error or slow-request rate, so the tolerated increase is below 1 (e.g. 0.5%)"}}},
		{"mann-whitney alone", Criteria{Test: TestMannWhitney, Max: num(1)}, []Problem{{"test", "test mann-whitney needs compare: baseline"}}},
		{"alpha out of range", Criteria{Compare: CompareBaseline, Test: TestSequential, Alpha: num(0.7)}, []Problem{{"alpha", "alpha 0.7 must be greater than 0 and at most 0.5 (e.g. 0.01)"}}},
		{"alpha without test", Criteria{Max: num(1), Alpha: num(0.01)}, []Problem{{"alpha", "alpha needs a statistical test (test: sequential or mann-whitney)"}}},
		{"slowerThan without test", Criteria{Compare: CompareBaseline, MaxRatio: num(2), SlowerThan: num(0.5)}, []Problem{{"slowerThan", "slowerThan needs test: sequential"}}},
		{"slowerThan not positive", Criteria{Compare: CompareBaseline, Test: TestSequential, SlowerThan: num(0)}, []Problem{{"slowerThan", "slowerThan 0 must be a positive duration (e.g. 500ms)"}}},
		{"both slow bounds", Criteria{Compare: CompareBaseline, Test: TestSequential, SlowerThan: num(0.5), SlowerThanQuantile: num(0.99)}, []Problem{{"slowerThanQuantile", "set either slowerThan or slowerThanQuantile, not both"}}},
		{"slow quantile out of range, one-sample", Criteria{Test: TestSequential, Max: num(0.01), SlowerThanQuantile: num(99)}, []Problem{
			{"slowerThanQuantile", "slowerThanQuantile 99 must be between 0 and 1 (e.g. 0.99 for the stable's p99)"},
			{"slowerThanQuantile", "slowerThanQuantile needs compare: baseline (the bound comes from the stable version)"},
		}},
		{"negative minSamples", Criteria{Max: num(1), MinSamples: -1}, []Problem{{"minSamples", "minSamples -1 is negative"}}},
		{"not finite", Criteria{Max: num(math.Inf(1))}, []Problem{{"max", "max must be a finite number"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Validate()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	for _, d := range DefaultChecks() {
		if ps := d.Criteria.Validate(); len(ps) > 0 {
			t.Errorf("default check %s: %v", d.Name, ps)
		}
	}
}

func TestBoundsJSON(t *testing.T) {
	b := Bounds{Lower: math.Inf(-1), Upper: 0.25, Level: 0.99}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"lower":null,"upper":0.25,"level":0.99}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var back Bounds
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, b) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{fmtCount(1243), "1,243"}, {fmtCount(999), "999"}, {fmtCount(-1234567), "-1,234,567"},
		{fmtPercent(0.048), "4.8%"}, {fmtPercent(0.003), "0.3%"}, {fmtPercent(0.0002), "0.02%"}, {fmtPercent(0.5), "50%"}, {fmtPercent(0), "0%"},
		{fmtP(0.0004), "0.0004"}, {fmtP(0.01), "0.01"}, {fmtP(0.62), "0.62"}, {fmtP(1), "1"}, {fmtP(2e-9), "2.0e-09"},
		{fmtSeconds(0.25), "250ms"}, {fmtSeconds(1.5), "1.5s"}, {fmtSeconds(0.0005), "500µs"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// BenchmarkJudgeSequential is one Judge call of the default error check on
// an hour of one-minute intervals (the simulation calls Judge once per
// interval).
func BenchmarkJudgeSequential(b *testing.B) {
	c := DefaultChecks()[0].Criteria
	series := repeat(errorsInterval(300, 2, 5700, 9), 60)
	for range b.N {
		Judge("error-rate", c, series)
	}
}
