package builtin

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/proxy"
	"aviary/internal/rollout"
)

// providerContract is the controller's Provider interface, copied here
// until the controller declares it.
type providerContract interface {
	Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error)
}

var _ providerContract = (*Provider)(nil)

// proxies is a fixed set of proxies by rollout name.
type proxies map[string]*proxy.Proxy

func (ps proxies) Proxy(name string) (*proxy.Proxy, bool) { p, ok := ps[name]; return p, ok }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// setup runs a rollout "web" with v1 stable and v2 canary at weight 50 (v2
// fails /fail), sends traffic at one frozen instant, and returns a provider.
func setup(t *testing.T) (*Provider, time.Time) {
	t.Helper()
	up := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if name == "v2" && r.URL.Path == "/fail" {
				w.WriteHeader(http.StatusBadGateway)
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	at := time.Unix(5000, 0)
	clk := &clock{t: at}
	p, err := proxy.New(proxy.Options{Name: "web", Clock: clk.Now, Ejection: proxy.Ejection{Failures: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	table := proxy.Table{
		Generation:    1,
		Stable:        proxy.Backend{Version: "v1", Upstreams: []string{up("v1")}},
		Canary:        &proxy.Backend{Version: "v2", Upstreams: []string{up("v2")}},
		Match:         []proxy.Match{{Headers: map[string]proxy.StringMatch{"x-canary": {Present: true}}}},
		MirrorPercent: 100,
	}
	if _, err := p.Update(table); err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(context.Background(), proxy.ListenConfig{Addr: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	send := func(path string, canary bool) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr().String()+path, nil)
		if canary {
			req.Header.Set("X-Canary", "1")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 6 {
		send("/", true)
		send("/", false)
	}
	for range 2 {
		send("/fail", true)
	}
	// 8 stable requests, all mirrored to v2: wait for the shadow copies.
	prov := New(proxies{"web": p})
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := prov.Query(context.Background(), rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "error-rate"}, Version: "v2", Role: "canary", Shadow: true, Start: at, End: at.Add(time.Second)})
		if err == nil && m.Requests == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirrored requests: %+v, %v; want 6", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return prov, at
}

func TestQueries(t *testing.T) {
	prov, at := setup(t)
	q := func(metric, version, role string, shadow bool) (analysis.Measurement, error) {
		return prov.Query(context.Background(), rollout.Query{
			Rollout: "web", Metric: rollout.Metric{Name: "m", Query: metric},
			Version: version, Role: role, Shadow: shadow, Start: at, End: at.Add(2 * time.Second),
		})
	}
	cases := []struct {
		metric, version, role string
		shadow                bool
		requests, errors      int64
		value                 float64
		hasValue              bool
	}{
		{"error-rate", "v2", "canary", false, 8, 2, 0.25, true},
		{"error-rate", "v1", "stable", false, 6, 0, 0, true},
		{"error-rate", "v2", "canary", true, 6, 0, 0, true},
		{"request-rate", "v2", "canary", false, 8, 2, 4, true},
		{"latency-p50", "v1", "stable", false, 6, 0, 0, true},
		{"slow-rate", "v2", "canary", false, 8, 2, 0, false},
		{"error-rate", "v3", "canary", false, 0, 0, 0, false},
	}
	for _, tc := range cases {
		m, err := q(tc.metric, tc.version, tc.role, tc.shadow)
		if err != nil {
			t.Errorf("%s %s/%s: %v", tc.metric, tc.version, tc.role, err)
			continue
		}
		name := tc.metric + " " + tc.version + "/" + tc.role
		if m.Requests != tc.requests || m.Errors != tc.errors || m.Count != tc.requests {
			t.Errorf("%s: requests %d, errors %d, count %d; want %d, %d, %d", name, m.Requests, m.Errors, m.Count, tc.requests, tc.errors, tc.requests)
		}
		// Latencies are zero under the frozen clock; they land in the
		// first bucket, below 1µs.
		if m.HasValue != tc.hasValue || tc.hasValue && math.Abs(m.Value-tc.value) > 1e-6 {
			t.Errorf("%s: value %v (has %v), want %v (has %v)", name, m.Value, m.HasValue, tc.value, tc.hasValue)
		}
		if m.Latency == nil || m.Latency.Total() != tc.requests {
			t.Errorf("%s: latency histogram holds %d, want %d", name, m.Latency.Total(), tc.requests)
		}
		if !m.Start.Equal(at) || !m.End.Equal(at.Add(2*time.Second)) {
			t.Errorf("%s: window [%v, %v), want the query's", name, m.Start, m.End)
		}
	}
	// The clock is frozen, so every latency is zero: p50 is 0, not NaN.
	if m, _ := q("latency-p99", "v2", "canary", false); !m.HasValue || math.IsNaN(m.Value) {
		t.Errorf("latency-p99 = %v (has %v), want a value", m.Value, m.HasValue)
	}
}

func TestQueryErrors(t *testing.T) {
	prov, at := setup(t)
	cases := []struct {
		q    rollout.Query
		want string
	}{
		{rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "apdex"}, Version: "v2", Role: "canary"}, `metric "apdex": unknown query "apdex" (want one of error-rate,`},
		{rollout.Query{Rollout: "api", Metric: rollout.Metric{Name: "error-rate"}, Version: "v2", Role: "canary", Start: at, End: at.Add(time.Second)}, `rollout "api" has no built-in proxy`},
		{rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "error-rate"}, Version: "v1", Role: "stable", Shadow: true, Start: at, End: at.Add(time.Second)}, "shadow measurements exist for the canary only"},
		{rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "error-rate"}, Version: "v1", Role: "baseline", Start: at, End: at.Add(time.Second)}, `unknown role "baseline"`},
	}
	for _, tc := range cases {
		if _, err := prov.Query(context.Background(), tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Query(%+v) = %v, want an error containing %q", tc.q, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := prov.Query(ctx, rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "error-rate"}}); err == nil {
		t.Error("Query with a cancelled context succeeded")
	}
}
