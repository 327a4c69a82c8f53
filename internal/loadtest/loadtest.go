package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"aviary/internal/rollout"
)

// Defaults.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultMaxInFlight    = 16
)

// Header is a request header by name and value.
type Header struct {
	Name, Value string
}

// Target is where a run may send requests, and nowhere else.
type Target struct {
	// Origins are scheme://host:port addresses without a path; requests
	// go to them in turn.
	Origins []string
	// Force, when its Name is set, is added to every request: the
	// canary-forcing match the router applies when load goes through the
	// proxy.
	Force Header
	// InsecureSkipVerify skips TLS certificate checks: the rollout's own
	// proxy may present a certificate for its public name, not for the
	// loopback address load is sent to.
	InsecureSkipVerify bool
}

// TargetFor derives a load hook's target from the rollout: through the
// proxy (l.Target "proxy", the default), the listen address with force
// added to every request; straight to the canary (l.Target "upstreams"), its
// upstreams. A listen address on every interface (":8080", "0.0.0.0:8080",
// "[::]:8080") is reached on loopback.
func TargetFor(l rollout.Load, traffic rollout.Traffic, canary rollout.Backend, force Header) (Target, error) {
	switch l.Target {
	case rollout.LoadViaProxy, "":
		if traffic.Listen == "" {
			return Target{}, errors.New("load through the proxy needs the rollout's traffic.listen address")
		}
		if force.Name == "" || force.Value == "" {
			return Target{}, errors.New("load through the proxy needs a canary-forcing header, or it would reach the stable version too")
		}
		host, port, err := net.SplitHostPort(traffic.Listen)
		if err != nil {
			return Target{}, fmt.Errorf("listen address %q: %w", traffic.Listen, err)
		}
		switch host {
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::":
			host = "::1"
		}
		scheme := "http"
		if traffic.TLS != nil {
			scheme = "https"
		}
		return Target{Origins: []string{scheme + "://" + net.JoinHostPort(host, port)}, Force: force,
			InsecureSkipVerify: traffic.TLS != nil}, nil
	case rollout.LoadToUpstreams:
		if len(canary.Upstreams) == 0 {
			return Target{}, fmt.Errorf("the canary %s has no upstreams to send load to", canary.Version)
		}
		return Target{Origins: slices.Clone(canary.Upstreams)}, nil
	}
	return Target{}, fmt.Errorf("unknown load target %q (want proxy or upstreams)", l.Target)
}

// Options configure a Generator; the zero value works.
type Options struct {
	// Logger receives a record per run (debug); nil: none.
	Logger *slog.Logger
	// Version is aviary's version for the User-Agent ("dev" when empty).
	Version string
	// RequestTimeout bounds each request (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// MaxInFlight bounds concurrent requests of one run
	// (default DefaultMaxInFlight).
	MaxInFlight int
}

// Generator starts load runs. It is safe for concurrent use.
type Generator struct {
	log         *slog.Logger
	agent       string
	timeout     time.Duration
	maxInFlight int
}

// New returns a Generator.
func New(o Options) *Generator {
	g := &Generator{log: o.Logger, timeout: o.RequestTimeout, maxInFlight: o.MaxInFlight}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	v := o.Version
	if v == "" {
		v = "dev"
	}
	g.agent = "aviary/" + v + " (load)"
	if g.timeout <= 0 {
		g.timeout = DefaultRequestTimeout
	}
	if g.maxInFlight <= 0 {
		g.maxInFlight = DefaultMaxInFlight
	}
	return g
}

// Counts say what a run's requests came to.
type Counts struct {
	// Sent requests were started; OK ones got an answer below 400;
	// Failed ones got 400 or more, or no answer.
	Sent, OK, Failed uint64
	// Skipped requests were not sent because MaxInFlight were in flight.
	Skipped uint64
}

func (c Counts) String() string {
	s := fmt.Sprintf("%d sent, %d ok, %d failed", c.Sent, c.OK, c.Failed)
	if c.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped (too many in flight)", c.Skipped)
	}
	return s
}

// Run is one load run.
type Run struct {
	rps      float64
	duration time.Duration
	origins  []string
	stop     context.CancelFunc
	done     chan struct{}

	sent, ok, failed, skipped atomic.Uint64
}

// Start checks the load and the target and starts sending: at most l.RPS
// requests a second for d, unless Stop is called or ctx ends first. It
// returns at once; anything wrong with the load or the target is an error
// and nothing is sent.
func (g *Generator) Start(ctx context.Context, l rollout.Load, t Target, d time.Duration) (*Run, error) {
	reqs, allowed, err := plan(l, t)
	if err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("a load run needs a positive duration, got %s", d)
	}
	rps := l.RPS
	if rps == 0 {
		rps = rollout.DefaultLoadRPS
	}
	if rps < 0 || rps > rollout.MaxLoadRPS {
		return nil, fmt.Errorf("load rps must be between 0 and %g, got %g", rollout.MaxLoadRPS, rps)
	}
	client := g.client(allowed, t.InsecureSkipVerify)
	ctx, cancel := context.WithCancel(ctx)
	r := &Run{rps: rps, duration: d, origins: slices.Clone(t.Origins), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer cancel()
		defer client.CloseIdleConnections()
		r.loop(ctx, g, client, reqs)
		g.log.Debug("load run ended", "origins", strings.Join(r.origins, ","), "rps", rps, "duration", d, "counts", r.Counts().String())
	}()
	return r, nil
}

