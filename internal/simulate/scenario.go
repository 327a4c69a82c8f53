// Package simulate drives the real core (rollout.Next and the analysis
// checks) with synthetic traffic and a fake clock: `aviary simulate`. A
// scenario says how much traffic arrives, how each version behaves and when
// that changes, when data goes missing or a provider fails, and what people
// do. The same scenario and seed always give the same run.
package simulate

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Scenario describes synthetic traffic and events over time.
type Scenario struct {
	// Duration bounds the simulation (default 1h); it ends earlier when the
	// run ends or waits for a person with nothing left to happen.
	Duration rollout.Duration `json:"duration,omitempty"`
	// StableVersion names the version serving before the release (default
	// "stable"); the spec's version is the canary.
	StableVersion string `json:"stableVersion,omitempty"`
	// Traffic is the total request rate through the router.
	Traffic Traffic `json:"traffic"`
	// Stable and Canary say how each version behaves at the start.
	Stable Behaviour `json:"stable"`
	Canary Behaviour `json:"canary"`
	// Changes alter traffic or behaviour at given times.
	Changes []Change `json:"changes,omitempty"`
	// Noise makes the error rates vary over time.
	Noise *Noise `json:"noise,omitempty"`
	// Metrics gives synthetic values for metrics whose provider is not
	// the built-in one, by metric name.
	Metrics map[string]SyntheticMetric `json:"metrics,omitempty"`
	// Webhooks says how webhooks answer, by name (default: 2xx at once).
	Webhooks map[string]HookBehaviour `json:"webhooks,omitempty"`
	// Operator lists what people do and when.
	Operator []OperatorAction `json:"operator,omitempty"`
}

// Traffic is a request rate.
type Traffic struct {
	// RPS is the total rate of requests per second through the router.
	RPS float64 `json:"rps"`
	// PerMinute, if set instead of RPS, is the total rate per minute.
	PerMinute float64 `json:"perMinute,omitempty"`
}

func (t Traffic) rate() float64 {
	if t.PerMinute > 0 {
		return t.PerMinute / 60
	}
	return t.RPS
}

// Behaviour is how a version answers. Unset fields keep their value.
type Behaviour struct {
	// ErrorRate is the probability that a request fails.
	ErrorRate *analysis.Number `json:"errorRate,omitempty"`
	// Latency is a log-normal distribution given by its median and p99.
	Latency *Latency `json:"latency,omitempty"`
	// Slow adds latency to a share of requests only.
	Slow *Slow `json:"slow,omitempty"`
}

// Latency gives a log-normal latency distribution, in seconds ("50ms").
type Latency struct {
	Median analysis.Number `json:"median"`
	P99    analysis.Number `json:"p99"`
}

// Slow adds Extra seconds to Share of requests.
type Slow struct {
	Share analysis.Number `json:"share"`
	Extra analysis.Number `json:"extra"`
}

// Noise multiplies the versions' error rates by a random factor that
// changes every period: uniform in [1-Spread, 1+Spread], and in a share
// Bursts of the periods multiplied again by BurstFactor. By default both
// versions get the same factor (a dependency's hiccup, a traffic mix that
// hits every version alike); Independent draws one per version, which no
// comparison of the versions can tell from a real difference.
type Noise struct {
	// Every is the period (default 1m).
	Every       rollout.Duration `json:"every,omitempty"`
	Spread      analysis.Number  `json:"spread,omitempty"`
	Bursts      analysis.Number  `json:"bursts,omitempty"`
	BurstFactor float64          `json:"burstFactor,omitempty"`
	Independent bool             `json:"independent,omitempty"`
}

func (n Noise) period() time.Duration {
	if n.Every <= 0 {
		return time.Minute
	}
	return n.Every.D()
}

// Change alters the scenario from a time on.
type Change struct {
	At rollout.Duration `json:"at"`
	// Traffic replaces the request rate.
	Traffic *Traffic `json:"traffic,omitempty"`
	// Stable and Canary override fields of the versions' behaviour.
	Stable *Behaviour `json:"stable,omitempty"`
	Canary *Behaviour `json:"canary,omitempty"`
	// Missing drops all measurements for this long (a metrics gap).
	Missing rollout.Duration `json:"missing,omitempty"`
	// Outage makes providers fail for this long.
	Outage rollout.Duration `json:"outage,omitempty"`
}

// SyntheticMetric is a fixed value per version for a metric that does not
// come from the built-in provider; Changes may not alter it.
type SyntheticMetric struct {
	Canary float64 `json:"canary"`
	Stable float64 `json:"stable"`
	// Count is the sample size reported with each value (default unknown).
	Count int64 `json:"count,omitempty"`
}

