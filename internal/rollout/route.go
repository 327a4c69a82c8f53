package rollout

// Route is what a router applies to real traffic: which versions serve, the
// canary's weight, and the rules that pick requests out. Routers must apply a
// route atomically and must ignore a route whose Generation is lower than one
// they already applied.
type Route struct {
	// Generation increases by one with every route a rollout emits.
	Generation int64 `json:"generation"`
	// Stable serves every request that is not sent to the canary.
	Stable Backend `json:"stable"`
	// Canary is nil when no canary runs.
	Canary *Backend `json:"canary,omitempty"`
	// Weight is the percent (0-100) of unmatched traffic sent to the canary.
	Weight     int         `json:"weight"`
	Match      []Match     `json:"match,omitempty"`
	Stickiness *Stickiness `json:"stickiness,omitempty"`
	Mirror     *Mirror     `json:"mirror,omitempty"`
}

// Backend is one version and where it runs.
type Backend struct {
	Version   string   `json:"version"`
	Upstreams []string `json:"upstreams,omitempty"`
}

// Equal reports whether two backends name the same version at the same
// upstreams.
func (b Backend) Equal(o Backend) bool {
	if b.Version != o.Version || len(b.Upstreams) != len(o.Upstreams) {
		return false
	}
	for i := range b.Upstreams {
		if b.Upstreams[i] != o.Upstreams[i] {
			return false
		}
	}
	return true
}
