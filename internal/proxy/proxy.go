package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Proxy. Zero fields take the defaults documented on
// each; defaults live in withDefaults.
type Options struct {
	// Name identifies the proxied service in logs and as the "rollout" label
	// of its metrics. Required.
	Name string
	// Clock returns the time (nil: time.Now). Measurements, latencies and
	// passive ejection use it; timers (health checks, timeouts) run on real
	// time.
	Clock func() time.Time
	// Logger receives operational events (nil: discarded).
	Logger *slog.Logger
	// Registerer, when set, gets the proxy's Prometheus collector.
	Registerer prometheus.Registerer
	// Rand returns random numbers for the weighted choice and mirroring
	// (nil: math/rand/v2). It must be safe for concurrent use.
	Rand func() uint64

	// ErrorClasses are the status classes counted as errors, e.g. 5 for
	// 5xx (default: {5}). Failed connections and timeouts always count.
	ErrorClasses []int
	// History is how far back Measure can look (default 15m), kept in
	// one-second slots.
	History time.Duration
	// Ejection configures passive ejection of failing upstreams.
	Ejection Ejection

	// MaxHeaderBytes limits the request line and headers (default 32 KiB);
	// larger requests get 431.
	MaxHeaderBytes int
	// MaxBodyBytes limits request bodies (default 64 MiB; negative: no
	// limit); larger requests get 413.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds reading a request's headers (default 10s).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds each read of a request body: a client that
	// sends nothing for this long is cut off (default 30s).
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each write of a response: a client that reads
	// nothing for this long is cut off (default 30s).
	WriteTimeout time.Duration
	// IdleTimeout closes client connections idle for this long (default 2m).
	IdleTimeout time.Duration
	// H2C accepts HTTP/2 without TLS (prior knowledge). HTTP/2 over TLS is
	// always on.
	H2C bool
	// NetHTTPServer serves HTTP/1.x (plain and over TLS) with net/http's
	// server instead of the proxy's own leaner one (HTTP/2 and h2c always
	// use net/http's).
	NetHTTPServer bool

	// DialTimeout bounds connecting to an upstream (default 5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers (default 60s); past it the client gets 504.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerUpstream bounds the kept-alive idle connections to one
	// upstream (default 256).
	MaxIdleConnsPerUpstream int
	// IdleConnTimeout closes upstream connections idle this long (default 60s).
	IdleConnTimeout time.Duration
	// UpstreamTLS configures connections to https upstreams (nil: system
	// roots).
	UpstreamTLS *tls.Config

	// Mirror bounds shadow traffic.
	Mirror MirrorOptions
	// ShieldBodyLimit is the largest request body buffered so that a failed
	// canary request can be retried on stable (default 64 KiB).
	ShieldBodyLimit int64
	// IdempotencyHeaders mark a request of any method as safe to retry
	// (default: Idempotency-Key, X-Idempotency-Key).
	IdempotencyHeaders []string
}

// Ejection configures passive ejection: an upstream that fails Failures
// times in a row (failed connections, 5xx answers) gets no requests for
// Duration. Defaults: 5 failures, 30s; Failures < 0 turns it off.
type Ejection struct {
	Failures int
	Duration time.Duration
}

