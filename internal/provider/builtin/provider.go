// Package builtin is the Provider of aviary's built-in proxy: it answers
// metric queries (error-rate, latency-p50/p90/p99, request-rate, slow-rate)
// from the measurements the proxy of a rollout keeps per version.
//
// It imports the rollout and analysis cores, the proxy and the standard
// library; never the controller or other adapters (it finds proxies through
// the small Proxies interface, which the built-in router satisfies).
package builtin

import (
	"context"
	"fmt"
	"math"
	"strings"

	"aviary/internal/analysis"
	"aviary/internal/proxy"
	"aviary/internal/rollout"
)

// Proxies finds the proxy of a rollout. The built-in router implements it.
// Proxy must be safe for concurrent use.
type Proxies interface {
	Proxy(rollout string) (*proxy.Proxy, bool)
}

// Queries the provider answers.
const (
	QueryErrorRate   = "error-rate"
	QueryLatencyP50  = "latency-p50"
	QueryLatencyP90  = "latency-p90"
	QueryLatencyP99  = "latency-p99"
	QueryRequestRate = "request-rate"
	QuerySlowRate    = "slow-rate"
)

var queries = []string{QueryErrorRate, QueryLatencyP50, QueryLatencyP90, QueryLatencyP99, QueryRequestRate, QuerySlowRate}

// Provider measures versions served by built-in proxies. It is safe for
// concurrent use.
type Provider struct {
	proxies Proxies
}

// New returns a Provider that reads the proxies found through proxies.
func New(proxies Proxies) *Provider { return &Provider{proxies: proxies} }

// Query measures one version over q's window. Live queries count the
// weighted and matched requests; q.Shadow counts the canary's mirrored ones.
// Every answer carries the request and error counts (Count = Requests) and
// the latency histogram, whatever the query, so that the analysis can run
// its tests and derive other rates. A window without requests has no value
// (HasValue false), which is not an error; slow-rate has no value either,
// since its bound is not part of the query: derive it from Latency. An
// unknown query or rollout is an error.
func (p *Provider) Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error) {
	m := analysis.Measurement{Start: q.Start, End: q.End}
	if err := ctx.Err(); err != nil {
		return m, err
	}
	name := q.Metric.Query
	if name == "" {
		name = q.Metric.Name
	}
	if !known(name) {
		return m, fmt.Errorf("builtin provider: metric %q: unknown query %q (want one of %s)", q.Metric.Name, name, strings.Join(queries, ", "))
	}
	px, ok := p.proxies.Proxy(q.Rollout)
	if !ok {
		return m, fmt.Errorf("builtin provider: rollout %q has no built-in proxy", q.Rollout)
	}
	kinds := []proxy.Kind{proxy.KindWeighted, proxy.KindMatched}
	if q.Shadow {
		if q.Role != rollout.RoleCanary {
			return m, fmt.Errorf("builtin provider: metric %q: shadow measurements exist for the canary only, not for role %q", q.Metric.Name, q.Role)
		}
		kinds = []proxy.Kind{proxy.KindMirrored}
	}
	w, err := px.Measure(q.Version, q.Role, q.Start, q.End, kinds...)
	if err != nil {
		return m, fmt.Errorf("builtin provider: rollout %q metric %q: %w", q.Rollout, q.Metric.Name, err)
	}
	m.Requests, m.Errors, m.Count = w.Requests, w.Errors, w.Requests
	m.Latency = &analysis.Histogram{Buckets: make([]analysis.Bucket, len(w.Latency.Buckets))}
	for i, b := range w.Latency.Buckets {
		m.Latency.Buckets[i] = analysis.Bucket{Upper: b.Upper, Count: b.Count}
	}
	if w.Requests == 0 {
		return m, nil
	}
	switch name {
	case QueryErrorRate:
		m.Value = float64(w.Errors) / float64(w.Requests)
	case QueryLatencyP50:
		m.Value = m.Latency.Quantile(0.5)
	case QueryLatencyP90:
		m.Value = m.Latency.Quantile(0.9)
	case QueryLatencyP99:
		m.Value = m.Latency.Quantile(0.99)
	case QueryRequestRate:
		m.Value = float64(w.Requests) / q.Interval().Seconds()
	case QuerySlowRate:
		return m, nil
	}
	m.HasValue = !math.IsNaN(m.Value)
	return m, nil
}

func known(name string) bool {
	for _, q := range queries {
		if q == name {
			return true
		}
	}
	return false
}
