package controller

import (
	"sync"

	"aviary/internal/rollout"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's own: rollouts by phase, runs by outcome,
// decisions, check latency, and how late the scheduler wakes rollouts.
type metrics struct {
	mu            sync.Mutex
	phases        map[rollout.Phase]int
	rollouts      *prometheus.GaugeVec
	runs          *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	checkSeconds  *prometheus.HistogramVec
	lateness      prometheus.Histogram
	commitSeconds prometheus.Histogram
	commitBatch   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		phases: map[rollout.Phase]int{},
		rollouts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aviary_rollouts", Help: "Rollouts by phase.",
		}, []string{"phase"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aviary_runs_finished_total", Help: "Runs that ended, by outcome.",
		}, []string{"outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aviary_decisions_total", Help: "Events recorded by rollouts, by type.",
		}, []string{"type"}),
		checkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aviary_check_duration_seconds", Help: "Time to measure one metric of both versions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"provider"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aviary_scheduler_lateness_seconds", Help: "How late rollouts are woken after their scheduled time.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aviary_store_commit_duration_seconds", Help: "Time to commit a batch of transitions.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aviary_store_commit_batch_size", Help: "Transitions committed together.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rollouts, m.runs, m.decisions, m.checkSeconds, m.lateness, m.commitSeconds, m.commitBatch)
	}
	return m
}

// phase moves one rollout from phase old to phase new ("" for none).
func (m *metrics) phase(old, new rollout.Phase) {
	if old == new {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old != "" {
		m.phases[old]--
		m.rollouts.WithLabelValues(string(old)).Set(float64(m.phases[old]))
	}
	if new != "" {
		m.phases[new]++
		m.rollouts.WithLabelValues(string(new)).Set(float64(m.phases[new]))
	}
}
