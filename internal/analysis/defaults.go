package analysis

// DefaultCheck is one check of the default analysis of a rollout whose
// metrics come from the built-in proxy and whose spec lists none.
type DefaultCheck struct {
	Name     string
	Query    string
	Criteria Criteria
}

// DefaultChecks returns the default analysis: the canary's error rate
// against the stable's.
func DefaultChecks() []DefaultCheck {
	inc := Number(0.01)
	return []DefaultCheck{{
		Name:  "error-rate",
		Query: "error-rate",
		Criteria: Criteria{
			Compare:     CompareBaseline,
			MaxIncrease: &inc,
			MinSamples:  50,
		},
	}}
}
