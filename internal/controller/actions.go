package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// execute carries out a committed transition's actions. The route comes
// first, so that hooks and checks see the traffic the core decided on. The
// caller holds e.mu; slow work runs in goroutines that report back through
// e's pending observations.
func (c *Controller) execute(ctx context.Context, e *entry, spec rollout.Spec, actions []rollout.Action) {
	for _, a := range actions {
		if _, ok := a.(rollout.SetRoute); ok {
			c.applyStoredRoute(ctx, e)
			break
		}
	}
	for _, a := range actions {
		switch a := a.(type) {
		case rollout.RunChecks:
			c.startChecks(e, spec, a)
		case rollout.CallHook:
			c.callHook(e, spec, a)
		case rollout.Notify:
			c.notify(e, spec, a.Event)
		case rollout.Finish:
			e.cancelLoad()
		}
	}
}

// baseCtx is Run's context, which ends when the controller stops.
func (c *Controller) baseCtx() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

// background runs f unless the controller is stopping.
func (c *Controller) background(f func(ctx context.Context)) {
	c.mu.Lock()
	ctx, running := c.ctx, c.running
	if running {
		c.async.Add(1)
	}
	c.mu.Unlock()
	if !running {
		return
	}
	go func() {
		defer c.async.Done()
		f(ctx)
	}()
}

// startChecks measures every metric for an interval in the background and
// hands the measurements back; the next evaluation judges them.
func (c *Controller) startChecks(e *entry, spec rollout.Spec, rc rollout.RunChecks) {
	name := e.name
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, c.opts.CheckTimeout)
		defer cancel()
		e.addMeasured(c.measure(ctx, name, spec, rc))
		c.sched.set(name, c.clock.Now())
	})
}

// measured is one interval's measurements of every metric.
type measured struct {
	rc        rollout.RunChecks
	intervals map[string]analysis.Interval // by metric name
	// shadow holds the canary's mirrored requests, by metric name, for
	// the built-in provider's metrics when the rollout mirrors traffic.
	shadow map[string]analysis.Measurement
}

// measure queries every metric for the canary and the stable version
// concurrently. A metric that could not be measured carries the error in
// its measurements, where the analysis turns it into an Error verdict.
func (c *Controller) measure(ctx context.Context, name string, spec rollout.Spec, rc rollout.RunChecks) *measured {
	metrics := spec.Analysis.Metrics
	ivs := make([]analysis.Interval, len(metrics))
	shadows := make([]*analysis.Measurement, len(metrics))
	var wg sync.WaitGroup
	for i, m := range metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			iv, err := c.query(ctx, name, m, rc)
			c.metrics.checkSeconds.WithLabelValues(m.Provider).Observe(time.Since(start).Seconds())
			if err != nil {
				msg := fmt.Sprintf("could not measure: %v", err)
				iv = analysis.Interval{At: rc.End,
					Canary: analysis.Measurement{Start: rc.Start, End: rc.End, Count: -1, Err: msg},
					Stable: analysis.Measurement{Start: rc.Start, End: rc.End, Count: -1, Err: msg}}
			}
			ivs[i] = iv
			if rc.Shadow && m.Provider == rollout.ProviderBuiltin {
				sh := c.queryShadow(ctx, name, m, rc)
				shadows[i] = &sh
			}
		}()
	}
	wg.Wait()
	out := &measured{rc: rc, intervals: map[string]analysis.Interval{}, shadow: map[string]analysis.Measurement{}}
	for i, m := range metrics {
		out.intervals[m.Name] = ivs[i]
		if shadows[i] != nil {
			out.shadow[m.Name] = *shadows[i]
		}
	}
	return out
}

// queryShadow measures the canary's mirrored requests for one metric. Only
// the built-in proxy mirrors, so only its provider's metrics have shadow
// measurements; a failure is kept in the measurement.
func (c *Controller) queryShadow(ctx context.Context, name string, m rollout.Metric, rc rollout.RunChecks) analysis.Measurement {
	fail := func(err error) analysis.Measurement {
		return analysis.Measurement{Start: rc.Start, End: rc.End, Count: -1, Err: fmt.Sprintf("could not measure: %v", err)}
	}
	p, ok := c.opts.Providers[m.Provider]
	if !ok {
		return fail(fmt.Errorf("provider %q is %w", m.Provider, ErrUnsupported))
	}
	q := rollout.Query{Rollout: name, Metric: m, Version: rc.Canary.Version, Role: rollout.RoleCanary, Shadow: true, Start: rc.Start, End: rc.End}
	sh, err := p.Query(ctx, q)
	if err != nil {
		return fail(fmt.Errorf("%s shadow: %w", m.Provider, err))
	}
	return sh
}

