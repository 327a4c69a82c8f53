package proxy

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// quantile estimates the q-quantile of h as analysis.Histogram does:
// geometric interpolation within the bucket.
func quantile(h Histogram, q float64) float64 {
	n := h.Total()
	rank := q * float64(n)
	var seen float64
	lower := 0.0
	for _, b := range h.Buckets {
		if b.Count > 0 && seen+float64(b.Count) >= rank {
			f := (rank - seen) / float64(b.Count)
			if lower <= 0 {
				return b.Upper * f
			}
			return lower * math.Pow(b.Upper/lower, f)
		}
		seen += float64(b.Count)
		lower = b.Upper
	}
	return math.NaN()
}

func TestLatencyQuantilesWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dist := range []struct {
		name string
		gen  func() float64
	}{
		{"lognormal around 20ms", func() float64 { return 0.02 * math.Exp(r.NormFloat64()) }},
		{"bimodal 1ms and 300ms", func() float64 {
			if r.IntN(10) == 0 {
				return 0.3 * (1 + r.Float64())
			}
			return 0.001 * (1 + r.Float64())
		}},
		{"uniform 50-60µs", func() float64 { return 50e-6 + 10e-6*r.Float64() }},
	} {
		t.Run(dist.name, func(t *testing.T) {
			s := newSeries(seriesKey{}, 10)
			vals := make([]float64, 20000)
			for i := range vals {
				vals[i] = dist.gen()
				s.record(100, time.Duration(vals[i]*float64(time.Second)), false)
			}
			slices.Sort(vals)
			w := Window{}
			dense := make([]int64, numBuckets)
			s.addWindow(100, 101, &w, dense)
			h := sparseHistogram(dense)
			for _, q := range []float64{0.5, 0.9, 0.99} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := quantile(h, q)
				// Durations are truncated to nanoseconds: allow that too.
				if rel := math.Abs(got-exact) / exact; rel > 0.01 {
					t.Errorf("p%g = %g, exact %g: relative error %.4f > 1%%", q*100, got, exact, rel)
				}
			}
		})
	}
}

func TestBucketBounds(t *testing.T) {
	for _, v := range []float64{1e-7, 1e-6, 0.001, 0.0999, 0.1, 1, 2, 3.7, 100, 5000} {
		d := bucketOf(v)
		up := bucketUpper(d)
		lo := 0.0
		if d > 0 {
			lo = bucketUpper(d - 1)
		}
		inRange := v > lo && v <= up
		clamped := d == 0 && v <= up || d == numBuckets-1 && v > up
		if !inRange && !clamped {
			t.Errorf("bucketOf(%g) = %d covering (%g, %g]", v, d, lo, up)
		}
	}
	if got := bucketOf(2); bucketUpper(got) != 2 {
		t.Errorf("2s landed in a bucket with upper bound %g, want exactly 2", bucketUpper(got))
	}
}

