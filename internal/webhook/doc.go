// Package webhook calls a rollout's webhooks: the outside parties a run asks
// for a go-ahead (confirm-rollout, confirm-traffic-increase,
// confirm-promotion), runs tests through (pre-rollout, rollout), may be told
// to roll back by (rollback) or tells what happened (post-rollout, event).
// The core decides when to call and what an answer means; a Caller makes one
// call and reports a rollout.HookResult: OK when the receiver answered 2xx
// within the hook's timeout. Load hooks are not called: the loadtest package
// runs them.
//
// # Payload
//
// Every call is a POST of one JSON object, Payload, whose shape is stable
// (schema "aviary.dev/webhook/v1"; fields are only ever added):
//
//	{
//	  "schema": "aviary.dev/webhook/v1",
//	  "type": "confirm-promotion",        // the hook's type
//	  "hook": "ship",                     // the hook's name in the spec
//	  "key": "3/s5/ship",                 // identifies the question; the same for every retry and re-ask of it
//	  "rollout": "web",
//	  "run": 3,
//	  "phase": "Progressing",
//	  "weight": 50,                       // the canary's weight in percent
//	  "canaryVersion": "v2",
//	  "stableVersion": "v1",
//	  "metadata": {"team": "payments"},   // the hook's metadata from the spec; {} when none
//	  "event": {...}                      // event hooks only: time, type, severity, phase, weight, step, reason
//	}
//
// Headers: Content-Type: application/json; User-Agent: aviary/<version>;
// X-Aviary-Timestamp: the Unix time in seconds at which the attempt was
// signed; X-Aviary-Attempt: 1 for the first attempt, 2 for the first retry…;
// and, when the hook has a secret, X-Aviary-Signature.
//
// # Signature
//
//	X-Aviary-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// where timestamp is the X-Aviary-Timestamp header's value exactly as sent
// and body the exact bytes of the request body. A receiver recomputes the
// MAC over the bytes it received, compares it in constant time and refuses
// timestamps more than a few minutes away from its clock, so a captured call
// cannot be replayed later. Verify does exactly that and uses only the
// standard library: copy it into a receiver. Within the tolerance a receiver
// that must not act twice should remember the keys (or signatures) it saw.
// A secret must be at least MinSecretLen bytes.
//
// # Timeouts and retries
//
// The hook's timeout (rollout.DefaultHookTimeout when unset) bounds the whole
// call: every attempt and every pause between attempts end within it, so the
// core hears back within the timeout (plus scheduling slack). An attempt gets
// whatever is left of it. Connection errors, 5xx and 429 answers are retried
// with exponential back-off and jitter, at most Retry.Attempts times in all
// and only while the pause leaves a tenth of the timeout to try again in
// (the Retry-After of a 429 or 503 is honoured when it fits, and ends the
// call when it does not). Any other answer is final: 2xx is yes; 3xx
// (redirects are not followed) and 4xx other than 429 are a definite no.
// The result's Message says what happened — "200 OK",
// "503 Service Unavailable after 3 attempts: <start of the body>",
// "timeout after 10s", "connection refused after 3 attempts" — and never
// contains a secret, the hook's URL or the underlying error's quote of it.
//
// # Concurrency
//
// A Caller is safe for concurrent use. Call blocks for up to the hook's
// timeout, so the controller calls it from its own goroutines, one per call;
// each call has its own deadline, and a receiver that hangs holds up only
// the calls made to it.
//
// The package may import the standard library, the core (rollout) and the
// secret package.
package webhook
