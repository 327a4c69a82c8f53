package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// upstream is one upstream address: its connection pool, its load and its
// health. Upstreams outlive tables: one that stays in the next table keeps
// its connections and health state.
type upstream struct {
	p   *Proxy
	url upstreamURL

	inflight     atomic.Int64
	down         atomic.Bool  // the active health check says unhealthy
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection
	fails        atomic.Int32 // consecutive failures, for passive ejection

	mu      sync.Mutex
	idle    []*upConn
	retired bool

	// guarded by Proxy.upMu
	refs    int
	checker *checker
}

func (u *upstream) healthy(now int64) bool {
	return !u.down.Load() && now >= u.ejectedUntil.Load()
}

// report feeds passive ejection with one request's outcome: a failed
// connection or a 5xx answer is a failure.
func (u *upstream) report(ok bool, now int64) {
	if ok {
		if u.fails.Load() != 0 {
			u.fails.Store(0)
		}
		return
	}
	ej := u.p.opts.Ejection
	if ej.Failures <= 0 {
		return
	}
	if n := u.fails.Add(1); int(n) >= ej.Failures {
		u.fails.Store(0)
		u.ejectedUntil.Store(now + int64(ej.Duration))
		u.p.ejections.Add(1)
		u.p.log.Warn("upstream ejected after consecutive failures", "upstream", u.url.raw, "failures", n, "for", ej.Duration)
	}
}

// retire closes the upstream's idle connections; connections in use are
// closed when their requests finish.
func (u *upstream) retire() {
	u.mu.Lock()
	u.retired = true
	idle := u.idle
	u.idle = nil
	u.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// pool is one version's upstreams and the policy that picks among them.
type pool struct {
	ups   []*upstream
	rr    atomic.Uint64
	least bool
}

// pick returns a healthy upstream, or nil when none is healthy.
func (pl *pool) pick(now int64) *upstream {
	n := uint64(len(pl.ups))
	if n == 1 {
		if u := pl.ups[0]; u.healthy(now) {
			return u
		}
		return nil
	}
	start := pl.rr.Add(1)
	if !pl.least {
		for i := uint64(0); i < n; i++ {
			if u := pl.ups[(start+i)%n]; u.healthy(now) {
				return u
			}
		}
		return nil
	}
	var best *upstream
	var bestLoad int64
	for i := uint64(0); i < n; i++ {
		u := pl.ups[(start+i)%n]
		if !u.healthy(now) {
			continue
		}
		if l := u.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = u, l
		}
	}
	return best
}

// pickAny returns an upstream regardless of health (for a stable pool with no
// healthy upstream: trying is better than refusing).
func (pl *pool) pickAny() *upstream {
	return pl.ups[pl.rr.Add(1)%uint64(len(pl.ups))]
}

func (pl *pool) available(now int64) bool {
	for _, u := range pl.ups {
		if u.healthy(now) {
			return true
		}
	}
	return false
}

// checker probes one upstream actively.
type checker struct {
	cfg    HealthCheck
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *Proxy) startChecker(u *upstream, cfg HealthCheck) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checker{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		p.runChecks(ctx, u, cfg)
	}()
	return c
}

func (c *checker) stop() {
	c.cancel()
	<-c.done
}

func (p *Proxy) runChecks(ctx context.Context, u *upstream, cfg HealthCheck) {
	client := &http.Client{
		Transport:     p.hcTransport,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	scheme := "http"
	if u.url.tls {
		scheme = "https"
	}
	target := scheme + "://" + u.url.host + u.url.prefix + cfg.Path
	var okRun, failRun int
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		ok, why := probe(ctx, client, target)
		if ctx.Err() != nil {
			return
		}
		if ok {
			okRun, failRun = okRun+1, 0
			if u.down.Load() && okRun >= cfg.HealthyThreshold {
				u.down.Store(false)
				p.log.Info("upstream healthy", "upstream", u.url.raw, "successes", okRun)
			}
		} else {
			okRun, failRun = 0, failRun+1
			if !u.down.Load() && failRun >= cfg.UnhealthyThreshold {
				u.down.Store(true)
				p.log.Warn("upstream unhealthy", "upstream", u.url.raw, "failures", failRun, "last", why)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, target string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "aviary-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return false, resp.Status
	}
	return true, ""
}
