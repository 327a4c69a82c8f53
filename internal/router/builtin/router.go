// Package builtin is the Router of aviary's built-in proxy: it runs one
// proxy (internal/proxy) per rollout, listening where the rollout's traffic
// spec says, and turns each rollout.Route into the proxy's routing table.
//
// It imports the rollout core, the proxy, the standard library and the
// Prometheus client; never the controller or other adapters.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"aviary/internal/proxy"
	"aviary/internal/rollout"
)

// Options configure a Router.
type Options struct {
	// Clock returns the time (nil: time.Now); every proxy measures with it.
	Clock func() time.Time
	// Logger receives the proxies' events (nil: discarded).
	Logger *slog.Logger
	// Registerer, when set, gets each proxy's metrics, labelled with the
	// rollout's name.
	Registerer prometheus.Registerer
	// Proxy holds the options every proxy starts with (limits, timeouts,
	// history, mirror bounds). Its Name, Clock, Logger and Registerer are
	// set per rollout from the fields above.
	Proxy proxy.Options
}

// Router applies routes to built-in proxies, one per rollout. It is safe for
// concurrent use; calls for different rollouts do not wait for each other.
type Router struct {
	opts Options

	mu      sync.Mutex // guards entries, not what they hold
	entries map[string]*entry
}

// entry is one rollout's proxy. mu serialises Apply and Remove on it.
type entry struct {
	mu      sync.Mutex
	p       atomic.Pointer[proxy.Proxy]
	removed bool
	route   rollout.Route
	traffic rollout.Traffic
}

// New returns a Router with no proxies.
func New(opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{opts: opts, entries: map[string]*entry{}}
}

// lock returns the rollout's entry, created if need be, locked.
func (r *Router) lock(name string) *entry {
	for {
		r.mu.Lock()
		e, ok := r.entries[name]
		if !ok {
			e = &entry{}
			r.entries[name] = e
		}
		r.mu.Unlock()
		e.mu.Lock()
		if !e.removed {
			return e
		}
		e.mu.Unlock() // removed meanwhile: take the next one
	}
}

// drop forgets e if it is still the rollout's entry.
func (r *Router) drop(name string, e *entry) {
	r.mu.Lock()
	if r.entries[name] == e {
		delete(r.entries, name)
	}
	r.mu.Unlock()
	e.removed = true
}

// Apply makes route the rollout's routing. The first call starts the
// rollout's proxy on t.Listen; later calls swap its table atomically and, if
// t.Listen or t.TLS changed, move the listener (the old one drains within
// ctx). A route with a lower Generation than the last applied one is ignored.
// Bad input changes nothing and gets an error naming the field.
func (r *Router) Apply(ctx context.Context, name string, t rollout.Traffic, route rollout.Route) error {
	table, lc, err := convert(t, route)
	if err != nil {
		return fmt.Errorf("builtin router: rollout %q: %w", name, err)
	}
	if err := table.Validate(); err != nil {
		return fmt.Errorf("builtin router: rollout %q: route generation %d: %w", name, route.Generation, err)
	}
	e := r.lock(name)
	defer e.mu.Unlock()
	p := e.p.Load()
	if p == nil {
		p, err := r.start(ctx, name, table, lc)
		if err != nil {
			r.drop(name, e)
			return err
		}
		e.p.Store(p)
		e.route, e.traffic = route, t
		return nil
	}
	if route.Generation < e.route.Generation {
		return nil // a late route never undoes a newer one
	}
	// The listener moves first: it is the step that can still fail, and a
	// failed Apply must change nothing.
	if err := p.Listen(ctx, lc); err != nil {
		return fmt.Errorf("builtin router: rollout %q: %w", name, err)
	}
	e.traffic = t
	if _, err := p.Update(table); err != nil {
		return fmt.Errorf("builtin router: rollout %q: %w", name, err)
	}
	e.route = route
	return nil
}

func (r *Router) start(ctx context.Context, name string, table proxy.Table, lc proxy.ListenConfig) (*proxy.Proxy, error) {
	po := r.opts.Proxy
	po.Name, po.Clock, po.Registerer = name, r.opts.Clock, r.opts.Registerer
	po.Logger = r.opts.Logger.With("rollout", name)
	p, err := proxy.New(po)
	if err != nil {
		return nil, fmt.Errorf("builtin router: rollout %q: %w", name, err)
	}
	_, err = p.Update(table)
	if err == nil {
		err = p.Listen(ctx, lc)
	}
	if err != nil {
		p.Close(ctx)
		return nil, fmt.Errorf("builtin router: rollout %q: %w", name, err)
	}
	return p, nil
}