// MirrorOptions bound shadow traffic. Requests that do not fit are not
// mirrored and are counted as dropped.
type MirrorOptions struct {
	// Queue is how many mirrored requests may wait (default 1024).
	Queue int
	// Workers is how many mirrored requests run at once (default 4).
	Workers int
	// BodyLimit is the largest request body mirrored (default 64 KiB).
	BodyLimit int64
	// Timeout bounds one mirrored request (default 10s).
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Uint64
	}
	if o.ErrorClasses == nil {
		o.ErrorClasses = []int{5}
	}
	setDur(&o.History, 15*time.Minute)
	if o.Ejection.Failures == 0 {
		o.Ejection.Failures = 5
	}
	setDur(&o.Ejection.Duration, 30*time.Second)
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 64 << 20
	}
	setDur(&o.ReadHeaderTimeout, 10*time.Second)
	setDur(&o.BodyReadTimeout, 30*time.Second)
	setDur(&o.WriteTimeout, 30*time.Second)
	setDur(&o.IdleTimeout, 2*time.Minute)
	setDur(&o.DialTimeout, 5*time.Second)
	setDur(&o.ResponseHeaderTimeout, 60*time.Second)
	if o.MaxIdleConnsPerUpstream == 0 {
		o.MaxIdleConnsPerUpstream = 256
	}
	setDur(&o.IdleConnTimeout, 60*time.Second)
	if o.Mirror.Queue == 0 {
		o.Mirror.Queue = 1024
	}
	if o.Mirror.Workers == 0 {
		o.Mirror.Workers = 4
	}
	if o.Mirror.BodyLimit == 0 {
		o.Mirror.BodyLimit = 64 << 10
	}
	setDur(&o.Mirror.Timeout, 10*time.Second)
	if o.ShieldBodyLimit == 0 {
		o.ShieldBodyLimit = 64 << 10
	}
	if o.IdempotencyHeaders == nil {
		o.IdempotencyHeaders = []string{"Idempotency-Key", "X-Idempotency-Key"}
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	for _, c := range o.ErrorClasses {
		if c < 1 || c > 5 {
			errs = append(errs, fmt.Errorf("errorClasses: %d is not a status class 1-5", c))
		}
	}
	if o.History < time.Second {
		errs = append(errs, fmt.Errorf("history: %s is shorter than one second", o.History))
	}
	if o.Mirror.Queue < 0 || o.Mirror.Workers < 0 {
		errs = append(errs, errors.New("mirror: queue and workers must not be negative"))
	}
	return errors.Join(errs...)
}

// Proxy is a reverse proxy for one service. It is safe for concurrent use.
type Proxy struct {
	opts      Options
	wallClock bool // opts.Clock is time.Now: one reading serves measurement and deadlines
	log       *slog.Logger
	errClass  [6]bool
	table     atomic.Pointer[compiled]
	stats     *stats

	mu        sync.Mutex // serialises Update and Close
	upMu      sync.Mutex
	ups       map[string]*upstream
	closed    bool
	collector *collector

	hcTransport  *http.Transport
	mirrorMu     sync.RWMutex // guards sending on mirrorQ against its closing
	mirrorClosed bool
	mirrorQ      chan *mirrorJob
	mirrorWG     sync.WaitGroup
	srv          *server
	tunnels      tunnels

	// counters reported as metrics
	fallbacks     atomic.Int64
	canaryDown    atomic.Bool // for logging the fallback's start and end once
	shieldRetries atomic.Int64
	shieldFailed  atomic.Int64
	ejections     atomic.Int64
	mirrorDropped [numDropReasons]atomic.Int64
}

// New returns a proxy with no routing table: it answers 503 until Update.
// It starts no listener (see Listen) but starts its mirror workers; Close
// stops them.
func New(opts Options) (*Proxy, error) {
	wallClock := opts.Clock == nil
	opts = opts.withDefaults()
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("proxy %q options: %w", opts.Name, err)
	}
	p := &Proxy{
		opts:      opts,
		wallClock: wallClock,
		log:       opts.Logger.With("proxy", opts.Name),
		stats:     newStats(int(opts.History / time.Second)),
		ups:       map[string]*upstream{},
		mirrorQ:   make(chan *mirrorJob, opts.Mirror.Queue),
		hcTransport: &http.Transport{
			TLSClientConfig:     opts.UpstreamTLS,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
		},
	}
	for _, c := range opts.ErrorClasses {
		p.errClass[c] = true
	}
	if opts.Registerer != nil {
		p.collector = newCollector(p)
		if err := opts.Registerer.Register(p.collector); err != nil {
			return nil, fmt.Errorf("proxy %q: register metrics: %w", opts.Name, err)
		}
	}
	for range opts.Mirror.Workers {
		p.mirrorWG.Add(1)
		go p.mirrorWorker()
	}
	return p, nil
}

