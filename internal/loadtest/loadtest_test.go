package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/deptest"
	"aviary/internal/rollout"
)

func TestImports(t *testing.T) {
	deptest.Check(t, ".", deptest.Rules{Allow: []string{"aviary/internal/rollout"}})
}

// counter counts the requests it gets and records the last one.
type counter struct {
	*httptest.Server
	mu     sync.Mutex
	n      int
	last   *http.Request
	status int
}

func newCounter(t *testing.T, status int) *counter {
	t.Helper()
	c := &counter{status: status}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n++
		c.last = r
		c.mu.Unlock()
		if c.status == http.StatusFound {
			http.Redirect(w, r, r.Header.Get("X-Redirect-To"), http.StatusFound)
			return
		}
		w.WriteHeader(c.status)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// The rate is an upper bound that holds over the whole run: never more than
// rps·window+1 requests, and (on any machine that is not stalled) at least
// half of that.
func TestRate(t *testing.T) {
	srv := newCounter(t, http.StatusOK)
	const rps, window = 20.0, time.Second
	g := New(Options{})
	r, err := g.Start(t.Context(), rollout.Load{RPS: rps}, Target{Origins: []string{srv.URL}}, window)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Wait()
	n := srv.count()
	maxN := int(rps*window.Seconds()) + 1
	if n > maxN || n < maxN/2 {
		t.Errorf("got %d requests in %s at %g rps, want between %d and %d", n, window, rps, maxN/2, maxN)
	}
	if c.Sent != uint64(n) || c.OK != uint64(n) || c.Failed != 0 {
		t.Errorf("got counts %+v, want %d sent and ok", c, n)
	}
	if !strings.Contains(r.Status(), "load 20 rps for 1s to "+srv.URL+": ") {
		t.Errorf("status %q", r.Status())
	}
}

// Requests carry the hook's method, path, query and headers, the
// canary-forcing header, and go to the origins in turn.
func TestRequests(t *testing.T) {
	a, b := newCounter(t, http.StatusOK), newCounter(t, http.StatusInternalServerError)
	l := rollout.Load{RPS: 100, Method: "POST", Path: "/api/ping?probe=1", Headers: map[string]string{"X-Team": "payments", "Host": "web.example.com"}}
	tgt := Target{Origins: []string{a.URL, b.URL + "/"}, Force: Header{"X-Aviary-Canary", "run-3-token"}}
	r, err := New(Options{Version: "1.2.3"}).Start(t.Context(), l, tgt, 95*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Wait()
	if a.count() == 0 || b.count() == 0 || a.count()-b.count() > 1 || b.count()-a.count() > 1 {
		t.Errorf("got %d and %d requests, want them split evenly", a.count(), b.count())
	}
	if c.OK != uint64(a.count()) || c.Failed != uint64(b.count()) {
		t.Errorf("got %+v, want %d ok (200) and %d failed (500)", c, a.count(), b.count())
	}
	req := a.last
	for k, want := range map[string]string{"method": "POST", "uri": "/api/ping?probe=1", "host": "web.example.com",
		"X-Team": "payments", "X-Aviary-Canary": "run-3-token", "User-Agent": "aviary/1.2.3 (load)"} {
		got := req.Header.Get(k)
		switch k {
		case "method":
			got = req.Method
		case "uri":
			got = req.RequestURI
		case "host":
			got = req.Host
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
}

func TestStop(t *testing.T) {
	srv := newCounter(t, http.StatusOK)
	ctx, cancel := context.WithCancel(t.Context())
	r, err := New(Options{}).Start(ctx, rollout.Load{RPS: 50}, Target{Origins: []string{srv.URL}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for srv.count() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	c := r.Wait()
	n := srv.count()
	time.Sleep(100 * time.Millisecond) // five intervals
	if srv.count() != n || r.Counts() != c {
		t.Errorf("requests went on after the run ended: %d then %d", n, srv.count())
	}

	r, err = New(Options{}).Start(t.Context(), rollout.Load{RPS: 50}, Target{Origins: []string{srv.URL}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	<-r.Done()
}

// A receiver that never answers holds MaxInFlight requests; further ticks
// are skipped rather than queued, and the requests time out.
func TestMaxInFlight(t *testing.T) {
	done := make(chan struct{})
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(done)
	g := New(Options{MaxInFlight: 2, RequestTimeout: time.Second})
	r, err := g.Start(t.Context(), rollout.Load{RPS: 50}, Target{Origins: []string{srv.URL}}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Wait()
	if c.Sent != 2 || c.Failed != 2 || c.Skipped == 0 {
		t.Errorf("got %+v, want 2 sent and failed, some skipped", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

// Redirects are not followed: the load stays on its target.
func TestNoRedirects(t *testing.T) {
	other := newCounter(t, http.StatusOK)
	redirecting := newCounter(t, http.StatusFound)
	l := rollout.Load{RPS: 100, Headers: map[string]string{"X-Redirect-To": other.URL + "/elsewhere"}}
	r, err := New(Options{}).Start(t.Context(), l, Target{Origins: []string{redirecting.URL}}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Wait()
	if other.count() != 0 || redirecting.count() == 0 || c.OK != c.Sent {
		t.Errorf("redirect target got %d requests (want 0); origin got %d; counts %+v", other.count(), redirecting.count(), c)
	}
}

func TestRefused(t *testing.T) {
	ok := Target{Origins: []string{"http://127.0.0.1:9"}}
	tests := []struct {
		name string
		l    rollout.Load
		t    Target
		d    time.Duration
		want string
	}{
		{"no origins", rollout.Load{}, Target{}, time.Second, "a load target needs at least one address"},
		{"not http", rollout.Load{}, Target{Origins: []string{"ftp://127.0.0.1:21"}}, time.Second, `load target "ftp://127.0.0.1:21": want an http:// or https:// origin`},
		{"path in origin", rollout.Load{}, Target{Origins: []string{"http://127.0.0.1:9/admin"}}, time.Second, "must be an origin"},
		{"credentials", rollout.Load{}, Target{Origins: []string{"http://u:p@127.0.0.1:9"}}, time.Second, "must not hold credentials"},
		{"no host", rollout.Load{}, Target{Origins: []string{"http:///x"}}, time.Second, "has no host"},
		{"network-path path", rollout.Load{Path: "//evil.example.com/x"}, ok, time.Second, "must be an absolute path"},
		{"relative path", rollout.Load{Path: "x"}, ok, time.Second, "must be an absolute path"},
		{"absolute URL path", rollout.Load{Path: "http://evil.example.com/"}, ok, time.Second, "must be an absolute path"},
		{"forcing header overridden", rollout.Load{Headers: map[string]string{"x-aviary-canary": "guess"}},
			Target{Origins: ok.Origins, Force: Header{"X-Aviary-Canary", "t"}}, time.Second, "is the canary-forcing header"},
		{"too fast", rollout.Load{RPS: rollout.MaxLoadRPS + 1}, ok, time.Second, "load rps must be between 0 and 100"},
		{"no duration", rollout.Load{}, ok, 0, "positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Options{}).Start(t.Context(), tt.l, tt.t, tt.d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			if r != nil {
				t.Errorf("got a run")
			}
		})
	}
}

// The dialer reaches only the target's addresses, whatever a request asks.
func TestGuard(t *testing.T) {
	_, allowed, err := plan(rollout.Load{}, Target{Origins: []string{"http://127.0.0.1:8080", "https://canary.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "canary.internal:443": true,
		"127.0.0.1:8081": false, "10.0.0.1:8080": false, "canary.internal:80": false} {
		if err := guard(allowed, addr); (err == nil) != want || err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("guard(%s) = %v, want allowed=%v", addr, err, want)
		}
	}
	// End to end: a client of a run refuses any other address.
	other := newCounter(t, http.StatusOK)
	g := New(Options{})
	c := g.client(allowed, false)
	if _, err := c.Get(other.URL); !errors.Is(err, ErrNotAllowed) || other.count() != 0 {
		t.Errorf("got %v, want the dial refused", err)
	}
}

func TestTargetFor(t *testing.T) {
	force := Header{"X-Aviary-Canary", "tok"}
	canary := rollout.Backend{Version: "v2", Upstreams: []string{"http://127.0.0.1:9002", "http://127.0.0.1:9003"}}
	tests := []struct {
		name    string
		l       rollout.Load
		traffic rollout.Traffic
		force   Header
		want    []string
		tls     bool
		err     string
	}{
		{"proxy", rollout.Load{Target: "proxy"}, rollout.Traffic{Listen: "127.0.0.1:8080"}, force, []string{"http://127.0.0.1:8080"}, false, ""},
		{"proxy default", rollout.Load{}, rollout.Traffic{Listen: ":8080"}, force, []string{"http://127.0.0.1:8080"}, false, ""},
		{"any v4", rollout.Load{}, rollout.Traffic{Listen: "0.0.0.0:8080"}, force, []string{"http://127.0.0.1:8080"}, false, ""},
		{"any v6", rollout.Load{}, rollout.Traffic{Listen: "[::]:8443", TLS: &rollout.TLS{}}, force, []string{"https://[::1]:8443"}, true, ""},
		{"upstreams", rollout.Load{Target: "upstreams"}, rollout.Traffic{}, Header{}, canary.Upstreams, false, ""},
		{"proxy without header", rollout.Load{}, rollout.Traffic{Listen: ":8080"}, Header{}, nil, false, "needs a canary-forcing header"},
		{"proxy without listen", rollout.Load{}, rollout.Traffic{}, force, nil, false, "needs the rollout's traffic.listen"},
		{"unknown", rollout.Load{Target: "stable"}, rollout.Traffic{}, force, nil, false, `unknown load target "stable"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TargetFor(tt.l, tt.traffic, canary, tt.force)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Origins, " ") != strings.Join(tt.want, " ") || got.InsecureSkipVerify != tt.tls {
				t.Errorf("got %+v, want origins %v tls %v", got, tt.want, tt.tls)
			}
			if tt.l.Target != "upstreams" && got.Force != tt.force {
				t.Errorf("got force %+v, want %+v", got.Force, tt.force)
			}
		})
	}
}
