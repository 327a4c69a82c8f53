package controller

import (
	"math"
	"slices"

	"aviary/internal/analysis"
	"aviary/internal/store"
)

// finite makes measurements and results storable: JSON has no NaN or
// infinities, and the store refuses them. A value that is not finite is no
// value; a statistic that is not finite is left out.
func finite(p store.Point) store.Point {
	p.Canary, p.Stable = finiteMeasurement(p.Canary), finiteMeasurement(p.Stable)
	p.Result = finiteResult(p.Result)
	return p
}

func finiteMeasurement(m analysis.Measurement) analysis.Measurement {
	if !isFinite(m.Value) {
		m.Value, m.HasValue = 0, false
	}
	if slices.ContainsFunc(m.Samples, func(v float64) bool { return !isFinite(v) }) {
		m.Samples = slices.DeleteFunc(slices.Clone(m.Samples), func(v float64) bool { return !isFinite(v) })
	}
	if h := m.Latency; h != nil && slices.ContainsFunc(h.Buckets, func(b analysis.Bucket) bool { return !isFinite(b.Upper) }) {
		c := &analysis.Histogram{Buckets: slices.DeleteFunc(slices.Clone(h.Buckets), func(b analysis.Bucket) bool { return !isFinite(b.Upper) })}
		m.Latency = c
	}
	return m
}

func finiteResult(r analysis.Result) analysis.Result {
	if !isFinite(r.Canary) {
		r.Canary, r.HasCanary = 0, false
	}
	if !isFinite(r.Stable) {
		r.Stable, r.HasStable = 0, false
	}
	for _, f := range []*float64{&r.Statistic, &r.P, &r.E, &r.Effect} {
		if !isFinite(*f) {
			*f = 0
		}
	}
	return r
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