func TestMeasureWindows(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p, err := New(Options{Name: "w", Clock: clk.Now, History: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	tb := unitTable(10)
	if _, err := p.Update(tb); err != nil {
		t.Fatal(err)
	}
	c := p.table.Load()
	// Three seconds of canary traffic: 10, 20 and 30 requests, one error
	// each, with latencies of 100ms.
	for sec := range 3 {
		for i := range 10 * (sec + 1) {
			s := c.canary.series[KindWeighted]
			s.record(int64(1000+sec), 100*time.Millisecond, i == 0)
		}
	}
	clk.Set(time.Unix(1003, 500e6))
	cases := []struct {
		start, end   time.Time
		requests     int64
		errors       int64
		wantNoLatncy bool
	}{
		{time.Unix(1000, 0), time.Unix(1001, 0), 10, 1, false},
		{time.Unix(1001, 0), time.Unix(1003, 0), 50, 2, false},
		{time.Unix(1000, 0), time.Unix(1004, 0), 60, 3, false},
		// A window starting mid-second leaves that second to the window
		// before it.
		{time.Unix(1000, 500e6), time.Unix(1004, 0), 50, 2, false},
		{time.Unix(1003, 0), time.Unix(1004, 0), 0, 0, true},
	}
	for _, tc := range cases {
		w, err := p.Measure("v2", RoleCanary, tc.start, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		if w.Requests != tc.requests || w.Errors != tc.errors {
			t.Errorf("[%v, %v): %d requests, %d errors; want %d, %d", tc.start.Unix(), tc.end.Unix(), w.Requests, w.Errors, tc.requests, tc.errors)
		}
		if got := w.Latency.Total(); got != tc.requests {
			t.Errorf("[%v, %v): histogram holds %d, want %d", tc.start.Unix(), tc.end.Unix(), got, tc.requests)
		}
		if tc.requests > 0 {
			if q := quantile(w.Latency, 0.5); math.Abs(q-0.1)/0.1 > 0.01 {
				t.Errorf("p50 = %g, want 0.1", q)
			}
		}
	}
	// Other versions, roles and kinds are apart.
	if w, _ := p.Measure("v2", RoleCanary, time.Unix(1000, 0), time.Unix(1004, 0), KindMirrored); w.Requests != 0 {
		t.Errorf("mirrored window has %d requests, want 0", w.Requests)
	}
	if w, _ := p.Measure("v2", RoleStable, time.Unix(1000, 0), time.Unix(1004, 0)); w.Requests != 0 {
		t.Errorf("v2 as stable has %d requests, want 0", w.Requests)
	}
	// Errors name what is wrong.
	errCases := []struct {
		version, role string
		start, end    time.Time
		want          string
	}{
		{"v2", "leader", time.Unix(1000, 0), time.Unix(1001, 0), `unknown role "leader"`},
		{"v2", RoleCanary, time.Unix(1001, 0), time.Unix(1000, 0), "is not after its start"},
		{"v2", RoleCanary, time.Unix(900, 0), time.Unix(1001, 0), "older than the retained history (1m0s)"},
	}
	for _, tc := range errCases {
		if _, err := p.Measure(tc.version, tc.role, tc.start, tc.end); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Measure(%s, %s) = %v, want an error containing %q", tc.version, tc.role, err, tc.want)
		}
	}
	// Slots older than the history are overwritten as time goes on.
	s := c.canary.series[KindWeighted]
	s.record(1000+60, time.Millisecond, false)
	s.record(1000+61, time.Millisecond, false)
	clk.Set(time.Unix(1062, 0))
	if w, _ := p.Measure("v2", RoleCanary, time.Unix(1003, 0), time.Unix(1062, 0)); w.Requests != 2 {
		t.Errorf("after a minute, window holds %d requests, want the 2 recent ones", w.Requests)
	}
}

func TestPrometheusMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	p, addr := startProxy(t, Options{Name: "web", Registerer: reg}, twoVersions(stable, canary, 100))
	c := newClient()
	for range 3 {
		get(t, c, addr+"/", nil)
	}
	want := `
# HELP aviary_proxy_requests_total Requests answered, by version, role and route kind.
# TYPE aviary_proxy_requests_total counter
aviary_proxy_requests_total{role="canary",rollout="web",route="matched",version="v2"} 0
aviary_proxy_requests_total{role="canary",rollout="web",route="mirrored",version="v2"} 0
aviary_proxy_requests_total{role="canary",rollout="web",route="weighted",version="v2"} 3
aviary_proxy_requests_total{role="stable",rollout="web",route="matched",version="v1"} 0
aviary_proxy_requests_total{role="stable",rollout="web",route="mirrored",version="v1"} 0
aviary_proxy_requests_total{role="stable",rollout="web",route="weighted",version="v1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "aviary_proxy_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "aviary_proxy_request_duration_seconds", "aviary_proxy_upstream_healthy", "aviary_proxy_table_generation"); err != nil || n != 6+2+1 {
		t.Errorf("GatherAndCount = %d, %v; want 9 series", n, err)
	}
	// A second proxy registers beside the first; Close unregisters.
	p2, err := New(Options{Name: "api", Registerer: reg})
	if err != nil {
		t.Fatalf("second proxy on the same registry: %v", err)
	}
	p2.Close(t.Context())
	p.Close(t.Context())
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Errorf("%d series left after Close, want 0", n)
	}
}
