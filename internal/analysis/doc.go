// Package analysis judges canaries: threshold checks, comparisons of the canary
// against the stable version, and the statistics behind them (sequential tests
// that stay valid when looked at every interval, Mann-Whitney U).
//
// It is pure: it is fed numbers and returns verdicts with explanations. It
// imports only the standard library; it never does I/O, logs or reads the clock.
package analysis
