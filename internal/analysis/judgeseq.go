package analysis

import (
	"fmt"
	"math"
	"sort"
)

// seqJudge is the sequential test of one metric over a series, fed one
// interval at a time.
type seqJudge struct {
	c       Criteria
	counter eventCounter
	st      *seqState
}

func newSeqJudge(c Criteria) *seqJudge {
	tol := c.tolerance()
	if c.Compare != CompareBaseline {
		tol = Tolerance{Ratio: 0, Increase: float64(*c.Max)}
	}
	return &seqJudge{c: c, counter: eventCounter{c: c, bound: math.NaN()}, st: newSeqState(tol)}
}

// add counts one interval in; it returns why the interval cannot be used,
// or "" (an interval whose measurement failed is skipped silently).
func (j *seqJudge) add(iv Interval) string {
	counts, ok, msg := j.counter.next(iv)
	if ok {
		j.st.add(counts)
	}
	return msg
}

// judgeSequential runs the sequential count test over the whole series.
func judgeSequential(r Result, c Criteria, series []Interval) Result {
	j := newSeqJudge(c)
	failure := ""
	for _, iv := range series {
		failure = j.add(iv)
	}
	return j.judge(r, failure)
}

// judge gives the verdict after the intervals added so far; failure is why
// the latest cannot be used, or "".
func (j *seqJudge) judge(r Result, failure string) Result {
	c := j.c
	metric := r.Metric
	bound := j.counter.bound
	if failure != "" {
		r.Verdict = Error
		r.Reason = fmt.Sprintf("%s: %s", metric, failure)
		return r
	}
	baseline := c.Compare == CompareBaseline
	tol := j.st.tol
	alpha := c.alpha()
	res := j.st.result(alpha)
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

	what := describeRates(r, bound, c)
	limit := tol.Limit(stRate)
	limitText := fmtPercent(limit)
	if baseline {
		limitText = fmtLimit(tol)
	}
	canReq := fmtCount(r.CanaryCount)
	switch {
	case res.CanaryRequests <= 0:
		r.Reason = fmt.Sprintf("%s: no canary requests yet%s", metric, boundNote(bound, c))
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

// eventCounter turns intervals into counts for the sequential test: request
// and error counts, or requests slower than a bound.
type eventCounter struct {
	c Criteria
	// past is the stable's latency so far, for SlowerThanQuantile.
	past pastLatency
	// bound is the slow-request bound of the latest interval that had one
	// (NaN for error counts or before any bound).
	bound float64
}

// next returns the interval's counts, whether they count, and why the
// interval cannot be used ("" when it can, or when its measurement failed
// and it is skipped).
func (e *eventCounter) next(iv Interval) (Counts, bool, string) {
	c := e.c
	baseline := c.Compare == CompareBaseline
	if iv.Canary.Err != "" || (baseline && iv.Stable.Err != "") {
		return Counts{}, false, ""
	}
	if !c.slowTest() {
		can, msg := requestCounts("canary", iv.Canary)
		var st [2]float64
		if msg == "" && baseline {
			st, msg = requestCounts("stable", iv.Stable)
		}
		if msg != "" {
			return Counts{}, false, msg
		}
		return Counts{CanaryRequests: can[0], CanaryEvents: can[1], StableRequests: st[0], StableEvents: st[1]}, true, ""
	}
	// With SlowerThanQuantile the bound of interval i comes from the
	// stable's latency in intervals before i only, so the bound is fixed
	// before the interval's data are seen and the test stays valid;
	// intervals before the first stable histogram are skipped.
	var bound float64
	if c.SlowerThan != nil {
		bound = float64(*c.SlowerThan)
	} else {
		bound = e.past.quantileBound(float64(*c.SlowerThanQuantile))
		e.past.add(iv.Stable.Latency)
	}
	can, msg := slowCount("canary", iv.Canary, bound, c.SlowerThan != nil)
	var st [2]float64
	if msg == "" && baseline {
		st, msg = slowCount("stable", iv.Stable, bound, c.SlowerThan != nil)
	}
	if msg != "" {
		return Counts{}, false, msg
	}
	if math.IsNaN(bound) {
		return Counts{}, false, ""
	}
	e.bound = bound
	return Counts{CanaryRequests: can[0], CanaryEvents: can[1], StableRequests: st[0], StableEvents: st[1]}, true, ""
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

// pastLatency is a histogram kept as buckets sorted by bound, so that
// adding an interval's histogram is a merge and reading a quantile a scan:
// judging a run of n intervals takes time proportional to n, not n log n,
// per bucket.
type pastLatency struct {
	buckets []Bucket
	total   int64
	scratch []Bucket
}

// add merges h's buckets (bounds that are not numbers and negative counts
// are left out: the interval that has them is reported as unusable).
func (p *pastLatency) add(h *Histogram) {
	if h == nil || len(h.Buckets) == 0 {
		return
	}
	in := h.Buckets
	if !sort.SliceIsSorted(in, func(i, j int) bool { return in[i].Upper < in[j].Upper }) {
		in = append([]Bucket(nil), in...)
		sort.Slice(in, func(i, j int) bool { return in[i].Upper < in[j].Upper })
	}
	out := p.scratch[:0]
	i := 0
	push := func(b Bucket) {
		if n := len(out); n > 0 && out[n-1].Upper == b.Upper {
			out[n-1].Count += b.Count
			return
		}
		out = append(out, b)
	}
	for _, b := range in {
		if math.IsNaN(b.Upper) || b.Count < 0 {
			continue
		}
		for i < len(p.buckets) && p.buckets[i].Upper < b.Upper {
			push(p.buckets[i])
			i++
		}
		push(b)
		p.total += b.Count
	}
	out = append(out, p.buckets[i:]...)
	p.scratch, p.buckets = p.buckets, out
}

// quantileBound is the smallest bucket bound U with at most a share 1-q of
// the values above U, or NaN when there are none. Counts above a bucket
// bound are exact, not interpolated.
func (p *pastLatency) quantileBound(q float64) float64 {
	if p.total == 0 {
		return math.NaN()
	}
	allowed := (1 - q) * float64(p.total)
	below := int64(0)
	for _, b := range p.buckets {
		below += b.Count
		if float64(p.total-below) <= allowed {
			return b.Upper
		}
	}
	return p.buckets[len(p.buckets)-1].Upper
}
