package analysis

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The reference values in testdata/ are computed by the Python scripts
// beside them, independently of this package; see testdata/README.md.

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func closeTo(got, want, rel, abs float64) bool {
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	return math.Abs(got-want) <= abs+rel*math.Abs(want)
}

type rankRef struct {
	Name          string    `json:"name"`
	Canary        []float64 `json:"canary"`
	Stable        []float64 `json:"stable"`
	Confidence    float64   `json:"confidence"`
	U             float64   `json:"u"`
	Z             float64   `json:"z"`
	PGreater      float64   `json:"pGreater"`
	PLess         float64   `json:"pLess"`
	PTwoSided     float64   `json:"pTwoSided"`
	Shift         float64   `json:"shift"`
	ShiftLower    *float64  `json:"shiftLower"`
	ShiftUpper    *float64  `json:"shiftUpper"`
	ExactPGreater *float64  `json:"exactPGreater"`
	Histogram     *struct {
		Bounds []float64 `json:"bounds"`
		Canary []int64   `json:"canary"`
		Stable []int64   `json:"stable"`
	} `json:"histogram"`
}

func TestMannWhitneyReference(t *testing.T) {
	var ref struct{ Cases []rankRef }
	readJSON(t, "ranktest_ref.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := MannWhitney(c.Canary, c.Stable, c.Confidence)
			if err != nil {
				t.Fatal(err)
			}
			checkRank(t, got, c)
			if c.Histogram != nil {
				hist := func(counts []int64) *Histogram {
					h := &Histogram{}
					for i, u := range c.Histogram.Bounds {
						h.Buckets = append(h.Buckets, Bucket{Upper: u, Count: counts[i]})
					}
					return h
				}
				got, err := MannWhitneyHistograms(hist(c.Histogram.Canary), hist(c.Histogram.Stable), c.Confidence)
				if err != nil {
					t.Fatal(err)
				}
				checkRank(t, got, c)
			}
			if c.ExactPGreater != nil {
				// The normal approximation against the exact permutation
				// distribution: close for moderate p-values, poor far in
				// the tail (where only the order of magnitude is kept).
				e := *c.ExactPGreater
				switch {
				case e > 0.01 && math.Abs(got.PGreater-e) > 0.015:
					t.Errorf("normal approximation p=%g, exact %g: differ by more than 0.015", got.PGreater, e)
				case e <= 0.01 && (got.PGreater > 0.01 || got.PGreater > 20*e):
					t.Errorf("normal approximation p=%g, exact %g: not both small", got.PGreater, e)
				}
			}
		})
	}
}

func checkRank(t *testing.T, got RankTest, c rankRef) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"U", got.U, c.U}, {"Z", got.Z, c.Z}, {"PGreater", got.PGreater, c.PGreater},
		{"PLess", got.PLess, c.PLess}, {"PTwoSided", got.PTwoSided, c.PTwoSided}, {"Shift", got.Shift, c.Shift},
	} {
		if !closeTo(f.got, f.want, 1e-9, 1e-12) {
			t.Errorf("%s = %.15g, want %.15g", f.name, f.got, f.want)
		}
	}
	wantLo, wantHi := math.Inf(-1), math.Inf(1)
	if c.ShiftLower != nil {
		wantLo, wantHi = *c.ShiftLower, *c.ShiftUpper
	}
	if !closeTo(got.ShiftLower, wantLo, 1e-12, 1e-15) || !closeTo(got.ShiftUpper, wantHi, 1e-12, 1e-15) {
		t.Errorf("interval [%g, %g], want [%g, %g]", got.ShiftLower, got.ShiftUpper, wantLo, wantHi)
	}
}

type seqRef struct {
	Name        string      `json:"name"`
	Counts      [][]float64 `json:"counts"`
	Ratio       float64     `json:"ratio"`
	Increase    float64     `json:"increase"`
	Alpha       float64     `json:"alpha"`
	LogE        float64     `json:"logE"`
	LogMaxE     float64     `json:"logMaxE"`
	P           float64     `json:"p"`
	LogSafeE    float64     `json:"logSafeE"`
	LogSafeMaxE float64     `json:"logSafeMaxE"`
	SafeP       float64     `json:"safeP"`
	EffectLower float64     `json:"effectLower"`
	EffectUpper float64     `json:"effectUpper"`
}

func toCounts(rows [][]float64) []Counts {
	cs := make([]Counts, len(rows))
	for i, r := range rows {
		cs[i] = Counts{CanaryRequests: r[0], CanaryEvents: r[1], StableRequests: r[2], StableEvents: r[3]}
	}
	return cs
}

