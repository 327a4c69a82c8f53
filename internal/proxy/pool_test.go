package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	ups := []*testUpstream{newTestUpstream(t, "a"), newTestUpstream(t, "b"), newTestUpstream(t, "c")}
	tb := Table{Generation: 1, Stable: Backend{Version: "v1"}}
	for _, u := range ups {
		tb.Stable.Upstreams = append(tb.Stable.Upstreams, u.URL())
	}
	_, addr := startProxy(t, Options{}, tb)
	c := newClient()
	for range 90 {
		get(t, c, addr+"/", nil)
	}
	for _, u := range ups {
		if got := u.hits.Load(); got != 30 {
			t.Errorf("upstream %s got %d of 90 sequential requests, want 30", u.name, got)
		}
	}
}

func TestLeastRequestsAvoidsBusyUpstream(t *testing.T) {
	slow, fast := newTestUpstream(t, "slow"), newTestUpstream(t, "fast")
	release := make(chan struct{})
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	})
	tb := Table{Generation: 1, Balance: BalanceLeastRequests, Stable: Backend{Version: "v1", Upstreams: []string{slow.URL(), fast.URL()}}}
	p, addr := startProxy(t, Options{}, tb)
	c := newClient()
	// Park one request on the slow upstream.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, v := get(t, c, addr+"/", nil); v == "slow" {
				return
			}
		}
	}()
	eventually(t, "a request in flight on the slow upstream", func() bool {
		for _, u := range p.Status().Upstreams {
			if u.URL == slow.URL() && u.InFlight == 1 {
				return true
			}
		}
		return false
	})
	before := fast.hits.Load()
	for range 20 {
		if _, v := get(t, c, addr+"/", nil); v != "fast" {
			t.Errorf("request went to %s while slow had one in flight, want fast", v)
		}
	}
	if got := fast.hits.Load() - before; got != 20 {
		t.Errorf("fast got %d requests, want 20", got)
	}
	close(release)
	wg.Wait()
}

func TestActiveHealthCheckAndCanaryFallback(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	var mu sync.Mutex
	healthy := true
	canary.setHandler(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ok := healthy
		mu.Unlock()
		if r.URL.Path == "/healthz" && !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "v2")
	})
	setHealthy := func(v bool) { mu.Lock(); healthy = v; mu.Unlock() }
	tb := twoVersions(stable, canary, 100)
	tb.HealthCheck = &HealthCheck{Path: "/healthz", Interval: 10 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	p, addr := startProxy(t, Options{}, tb)
	c := newClient()
	from := time.Now().Add(-time.Second)
	if _, v := get(t, c, addr+"/", nil); v != "v2" {
		t.Fatalf("healthy canary at weight 100: got %s, want v2", v)
	}
	setHealthy(false)
	eventually(t, "the canary to fail its health checks", func() bool { return !p.Status().CanaryAvailable })
	for range 10 {
		if st, v := get(t, c, addr+"/", nil); st != 200 || v != "v1" {
			t.Fatalf("canary down: got %d from %s, want 200 from v1", st, v)
		}
	}
	if got := p.Status().Fallbacks; got != 10 {
		t.Errorf("Status().Fallbacks = %d, want 10", got)
	}
	// Stable served them, but they were the canary's: its errors.
	until := time.Now().Add(2 * time.Second)
	// (The window also holds the one healthy canary request before.)
	if w, err := p.Measure("v2", RoleCanary, from, until); err != nil || w.Requests != 11 || w.Errors != 10 {
		t.Errorf("canary measured %d requests, %d errors (%v); want 11 with the 10 fallbacks as errors", w.Requests, w.Errors, err)
	}
	if w, err := p.Measure("v1", RoleStable, from, until); err != nil || w.Requests != 0 {
		t.Errorf("stable measured %d requests (%v); the fallbacks are not stable's own traffic", w.Requests, err)
	}
	setHealthy(true)
	eventually(t, "the canary to pass its health checks", func() bool { return p.Status().CanaryAvailable })
	if _, v := get(t, c, addr+"/", nil); v != "v2" {
		t.Errorf("recovered canary: got %s, want v2", v)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestPassiveEjection(t *testing.T) {
	good := newTestUpstream(t, "good")
	dead := deadAddr(t)
	tb := Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{dead, good.URL()}}}
	p, addr := startProxy(t, Options{Ejection: Ejection{Failures: 3, Duration: time.Hour}}, tb)
	c := newClient()
	// A refused connection sent nothing, so the request is tried on the
	// other upstream: no client sees an error.
	for i := range 20 {
		if st, v := get(t, c, addr+"/", nil); st != 200 || v != "good" {
			t.Fatalf("request %d: got %d from %q, want 200 from good", i, st, v)
		}
	}
	var ejected bool
	for _, u := range p.Status().Upstreams {
		if u.URL == dead {
			ejected = u.Ejected && !u.Healthy
		}
	}
	if !ejected {
		t.Errorf("dead upstream not ejected: %+v", p.Status().Upstreams)
	}
	if got := p.ejections.Load(); got != 1 {
		t.Errorf("ejections = %d, want 1 (ejected for an hour)", got)
	}
	// 5xx answers count too.
	bad := newTestUpstream(t, "bad")
	bad.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	tb = Table{Generation: 2, Stable: Backend{Version: "v1", Upstreams: []string{bad.URL(), good.URL()}}}
	p.Update(tb)
	for range 20 {
		get(t, c, addr+"/", nil)
	}
	if got := bad.hits.Load(); got != 3 {
		t.Errorf("failing upstream got %d requests, want 3 (ejected after 3 failures)", got)
	}
}

