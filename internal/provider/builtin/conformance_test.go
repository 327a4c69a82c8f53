package builtin

import (
	"testing"
	"time"

	"aviary/internal/provider/providertest"
	"aviary/internal/rollout"
)

// The built-in provider passes the providers' conformance suite against a
// real proxy that served known traffic.
func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (providertest.Provider, providertest.Fixture) {
		prov, at := setup(t)
		return prov, fixture(at)
	})
}

// fixture is what setup's proxy served, as the suite expects it.
func fixture(at time.Time) providertest.Fixture {
	q := func(query, version, role string) rollout.Query {
		return rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "m", Query: query},
			Version: version, Role: role, Start: at, End: at.Add(2 * time.Second)}
	}
	return providertest.Fixture{
		Canary:  providertest.Expect{Query: q("error-rate", "v2", rollout.RoleCanary), Value: 0.25, Count: 8},
		Stable:  providertest.Expect{Query: q("error-rate", "v1", rollout.RoleStable), Value: 0, Count: 6},
		NoData:  q("error-rate", "v3", rollout.RoleCanary),
		Unknown: q("latency-p101", "v2", rollout.RoleCanary),
	}
}