// HookBehaviour says how a webhook answers.
type HookBehaviour struct {
	// OK is the answer; FromAt makes it OK only from that time on.
	OK     bool             `json:"ok"`
	FromAt rollout.Duration `json:"from,omitempty"`
}

// OperatorAction is a person's command at a time.
type OperatorAction struct {
	At      rollout.Duration `json:"at"`
	Command string           `json:"command"`
	Full    bool             `json:"full,omitempty"`
	Gate    string           `json:"gate,omitempty"`
}

var defaultLatency = Latency{Median: 0.05, P99: 0.2}

// Validate returns every problem with the scenario.
func (s Scenario) Validate() rollout.FieldErrors {
	var es rollout.FieldErrors
	add := func(path, format string, args ...any) {
		es = append(es, rollout.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if s.Duration < 0 {
		add("duration", "must not be negative, got %s", s.Duration)
	}
	checkTraffic(s.Traffic, "traffic", add)
	checkBehaviour(s.Stable, "stable", add)
	checkBehaviour(s.Canary, "canary", add)
	for i, c := range s.Changes {
		p := fmt.Sprintf("changes[%d]", i)
		if c.At < 0 {
			add(p+".at", "must not be negative, got %s", c.At)
		}
		if c.Traffic != nil {
			checkTraffic(*c.Traffic, p+".traffic", add)
		}
		if c.Stable != nil {
			checkBehaviour(*c.Stable, p+".stable", add)
		}
		if c.Canary != nil {
			checkBehaviour(*c.Canary, p+".canary", add)
		}
		if c.Missing < 0 || c.Outage < 0 {
			add(p, "missing and outage must not be negative")
		}
	}
	if n := s.Noise; n != nil {
		if n.Every < 0 || (n.Every > 0 && n.Every.D() < time.Second) {
			add("noise.every", "must be at least 1s, got %s", n.Every)
		}
		if n.Spread < 0 || n.Spread > 1 {
			add("noise.spread", "must be between 0 and 100%%, got %g", float64(n.Spread))
		}
		if n.Bursts < 0 || n.Bursts > 1 {
			add("noise.bursts", "must be between 0 and 100%%, got %g", float64(n.Bursts))
		}
		if n.BurstFactor < 0 || (n.Bursts > 0 && n.BurstFactor == 0) {
			add("noise.burstFactor", "give the factor bursts multiply the error rates by (e.g. 4)")
		}
	}
	ops := []string{rollout.OpPromote, rollout.OpAbort, rollout.OpPause, rollout.OpResume, rollout.OpRetry, rollout.OpRollback, rollout.OpApprove}
	for i, o := range s.Operator {
		p := fmt.Sprintf("operator[%d]", i)
		if !slices.Contains(ops, o.Command) {
			add(p+".command", "unknown command %q (want one of %s)", o.Command, strings.Join(ops, ", "))
		}
		if o.At < 0 {
			add(p+".at", "must not be negative, got %s", o.At)
		}
	}
	return es
}

func checkTraffic(t Traffic, path string, add func(string, string, ...any)) {
	if t.RPS < 0 || t.PerMinute < 0 || math.IsNaN(t.RPS) || math.IsNaN(t.PerMinute) {
		add(path, "request rates must not be negative")
	}
	if t.RPS > 0 && t.PerMinute > 0 {
		add(path, "give rps or perMinute, not both")
	}
	if t.rate() > 1e6 {
		add(path, "%g requests per second is more than a simulation handles (at most 1,000,000)", t.rate())
	}
}

func checkBehaviour(b Behaviour, path string, add func(string, string, ...any)) {
	if e := b.ErrorRate; e != nil && (*e < 0 || *e > 1) {
		add(path+".errorRate", "must be between 0 and 100%%, got %g", float64(*e))
	}
	if l := b.Latency; l != nil {
		if l.Median <= 0 {
			add(path+".latency.median", "must be positive")
		}
		if l.P99 < l.Median {
			add(path+".latency.p99", "p99 %g is below the median %g", float64(l.P99), float64(l.Median))
		}
	}
	if sl := b.Slow; sl != nil {
		if sl.Share < 0 || sl.Share > 1 {
			add(path+".slow.share", "must be between 0 and 100%%")
		}
		if sl.Extra < 0 {
			add(path+".slow.extra", "must not be negative")
		}
	}
}

// merge returns b with the fields set in o overriding.
func (b Behaviour) merge(o *Behaviour) Behaviour {
	if o == nil {
		return b
	}
	if o.ErrorRate != nil {
		b.ErrorRate = o.ErrorRate
	}
	if o.Latency != nil {
		b.Latency = o.Latency
	}
	if o.Slow != nil {
		b.Slow = o.Slow
	}
	return b
}