// request is a prepared request to one origin.
type request struct {
	method string
	url    string
	host   string // Host header override, or ""
	header http.Header
}

// plan checks the load and the target and prepares one request per origin;
// allowed are the host:port addresses the run may dial.
func plan(l rollout.Load, t Target) ([]request, map[string]bool, error) {
	if len(t.Origins) == 0 {
		return nil, nil, errors.New("a load target needs at least one address")
	}
	path := l.Path
	if path == "" {
		path = rollout.DefaultLoadPath
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return nil, nil, fmt.Errorf("load path %q must be an absolute path such as \"/health\"", path)
	}
	ref, err := url.Parse(path)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.Fragment != "" {
		return nil, nil, fmt.Errorf("load path %q must be an absolute path such as \"/health\"", path)
	}
	method := l.Method
	if method == "" {
		method = rollout.DefaultLoadMethod
	}
	header := http.Header{}
	host := ""
	for k, v := range l.Headers {
		switch {
		case t.Force.Name != "" && strings.EqualFold(k, t.Force.Name):
			return nil, nil, fmt.Errorf("load header %q is the canary-forcing header aviary sets itself", k)
		case strings.EqualFold(k, "Host"):
			host = v
		default:
			header.Set(k, v)
		}
	}
	if t.Force.Name != "" {
		header.Set(t.Force.Name, t.Force.Value)
	}
	allowed := map[string]bool{}
	var reqs []request
	for _, o := range t.Origins {
		u, err := url.Parse(o)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("load target %q is not a URL", o)
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, nil, fmt.Errorf("load target %q: want an http:// or https:// origin", o)
		case u.Host == "" || u.Hostname() == "":
			return nil, nil, fmt.Errorf("load target %q has no host", o)
		case u.User != nil:
			return nil, nil, fmt.Errorf("load target %q must not hold credentials", o)
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
			return nil, nil, fmt.Errorf("load target %q must be an origin (scheme://host:port) without a path", o)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		allowed[net.JoinHostPort(u.Hostname(), port)] = true
		full := url.URL{Scheme: u.Scheme, Host: u.Host, Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery}
		reqs = append(reqs, request{method: method, url: full.String(), host: host, header: header})
	}
	return reqs, allowed, nil
}

// client makes a run's requests: no proxy, no redirects, and a dialer that
// reaches only the allowed addresses.
func (g *Generator) client(allowed map[string]bool, insecure bool) *http.Client {
	dialer := &net.Dialer{Timeout: g.timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if err := guard(allowed, addr); err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: g.maxInFlight,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: g.timeout,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // our own proxy, on loopback
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func guard(allowed map[string]bool, addr string) error {
	if !allowed[addr] {
		return fmt.Errorf("dial %s: %w", addr, ErrNotAllowed)
	}
	return nil
}

// loop sends requests until the duration is over or ctx ends, then waits
// for those in flight.
func (r *Run) loop(ctx context.Context, g *Generator, client *http.Client, reqs []request) {
	interval := time.Duration(float64(time.Second) / r.rps)
	end := time.Now().Add(r.duration)
	slots := make(chan struct{}, g.maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		sentAt := time.Now()
		if !sentAt.Before(end) || ctx.Err() != nil {
			return
		}
		select {
		case slots <- struct{}{}:
			r.sent.Add(1)
			req := reqs[i%len(reqs)]
			wg.Go(func() {
				defer func() { <-slots }()
				if r.do(ctx, g, client, req) {
					r.ok.Add(1)
				} else {
					r.failed.Add(1)
				}
			})
		default:
			r.skipped.Add(1)
		}
		// The next request starts no sooner than one interval after this
		// one: there are never bursts, even after a late wake-up.
		next := sentAt.Add(interval)
		if !next.Before(end) {
			wait := time.Until(end)
			timer.Reset(max(wait, 0))
			continue
		}
		timer.Reset(time.Until(next))
	}
}

func (r *Run) do(ctx context.Context, g *Generator, client *http.Client, req request) bool {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, nil)
	if err != nil {
		return false
	}
	hr.Header = req.header.Clone()
	hr.Header.Set("User-Agent", g.agent)
	if req.host != "" {
		hr.Host = req.host
	}
	resp, err := client.Do(hr)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode < 400
}

// Stop ends the run early: no request starts after it, and those in flight
// are cancelled. Wait to see the final counts.
func (r *Run) Stop() { r.stop() }

// Done is closed when the run has ended and no request is in flight.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait waits for the run to end and returns its counts.
func (r *Run) Wait() Counts {
	<-r.done
	return r.Counts()
}

// Counts returns the counts so far.
func (r *Run) Counts() Counts {
	return Counts{Sent: r.sent.Load(), OK: r.ok.Load(), Failed: r.failed.Load(), Skipped: r.skipped.Load()}
}

// Status is a one-line account for status output:
// "load 2 rps for 30s to http://127.0.0.1:8080: 58 sent, 57 ok, 1 failed".
func (r *Run) Status() string {
	return fmt.Sprintf("load %g rps for %s to %s: %s", r.rps, rollout.Duration(r.duration), strings.Join(r.origins, ", "), r.Counts())
}
