// Package controller is aviary's imperative shell. It feeds the core
// (rollout.Next) with the time and what it observed, commits each resulting
// transition to the store in one transaction, and only then carries out the
// actions — routes, checks, webhook calls, notifications — through the small
// adapters it declares here. After a crash it reloads every rollout from the
// store, re-applies the last route it committed and resumes each run where
// it stopped.
//
// It may import the core (rollout, analysis) and the store's value types;
// adapters never import it.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Router applies routes to real traffic. Apply starts serving a rollout on
// first use and reconfigures it later; it is idempotent and ignores a route
// whose Generation is lower than one it applied. Remove stops serving it.
// Both are safe for concurrent use with different rollouts.
type Router interface {
	Apply(ctx context.Context, name string, t rollout.Traffic, r rollout.Route) error
	Remove(ctx context.Context, name string) error
}

// Provider measures one metric of one version over a window. No data is
// not an error: it is a Measurement without a value. Safe for concurrent
// use; it must honour ctx's deadline.
type Provider interface {
	Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error)
}

// Store persists rollouts. Commit is atomic: all transitions or none.
type Store interface {
	Load(ctx context.Context) ([]store.Record, error)
	Commit(ctx context.Context, ts ...store.Transition) error
	Series(ctx context.Context, name string, run int) ([]store.Point, error)
	Delete(ctx context.Context, name string, at time.Time) error
}

// Hooks calls webhooks. Call returns within the hook's timeout (plus a
// little) and never panics; it is called from the controller's goroutines,
// concurrently.
type Hooks interface {
	Call(ctx context.Context, c HookCall) rollout.HookResult
}

// HookCall is one webhook call with what its payload needs.
type HookCall struct {
	Rollout string
	Hook    rollout.Webhook
	Call    rollout.CallHook
	Canary  string
	Stable  string
	// Event is set for event hooks.
	Event *rollout.Event
}

// Notifier sends events to people. Notify must not block for long: it
// queues or sends with its own deadline.
type Notifier interface {
	Notify(ctx context.Context, n Notification)
}

// Notification is an event about a rollout and where the rollout wants it
// sent (besides the server's global channels).
type Notification struct {
	Rollout  string
	Version  string
	Channels []rollout.Notification
	Event    rollout.Event
}

// Loader runs a load hook's traffic for one interval; Run returns when the
// duration is over or ctx ends.
type Loader interface {
	Run(ctx context.Context, l LoadRun)
}

// LoadRun is one interval of a load hook.
type LoadRun struct {
	Rollout  string
	Hook     rollout.Webhook
	Traffic  rollout.Traffic
	Canary   rollout.Backend
	Duration time.Duration
	// Force is the header (name and value) that the rollout's routes send
	// to the canary, for load sent through the proxy.
	ForceHeader, ForceValue string
}

// Clock tells the time and makes timers; tests pass a fake.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a stoppable timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Options configure a Controller. Store and at least one Router are
// required; nil adapters turn their feature off (with an error when a spec
// needs them).
type Options struct {
	Store     Store
	Routers   map[string]Router
	Providers map[string]Provider
	Hooks     Hooks
	Notifier  Notifier
	Loader    Loader
	// Clock defaults to the real clock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the control plane's metrics; nil means none.
	Registerer prometheus.Registerer
	// Workers evaluate rollouts concurrently (default 64). Each waits for
	// its transition to be durable, and the transitions that wait together
	// are committed together, so it is concurrency, not CPU, that lets
	// thousands of rollouts share one disk's fsyncs.
	Workers int
	// CheckTimeout bounds the measuring of one interval (default 30s).
	CheckTimeout time.Duration
	// Check vets a spec before it is applied, beyond validation: that its
	// secrets resolve, for instance. nil: no further checks.
	Check func(rollout.Spec) error
	// LoadKey keys the header that sends a load hook's requests through
	// the proxy to the canary; without it load goes only to upstreams.
	LoadKey []byte
}

// Errors callers map to API statuses.
var (
	// ErrNotFound means no rollout has that name.
	ErrNotFound = errors.New("rollout not found")
	// ErrUnsupported means the spec asks for an adapter this server lacks.
	ErrUnsupported = errors.New("unsupported by this server")
	// ErrNotRunning means the controller has not started or has stopped.
	ErrNotRunning = errors.New("controller not running")
)

