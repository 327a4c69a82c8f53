package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// classicBounds are the bucket bounds of the exported latency histogram.
// Each fine bucket is counted at its upper bound, so a latency within 0.54%
// below a bound may be counted in the bucket above it.
var classicBounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// collector exports a proxy's measurements. Every metric carries the const
// label rollout (the proxy's Name); per-version metrics add version, role and
// route (weighted, matched, mirrored).
type collector struct {
	p                                  *Proxy
	requests, errors, duration         *prometheus.Desc
	fallbacks, shield, ejections, drop *prometheus.Desc
	upstreamUp, generation             *prometheus.Desc
}

func newCollector(p *Proxy) *collector {
	cl := prometheus.Labels{"rollout": p.opts.Name}
	vl := []string{"version", "role", "route"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("aviary_proxy_"+name, help, labels, cl)
	}
	return &collector{
		p:          p,
		requests:   d("requests_total", "Requests answered, by version, role and route kind.", vl...),
		errors:     d("request_errors_total", "Requests that failed (error status classes, failed connections, timeouts).", vl...),
		duration:   d("request_duration_seconds", "Request latency from arrival to the end of the response.", vl...),
		fallbacks:  d("canary_fallbacks_total", "Requests meant for the canary that stable served because the canary had no healthy upstream."),
		shield:     d("shield_retries_total", "Failed idempotent canary requests retried on stable, by the retry's outcome.", "outcome"),
		ejections:  d("upstream_ejections_total", "Upstreams ejected after consecutive failures."),
		drop:       d("mirror_dropped_total", "Mirrored requests not sent, by reason.", "reason"),
		upstreamUp: d("upstream_healthy", "1 when an upstream takes requests (healthy and not ejected).", "version", "role", "upstream"),
		generation: d("table_generation", "Generation of the routing table in force."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errors, c.duration, c.fallbacks, c.shield, c.ejections, c.drop, c.upstreamUp, c.generation} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	for _, s := range p.stats.all() {
		req, errs, sum, cum := s.totals(classicBounds)
		lv := []string{s.key.version, s.key.role, s.key.kind.String()}
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(req), lv...)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(errs), lv...)
		ch <- prometheus.MustNewConstHistogram(c.duration, req, sum, cum, lv...)
	}
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(p.fallbacks.Load()))
	failed := p.shieldFailed.Load()
	ch <- prometheus.MustNewConstMetric(c.shield, prometheus.CounterValue, float64(p.shieldRetries.Load()-failed), "ok")
	ch <- prometheus.MustNewConstMetric(c.shield, prometheus.CounterValue, float64(failed), "failed")
	ch <- prometheus.MustNewConstMetric(c.ejections, prometheus.CounterValue, float64(p.ejections.Load()))
	for i := range numDropReasons {
		ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(p.mirrorDropped[i].Load()), dropReasonNames[i])
	}
	st := p.Status()
	for _, u := range st.Upstreams {
		v := 0.0
		if u.Healthy {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.upstreamUp, prometheus.GaugeValue, v, u.Version, u.Role, u.URL)
	}
	ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(st.Generation))
}
