package analysis

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// RankTest is the result of a Mann-Whitney U test of canary against stable
// samples, with the Hodges-Lehmann estimate of the shift between them.
//
// The test is fixed-horizon: its p-values are valid for one look at samples
// whose size was fixed in advance, not for repeated looks as data arrive.
type RankTest struct {
	// N and M are the canary's and the stable's sample sizes.
	N int64 `json:"n"`
	M int64 `json:"m"`
	// U is the canary's Mann-Whitney statistic: the number of (canary,
	// stable) pairs in which the canary's value is larger, ties counting
	// one half. Its mean under the null is N*M/2.
	U float64 `json:"u"`
	// Z is the standardised statistic (tie-corrected variance, no continuity
	// correction); zero when every value is tied.
	Z float64 `json:"z"`
	// PGreater is the one-sided p-value for "the canary's values tend to be
	// larger", PLess for "smaller", and PTwoSided = min(1, 2*min(PGreater,
	// PLess)); all use the normal approximation with the tie-corrected
	// variance and a continuity correction of 1/2.
	PGreater  float64 `json:"pGreater"`
	PLess     float64 `json:"pLess"`
	PTwoSided float64 `json:"pTwoSided"`
	// Shift is the Hodges-Lehmann estimate of canary minus stable: the median
	// of all N*M pairwise differences. [ShiftLower, ShiftUpper] is Moses'
	// distribution-free confidence interval at level Confidence, from the
	// normal approximation (infinite ends when the samples are too small for
	// that level).
	Shift      float64 `json:"shift"`
	ShiftLower float64 `json:"shiftLower"`
	ShiftUpper float64 `json:"shiftUpper"`
	Confidence float64 `json:"confidence"`
}

// ErrEmptySample is returned by the rank tests when a sample has no values.
var ErrEmptySample = errors.New("empty sample")

// weighted is a value with a multiplicity.
type weighted struct {
	v float64
	w int64
}

// MannWhitney compares two samples (canary, stable) with the Mann-Whitney U
// test and the Hodges-Lehmann shift estimate, with a two-sided confidence
// interval for the shift at level confidence (e.g. 0.95). Values must be
// finite.
func MannWhitney(canary, stable []float64, confidence float64) (RankTest, error) {
	x, err := fromSample(canary)
	if err != nil {
		return RankTest{}, fmt.Errorf("canary: %w", err)
	}
	y, err := fromSample(stable)
	if err != nil {
		return RankTest{}, fmt.Errorf("stable: %w", err)
	}
	return rankTest(x, y, confidence)
}

// MannWhitneyHistograms runs the same test on two latency histograms. Values
// in one bucket are tied; the shift is estimated from the buckets'
// representative values (the geometric midpoint of the bucket's bounds, half
// the upper bound for a bucket starting at 0, the lower bound for a bucket
// without an upper bound), so it is only as precise as the buckets.
func MannWhitneyHistograms(canary, stable *Histogram, confidence float64) (RankTest, error) {
	return rankTest(fromHistogram(canary, Tolerance{Ratio: 1}), fromHistogram(stable, Tolerance{Ratio: 1}), confidence)
}

func fromSample(xs []float64) ([]weighted, error) {
	if len(xs) == 0 {
		return nil, ErrEmptySample
	}
	s := make([]float64, len(xs))
	for i, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("value %d is %v, not a finite number", i+1, v)
		}
		s[i] = v
	}
	sort.Float64s(s)
	out := make([]weighted, 0, len(s))
	for _, v := range s {
		if n := len(out); n > 0 && out[n-1].v == v {
			out[n-1].w++
			continue
		}
		out = append(out, weighted{v, 1})
	}
	return out, nil
}

// fromHistogram turns a histogram's buckets into weighted representative
// values, each mapped to (v - Increase)/Ratio.
func fromHistogram(h *Histogram, t Tolerance) []weighted {
	if h == nil {
		return nil
	}
	var out []weighted
	lower := 0.0
	for _, b := range h.Buckets {
		var v float64
		switch {
		case math.IsInf(b.Upper, 1):
			v = lower
		case lower <= 0:
			v = b.Upper / 2
		default:
			v = math.Sqrt(lower * b.Upper)
		}
		lower = b.Upper
		if b.Count <= 0 {
			continue
		}
		out = append(out, weighted{(v - t.Increase) / t.Ratio, b.Count})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].v < out[j].v })
	return out
}