// Controller runs rollouts. Its methods are safe for concurrent use.
type Controller struct {
	opts    Options
	log     *slog.Logger
	clock   Clock
	metrics *metrics
	subs    *broadcaster

	mu       sync.Mutex
	rollouts map[string]*entry
	ctx      context.Context // Run's context, for background work
	running  bool

	sched   *scheduler
	commits chan commitReq
	// stopCommits tells the committer to stop; commitsStopped is closed
	// once it has.
	stopCommits    chan struct{}
	commitsStopped chan struct{}
	async          sync.WaitGroup
}

// New checks the options and makes a Controller; Run starts it.
func New(opts Options) (*Controller, error) {
	if opts.Store == nil {
		return nil, errors.New("controller: a store is required")
	}
	if len(opts.Routers) == 0 {
		return nil, errors.New("controller: at least one router is required")
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 30 * time.Second
	}
	c := &Controller{
		opts:     opts,
		log:      opts.Logger,
		clock:    opts.Clock,
		subs:     newBroadcaster(),
		rollouts: map[string]*entry{},
		commits:  make(chan commitReq, 1024),

		stopCommits:    make(chan struct{}),
		commitsStopped: make(chan struct{}),
	}
	c.metrics = newMetrics(opts.Registerer)
	c.sched = newScheduler(opts.Clock, c.metrics)
	return c, nil
}

// Supports reports whether this controller can run the spec: its router
// and providers exist. The error wraps ErrUnsupported and names the field.
func (c *Controller) Supports(s rollout.Spec) error {
	s = rollout.Manifest{Spec: s}.Normalize().Spec
	if _, ok := c.opts.Routers[s.Traffic.Router]; !ok {
		return fmt.Errorf("spec.traffic.router: router %q is %w", s.Traffic.Router, ErrUnsupported)
	}
	for i, m := range s.Analysis.Metrics {
		if _, ok := c.opts.Providers[m.Provider]; !ok {
			return fmt.Errorf("spec.analysis.metrics[%d].provider: provider %q is %w", i, m.Provider, ErrUnsupported)
		}
	}
	return nil
}

// Run loads every rollout from the store, restores its routing, and runs
// until ctx ends; then it waits for work in flight and returns.
func (c *Controller) Run(ctx context.Context) error {
	records, err := c.opts.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load rollouts: %w", err)
	}
	c.mu.Lock()
	c.ctx = ctx
	c.running = true
	for _, r := range records {
		c.rollouts[r.Name] = newEntry(r)
	}
	c.mu.Unlock()
	for _, r := range records {
		e := c.entry(r.Name)
		c.restore(ctx, e)
	}
	// The committer outlives the workers, so that every transition they
	// started is committed or refused before Run returns.
	committerDone := make(chan struct{})
	go func() { defer close(committerDone); c.commitLoop(c.stopCommits) }()
	var wg sync.WaitGroup
	wg.Add(1 + c.opts.Workers)
	go func() { defer wg.Done(); c.sched.run(ctx) }()
	for range c.opts.Workers {
		go func() { defer wg.Done(); c.work(ctx) }()
	}
	c.log.Info("controller running", "rollouts", len(records))
	<-ctx.Done()
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	c.async.Wait()
	wg.Wait()
	close(c.stopCommits)
	<-committerDone
	return nil
}

// restore re-applies a rollout's last committed route and schedules it;
// its run's measurements are reloaded when they are next judged.
func (c *Controller) restore(ctx context.Context, e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.applyStoredRoute(ctx, e)
	c.metrics.phase("", e.rec.Status.Phase)
	c.sched.set(e.name, c.clock.Now())
}

// applyStoredRoute applies the last committed route if the router has not
// applied it yet. The caller holds e.mu.
func (c *Controller) applyStoredRoute(ctx context.Context, e *entry) {
	r := e.rec.Route
	if r == nil || e.applied >= r.Generation {
		return
	}
	spec := e.rec.Manifest.Spec
	router, ok := c.opts.Routers[orBuiltin(spec.Traffic.Router)]
	if !ok {
		c.log.Error("no router for rollout", "rollout", e.name, "router", spec.Traffic.Router)
		return
	}
	if err := router.Apply(ctx, e.name, spec.Traffic, *r); err != nil {
		c.log.Error("apply route", "rollout", e.name, "generation", r.Generation, "err", err)
		return
	}
	e.applied = r.Generation
}

func orBuiltin(router string) string {
	if router == "" {
		return rollout.RouterBuiltin
	}
	return router
}