func TestMirrorAccounting(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	var mu sync.Mutex
	var bodies []string
	canary.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Header.Get("X-Aviary-Mirror")+":"+string(b))
		mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
		}
	})
	tb := twoVersions(stable, canary, 0)
	tb.MirrorPercent = 100
	p, addr := startProxy(t, Options{Mirror: MirrorOptions{BodyLimit: 10}}, tb)
	c := newClient()
	for range 10 {
		get(t, c, addr+"/", nil)
	}
	get(t, c, addr+"/fail", nil)
	resp, err := c.Post(addr+"/", "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Post(addr+"/", "text/plain", strings.NewReader("a body over the limit"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "12 mirrored requests", func() bool { return measure(t, p, "v2", RoleCanary, KindMirrored).Requests == 12 })
	shadow := measure(t, p, "v2", RoleCanary, KindMirrored)
	if shadow.Errors != 1 {
		t.Errorf("mirrored errors = %d, want 1", shadow.Errors)
	}
	if live := measure(t, p, "v2", RoleCanary, KindWeighted, KindMatched); live.Requests != 0 {
		t.Errorf("canary live requests = %d, want 0: shadow traffic must be kept apart", live.Requests)
	}
	if st := measure(t, p, "v1", RoleStable); st.Requests != 13 || st.Errors != 0 {
		t.Errorf("stable: %d requests, %d errors; want 13, 0 (the mirror's failure is not stable's)", st.Requests, st.Errors)
	}
	if got := p.mirrorDropped[dropBody].Load(); got != 1 {
		t.Errorf("dropped for body size = %d, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, b := range bodies {
		if b == "1:small" {
			found = true
		}
		if !strings.HasPrefix(b, "1:") {
			t.Errorf("mirrored request without X-Aviary-Mirror: 1: %q", b)
		}
	}
	if !found {
		t.Errorf("mirrored bodies %q lack the POST body %q", bodies, "small")
	}
}

func TestShieldRetriesIdempotentCanaryFailures(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	canary.setHandler(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	})
	var stableBody string
	stable.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		stableBody = string(b)
	})
	tb := twoVersions(stable, canary, 100)
	tb.Shield = true
	p, addr := startProxy(t, Options{}, tb)
	c := newClient()
	if st, v := get(t, c, addr+"/", nil); st != 200 || v != "v1" {
		t.Errorf("shielded GET: got %d from %s, want 200 from v1", st, v)
	}
	// A POST is not idempotent: the user sees the canary's failure...
	resp, err := c.Post(addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("POST: got %d, want the canary's 500", resp.StatusCode)
	}
	// ...unless it is marked idempotent; its body is sent again.
	req, _ := http.NewRequest(http.MethodPost, addr+"/", strings.NewReader("again"))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || stableBody != "again" {
		t.Errorf("marked POST: got %d, stable saw body %q; want 200 and %q", resp.StatusCode, stableBody, "again")
	}
	can := measure(t, p, "v2", RoleCanary)
	if can.Requests != 3 || can.Errors != 3 {
		t.Errorf("canary: %d requests, %d errors; want 3, 3 (shielded failures still count)", can.Requests, can.Errors)
	}
	if st := measure(t, p, "v1", RoleStable); st.Requests != 0 {
		t.Errorf("stable recorded %d requests, want 0: shield retries are not stable's traffic", st.Requests)
	}
	if got := p.shieldRetries.Load(); got != 2 {
		t.Errorf("shield retries = %d, want 2", got)
	}
}

func TestMirrorQueueBound(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	release := make(chan struct{})
	canary.setHandler(func(w http.ResponseWriter, r *http.Request) { <-release })
	tb := twoVersions(stable, canary, 0)
	tb.MirrorPercent = 100
	p, addr := startProxy(t, Options{Mirror: MirrorOptions{Queue: 1, Workers: 1}}, tb)
	c := newClient()
	for range 5 {
		// The live requests never wait for their shadow copies.
		if st, v := get(t, c, addr+"/", nil); st != 200 || v != "v1" {
			t.Fatalf("got %d from %s, want 200 from v1", st, v)
		}
	}
	// One copy is with the blocked worker, at most one waits in the queue.
	dropped := p.mirrorDropped[dropQueueFull].Load()
	if dropped < 3 || dropped > 4 {
		t.Errorf("dropped %d copies for a full queue, want 3 or 4", dropped)
	}
	close(release)
	eventually(t, "the queued copies to be sent", func() bool {
		return measure(t, p, "v2", RoleCanary, KindMirrored).Requests == 5-dropped
	})
}
