package analysis

import (
	"fmt"
	"math"
	"sort"
)

// eventSeries is a series turned into counts for the sequential test.
type eventSeries struct {
	counts []Counts
	// bound is the slow-request bound in the latest interval that had one
	// (NaN for error counts or before any bound).
	bound float64
	// failure explains why the latest interval cannot be used, or is "".
	failure string
}

// judgeSequential runs the sequential count test over the whole series.
func judgeSequential(r Result, c Criteria, series []Interval) Result {
	metric := r.Metric
	var es eventSeries
	if c.slowTest() {
		es = slowCounts(c, series)
	} else {
		es = errorCounts(c, series)
	}
	if es.failure != "" {
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: %s", metric, es.failure)
		return r
	}
	baseline := c.Compare == CompareBaseline
	tol := c.tolerance()
	if !baseline {
		tol = Tolerance{Ratio: 0, Increase: float64(*c.Max)}
	}
	alpha := c.alpha()
	res := Sequential(es.counts, tol, alpha)
	r.CanaryCount = int64(math.Round(res.CanaryRequests))
	r.E, r.P = res.E, res.P
	canRate, stRate := res.CanaryRate(), res.StableRate()
	if res.CanaryRequests > 0 {
		r.Canary, r.HasCanary = canRate, true
	}
	if baseline {
		r.StableCount = int64(math.Round(res.StableRequests))
		if res.StableRequests > 0 {
			r.Stable, r.HasStable = stRate, true
		}
	}
	if !math.IsNaN(res.Effect) {
		r.Effect = res.Effect
		r.EffectBounds = &Bounds{Lower: res.EffectLower, Upper: res.EffectUpper, Level: 1 - alpha}
	}

	what := describeRates(r, es.bound, c)
	limit := tol.Limit(stRate)
	limitText := fmtPercent(limit)
	if baseline {
		limitText = fmtLimit(tol)
	}
	canReq := fmtCount(r.CanaryCount)
	switch {
	case res.CanaryRequests <= 0:
		r.Reason = fmt.Sprintf("%s: no canary requests yet%s", metric, boundNote(es.bound, c))
		return r
	case baseline && res.StableRequests <= 0:
		r.Reason = fmt.Sprintf("%s: %s but no stable requests to compare with", metric, what)
		return r
	case res.P <= alpha:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: %s, above %s (sequential test p=%s <= %s, %s canary requests)", metric, what, limitText, fmtP(res.P), fmtP(alpha), canReq)
		return r
	}
	enough := res.CanaryRequests >= float64(c.MinSamples) && (!baseline || res.StableRequests >= float64(c.MinSamples))
	proven := res.SafeP <= alpha
	within := c.MinSamples > 0 && canRate <= limit
	switch {
	case enough && proven:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%s: %s, shown within %s (sequential test p=%s, safety p=%s <= %s, %s canary requests)", metric, what, limitText, fmtP(res.P), fmtP(res.SafeP), fmtP(alpha), canReq)
	case enough && within:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%s: %s, within %s with no evidence of harm (sequential test p=%s > %s, %s canary requests >= %s)", metric, what, limitText, fmtP(res.P), fmtP(alpha), canReq, fmtCount(c.MinSamples))
	case !enough:
		r.Reason = fmt.Sprintf("%s: %s, not yet judged (sequential test p=%s > %s, %s canary requests of the %s needed to pass)", metric, what, fmtP(res.P), fmtP(alpha), canReq, fmtCount(c.MinSamples))
	case c.MinSamples > 0:
		r.Reason = fmt.Sprintf("%s: %s, above %s but not significantly (sequential test p=%s > %s, %s canary requests)", metric, what, limitText, fmtP(res.P), fmtP(alpha), canReq)
	default:
		r.Reason = fmt.Sprintf("%s: %s, neither harm nor safety shown against %s (sequential test p=%s, safety p=%s, both > %s, %s canary requests)", metric, what, limitText, fmtP(res.P), fmtP(res.SafeP), fmtP(alpha), canReq)
	}
	return r
}

// describeRates says "canary 4.8% vs stable 0.3%", with the slow bound.
func describeRates(r Result, bound float64, c Criteria) string {
	can := "no canary requests"
	if r.HasCanary {
		can = "canary " + fmtPercent(r.Canary)
	}
	s := can
	if c.Compare == CompareBaseline {
		st := "no stable requests"
		if r.HasStable {
			st = "stable " + fmtPercent(r.Stable)
		}
		s = can + " vs " + st
	}
	return s + boundNote(bound, c)
}

func boundNote(bound float64, c Criteria) string {
	switch {
	case c.SlowerThanQuantile != nil && !math.IsNaN(bound):
		return fmt.Sprintf(" slower than %s (the stable's q%s so far)", fmtSeconds(bound), fmtValue(float64(*c.SlowerThanQuantile)))
	case c.SlowerThanQuantile != nil:
		return " (waiting for the stable's latency to set the slow bound)"
	case c.SlowerThan != nil:
		return " slower than " + fmtSeconds(float64(*c.SlowerThan))
	}
	return ""
}

// fmtLimit writes the tolerated rate: "1.25 x stable + 0.02%".
func fmtLimit(t Tolerance) string {
	s := "stable"
	if t.Ratio != 1 {
		s = fmtValue(t.Ratio) + " x stable"
	}
	if t.Increase != 0 {
		s += " + " + fmtPercent(t.Increase)
	}
	return s
}