func (p *Proxy) now() time.Time    { return p.opts.Clock() }
func (p *Proxy) nowNano() int64    { return p.opts.Clock().UnixNano() }
func (p *Proxy) isErr(st int) bool { return st >= 100 && st < 600 && p.errClass[st/100] }

// Update validates t and makes it the routing table. It returns false, with
// no error, when t.Generation is lower than the current table's: a late
// update never undoes a newer one. Requests in flight finish on the version
// they were given.
func (p *Proxy) Update(t Table) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, fmt.Errorf("proxy %q: table generation %d: %w", p.opts.Name, t.Generation, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, fmt.Errorf("proxy %q: closed", p.opts.Name)
	}
	old := p.table.Load()
	if old != nil && t.Generation < old.table.Generation {
		return false, nil
	}
	c := p.compile(t)
	p.table.Store(c)
	p.releaseUpstreams(old)
	p.configureHealth(c)
	if old == nil || !sameVersions(old, c) {
		p.log.Info("routing table applied", "generation", t.Generation, "stable", t.Stable.Version, "canary", canaryVersion(t), "weight", t.Weight)
	} else {
		p.log.Debug("routing table applied", "generation", t.Generation, "weight", t.Weight)
	}
	return true, nil
}

func canaryVersion(t Table) string {
	if t.Canary == nil {
		return ""
	}
	return t.Canary.Version
}

func sameVersions(a, b *compiled) bool {
	return a.table.Stable.Version == b.table.Stable.Version && canaryVersion(a.table) == canaryVersion(b.table)
}

// Table returns the current routing table; false when none was applied.
func (p *Proxy) Table() (Table, bool) {
	c := p.table.Load()
	if c == nil {
		return Table{}, false
	}
	return c.table, true
}

// compile builds the hot-path form of a validated table. p.mu must be held.
func (p *Proxy) compile(t Table) *compiled {
	t = cloneTable(t)
	c := &compiled{
		table:  t,
		weight: uint64(t.Weight),
		sticky: t.StickyCookie,
		maxAge: int(t.StickyMaxAge / time.Second),
		mirror: uint64(t.MirrorPercent),
		shield: t.Shield,
	}
	for _, m := range t.Match {
		cm, _ := compileMatch(m) // validated
		c.matchers = append(c.matchers, cm)
	}
	if t.HashOn != "" {
		c.hashHdr, c.hashCkie, _ = parseHashOn(t.HashOn)
	}
	least := t.Balance == BalanceLeastRequests
	keep := map[seriesKey]bool{}
	mk := func(b Backend, role string) *backend {
		be := &backend{version: b.Version, role: role, pool: &pool{least: least}}
		p.upMu.Lock()
		for _, raw := range b.Upstreams {
			be.pool.ups = append(be.pool.ups, p.acquireUpstream(raw))
		}
		p.upMu.Unlock()
		for k := range numKinds {
			key := seriesKey{version: b.Version, role: role, kind: k}
			be.series[k] = p.stats.get(key)
			keep[key] = true
		}
		return be
	}
	c.stable = mk(t.Stable, RoleStable)
	if t.Canary != nil {
		c.canary = mk(*t.Canary, RoleCanary)
		c.salt = saltOf(t.Canary.Version)
	}
	p.stats.forget(keep, p.now().Unix())
	return c
}

func cloneTable(t Table) Table {
	t.Stable.Upstreams = append([]string(nil), t.Stable.Upstreams...)
	if t.Canary != nil {
		cb := *t.Canary
		cb.Upstreams = append([]string(nil), cb.Upstreams...)
		t.Canary = &cb
	}
	t.Match = append([]Match(nil), t.Match...)
	if t.HealthCheck != nil {
		hc := *t.HealthCheck
		t.HealthCheck = &hc
	}
	return t
}

