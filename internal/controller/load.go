package controller

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"aviary/internal/rollout"
)

// LoadHeader carries the token that sends a load hook's requests to the
// canary through the rollout's proxy.
const LoadHeader = "X-Aviary-Load"

// loadToken is the rollout's load token: a keyed hash of its name, stable
// across restarts and not guessable without the server's key.
func (c *Controller) loadToken(name string) string {
	m := hmac.New(sha256.New, c.opts.LoadKey)
	m.Write([]byte("aviary load " + name))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// withLoadMatch adds to a route with a canary the match rule that sends
// load through the proxy to the canary, when the spec has a load hook that
// goes that way.
func (c *Controller) withLoadMatch(name string, spec rollout.Spec, r rollout.Route) rollout.Route {
	if r.Canary == nil || len(c.opts.LoadKey) == 0 {
		return r
	}
	viaProxy := slices.ContainsFunc(spec.Webhooks, func(h rollout.Webhook) bool {
		return h.Type == rollout.HookLoad && h.Load != nil && (h.Load.Target == "" || h.Load.Target == rollout.LoadViaProxy)
	})
	if !viaProxy {
		return r
	}
	m := rollout.Match{Headers: map[string]rollout.StringMatch{LoadHeader: {Exact: c.loadToken(name)}}}
	r.Match = append(slices.Clone(r.Match), m)
	return r
}