// errorCounts reads request and error counts from each interval.
func errorCounts(c Criteria, series []Interval) eventSeries {
	es := eventSeries{bound: math.NaN()}
	baseline := c.Compare == CompareBaseline
	for i, iv := range series {
		latest := i == len(series)-1
		if iv.Canary.Err != "" || (baseline && iv.Stable.Err != "") {
			continue
		}
		can, msg := requestCounts("canary", iv.Canary)
		var st [2]float64
		if msg == "" && baseline {
			st, msg = requestCounts("stable", iv.Stable)
		}
		if msg != "" {
			if latest {
				es.failure = msg
			}
			continue
		}
		es.counts = append(es.counts, Counts{CanaryRequests: can[0], CanaryEvents: can[1], StableRequests: st[0], StableEvents: st[1]})
	}
	return es
}

func requestCounts(side string, m Measurement) ([2]float64, string) {
	switch {
	case m.Requests < 0 || m.Errors < 0:
		return [2]float64{}, fmt.Sprintf("%s reported negative counts (%d requests, %d errors)", side, m.Requests, m.Errors)
	case m.Errors > m.Requests:
		return [2]float64{}, fmt.Sprintf("%s reported more errors than requests (%d errors, %d requests)", side, m.Errors, m.Requests)
	case m.Requests == 0 && m.HasValue && m.Count != 0:
		return [2]float64{}, fmt.Sprintf("test: sequential needs request and error counts, and the %s measurement has only a value; use the built-in provider or a query that reports counts", side)
	}
	return [2]float64{float64(m.Requests), float64(m.Errors)}, ""
}

// slowCounts counts requests slower than the bound in each interval. With
// SlowerThanQuantile the bound of interval i comes from the stable's latency
// in intervals before i only, so the bound is fixed before the interval's
// data are seen and the test stays valid; intervals before the first stable
// histogram are skipped.
func slowCounts(c Criteria, series []Interval) eventSeries {
	es := eventSeries{bound: math.NaN()}
	baseline := c.Compare == CompareBaseline
	past := map[float64]int64{} // the stable's latency so far, by bucket bound
	for i, iv := range series {
		latest := i == len(series)-1
		if iv.Canary.Err != "" || (baseline && iv.Stable.Err != "") {
			continue
		}
		var bound float64
		if c.SlowerThan != nil {
			bound = float64(*c.SlowerThan)
		} else {
			bound = quantileBound(past, float64(*c.SlowerThanQuantile))
			if iv.Stable.Latency != nil {
				for _, b := range iv.Stable.Latency.Buckets {
					past[b.Upper] += b.Count
				}
			}
		}
		can, msg := slowCount("canary", iv.Canary, bound, c.SlowerThan != nil)
		var st [2]float64
		if msg == "" && baseline {
			st, msg = slowCount("stable", iv.Stable, bound, c.SlowerThan != nil)
		}
		if msg != "" {
			if latest {
				es.failure = msg
			}
			continue
		}
		if math.IsNaN(bound) {
			continue
		}
		es.bound = bound
		es.counts = append(es.counts, Counts{CanaryRequests: can[0], CanaryEvents: can[1], StableRequests: st[0], StableEvents: st[1]})
	}
	return es
}

// slowCount returns (requests, slow requests) of a measurement: exact counts
// when the provider gave them for a fixed bound, else from the histogram.
func slowCount(side string, m Measurement, bound float64, fixed bool) ([2]float64, string) {
	if fixed && m.HasSlow {
		n := m.Requests
		if n == 0 {
			n = m.Latency.Total()
		}
		if m.Slow < 0 || m.Slow > n {
			return [2]float64{}, fmt.Sprintf("%s reported %d slow requests out of %d", side, m.Slow, n)
		}
		return [2]float64{float64(n), float64(m.Slow)}, ""
	}
	if m.Latency != nil {
		for _, b := range m.Latency.Buckets {
			if b.Count < 0 || math.IsNaN(b.Upper) {
				return [2]float64{}, fmt.Sprintf("%s latency histogram has a negative count or a bound that is not a number", side)
			}
		}
	}
	n := m.Latency.Total()
	if n == 0 {
		if m.Requests > 0 || (m.HasValue && m.Count != 0) {
			return [2]float64{}, fmt.Sprintf("the slow-request test needs a latency histogram, and the %s measurement has none", side)
		}
		return [2]float64{}, ""
	}
	if math.IsNaN(bound) {
		return [2]float64{float64(n), 0}, ""
	}
	return [2]float64{float64(n), math.Min(m.Latency.CountAbove(bound), float64(n))}, ""
}

// quantileBound is the smallest bucket bound U of the histogram (bound →
// count) with at most a share 1-q of its values above U, or NaN when it is
// empty. Counts above a bucket bound are exact, not interpolated.
func quantileBound(h map[float64]int64, q float64) float64 {
	var total int64
	bounds := make([]float64, 0, len(h))
	for u, n := range h {
		bounds = append(bounds, u)
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	sort.Float64s(bounds)
	allowed := (1 - q) * float64(total)
	below := int64(0)
	for _, u := range bounds {
		below += h[u]
		if float64(total-below) <= allowed {
			return u
		}
	}
	return bounds[len(bounds)-1]
}