// acquireUpstream returns the upstream for raw, shared with the current
// table when it has it. p.upMu must be held.
func (p *Proxy) acquireUpstream(raw string) *upstream {
	u, ok := p.ups[raw]
	if !ok {
		parsed, _ := parseUpstreamURL(raw) // validated
		u = &upstream{p: p, url: parsed}
		p.ups[raw] = u
	}
	u.refs++
	return u
}

// releaseUpstreams drops old's references; upstreams no table uses any more
// are retired.
func (p *Proxy) releaseUpstreams(old *compiled) {
	if old == nil {
		return
	}
	p.upMu.Lock()
	defer p.upMu.Unlock()
	for _, be := range []*backend{old.stable, old.canary} {
		if be == nil {
			continue
		}
		for _, u := range be.pool.ups {
			u.refs--
			if u.refs == 0 {
				delete(p.ups, u.url.raw)
				if u.checker != nil {
					go u.checker.stop()
					u.checker = nil
				}
				u.retire()
			}
		}
	}
}

// configureHealth starts, restarts or stops active health checks to match
// the table. p.mu must be held.
func (p *Proxy) configureHealth(c *compiled) {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	for _, u := range p.ups {
		if c.table.HealthCheck == nil {
			if u.checker != nil {
				u.checker.stop()
				u.checker = nil
				u.down.Store(false)
			}
			continue
		}
		cfg := c.table.HealthCheck.withDefaults()
		if u.checker != nil && u.checker.cfg == cfg {
			continue
		}
		if u.checker != nil {
			u.checker.stop()
		}
		u.checker = p.startChecker(u, cfg)
	}
}

// Status is the proxy's view of its upstreams.
type Status struct {
	Generation int64
	// CanaryAvailable is false when a canary is configured but none of its
	// upstreams is healthy: its share then goes to stable.
	CanaryAvailable bool
	// Fallbacks counts requests meant for the canary that stable served
	// because the canary had no healthy upstream.
	Fallbacks int64
	Upstreams []UpstreamStatus
}

// UpstreamStatus is one upstream's state.
type UpstreamStatus struct {
	URL      string
	Version  string
	Role     string
	Healthy  bool // neither failing health checks nor ejected
	Ejected  bool
	InFlight int64
}

// Status reports the upstreams' health and load.
func (p *Proxy) Status() Status {
	c := p.table.Load()
	st := Status{Fallbacks: p.fallbacks.Load()}
	if c == nil {
		return st
	}
	now := p.nowNano()
	st.Generation = c.table.Generation
	for _, be := range []*backend{c.stable, c.canary} {
		if be == nil {
			continue
		}
		for _, u := range be.pool.ups {
			st.Upstreams = append(st.Upstreams, UpstreamStatus{
				URL: u.url.raw, Version: be.version, Role: be.role,
				Healthy: u.healthy(now), Ejected: now < u.ejectedUntil.Load(), InFlight: u.inflight.Load(),
			})
		}
	}
	st.CanaryAvailable = c.canary != nil && c.canary.pool.available(now)
	return st
}

// Close stops the listener, waits for requests in flight (and upgraded
// connections) until ctx is done, then closes what remains: connections,
// health checks, mirror workers. The proxy's metrics are unregistered.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()

	var err error
	if srv != nil {
		err = srv.shutdown(ctx)
	}
	p.tunnels.wait(ctx)
	p.mirrorMu.Lock()
	p.mirrorClosed = true
	close(p.mirrorQ)
	p.mirrorMu.Unlock()
	p.mirrorWG.Wait()
	p.upMu.Lock()
	for _, u := range p.ups {
		if u.checker != nil {
			u.checker.stop()
			u.checker = nil
		}
		u.retire()
	}
	p.upMu.Unlock()
	p.hcTransport.CloseIdleConnections()
	if p.collector != nil {
		p.opts.Registerer.Unregister(p.collector)
	}
	return err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