// query measures one metric of both versions over the interval.
func (c *Controller) query(ctx context.Context, name string, m rollout.Metric, rc rollout.RunChecks) (analysis.Interval, error) {
	iv := analysis.Interval{At: rc.End}
	p, ok := c.opts.Providers[m.Provider]
	if !ok {
		return iv, fmt.Errorf("provider %q is %w", m.Provider, ErrUnsupported)
	}
	q := rollout.Query{Rollout: name, Metric: m, Version: rc.Canary.Version, Role: rollout.RoleCanary, Start: rc.Start, End: rc.End}
	can, err := p.Query(ctx, q)
	if err != nil {
		return iv, fmt.Errorf("%s %s: %w", m.Provider, rollout.RoleCanary, err)
	}
	q.Version, q.Role = rc.Stable.Version, rollout.RoleStable
	stable, err := p.Query(ctx, q)
	if err != nil {
		return iv, fmt.Errorf("%s %s: %w", m.Provider, rollout.RoleStable, err)
	}
	iv.Canary, iv.Stable = can, stable
	return iv, nil
}

// callHook calls a webhook in the background; answers the core awaits are
// handed back for the next evaluation.
func (c *Controller) callHook(e *entry, spec rollout.Spec, call rollout.CallHook) {
	i := slices.IndexFunc(spec.Webhooks, func(h rollout.Webhook) bool { return h.Name == call.Name })
	name := e.name
	if i < 0 || c.opts.Hooks == nil {
		msg := "webhooks are not configured on this server"
		if i < 0 {
			msg = "the spec no longer has this webhook"
		}
		e.addHook(rollout.HookResult{Name: call.Name, Key: call.Key, Message: msg})
		c.sched.set(name, c.clock.Now())
		return
	}
	hook := spec.Webhooks[i]
	if hook.Type == rollout.HookLoad {
		c.startLoad(e, spec, hook)
		return
	}
	hc := HookCall{Rollout: name, Hook: hook, Call: call, Stable: e.rec.Status.Stable.Version}
	if cn := e.rec.Status.Canary; cn != nil {
		hc.Canary = cn.Version
	}
	awaited := hook.Type != rollout.HookPostRollout && hook.Type != rollout.HookEvent
	c.background(func(ctx context.Context) {
		r := c.opts.Hooks.Call(ctx, hc)
		if !awaited {
			c.log.Info("webhook called", "rollout", name, "hook", hook.Name, "type", hook.Type, "ok", r.OK, "result", r.Message)
			return
		}
		e.addHook(r)
		c.sched.set(name, c.clock.Now())
	})
}

// startLoad runs a load hook for one analysis interval, replacing the
// previous interval's load.
func (c *Controller) startLoad(e *entry, spec rollout.Spec, hook rollout.Webhook) {
	if c.opts.Loader == nil || e.rec.Status.Canary == nil {
		return
	}
	e.cancelLoad()
	run := LoadRun{Rollout: e.name, Hook: hook, Traffic: spec.Traffic, Canary: *e.rec.Status.Canary,
		Duration: spec.Analysis.Interval.D()}
	if len(c.opts.LoadKey) > 0 {
		run.ForceHeader, run.ForceValue = LoadHeader, c.loadToken(e.name)
	}
	ctx, cancel := context.WithCancel(c.baseCtx())
	e.load = cancel
	c.background(func(context.Context) {
		defer cancel()
		c.opts.Loader.Run(ctx, run)
	})
}

// notify sends an event to people and to the rollout's event hooks.
func (c *Controller) notify(e *entry, spec rollout.Spec, ev rollout.Event) {
	version := ""
	if cn := e.rec.Status.Canary; cn != nil {
		version = cn.Version
	}
	if c.opts.Notifier != nil {
		c.opts.Notifier.Notify(c.baseCtx(), Notification{Rollout: e.name, Version: version, Channels: spec.Notify, Event: ev})
	}
	if c.opts.Hooks == nil {
		return
	}
	for _, h := range spec.Webhooks {
		if h.Type != rollout.HookEvent {
			continue
		}
		hc := HookCall{Rollout: e.name, Hook: h, Canary: version, Stable: e.rec.Status.Stable.Version, Event: &ev,
			Call: rollout.CallHook{Name: h.Name, Type: h.Type, Key: fmt.Sprintf("%d/event", ev.Run), Run: ev.Run,
				Phase: ev.Phase, Version: version, Weight: ev.Weight}}
		c.background(func(ctx context.Context) {
			if r := c.opts.Hooks.Call(ctx, hc); !r.OK {
				c.log.Warn("event webhook failed", "rollout", hc.Rollout, "hook", h.Name, "result", r.Message)
			}
		})
	}
}