func totalWeight(xs []weighted) int64 {
	var n int64
	for _, x := range xs {
		n += x.w
	}
	return n
}

// rankTest runs the test on sorted weighted samples.
func rankTest(x, y []weighted, confidence float64) (RankTest, error) {
	n, m := totalWeight(x), totalWeight(y)
	if n == 0 {
		return RankTest{}, fmt.Errorf("canary: %w", ErrEmptySample)
	}
	if m == 0 {
		return RankTest{}, fmt.Errorf("stable: %w", ErrEmptySample)
	}
	r := RankTest{N: n, M: m, Confidence: confidence}
	fn, fm := float64(n), float64(m)
	nm := fn * fm
	total := fn + fm

	// Rank sum of the canary with midranks for ties, and the tie term.
	var rankSum, ties, seen float64
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		var v float64
		switch {
		case j >= len(y) || (i < len(x) && x[i].v <= y[j].v):
			v = x[i].v
		default:
			v = y[j].v
		}
		var a, b float64
		for i < len(x) && x[i].v == v {
			a += float64(x[i].w)
			i++
		}
		for j < len(y) && y[j].v == v {
			b += float64(y[j].w)
			j++
		}
		t := a + b
		rankSum += a * (seen + (t+1)/2)
		ties += t*t*t - t
		seen += t
	}
	r.U = rankSum - fn*(fn+1)/2
	mean := nm / 2
	variance := nm / 12 * ((total + 1) - ties/(total*(total-1)))
	if total < 2 || variance <= 0 {
		r.PGreater, r.PLess, r.PTwoSided = 1, 1, 1
	} else {
		sd := math.Sqrt(variance)
		r.Z = (r.U - mean) / sd
		r.PGreater = normalUpper((r.U - mean - 0.5) / sd)
		r.PLess = normalCDF((r.U - mean + 0.5) / sd)
		r.PTwoSided = math.Min(1, 2*math.Min(r.PGreater, r.PLess))
	}

	// Hodges-Lehmann: the median of the differences canary - stable.
	w := n * m
	if w%2 == 1 {
		r.Shift = kthDifference(x, y, (w+1)/2)
	} else {
		r.Shift = (kthDifference(x, y, w/2) + kthDifference(x, y, w/2+1)) / 2
	}
	// Moses: [D_(C), D_(W+1-C)] with C the integer part of
	// W/2 - z * sqrt(W (N+M+1) / 12).
	r.ShiftLower, r.ShiftUpper = math.Inf(-1), math.Inf(1)
	if confidence > 0 && confidence < 1 {
		z := normalQuantile(1 - (1-confidence)/2)
		c := math.Floor(nm/2 - z*math.Sqrt(nm*(total+1)/12))
		if c >= 1 {
			r.ShiftLower = kthDifference(x, y, int64(c))
			r.ShiftUpper = kthDifference(x, y, w+1-int64(c))
		}
	}
	return r, nil
}

// kthDifference returns the k-th smallest (1-based) of the differences
// x_i - y_j over all pairs, counted with multiplicity. It searches the
// float64 values in order by their bit patterns: at most 64 passes of
// O(len(x)+len(y)) each, and the answer is exactly one of the differences as
// computed in floating point.
func kthDifference(x, y []weighted, k int64) float64 {
	lo := orderedKey(x[0].v - y[len(y)-1].v)
	hi := orderedKey(x[len(x)-1].v - y[0].v)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if countAtMost(x, y, fromOrderedKey(mid)) >= k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return fromOrderedKey(lo) + 0 // + 0 turns -0 into 0
}

// countAtMost counts pairs with x_i - y_j <= d (with multiplicity). For a
// fixed x_i the computed difference falls as y_j grows, and for a fixed y_j
// it grows with x_i, so one pointer into y moves forward only.
func countAtMost(x, y []weighted, d float64) int64 {
	// suffix[j] is the weight of y[j:].
	var count, suffix int64
	for _, e := range y {
		suffix += e.w
	}
	j := 0
	for _, e := range x {
		for j < len(y) && e.v-y[j].v > d {
			suffix -= y[j].w
			j++
		}
		count += e.w * suffix
	}
	return count
}

// orderedKey maps a float64 to a uint64 that sorts in the same order.
func orderedKey(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func fromOrderedKey(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}