func (c *Controller) entry(name string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rollouts[name]
}

// Get returns a rollout's record.
func (c *Controller) Get(name string) (store.Record, error) {
	e := c.entry(name)
	if e == nil {
		return store.Record{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return store.Record{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return e.rec, nil
}

// List returns every rollout's record, by name.
func (c *Controller) List() []store.Record {
	c.mu.Lock()
	entries := make([]*entry, 0, len(c.rollouts))
	for _, e := range c.rollouts {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	out := make([]store.Record, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		if !e.deleted {
			out = append(out, e.rec)
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Subscribe returns a channel of changes to rollouts and a function that
// ends the subscription. A subscriber that falls behind gets a Change with
// Resync set instead of what it missed.
func (c *Controller) Subscribe() (<-chan Change, func()) {
	return c.subs.subscribe()
}

// ApplyResult says what an Apply did.
type ApplyResult struct {
	Record  store.Record
	Created bool
	// Changed is false when the spec was identical to the stored one.
	Changed bool
}

// Apply creates or updates a rollout from a valid manifest. A new version
// starts a run; the first version becomes stable.
func (c *Controller) Apply(ctx context.Context, m rollout.Manifest) (ApplyResult, error) {
	if errs := m.Validate(); len(errs) > 0 {
		return ApplyResult{}, errs
	}
	m = m.Normalize()
	if err := c.Supports(m.Spec); err != nil {
		return ApplyResult{}, err
	}
	if c.opts.Check != nil {
		if err := c.opts.Check(m.Spec); err != nil {
			return ApplyResult{}, err
		}
	}
	if err := c.checkRunning(); err != nil {
		return ApplyResult{}, err
	}
	e, created := c.entryFor(m.Metadata.Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !created && !e.deleted && specEqual(e.rec.Manifest, m) {
		return ApplyResult{Record: e.rec}, nil
	}
	if e.deleted {
		e.reset()
		created = true
	}
	if err := c.transition(ctx, e, &m, rollout.Observations{}, nil); err != nil {
		if created {
			c.forget(e)
		}
		return ApplyResult{}, err
	}
	return ApplyResult{Record: e.rec, Created: created, Changed: true}, nil
}

// Command carries out a person's command on a rollout. A command the
// rollout's state does not allow is refused with an error wrapping
// rollout.ErrRefused, and nothing changes.
func (c *Controller) Command(ctx context.Context, name string, cmd rollout.Command) (store.Record, error) {
	if err := c.checkRunning(); err != nil {
		return store.Record{}, err
	}
	e := c.entry(name)
	if e == nil {
		return store.Record{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return store.Record{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	if err := rollout.Allowed(c.now(), e.rec.Manifest.Spec, e.rec.Status, cmd); err != nil {
		return store.Record{}, err
	}
	if err := c.transition(ctx, e, nil, rollout.Observations{Commands: []rollout.Command{cmd}}, nil); err != nil {
		return store.Record{}, err
	}
	return e.rec, nil
}

// Delete stops serving a rollout and removes it from the store.
func (c *Controller) Delete(ctx context.Context, name string) error {
	if err := c.checkRunning(); err != nil {
		return err
	}
	e := c.entry(name)
	if e == nil {
		return fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	if err := c.opts.Store.Delete(ctx, name, c.now()); err != nil {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	if router, ok := c.opts.Routers[orBuiltin(e.rec.Manifest.Spec.Traffic.Router)]; ok {
		if err := router.Remove(ctx, name); err != nil {
			c.log.Error("remove route", "rollout", name, "err", err)
		}
	}
	e.deleted = true
	e.cancelLoad()
	c.metrics.phase(e.rec.Status.Phase, "")
	c.sched.remove(name)
	c.forget(e)
	c.subs.publish(Change{Name: name, Deleted: true})
	return nil
}

func (c *Controller) checkRunning() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return ErrNotRunning
	}
	return nil
}

// entryFor returns the rollout's entry, creating it.
func (c *Controller) entryFor(name string) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.rollouts[name]; ok {
		return e, false
	}
	e := newEntry(store.Record{Name: name})
	c.rollouts[name] = e
	return e, true
}

func (c *Controller) forget(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rollouts[e.name] == e {
		delete(c.rollouts, e.name)
	}
}

// specEqual reports whether two normalized manifests are the same.
func specEqual(a, b rollout.Manifest) bool {
	return string(mustJSON(a)) == string(mustJSON(b))
}
