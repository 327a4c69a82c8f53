package proxy

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Latency buckets are log-scale with 128 buckets per doubling (the bounds of
// Prometheus native histograms at schema 7): bucket i holds latencies in
// (2^((i-1)/128), 2^(i/128)] seconds, so a quantile read from them is off by
// at most 2^(1/128)-1 = 0.54% of its value. The range is 2^-20 s (about 1µs;
// smaller values land in the first bucket, whose lower bound is 0) to 2^12 s
// (68 minutes; larger values are clamped into the last bucket).
const (
	bucketsPerDoubling = 128
	minBucketIndex     = -20 * bucketsPerDoubling
	maxBucketIndex     = 12 * bucketsPerDoubling
	numBuckets         = maxBucketIndex - minBucketIndex + 1
)

// fracBounds[j] = 2^((j-128)/128) for j in 0..128: the bucket bounds within
// one doubling, for math.Frexp's fraction in [0.5, 1).
var fracBounds = func() []float64 {
	b := make([]float64, bucketsPerDoubling+1)
	for j := range b {
		b[j] = math.Exp2(float64(j-bucketsPerDoubling) / bucketsPerDoubling)
	}
	b[0], b[bucketsPerDoubling] = 0.5, 1
	return b
}()

// bucketOf returns the dense bucket index (0..numBuckets-1) of a latency in
// seconds.
func bucketOf(seconds float64) int {
	if !(seconds > 0) { // also NaN
		return 0
	}
	frac, exp := math.Frexp(seconds) // seconds = frac * 2^exp, frac in [0.5, 1)
	j := sort.SearchFloat64s(fracBounds, frac)
	i := exp*bucketsPerDoubling + j - bucketsPerDoubling
	switch {
	case i <= minBucketIndex:
		return 0
	case i >= maxBucketIndex:
		return numBuckets - 1
	}
	return i - minBucketIndex
}

// bucketUpper is the upper bound in seconds of a dense bucket index.
func bucketUpper(d int) float64 {
	return math.Exp2(float64(d+minBucketIndex) / bucketsPerDoubling)
}

// Histogram is a latency distribution in seconds: buckets sorted by upper
// bound, counts per bucket (not cumulative), the first bucket's lower bound 0.
// Empty buckets are left out except those that bound a non-empty bucket from
// below, so every non-empty bucket's lower bound is the previous bucket's
// upper bound.
type Histogram struct {
	Buckets []Bucket
}

// Bucket counts the latencies in (previous bucket's Upper, Upper].
type Bucket struct {
	Upper float64
	Count int64
}

// Total is the number of latencies in h.
func (h Histogram) Total() int64 {
	var n int64
	for _, b := range h.Buckets {
		n += b.Count
	}
	return n
}

// Kind is how a request came to a version.
type Kind uint8

// Route kinds.
const (
	// KindWeighted requests were sent by the weighted choice (or kept on a
	// version by a stickiness cookie).
	KindWeighted Kind = iota
	// KindMatched requests were sent to the canary by a match rule.
	KindMatched
	// KindMirrored requests are shadow copies of stable requests sent to the
	// canary; their replies were dropped.
	KindMirrored
	numKinds
)

var kindNames = [numKinds]string{"weighted", "matched", "mirrored"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Roles of a version in the table.
const (
	RoleStable = "stable"
	RoleCanary = "canary"
)

// Window is what a version served over a time window.
type Window struct {
	Start, End time.Time
	// Requests and Errors count the requests that completed in the window.
	Requests int64
	Errors   int64
	// Latency is their latency distribution.
	Latency Histogram
}

type seriesKey struct {
	version string
	role    string
	kind    Kind
}

// slot is one second of a series' history, compacted to its non-empty
// buckets.
type slot struct {
	sec      int64
	requests int64
	errors   int64
	buckets  []sparseBucket
}

type sparseBucket struct {
	index uint16
	count uint32
}

// series is the measurements of one (version, role, kind): the current
// second in dense form, a ring of past seconds, and running totals for
// Prometheus.
type series struct {
	key seriesKey

	mu      sync.Mutex
	curSec  int64
	cur     slot     // requests and errors of the current second; buckets unused
	counts  []uint32 // dense bucket counts of the current second
	touched []uint16 // indices of counts that are non-zero
	ring    []slot

	// Totals since the series was created, for Prometheus; total holds the
	// compacted seconds only, Collect adds the current one.
	totalReq, totalErr uint64
	totalSum           float64
	total              []uint64
	lastSec            int64
}

func newSeries(key seriesKey, slots int) *series {
	return &series{
		key:    key,
		counts: make([]uint32, numBuckets),
		ring:   make([]slot, slots),
		total:  make([]uint64, numBuckets),
	}
}

// record counts one request that completed at unix second sec.
func (s *series) record(sec int64, latency time.Duration, isErr bool) {
	seconds := latency.Seconds()
	b := bucketOf(seconds)
	s.mu.Lock()
	if sec > s.curSec {
		s.rotate(sec)
	}
	s.cur.requests++
	s.totalReq++
	if isErr {
		s.cur.errors++
		s.totalErr++
	}
	s.totalSum += seconds
	if s.counts[b] == 0 {
		s.touched = append(s.touched, uint16(b))
	}
	s.counts[b]++
	s.lastSec = sec
	s.mu.Unlock()
}

// rotate compacts the current second into the ring and starts second sec.
// s.mu must be held.
func (s *series) rotate(sec int64) {
	if s.cur.requests > 0 {
		slices.Sort(s.touched)
		bs := make([]sparseBucket, len(s.touched))
		for i, b := range s.touched {
			bs[i] = sparseBucket{index: b, count: s.counts[b]}
			s.total[b] += uint64(s.counts[b])
			s.counts[b] = 0
		}
		s.touched = s.touched[:0]
		s.ring[mod(s.curSec, int64(len(s.ring)))] = slot{sec: s.curSec, requests: s.cur.requests, errors: s.cur.errors, buckets: bs}
	}
	s.curSec = sec
	s.cur = slot{sec: sec}
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// addWindow adds the seconds [from, to) to w's counts and to dense.
func (s *series) addWindow(from, to int64, w *Window, dense []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.ring {
		sl := &s.ring[i]
		if sl.requests == 0 || sl.sec < from || sl.sec >= to {
			continue
		}
		w.Requests += sl.requests
		w.Errors += sl.errors
		for _, b := range sl.buckets {
			dense[b.index] += int64(b.count)
		}
	}
	if s.cur.requests > 0 && s.curSec >= from && s.curSec < to {
		w.Requests += s.cur.requests
		w.Errors += s.cur.errors
		for _, b := range s.touched {
			dense[b] += int64(s.counts[b])
		}
	}
}

// totals returns the running totals with cumulative counts at the given
// classic bucket bounds (each fine bucket counted at its upper bound).
func (s *series) totals(bounds []float64) (req, errs uint64, sum float64, cumulative map[float64]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perBound := make([]uint64, len(bounds))
	add := func(d int, n uint64) {
		if n == 0 {
			return
		}
		u := bucketUpper(d)
		if i := sort.SearchFloat64s(bounds, u); i < len(bounds) {
			perBound[i] += n
		}
	}
	for d, n := range s.total {
		add(d, n)
	}
	for _, d := range s.touched {
		add(int(d), uint64(s.counts[d]))
	}
	cumulative = make(map[float64]uint64, len(bounds))
	var run uint64
	for i, b := range bounds {
		run += perBound[i]
		cumulative[b] = run
	}
	return s.totalReq, s.totalErr, s.totalSum, cumulative
}

// sparseHistogram turns dense counts into a Histogram, keeping the empty
// bucket just below each non-empty one so that its lower bound is known.
func sparseHistogram(dense []int64) Histogram {
	var h Histogram
	for d, n := range dense {
		if n == 0 {
			continue
		}
		if d > 0 && (len(h.Buckets) == 0 || h.Buckets[len(h.Buckets)-1].Upper < bucketUpper(d-1)) {
			h.Buckets = append(h.Buckets, Bucket{Upper: bucketUpper(d - 1)})
		}
		h.Buckets = append(h.Buckets, Bucket{Upper: bucketUpper(d), Count: n})
	}
	return h
}

// stats holds every series of one proxy.
type stats struct {
	slots int

	mu sync.Mutex
	m  map[seriesKey]*series
}

func newStats(slots int) *stats {
	return &stats{slots: slots, m: map[seriesKey]*series{}}
}

func (st *stats) get(key seriesKey) *series {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[key]
	if !ok {
		s = newSeries(key, st.slots)
		st.m[key] = s
	}
	return s
}

func (st *stats) lookup(key seriesKey) *series {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.m[key]
}

func (st *stats) all() []*series {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*series, 0, len(st.m))
	for _, s := range st.m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		if a.version != b.version {
			return a.version < b.version
		}
		if a.role != b.role {
			return a.role < b.role
		}
		return a.kind < b.kind
	})
	return out
}

