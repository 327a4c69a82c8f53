package analysis

import (
	"math"
	"sort"
	"time"
)

// Measurement is what a provider reports for one version over one window.
type Measurement struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Value is the metric's value; HasValue is false when the provider had no
	// data (an empty result is not zero).
	Value    float64 `json:"value"`
	HasValue bool    `json:"hasValue"`
	// Count is the number of samples (requests, points) behind Value, or -1
	// when the provider does not know it.
	Count int64 `json:"count"`
	// Requests and Errors are request counts in the window, when the provider
	// measures requests (the built-in provider does).
	Requests int64 `json:"requests,omitempty"`
	Errors   int64 `json:"errors,omitempty"`
	// Latency is the distribution of request latencies in seconds, when known.
	Latency *Histogram `json:"latency,omitempty"`
	// Slow is the exact number of requests slower than the check's
	// SlowerThan, when the provider counted them (HasSlow); otherwise the
	// slow-request test estimates it from Latency.
	Slow    int64 `json:"slow,omitempty"`
	HasSlow bool  `json:"hasSlow,omitempty"`
	// Samples are raw values (e.g. latencies in seconds), when a provider
	// or a file supplies them; the Mann-Whitney test uses them in
	// preference to Latency.
	Samples []float64 `json:"samples,omitempty"`
	// Err is the provider's error when the measurement failed. Judge returns
	// Error when the latest interval has one, and skips older failed
	// intervals.
	Err string `json:"error,omitempty"`
}

// Histogram is a distribution of non-negative values (latencies in seconds)
// held as buckets sorted by upper bound. Counts are per bucket, not
// cumulative; the first bucket's lower bound is 0.
type Histogram struct {
	Buckets []Bucket `json:"buckets"`
}

// Bucket counts the values in (previous bucket's Upper, Upper].
type Bucket struct {
	Upper float64 `json:"le"`
	Count int64   `json:"n"`
}

// Total is the number of values in h.
func (h *Histogram) Total() int64 {
	if h == nil {
		return 0
	}
	var n int64
	for _, b := range h.Buckets {
		n += b.Count
	}
	return n
}

// Quantile estimates the q-quantile (0 < q <= 1). Within a bucket it
// interpolates geometrically, which for log-scale buckets keeps the relative
// error within half a bucket's width. It returns NaN for an empty histogram.
func (h *Histogram) Quantile(q float64) float64 {
	n := h.Total()
	if n == 0 || q < 0 || q > 1 || math.IsNaN(q) {
		return math.NaN()
	}
	rank := q * float64(n)
	var seen float64
	lower := 0.0
	for _, b := range h.Buckets {
		if b.Count == 0 {
			lower = b.Upper
			continue
		}
		if seen+float64(b.Count) >= rank {
			f := (rank - seen) / float64(b.Count)
			if lower <= 0 {
				return b.Upper * f
			}
			return lower * math.Pow(b.Upper/lower, f)
		}
		seen += float64(b.Count)
		lower = b.Upper
	}
	return h.Buckets[len(h.Buckets)-1].Upper
}

// CountAbove estimates how many values exceed bound, interpolating
// geometrically within the bucket that straddles it.
func (h *Histogram) CountAbove(bound float64) float64 {
	if h == nil {
		return 0
	}
	var above float64
	lower := 0.0
	for _, b := range h.Buckets {
		switch {
		case lower >= bound:
			above += float64(b.Count)
		case b.Upper > bound && b.Count > 0:
			var f float64
			if lower <= 0 {
				f = 1 - bound/b.Upper
			} else {
				f = 1 - math.Log(bound/lower)/math.Log(b.Upper/lower)
			}
			above += f * float64(b.Count)
		}
		lower = b.Upper
	}
	return above
}

// Merge returns the sum of histograms. Histograms from one source share their
// bucket bounds; where bounds differ, each bucket keeps its own upper bound and
// the result is as coarse as the coarser input.
func Merge(hs ...*Histogram) *Histogram {
	counts := map[float64]int64{}
	for _, h := range hs {
		if h == nil {
			continue
		}
		for _, b := range h.Buckets {
			counts[b.Upper] += b.Count
		}
	}
	out := &Histogram{Buckets: make([]Bucket, 0, len(counts))}
	for u, c := range counts {
		out.Buckets = append(out.Buckets, Bucket{Upper: u, Count: c})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Upper < out.Buckets[j].Upper })
	return out
}