func TestSequentialReference(t *testing.T) {
	var ref struct {
		Cases    []seqRef
		Validity []struct {
			NC, NS      float64
			PS          float64 `json:"ps"`
			Ratio       float64
			Increase    float64
			R           float64 `json:"r"`
			Expectation float64
		}
	}
	readJSON(t, "sequential_ref.json", &ref)
	if len(ref.Cases) == 0 || len(ref.Validity) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got := Sequential(toCounts(c.Counts), Tolerance{Ratio: c.Ratio, Increase: c.Increase}, c.Alpha)
			logOf := func(e float64) float64 { return math.Log(e) }
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"log E", logOf(got.E), math.Min(c.LogE, maxLogE)},
				{"log MaxE", logOf(got.MaxE), math.Min(c.LogMaxE, maxLogE)},
				{"P", got.P, c.P},
				{"log SafeE", logOf(got.SafeE), math.Min(c.LogSafeE, maxLogE)},
				{"log SafeMaxE", logOf(got.SafeMaxE), math.Min(c.LogSafeMaxE, maxLogE)},
				{"SafeP", got.SafeP, c.SafeP},
			} {
				if !closeTo(f.got, f.want, 1e-9, 1e-9) {
					t.Errorf("%s = %.12g, want %.12g", f.name, f.got, f.want)
				}
			}
			if !closeTo(got.EffectLower, c.EffectLower, 0, 2e-9) || !closeTo(got.EffectUpper, c.EffectUpper, 0, 2e-9) {
				t.Errorf("confidence sequence [%.12g, %.12g], want [%.12g, %.12g]", got.EffectLower, got.EffectUpper, c.EffectLower, c.EffectUpper)
			}
			if got.EffectLower > got.Effect+1e-12 || got.Effect > got.EffectUpper+1e-12 {
				t.Errorf("estimate %g outside its confidence sequence [%g, %g]", got.Effect, got.EffectLower, got.EffectUpper)
			}
		})
	}
	// Validity: the exact expectation of one interval's e-value at the
	// boundary of the null, from the reference and recomputed here.
	for _, v := range ref.Validity {
		if v.Expectation > 1+1e-12 {
			t.Errorf("reference: E[e] = %.15g > 1 for %+v", v.Expectation, v)
		}
		got := exactExpectation(int(v.NC), int(v.NS), v.PS, v.Ratio, v.Increase, v.R)
		if !closeTo(got, v.Expectation, 1e-9, 1e-300) {
			t.Errorf("E[e] = %.15g, reference %.15g for %+v", got, v.Expectation, v)
		}
	}
}

// exactExpectation sums one interval's e-value (computed by the package's
// mixture code with a one-point grid) over all outcomes of two binomials.
func exactExpectation(nc, ns int, ps, ratio, increase, R float64) float64 {
	pc := ratio*ps + increase
	g := betGrid{logR: []float64{math.Log(R)}, r: []float64{R}, logW: []float64{0}}
	pmf := func(n, k int, p float64) float64 {
		lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
		if p == 0 {
			if k == 0 {
				return 1
			}
			return 0
		}
		return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	var sum float64
	for xc := 0; xc <= nc; xc++ {
		for xs := 0; xs <= ns; xs++ {
			m := newMixture(g)
			m.add(Counts{float64(nc), float64(xc), float64(ns), float64(xs)}, ratio)
			sum += pmf(nc, xc, pc) * pmf(ns, xs, ps) * math.Exp(m.logE(increase))
		}
	}
	return sum
}

func TestNormalReference(t *testing.T) {
	// Values from mpmath (ncdf, erfinv) at 40 digits; see testdata/README.md.
	var ref struct {
		CDF      []struct{ Z, P float64 }
		Quantile []struct{ P, Z float64 }
	}
	readJSON(t, "normal_ref.json", &ref)
	for _, c := range ref.CDF {
		if got := normalCDF(c.Z); !closeTo(got, c.P, 1e-11, 1e-300) {
			t.Errorf("Φ(%g) = %.17g, want %.17g", c.Z, got, c.P)
		}
		if got := normalUpper(-c.Z); !closeTo(got, c.P, 1e-11, 1e-300) {
			t.Errorf("1-Φ(%g) = %.17g, want %.17g", -c.Z, got, c.P)
		}
	}
	for _, c := range ref.Quantile {
		if got := normalQuantile(c.P); !closeTo(got, c.Z, 1e-12, 1e-15) {
			t.Errorf("Φ⁻¹(%g) = %.17g, want %.17g", c.P, got, c.Z)
		}
	}
}
