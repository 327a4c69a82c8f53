package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream test servers answer with their name in the X-Version header and
// the body, and count the requests they got.
type testUpstream struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
	// handle, when set, answers instead of the default.
	handle atomic.Pointer[http.HandlerFunc]
}

func newTestUpstream(t testing.TB, name string) *testUpstream {
	t.Helper()
	u := &testUpstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		w.Header().Set("X-Version", name)
		if h := u.handle.Load(); h != nil {
			(*h)(w, r)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *testUpstream) URL() string { return u.srv.URL }

func (u *testUpstream) setHandler(h http.HandlerFunc) { u.handle.Store(&h) }

// seeded returns a deterministic, concurrency-safe random source.
func seeded(seed uint64) func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// netHTTPServer makes startProxy serve plain HTTP/1 with net/http's server
// (see TestWithNetHTTPServer); tests do not run in parallel.
var netHTTPServer bool

// startProxy starts a proxy on a free loopback port with the given table.
func startProxy(t testing.TB, opts Options, table Table) (*Proxy, string) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "test"
	}
	opts.NetHTTPServer = opts.NetHTTPServer || netHTTPServer
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	if table.Stable.Version != "" {
		if _, err := p.Update(table); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	if err := p.Listen(context.Background(), ListenConfig{Addr: "127.0.0.1:0"}); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return p, "http://" + p.Addr().String()
}

func newClient() *http.Client {
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
	}
}

// get sends a GET with optional headers and returns the status and the
// X-Version header.
func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Version")
}

// eventually polls cond every 10ms until it holds or 10 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func twoVersions(stable, canary *testUpstream, weight int) Table {
	return Table{
		Generation: 1,
		Stable:     Backend{Version: "v1", Upstreams: []string{stable.URL()}},
		Canary:     &Backend{Version: "v2", Upstreams: []string{canary.URL()}},
		Weight:     weight,
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// measure is Measure over the last hour on a real clock.
func measure(t *testing.T, p *Proxy, version, role string, kinds ...Kind) Window {
	t.Helper()
	now := p.now()
	w, err := p.Measure(version, role, now.Add(-time.Minute), now.Add(2*time.Second), kinds...)
	if err != nil {
		t.Fatalf("Measure(%s, %s): %v", version, role, err)
	}
	return w
}
