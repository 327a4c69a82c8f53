package main

import (
	"math"
	"strings"
	"testing"

	"aviary/internal/rollout"
	"aviary/internal/simulate"
)

func TestWilson(t *testing.T) {
	cases := []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 1000, 0, 3.8415 / 1003.8415},      // z²/(n+z²)
		{274, 1000, 0.247261, 0.302469},       // the formula evaluated separately with Python's math module
		{1000, 1000, 1 - 3.8415/1003.8415, 1}, // the mirror image
	}
	for _, c := range cases {
		lo, hi := wilson(c.k, c.n)
		if math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("wilson(%d, %d) = [%.5f, %.5f], want [%.5f, %.5f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	if q := quantile(xs, 0.5); q != 5 {
		t.Errorf("median %g, want 5", q)
	}
	if q := quantile(xs, 0.9); q != 9 {
		t.Errorf("p90 %g, want 9", q)
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}

// A small slice of the study: a canary failing half its requests is rolled
// back by both policies; the table and the targets say so.
func TestStudySlice(t *testing.T) {
	cells := study(3, 2, "errors 0.1% → 50%", 300)
	if len(cells) != 2 {
		t.Fatalf("%d cells, want 2", len(cells))
	}
	for _, c := range cells {
		for i, o := range c.out {
			if o.phase != rollout.PhaseFailed {
				t.Errorf("%s run %d: %s, want Failed", c.policy, i, o.phase)
			}
		}
		if s := summarize(c); c.policy == simulate.PolicyAviary && s.detectMed != 30e9 {
			t.Errorf("aviary detected in %s, want 30s (the first interval)", s.detectMed)
		}
	}
	var b strings.Builder
	report(&b, cells, 3)
	if !strings.Contains(b.String(), "| errors 0.1% → 50% | 300 | aviary | 100.0% [") {
		t.Errorf("report:\n%s", b.String())
	}
}
