package analysis

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// naiveBound is the definition: pool every bucket, sort the bounds, take
// the smallest with at most a share 1-q above it.
func naiveBound(hs []*Histogram, q float64) float64 {
	counts := map[float64]int64{}
	var total int64
	for _, h := range hs {
		for _, b := range h.Buckets {
			counts[b.Upper] += b.Count
			total += b.Count
		}
	}
	if total == 0 {
		return math.NaN()
	}
	var bounds []float64
	for u := range counts {
		bounds = append(bounds, u)
	}
	sort.Float64s(bounds)
	below := int64(0)
	for _, u := range bounds {
		below += counts[u]
		if float64(total-below) <= (1-q)*float64(total) {
			return u
		}
	}
	return bounds[len(bounds)-1]
}

func TestPastLatency(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var p pastLatency
		var hs []*Histogram
		for range 1 + r.IntN(20) {
			h := &Histogram{}
			for range r.IntN(15) {
				h.Buckets = append(h.Buckets, Bucket{Upper: float64(1+r.IntN(40)) / 100, Count: int64(r.IntN(50))})
			}
			if r.IntN(2) == 0 { // providers' order is not trusted
				sort.Slice(h.Buckets, func(i, j int) bool { return h.Buckets[i].Upper < h.Buckets[j].Upper })
			}
			p.add(h)
			hs = append(hs, h)
			for _, q := range []float64{0.5, 0.9, 0.99} {
				got, want := p.quantileBound(q), naiveBound(hs, q)
				if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Fatalf("trial %d: q%g bound %g, want %g", trial, q, got, want)
				}
			}
		}
	}
}