// Current returns the route last applied to the rollout; false when the
// rollout has no proxy.
func (r *Router) Current(_ context.Context, name string) (rollout.Route, bool, error) {
	r.mu.Lock()
	e, ok := r.entries[name]
	r.mu.Unlock()
	if !ok {
		return rollout.Route{}, false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed || e.p.Load() == nil {
		return rollout.Route{}, false, nil
	}
	return e.route, true, nil
}

// Remove stops the rollout's proxy: its listener closes at once, requests
// in flight finish until ctx is done. Removing an unknown rollout does
// nothing.
func (r *Router) Remove(ctx context.Context, name string) error {
	r.mu.Lock()
	e, ok := r.entries[name]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil
	}
	r.drop(name, e)
	p := e.p.Load()
	if p == nil {
		return nil
	}
	if err := p.Close(ctx); err != nil {
		return fmt.Errorf("builtin router: remove rollout %q: %w", name, err)
	}
	return nil
}

// Proxy returns the rollout's proxy, for the built-in provider.
func (r *Router) Proxy(name string) (*proxy.Proxy, bool) {
	r.mu.Lock()
	e, ok := r.entries[name]
	r.mu.Unlock()
	if !ok {
		return nil, false
	}
	p := e.p.Load()
	return p, p != nil
}

// Close removes every rollout's proxy.
func (r *Router) Close(ctx context.Context) error {
	r.mu.Lock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	r.mu.Unlock()
	var errs []error
	for _, n := range names {
		errs = append(errs, r.Remove(ctx, n))
	}
	return errors.Join(errs...)
}

// convert turns the rollout's traffic spec and route into the proxy's table
// and listener configuration.
func convert(t rollout.Traffic, route rollout.Route) (proxy.Table, proxy.ListenConfig, error) {
	var errs []error
	if t.Router != "" && t.Router != rollout.RouterBuiltin {
		errs = append(errs, fmt.Errorf("traffic.router: %q is not %q", t.Router, rollout.RouterBuiltin))
	}
	if t.Listen == "" {
		errs = append(errs, errors.New("traffic.listen: empty (the built-in router needs an address such as 127.0.0.1:8080)"))
	}
	lc := proxy.ListenConfig{Addr: t.Listen}
	if t.TLS != nil {
		if t.TLS.CertFile == "" || t.TLS.KeyFile == "" {
			errs = append(errs, errors.New("traffic.tls: both certFile and keyFile are needed"))
		}
		lc.CertFile, lc.KeyFile = t.TLS.CertFile, t.TLS.KeyFile
	}
	table := proxy.Table{
		Generation: route.Generation,
		Stable:     proxy.Backend{Version: route.Stable.Version, Upstreams: route.Stable.Upstreams},
		Weight:     route.Weight,
		Balance:    t.Balance,
		Shield:     t.Shield,
	}
	if route.Canary != nil {
		table.Canary = &proxy.Backend{Version: route.Canary.Version, Upstreams: route.Canary.Upstreams}
	}
	for _, m := range route.Match {
		table.Match = append(table.Match, convertMatch(m))
	}
	if s := route.Stickiness; s != nil {
		table.StickyCookie, table.StickyMaxAge, table.HashOn = s.Cookie, s.MaxAge.D(), s.HashOn
	}
	if route.Mirror != nil {
		table.MirrorPercent = route.Mirror.Percent
	}
	if hc := t.HealthCheck; hc != nil {
		table.HealthCheck = &proxy.HealthCheck{
			Path: hc.Path, Interval: hc.Interval.D(), Timeout: hc.Timeout.D(),
			HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold,
		}
	}
	return table, lc, errors.Join(errs...)
}

func convertMatch(m rollout.Match) proxy.Match {
	out := proxy.Match{Headers: convertStrings(m.Headers), Query: convertStrings(m.Query)}
	if m.Cookie != nil {
		out.Cookie = &proxy.CookieMatch{Name: m.Cookie.Name, StringMatch: proxy.StringMatch(m.Cookie.StringMatch)}
	}
	if m.Users != nil {
		out.Users = &proxy.ListMatch{Header: m.Users.Header, Cookie: m.Users.Cookie, Values: m.Users.Values}
	}
	if m.Segments != nil {
		out.Segments = &proxy.ListMatch{Header: m.Segments.Header, Cookie: m.Segments.Cookie, Values: m.Segments.Values}
	}
	return out
}

func convertStrings(in map[string]rollout.StringMatch) map[string]proxy.StringMatch {
	if in == nil {
		return nil
	}
	out := make(map[string]proxy.StringMatch, len(in))
	for k, v := range in {
		out[k] = proxy.StringMatch(v)
	}
	return out
}
