// Package dataplane is `aviary proxy --server URL`: the built-in proxies
// as a process of their own. It follows the server's routes through its
// event stream, persists the last known routing to a local file after every
// change, and on start serves that routing before it reaches the server, so
// traffic keeps flowing while the control plane is down or restarting. An
// admin endpoint tells the server which routes are applied and answers its
// measurement queries (the built-in provider, remotely).
//
// It is wiring: it may import the core, the built-in router and provider,
// and the API's wire types.
package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/server"

	providerbuiltin "aviary/internal/provider/builtin"
	routerbuiltin "aviary/internal/router/builtin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a data plane.
type Options struct {
	// Server is the control plane's base URL.
	Server string
	// State is the file holding the last known routing.
	State string
	// Admin is where the admin endpoint listens (port 0 picks one).
	Admin string
	// Logger receives the data plane's logs (nil: discarded).
	Logger *slog.Logger
	// Client reaches the server (default: a client without a timeout,
	// for the stream).
	Client *http.Client
}

// DataPlane is a running data plane.
type DataPlane struct {
	opts     Options
	log      *slog.Logger
	router   *routerbuiltin.Router
	provider *providerbuiltin.Provider
	reg      *prometheus.Registry
	admin    *http.Server
	listener net.Listener

	mu      sync.Mutex
	entries map[string]server.RouteEntry // what is applied, as persisted

	cancel context.CancelFunc
	done   chan struct{}
}

