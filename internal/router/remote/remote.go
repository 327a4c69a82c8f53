// Package remote is the Router of a server whose built-in proxies run as
// their own process (`aviary proxy --server URL`). The proxies follow the
// server's routes by themselves; Apply waits until the data plane's admin
// endpoint reports the route's generation applied, so that the core's
// decisions that wait for the router (promotion) wait for the real proxies.
// It imports only the core.
package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"aviary/internal/rollout"
)

// Options configure a Router.
type Options struct {
	// Admin is the data plane's admin URL (e.g. http://127.0.0.1:7071).
	Admin string
	// Client makes the requests (default: http.DefaultClient's transport
	// with a 5s timeout per request).
	Client *http.Client
	// Wait bounds how long Apply waits for the data plane (default 5s).
	Wait time.Duration
}

// Router waits for a data plane to apply routes. Safe for concurrent use.
type Router struct {
	opts Options
}

// New returns a Router for the data plane at o.Admin.
func New(o Options) *Router {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	o.Admin = strings.TrimSuffix(o.Admin, "/")
	return &Router{opts: o}
}

// applied is the admin endpoint's answer (dataplane.Applied).
type applied struct {
	Generations map[string]int64 `json:"generations"`
}

// Apply returns once the data plane serves generation r.Generation (or a
// later one) for the rollout, or an error after the wait.
func (rt *Router) Apply(ctx context.Context, name string, _ rollout.Traffic, r rollout.Route) error {
	ctx, cancel := context.WithTimeout(ctx, rt.opts.Wait)
	defer cancel()
	var last error
	for {
		gen, err := rt.generation(ctx, name)
		if err == nil && gen >= r.Generation {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("it serves generation %d", gen)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the data plane at %s has not applied route generation %d of %s: %w", rt.opts.Admin, r.Generation, name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (rt *Router) generation(ctx context.Context, name string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rt.opts.Admin+"/api/v1/applied", nil)
	if err != nil {
		return 0, err
	}
	res, err := rt.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the admin endpoint answered %s", res.Status)
	}
	var a applied
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return 0, fmt.Errorf("the admin endpoint's answer: %w", err)
	}
	return a.Generations[name], nil
}

// Remove does nothing: the data plane drops a rollout when the server's
// route stream says it was deleted.
func (rt *Router) Remove(context.Context, string) error { return nil }
