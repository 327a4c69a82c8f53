// Package rollout is aviary's core: the rollout spec, its validation, and the
// state machine that decides what a run does next.
//
// It is pure. Next is a deterministic function of (time, spec, status,
// observations) that returns the next status and the actions the shell must
// carry out; it never sleeps, reads the clock, logs or does I/O. The package
// imports only the standard library and the analysis package; reading
// manifests from YAML is the manifest package's job.
package rollout
