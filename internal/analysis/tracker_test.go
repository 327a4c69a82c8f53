package analysis

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// A Tracker gives exactly what Judge gives for the series so far, whatever
// the criteria and however odd the intervals.
func TestTrackerMatchesJudge(t *testing.T) {
	criteria := map[string]Criteria{
		"errors":        {Compare: CompareBaseline, Test: TestSequential, MaxRatio: num(1.25), MaxIncrease: num(0.0002), Alpha: num(0.005), MinSamples: 500},
		"errors alone":  {Test: TestSequential, Max: num(0.02)},
		"slow quantile": {Compare: CompareBaseline, Test: TestSequential, SlowerThanQuantile: num(0.99), MaxRatio: num(1.25), MaxIncrease: num(0.002), MinSamples: 300},
		"slow fixed":    {Compare: CompareBaseline, Test: TestSequential, SlowerThan: num(0.1)},
		"values":        {Compare: CompareBaseline, MaxRatio: num(1.2)},
		"condition":     {Condition: "canary.value < stable.value + 0.01"},
		"invalid":       {Test: "bogus"},
	}
	r := rand.New(rand.NewPCG(7, 8))
	side := func(rate float64) Measurement {
		n := int64(r.IntN(400))
		var x int64
		for range n {
			if r.Float64() < rate {
				x++
			}
		}
		m := Measurement{Requests: n, Errors: x, Count: n}
		if n > 0 {
			m.Value, m.HasValue = float64(x)/float64(n), true
			m.Latency = hist(int64(r.IntN(50)), int64(r.IntN(80)), int64(r.IntN(80)), int64(r.IntN(40)), int64(r.IntN(20)), int64(r.IntN(5)), int64(r.IntN(3)), 0, 0)
		}
		switch r.IntN(30) {
		case 0:
			m.Err = "provider down"
		case 1:
			m.Errors = m.Requests + 1
		}
		return m
	}
	for name, c := range criteria {
		t.Run(name, func(t *testing.T) {
			for run := range 20 {
				tr := NewTracker("m", c)
				var series []Interval
				for range 30 {
					iv := Interval{Canary: side(0.01 + 0.02*float64(run%3)), Stable: side(0.01)}
					series = append(series, iv)
					got, want := tr.Add(iv), Judge("m", c, series)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("run %d, interval %d:\ntracker %+v\njudge   %+v", run, len(series), got, want)
					}
				}
			}
		})
	}
}
