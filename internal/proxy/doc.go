// Package proxy is aviary's embedded data plane: an HTTP reverse proxy that
// sends each request to a stable or a canary version, balances each version's
// pool of upstreams, mirrors a share of stable traffic to the canary, and
// measures every version (requests, errors, latency histograms) over time
// windows and as Prometheus metrics.
//
// It knows nothing of rollouts: it is given a routing Table and reports
// Windows of measurements. The adapters in internal/router/builtin and
// internal/provider/builtin translate between it and the rollout core.
//
// It imports only the standard library and the Prometheus client library;
// it must not import any other aviary package.
package proxy
