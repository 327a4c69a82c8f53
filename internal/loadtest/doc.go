// Package loadtest runs a rollout's load hook: while the canary is under
// analysis it sends a bounded rate of requests to the canary, so that a quiet
// service still produces evidence.
//
// A Target lists the only addresses a run may reach: the rollout's listen
// address, with a canary-forcing header that the router matches on (the
// header's name and value are the caller's: the controller adds the same
// pair as a match rule of the route), or the canary's upstreams. TargetFor
// derives it from the spec. A run never reaches anything else: request URLs
// are built from the target's origins and the hook's path (which must be a
// plain absolute path), redirects are not followed, proxies from the
// environment are not used, and its dialer refuses every address that is
// not one of the origins.
//
// Rate: requests start at most RPS times a second with no bursts — each
// request starts at least 1/RPS after the previous one, so any window of W
// seconds holds at most W·RPS+1 of them. A request that would exceed
// Options.MaxInFlight concurrent requests is skipped (counted), never
// queued. A run lasts the duration it is given (one analysis interval, say)
// and ends by itself, or earlier on Stop or when ctx ends; Counts and Status
// report sent, ok (an answer below 400) and failed requests.
//
// The package may import the standard library and the core (rollout).
package loadtest
