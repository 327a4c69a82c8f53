// Package analysis judges canaries: threshold checks, comparisons of the canary
// against the stable version, and the statistics behind them.
//
//   - Judge turns a run's series of measurements into a verdict with a
//     one-line reason; Criteria say how (and Validate says what is wrong
//     with them). DefaultChecks is the analysis used when a rollout on the
//     built-in provider lists no metrics.
//   - Sequential is an anytime-valid test of the canary's event rate (errors,
//     or requests slower than a bound) against the stable's, after Lindon &
//     Malek (NeurIPS 2022), valid when looked at every interval while the
//     canary's weight changes.
//   - MannWhitney and MannWhitneyHistograms are the fixed-horizon
//     Mann-Whitney U test with the Hodges-Lehmann shift and Moses' interval.
//
// It is pure: it is fed numbers and returns verdicts with explanations. It
// imports only the standard library; it never does I/O, logs or reads the
// clock (deps_test.go enforces this).
package analysis
