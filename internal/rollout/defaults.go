package rollout

import (
	"time"

	"aviary/internal/analysis"
)

// Defaults, in one place.
const (
	DefaultInterval         = 30 * time.Second
	DefaultErrorLimit       = 3
	DefaultProgressDeadline = 10 * time.Minute
	DefaultRollbackWindow   = time.Hour
	DefaultHookTimeout      = 10 * time.Second

	DefaultHealthPath               = "/"
	DefaultHealthInterval           = 5 * time.Second
	DefaultHealthTimeout            = 2 * time.Second
	DefaultHealthHealthyThreshold   = 2
	DefaultHealthUnhealthyThreshold = 3
	DefaultNotifySeverity           = "info"
	DefaultWebMethod                = "GET"
)

// Normalize returns a copy of m with every default filled in and shorthand
// steps expanded into explicit steps, so that the result says exactly what
// aviary will do. It does not validate; validate first.
func (m Manifest) Normalize() Manifest {
	m.APIVersion, m.Kind = APIVersion, Kind
	m.Spec = m.Spec.normalize()
	return m
}

func (s Spec) normalize() Spec {
	s.Upstreams = append([]string(nil), s.Upstreams...)
	if s.Traffic.Router == "" {
		s.Traffic.Router = RouterBuiltin
	}
	if s.Traffic.Router == RouterBuiltin && s.Traffic.Balance == "" {
		s.Traffic.Balance = BalanceRoundRobin
	}
	if hc := s.Traffic.HealthCheck; hc != nil {
		c := *hc
		c.Path = orDefault(c.Path, DefaultHealthPath)
		c.Interval = orDuration(c.Interval, DefaultHealthInterval)
		c.Timeout = orDuration(c.Timeout, DefaultHealthTimeout)
		if c.HealthyThreshold == 0 {
			c.HealthyThreshold = DefaultHealthHealthyThreshold
		}
		if c.UnhealthyThreshold == 0 {
			c.UnhealthyThreshold = DefaultHealthUnhealthyThreshold
		}
		s.Traffic.HealthCheck = &c
	}
	a := &s.Analysis
	a.Interval = orDuration(a.Interval, DefaultInterval)
	if a.ErrorLimit == nil {
		n := DefaultErrorLimit
		a.ErrorLimit = &n
	}
	a.Decision = orDefault(a.Decision, DecisionAuto)
	a.Metrics = s.effectiveMetrics()
	s.ProgressDeadline = orDuration(s.ProgressDeadline, DefaultProgressDeadline)
	s.RollbackWindow = orDuration(s.RollbackWindow, DefaultRollbackWindow)
	s.Strategy.Canary = s.Strategy.Canary.normalize(len(a.Metrics) > 0, a.Interval)
	hooks := make([]Webhook, len(s.Webhooks))
	for i, h := range s.Webhooks {
		h.Timeout = orDuration(h.Timeout, DefaultHookTimeout)
		if h.Load != nil {
			l := *h.Load
			if l.RPS == 0 {
				l.RPS = DefaultLoadRPS
			}
			l.Method = orDefault(l.Method, DefaultLoadMethod)
			l.Path = orDefault(l.Path, DefaultLoadPath)
			l.Target = orDefault(l.Target, LoadViaProxy)
			h.Load = &l
		}
		hooks[i] = h
	}
	s.Webhooks = hooks
	notify := make([]Notification, len(s.Notify))
	for i, n := range s.Notify {
		n.Severity = orDefault(n.Severity, DefaultNotifySeverity)
		notify[i] = n
	}
	s.Notify = notify
	return s
}

// effectiveMetrics are the spec's metrics with providers and queries filled
// in; a built-in-router rollout that lists none gets the default analysis.
func (s Spec) effectiveMetrics() []Metric {
	builtin := s.Traffic.Router == "" || s.Traffic.Router == RouterBuiltin
	if len(s.Analysis.Metrics) == 0 {
		if !builtin {
			return nil
		}
		var ms []Metric
		for _, d := range analysis.DefaultChecks() {
			ms = append(ms, Metric{Name: d.Name, Provider: ProviderBuiltin, Query: d.Query, Criteria: d.Criteria})
		}
		return ms
	}
	ms := make([]Metric, len(s.Analysis.Metrics))
	for i, m := range s.Analysis.Metrics {
		if m.Provider == "" && builtin {
			m.Provider = ProviderBuiltin
		}
		if m.Provider == ProviderBuiltin && m.Query == "" {
			m.Query = m.Name
		}
		if m.Web != nil && m.Web.Method == "" {
			w := *m.Web
			w.Method = DefaultWebMethod
			m.Web = &w
		}
		ms[i] = m
	}
	return ms
}

// normalize expands the shorthands into explicit steps: each weight is set,
// then analysed for one interval (or, without metrics, held for it).
func (c Canary) normalize(haveMetrics bool, interval Duration) Canary {
	weights := c.shorthandWeights()
	if len(c.Steps) > 0 || len(weights) == 0 {
		c.Steps = append([]Step(nil), c.Steps...)
		c.StepWeight, c.MaxWeight, c.Interval, c.StepWeights = 0, 0, 0, nil
		return c
	}
	hold := orDuration(c.Interval, interval.D())
	steps := make([]Step, 0, 2*len(weights))
	for _, w := range weights {
		steps = append(steps, Step{SetWeight: &w})
		if haveMetrics {
			steps = append(steps, Step{Analysis: &AnalysisStep{Duration: hold}})
		} else {
			steps = append(steps, Step{Pause: &PauseStep{Duration: hold}})
		}
	}
	c.Steps = steps
	c.StepWeight, c.MaxWeight, c.Interval, c.StepWeights = 0, 0, 0, nil
	return c
}

// shorthandWeights lists the weights a shorthand asks for, or nil.
func (c Canary) shorthandWeights() []int {
	if len(c.StepWeights) > 0 {
		return append([]int(nil), c.StepWeights...)
	}
	if c.StepWeight <= 0 {
		return nil
	}
	maxW := c.MaxWeight
	if maxW == 0 {
		maxW = 100
	}
	var ws []int
	for w := c.StepWeight; w <= maxW && w <= 100; w += c.StepWeight {
		ws = append(ws, w)
	}
	return ws
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d Duration, def time.Duration) Duration {
	if d == 0 {
		return Duration(def)
	}
	return d
}
