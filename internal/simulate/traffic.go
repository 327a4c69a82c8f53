package simulate

import (
	"math"
	"math/rand/v2"
	"time"

	"aviary/internal/analysis"
)

// world is the synthetic service: traffic, versions' behaviour and the
// routing in force over time. The requests of each second are drawn from a
// random stream of their own (seeded by the scenario's seed, the second and
// the version), so a second's traffic does not depend on how windows are
// cut or in which order they are measured.
type world struct {
	sc     Scenario
	seed   uint64
	t0     time.Time
	weight []weightAt // routing over time, in order
}

type weightAt struct {
	at     time.Time
	weight int
	canary bool
}

// sample is what one version served over a window.
type sample struct {
	requests, errors int64
	buckets          []float64 // latency histogram: weight by log bucket index
}

// window is the measurements of both versions over [start, end).
type window struct {
	canary, stable sample
	missing        bool // every second of the window lost its data
	outage         bool // providers fail at the end of the window
}

func (w *world) route(at time.Time, weight int, canary bool) {
	w.weight = append(w.weight, weightAt{at, weight, canary})
}

// canaryShare is the canary's share of traffic at t.
func (w *world) canaryShare(t time.Time) float64 {
	share := 0.0
	for _, r := range w.weight {
		if r.at.After(t) {
			break
		}
		share = 0
		if r.canary {
			share = float64(r.weight) / 100
		}
	}
	return share
}

// state is the scenario in force at t.
func (w *world) state(t time.Time) (rate float64, stable, canary Behaviour, missing, outage bool) {
	rate = w.sc.Traffic.rate()
	stable, canary = w.sc.Stable, w.sc.Canary
	for _, c := range w.sc.Changes {
		at := w.t0.Add(c.At.D())
		if at.After(t) {
			continue
		}
		if c.Traffic != nil {
			rate = c.Traffic.rate()
		}
		stable, canary = stable.merge(c.Stable), canary.merge(c.Canary)
		if t.Before(at.Add(c.Missing.D())) {
			missing = true
		}
		if t.Before(at.Add(c.Outage.D())) {
			outage = true
		}
	}
	return rate, stable, canary, missing, outage
}

// measure draws the traffic of [start, end) second by second. Seconds whose
// data went missing are left out unless served is set (to count what the
// versions served rather than what was measured); served counts requests
// and errors only, and skips the latencies, which are drawn after the
// counts from each second's stream, so the counts are the same.
func (w *world) measure(start, end time.Time, served bool) window {
	win := window{missing: true}
	for t := start; t.Before(end); t = t.Add(time.Second) {
		dt := min(end.Sub(t), time.Second).Seconds()
		rate, stable, canary, missing, _ := w.state(t)
		if missing && !served {
			continue
		}
		win.missing = false
		share := w.canaryShare(t)
		sec := uint64(t.Sub(w.t0) / time.Second)
		cf, sf := w.noise(t)
		w.serve(&win.canary, canary, cf, rate*dt*share, rand.New(rand.NewPCG(w.seed, sec*2+1)), served)
		w.serve(&win.stable, stable, sf, rate*dt*(1-share), rand.New(rand.NewPCG(w.seed, sec*2)), served)
	}
	_, _, _, _, win.outage = w.state(end)
	return win
}

// maxLatencySamples bounds the latencies drawn per version per second; the
// rest of the second's requests are represented by weighting the draws.
const maxLatencySamples = 200

// serve draws one second of a version's traffic: its requests, their
// errors (at the behaviour's error rate times the noise factor, at most 1)
// and, unless countsOnly, their latencies.
func (w *world) serve(s *sample, b Behaviour, factor, mean float64, r *rand.Rand, countsOnly bool) {
	n := poisson(r, mean)
	if n == 0 {
		return
	}
	s.requests += n
	if b.ErrorRate != nil {
		s.errors += binomial(r, n, min(1, float64(*b.ErrorRate)*factor))
	}
	if countsOnly {
		return
	}
	lat := defaultLatency
	if b.Latency != nil {
		lat = *b.Latency
	}
	mu := math.Log(float64(lat.Median))
	sigma := math.Log(float64(lat.P99)/float64(lat.Median)) / 2.3263478740408408
	k := min(n, maxLatencySamples)
	weight := float64(n) / float64(k)
	for range k {
		lx := mu + sigma*r.NormFloat64() // log of the latency
		if b.Slow != nil && r.Float64() < float64(b.Slow.Share) {
			s.add(bucketOf(math.Exp(lx)+float64(b.Slow.Extra)), weight)
			continue
		}
		s.add(bucketOfLog(lx), weight)
	}
}

