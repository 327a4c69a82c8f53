package providertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// memory is the smallest provider that keeps the contract: values held in
// memory by version. The suite runs against it to show how a fixture for
// an in-process source looks.
type memory map[string]float64

func (m memory) Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error) {
	out := analysis.Measurement{Start: q.Start, End: q.End}
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("memory: %w", err)
	}
	if q.Metric.Query != "value" {
		return out, errors.New("memory: unknown query " + q.Metric.Query)
	}
	v, ok := m[q.Version]
	if !ok {
		return out, nil
	}
	out.Value, out.HasValue, out.Count = v, true, 100
	return out, nil
}

func TestRunMemory(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	q := func(version, role, query string) rollout.Query {
		return rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "m", Query: query}, Version: version, Role: role, Start: end.Add(-time.Minute), End: end}
	}
	Run(t, func(t *testing.T) (Provider, Fixture) {
		return memory{"v1": 0.5, "v2": 0.25}, Fixture{
			Canary:  Expect{Query: q("v2", rollout.RoleCanary, "value"), Value: 0.25, Count: 100},
			Stable:  Expect{Query: q("v1", rollout.RoleStable, "value"), Value: 0.5, Count: 100},
			NoData:  q("v3", rollout.RoleCanary, "value"),
			Unknown: q("v2", rollout.RoleCanary, "nonsense"),
		}
	})
}

// check catches each way a measurement can be wrong.
func TestCheck(t *testing.T) {
	end := time.Unix(60, 0)
	e := Expect{Query: rollout.Query{Start: end.Add(-time.Minute), End: end}, Value: 0.25, Count: 100}
	good := analysis.Measurement{Start: e.Query.Start, End: end, Value: 0.25, HasValue: true, Count: 100}
	if msg := check(good, e, 0); msg != "" {
		t.Fatalf("a correct measurement: %s", msg)
	}
	bad := []analysis.Measurement{
		{Start: e.Query.Start, End: end, Value: 0.26, HasValue: true, Count: 100},
		{Start: e.Query.Start, End: end, Value: 0.25, Count: 100},
		{Start: e.Query.Start, End: end, Value: 0.25, HasValue: true, Count: -1},
		{Start: e.Query.Start, Value: 0.25, HasValue: true, Count: 100},
		{Start: e.Query.Start, End: end, Value: 0.25, HasValue: true, Count: 100, Err: "boom"},
	}
	for i, m := range bad {
		if check(m, e, 0) == "" {
			t.Errorf("case %d: %+v passed", i, m)
		}
	}
}
