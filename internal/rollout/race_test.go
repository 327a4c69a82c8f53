//go:build race

package rollout

// raceEnabled shrinks the random-history tests under the race detector,
// which slows JSON and reflection tenfold; the full sizes run without it.
const raceEnabled = true