// add counts weight in bucket i.
func (s *sample) add(i int, weight float64) {
	if i >= len(s.buckets) {
		s.buckets = append(s.buckets, make([]float64, i+1-len(s.buckets)+64)...)
	}
	s.buckets[i] += weight
}

// noiseSalt separates the noise's random streams from the traffic's.
const noiseSalt = 0x6e6f697365

// noise returns the factors multiplying the canary's and the stable's error
// rates at t: 1 without noise. Each period's factors come from a stream of
// their own, so the traffic's draws do not change when noise is added.
func (w *world) noise(t time.Time) (canary, stable float64) {
	n := w.sc.Noise
	if n == nil {
		return 1, 1
	}
	period := n.period()
	k := uint64(t.Sub(w.t0) / period)
	draw := func(stream uint64) float64 {
		r := rand.New(rand.NewPCG(w.seed^noiseSalt, k*2+stream))
		f := 1 + float64(n.Spread)*(2*r.Float64()-1)
		if r.Float64() < float64(n.Bursts) {
			f *= n.BurstFactor
		}
		return max(0, f)
	}
	stable = draw(0)
	if n.Independent {
		return draw(1), stable
	}
	return stable, stable
}

// Latency buckets are log-scale, 64 per doubling from 1µs: any quantile
// read from them is within 0.6% of the true value.
const (
	bucketsPerDoubling = 64
	bucketBase         = 1e-6
)

func bucketOf(x float64) int {
	if x <= bucketBase {
		return 0
	}
	return int(math.Ceil(math.Log2(x/bucketBase) * bucketsPerDoubling))
}

// logBucketBase is log(bucketBase).
var logBucketBase = math.Log(bucketBase)

// bucketOfLog is bucketOf(exp(lx)), without computing the exponential and
// its logarithm: the simulation's hot path.
func bucketOfLog(lx float64) int {
	if lx <= logBucketBase {
		return 0
	}
	return int(math.Ceil((lx - logBucketBase) / math.Ln2 * bucketsPerDoubling))
}

func bucketUpper(i int) float64 {
	return bucketBase * math.Exp2(float64(i)/bucketsPerDoubling)
}

// measurement turns a sample into what the built-in provider reports.
func (s sample) measurement(start, end time.Time) analysis.Measurement {
	m := analysis.Measurement{Start: start, End: end, Count: s.requests, Requests: s.requests, Errors: s.errors}
	if len(s.buckets) == 0 {
		return m
	}
	h := &analysis.Histogram{}
	for i, w := range s.buckets {
		if c := int64(math.Round(w)); c > 0 {
			h.Buckets = append(h.Buckets, analysis.Bucket{Upper: bucketUpper(i), Count: c})
		}
	}
	m.Latency = h
	return m
}

// poisson draws from a Poisson distribution: exactly for small means, by
// the normal approximation for large ones.
func poisson(r *rand.Rand, mean float64) int64 {
	switch {
	case mean <= 0:
		return 0
	case mean < 30:
		l, k, p := math.Exp(-mean), int64(0), 1.0
		for {
			p *= r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	default:
		return max(0, int64(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
}

// binomial draws the number of successes in n trials of probability p.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	switch {
	case p <= 0 || n == 0:
		return 0
	case p >= 1:
		return n
	case n <= 100:
		var k int64
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return k
	case float64(n)*p*(1-p) >= 10:
		v := float64(n)*p + math.Sqrt(float64(n)*p*(1-p))*r.NormFloat64()
		return min(n, max(0, int64(math.Round(v))))
	default:
		return min(n, poisson(r, float64(n)*p))
	}
}