// forget drops the series of versions that are not in keep and have been
// idle for longer than the retained history.
func (st *stats) forget(keep map[seriesKey]bool, nowSec int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, s := range st.m {
		if keep[k] {
			continue
		}
		s.mu.Lock()
		idle := nowSec-s.lastSec > int64(st.slots)
		s.mu.Unlock()
		if idle {
			delete(st.m, k)
		}
	}
}

// Measure returns what one version in one role served over the window
// [start, end), summed over the given route kinds (all kinds when none are
// given). Measurements are kept in one-second slots: a request counts in the
// window that contains the start of the second in which it completed, so
// windows that meet at whole seconds partition the requests exactly. A
// window reaching further back than the retained history is an error; a
// version that served nothing gives an empty Window, not an error.
func (p *Proxy) Measure(version, role string, start, end time.Time, kinds ...Kind) (Window, error) {
	w := Window{Start: start, End: end}
	if role != RoleStable && role != RoleCanary {
		return w, fmt.Errorf("measure %s: unknown role %q (want %s or %s)", version, role, RoleStable, RoleCanary)
	}
	if !end.After(start) {
		return w, fmt.Errorf("measure %s: window end %s is not after its start %s", version, end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
	}
	now := p.now()
	oldest := now.Add(-p.opts.History)
	if start.Before(oldest.Add(-time.Second)) {
		return w, fmt.Errorf("measure %s: window start %s is older than the retained history (%s)", version, start.Format(time.RFC3339), p.opts.History)
	}
	if len(kinds) == 0 {
		kinds = []Kind{KindWeighted, KindMatched, KindMirrored}
	}
	from := start.Unix()
	if start.Nanosecond() > 0 {
		from++
	}
	to := end.Unix()
	if end.Nanosecond() > 0 {
		to++
	}
	dense := make([]int64, numBuckets)
	for _, k := range kinds {
		if k >= numKinds {
			return w, fmt.Errorf("measure %s: unknown route kind %d", version, k)
		}
		if s := p.stats.lookup(seriesKey{version: version, role: role, kind: k}); s != nil {
			s.addWindow(from, to, &w, dense)
		}
	}
	w.Latency = sparseHistogram(dense)
	return w, nil
}
