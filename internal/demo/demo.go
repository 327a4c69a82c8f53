// Package demo holds the parts of `aviary demo` and of the end-to-end
// tests that stand in for the outside world: sample apps whose failures
// are set by flags, and a load generator that counts what each version
// answered. Everything listens and sends on loopback only.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// AppOptions say how a sample app answers.
type AppOptions struct {
	// Version is reported in the X-Version header and the body.
	Version string
	// ErrorRate is the share of requests answered 500.
	ErrorRate float64
	// Latency is the median answer time (log-normal, p99 at 3x the median).
	Latency time.Duration
	// SlowShare of requests take SlowExtra longer.
	SlowShare float64
	SlowExtra time.Duration
	// Addr to listen on (default 127.0.0.1:0).
	Addr string
}

// App is a running sample app.
type App struct {
	opts     AppOptions
	srv      *http.Server
	listener net.Listener
	served   atomic.Int64
	mu       sync.Mutex
	rng      *rand.Rand
}

// StartApp starts a sample app on loopback.
func StartApp(o AppOptions) (*App, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ErrorRate < 0 || o.ErrorRate > 1 || o.SlowShare < 0 || o.SlowShare > 1 {
		return nil, errors.New("error rate and slow share must be between 0 and 1")
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("sample app %s: %w", o.Version, err)
	}
	a := &App{opts: o, listener: l, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", a.serve)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.srv.Serve(l)
	return a, nil
}

// URL is the app's origin.
func (a *App) URL() string { return "http://" + a.listener.Addr().String() }

// Served counts the requests the app answered.
func (a *App) Served() int64 { return a.served.Load() }

// Close stops the app.
func (a *App) Close() error { return a.srv.Close() }

func (a *App) serve(w http.ResponseWriter, r *http.Request) {
	a.served.Add(1)
	a.mu.Lock()
	fail := a.rng.Float64() < a.opts.ErrorRate
	slow := a.rng.Float64() < a.opts.SlowShare
	z := a.rng.NormFloat64()
	a.mu.Unlock()
	if med := a.opts.Latency; med > 0 {
		// log-normal with p99 at three times the median
		d := time.Duration(float64(med) * math.Exp(z*math.Log(3)/2.326))
		if slow {
			d += a.opts.SlowExtra
		}
		sleep(r.Context(), d)
	} else if slow {
		sleep(r.Context(), a.opts.SlowExtra)
	}
	w.Header().Set("X-Version", a.opts.Version)
	if fail {
		http.Error(w, "sample app "+a.opts.Version+": injected failure", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "hello from %s\n", a.opts.Version)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// LoadOptions say how much load to send where.
type LoadOptions struct {
	// URL receives the requests; it must be a loopback address.
	URL string
	// RPS is the request rate.
	RPS float64
	// Concurrency bounds requests in flight (default 64).
	Concurrency int
	// Timeout bounds each request (default 5s).
	Timeout time.Duration
}

// Load sends requests at a steady rate until stopped.
type Load struct {
	opts   LoadOptions
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	stats map[string]*Count
	total Count
}

// Count is what one version (or all) answered.
type Count struct {
	Requests int64
	Errors   int64 // 5xx answers and failed requests
}

// StartLoad starts sending load; Stop ends it.
func StartLoad(ctx context.Context, o LoadOptions) (*Load, error) {
	if o.RPS <= 0 {
		return nil, errors.New("the load's rate must be positive")
	}
	if err := checkLoopback(o.URL); err != nil {
		return nil, err
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{opts: o, cancel: cancel, done: make(chan struct{}), stats: map[string]*Count{},
		client: &http.Client{Timeout: o.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency}}}
	go l.run(ctx)
	return l, nil
}

func checkLoopback(u string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("load target %q: %w", u, err)
	}
	host := req.URL.Hostname()
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return fmt.Errorf("load target %q is not a loopback address", u)
	}
	return nil
}

func (l *Load) run(ctx context.Context) {
	defer close(l.done)
	slots := make(chan struct{}, l.opts.Concurrency)
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.opts.RPS))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			l.record("", true) // too many in flight: the service is too slow
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			l.one(ctx)
		}()
	}
}

func (l *Load) one(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.opts.URL, nil)
	if err != nil {
		return
	}
	res, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.record("", true)
		}
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	l.record(res.Header.Get("X-Version"), res.StatusCode >= 500)
}

func (l *Load) record(version string, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.stats[version]
	if c == nil {
		c = &Count{}
		l.stats[version] = c
	}
	for _, c := range []*Count{c, &l.total} {
		c.Requests++
		if failed {
			c.Errors++
		}
	}
}

// Stats returns the counts by version ("" for requests no version
// answered) and in total.
func (l *Load) Stats() (map[string]Count, Count) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]Count{}
	for k, v := range l.stats {
		out[k] = *v
	}
	return out, l.total
}

// Stop ends the load and waits for requests in flight.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}