// Start applies the persisted routing, starts the admin endpoint and
// begins following the server. It returns once the persisted routing is
// served.
func Start(ctx context.Context, o Options) (*DataPlane, error) {
	if o.Server == "" || o.State == "" {
		return nil, errors.New("a data plane needs the server's URL and a state file")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	d := &DataPlane{opts: o, log: o.Logger, reg: prometheus.NewRegistry(), entries: map[string]server.RouteEntry{}, done: make(chan struct{})}
	d.router = routerbuiltin.New(routerbuiltin.Options{Logger: o.Logger, Registerer: d.reg})
	d.provider = providerbuiltin.New(d.router)
	if err := d.restore(ctx); err != nil {
		d.router.Close(ctx)
		return nil, err
	}
	if err := d.listenAdmin(); err != nil {
		d.router.Close(ctx)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	go func() {
		defer close(d.done)
		d.follow(runCtx)
	}()
	return d, nil
}

// AdminURL is the admin endpoint's base URL.
func (d *DataPlane) AdminURL() string { return "http://" + d.listener.Addr().String() }

// Close stops following, stops the admin endpoint and drains the proxies.
func (d *DataPlane) Close(ctx context.Context) error {
	d.cancel()
	<-d.done
	err := d.admin.Shutdown(ctx)
	return errors.Join(err, d.router.Close(ctx))
}

// state is the persisted routing.
type state struct {
	Routes []server.RouteEntry `json:"routes"`
}

// restore applies the routing persisted by a previous run.
func (d *DataPlane) restore(ctx context.Context) error {
	b, err := os.ReadFile(d.opts.State)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the state file: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("state file %s is corrupt: %w", d.opts.State, err)
	}
	for _, e := range s.Routes {
		if err := d.apply(ctx, e, false); err != nil {
			d.log.Error("restore route", "rollout", e.Name, "err", err)
		}
	}
	d.log.Info("restored routing", "rollouts", len(s.Routes), "file", d.opts.State)
	return nil
}

// apply records an entry, persists the routing if asked, and then serves
// it: the state file is never older than what the proxies serve, so a
// crash at any moment restores at least the routing that was served (and
// the server counts a route as applied only once the proxies serve it).
// A route is served even when it could not be persisted: a rollback must
// take effect on a full disk too.
func (d *DataPlane) apply(ctx context.Context, e server.RouteEntry, persist bool) error {
	if e.Route == nil {
		return nil
	}
	d.mu.Lock()
	if old, ok := d.entries[e.Name]; !ok || old.Route.Generation <= e.Route.Generation {
		d.entries[e.Name] = e
	}
	d.mu.Unlock()
	var perr error
	if persist {
		perr = d.persist()
	}
	return errors.Join(perr, d.router.Apply(ctx, e.Name, e.Traffic, *e.Route))
}

func (d *DataPlane) remove(ctx context.Context, name string) error {
	d.mu.Lock()
	delete(d.entries, name)
	d.mu.Unlock()
	if err := d.router.Remove(ctx, name); err != nil {
		d.log.Warn("remove route", "rollout", name, "err", err)
	}
	return d.persist()
}

// persist writes the routing atomically: a crash leaves the old file or
// the new one, never a torn one.
func (d *DataPlane) persist() error {
	d.mu.Lock()
	s := state{Routes: make([]server.RouteEntry, 0, len(d.entries))}
	for _, e := range d.entries {
		s.Routes = append(s.Routes, e)
	}
	d.mu.Unlock()
	sort.Slice(s.Routes, func(i, j int) bool { return s.Routes[i].Name < s.Routes[j].Name })
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(d.opts.State), ".aviary-proxy-state-*")
	if err != nil {
		return fmt.Errorf("persist routing: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("persist routing: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("persist routing: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("persist routing: %w", err)
	}
	if err := os.Rename(tmp.Name(), d.opts.State); err != nil {
		return fmt.Errorf("persist routing: %w", err)
	}
	return nil
}

// follow reads the server's route stream, reconnecting with backoff, until
// ctx ends. The proxies keep serving what they have meanwhile.
func (d *DataPlane) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for warned := false; ctx.Err() == nil; {
		got, err := d.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff, warned = 100*time.Millisecond, false
		}
		// One warning per outage; the retries are logged at debug level.
		if !warned {
			d.log.Warn("lost the server; serving the last known routing until it is back", "server", d.opts.Server, "err", err)
			warned = true
		} else {
			d.log.Debug("server still unreachable", "server", d.opts.Server, "err", err, "retry", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stream follows one connection; it reports whether any event came.
func (d *DataPlane) stream(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(d.opts.Server, "/")+"/api/v1/routes/watch", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := d.opts.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("the server answered %s", res.Status)
	}
	f := follower{d: d}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var typ string
	var data bytes.Buffer
	got := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if typ != "" {
				got = true
				if err := f.handle(ctx, typ, data.Bytes()); err != nil {
					d.log.Error("route event", "type", typ, "err", err)
				}
			}
			typ = ""
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return got, err
	}
	return got, errors.New("the server closed the stream")
}

// follower applies one connection's events. After a resync it removes the
// rollouts the server no longer has, once the full state has arrived.
type follower struct {
	d       *DataPlane
	pending int             // route events still expected of a resync
	seen    map[string]bool // rollouts named by the resync so far
}

func (f *follower) handle(ctx context.Context, typ string, data []byte) error {
	d := f.d
	switch typ {
	case server.EventResync:
		var r server.Resync
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		d.log.Info("following the server", "server", d.opts.Server, "rollouts", r.Count)
		f.pending, f.seen = r.Count, map[string]bool{}
		if r.Count == 0 {
			return f.finishResync(ctx)
		}
	case server.EventRoute:
		var e server.RouteEntry
		if err := json.Unmarshal(data, &e); err != nil {
			return err
		}
		err := d.apply(ctx, e, true)
		if f.seen != nil {
			f.seen[e.Name] = true
			if f.pending--; f.pending == 0 {
				return errors.Join(err, f.finishResync(ctx))
			}
		}
		return err
	case server.EventDeleted:
		var del server.Deleted
		if err := json.Unmarshal(data, &del); err != nil {
			return err
		}
		return d.remove(ctx, del.Name)
	}
	return nil
}

func (f *follower) finishResync(ctx context.Context) error {
	d := f.d
	d.mu.Lock()
	var gone []string
	for name := range d.entries {
		if !f.seen[name] {
			gone = append(gone, name)
		}
	}
	d.mu.Unlock()
	f.seen = nil
	var errs []error
	for _, name := range gone {
		errs = append(errs, d.remove(ctx, name))
	}
	return errors.Join(errs...)
}

// Applied is the admin endpoint's answer about applied routes.
type Applied struct {
	Generations map[string]int64 `json:"generations"`
}

func (d *DataPlane) listenAdmin() error {
	addr := d.opts.Admin
	if addr == "" {
		addr = "127.0.0.1:7071"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin endpoint on %s: %w", addr, err)
	}
	d.listener = l
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/v1/applied", d.applied)
	mux.Handle("POST /api/v1/measure", MeasureHandler(d.provider))
	d.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.admin.Serve(l)
	return nil
}

func (d *DataPlane) applied(w http.ResponseWriter, r *http.Request) {
	a := Applied{Generations: map[string]int64{}}
	d.mu.Lock()
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	d.mu.Unlock()
	for _, name := range names {
		if rt, ok, err := d.router.Current(r.Context(), name); err == nil && ok {
			a.Generations[name] = rt.Generation
		}
	}
	writeJSON(w, http.StatusOK, a)
}

// MeasureError is the admin endpoint's error body.
type MeasureError struct {
	Error string `json:"error"`
}

// Querier measures; the built-in provider is one.
type Querier interface {
	Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error)
}

// MeasureHandler answers POST /api/v1/measure: a rollout.Query in, the
// querier's analysis.Measurement out, or a MeasureError (422 when the
// querier refuses the query, 400 when it is malformed).
func MeasureHandler(p Querier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q rollout.Query
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&q); err != nil {
			writeJSON(w, http.StatusBadRequest, MeasureError{Error: "malformed query: " + err.Error()})
			return
		}
		m, err := p.Query(r.Context(), q)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, MeasureError{Error: err.Error()})
			return
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			m.Value, m.HasValue = 0, false // JSON has no NaN
		}
		writeJSON(w, http.StatusOK, m)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
