package builtin

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"aviary/internal/rollout"
)

// routerContract is the controller's Router interface, copied here until
// the controller declares it.
type routerContract interface {
	Apply(ctx context.Context, rollout string, t rollout.Traffic, r rollout.Route) error
	Current(ctx context.Context, rollout string) (rollout.Route, bool, error)
	Remove(ctx context.Context, rollout string) error
}

var _ routerContract = (*Router)(nil)

func upstream(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s.URL
}

func fetch(t *testing.T, addr string, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET via %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestApplyCurrentRemove(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	defer r.Close(ctx)
	v1, v2 := upstream(t, "v1"), upstream(t, "v2")
	traffic := rollout.Traffic{Router: "builtin", Listen: "127.0.0.1:0", Balance: rollout.BalanceLeastRequests}
	route := rollout.Route{
		Generation: 3,
		Stable:     rollout.Backend{Version: "v1", Upstreams: []string{v1}},
		Canary:     &rollout.Backend{Version: "v2", Upstreams: []string{v2}},
		Weight:     0,
		Match:      []rollout.Match{{Headers: map[string]rollout.StringMatch{"x-canary": {Exact: "always"}}}},
		Stickiness: &rollout.Stickiness{HashOn: "header/x-user"},
		Mirror:     &rollout.Mirror{Percent: 0},
	}
	if _, ok, _ := r.Current(ctx, "web"); ok {
		t.Fatal("Current before Apply reported a route")
	}
	if err := r.Apply(ctx, "web", traffic, route); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Proxy("web")
	addr := p.Addr().String()
	if got := fetch(t, addr, nil); got != "v1" {
		t.Errorf("weight 0: got %s, want v1", got)
	}
	if got := fetch(t, addr, map[string]string{"X-Canary": "always"}); got != "v2" {
		t.Errorf("matched: got %s, want v2", got)
	}
	if cur, ok, err := r.Current(ctx, "web"); !ok || err != nil || !cmp.Equal(cur, route) {
		t.Errorf("Current = %v, %v, %v; want the applied route", cur, ok, err)
	}
	// Apply is idempotent and a lower generation is ignored.
	if err := r.Apply(ctx, "web", traffic, route); err != nil {
		t.Fatal(err)
	}
	older := route
	older.Generation, older.Weight = 2, 100
	if err := r.Apply(ctx, "web", traffic, older); err != nil {
		t.Fatalf("older route: %v, want it ignored without error", err)
	}
	if got := fetch(t, addr, nil); got != "v1" {
		t.Errorf("after an older route at weight 100: got %s, want v1", got)
	}
	newer := route
	newer.Generation, newer.Weight = 4, 100
	if err := r.Apply(ctx, "web", traffic, newer); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, addr, nil); got != "v2" {
		t.Errorf("weight 100: got %s, want v2", got)
	}
	if cur, _, _ := r.Current(ctx, "web"); cur.Generation != 4 {
		t.Errorf("Current generation %d, want 4", cur.Generation)
	}
	if err := r.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still open after Remove")
	}
	if _, ok, _ := r.Current(ctx, "web"); ok {
		t.Error("Current after Remove reported a route")
	}
	if err := r.Remove(ctx, "web"); err != nil {
		t.Errorf("second Remove = %v, want nil", err)
	}
}

func TestApplyRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	defer r.Close(ctx)
	v1 := upstream(t, "v1")
	good := rollout.Route{Generation: 1, Stable: rollout.Backend{Version: "v1", Upstreams: []string{v1}}}
	cases := []struct {
		name    string
		traffic rollout.Traffic
		route   rollout.Route
		want    string
	}{
		{"other router", rollout.Traffic{Router: "istio", Listen: "127.0.0.1:0"}, good, `traffic.router: "istio" is not "builtin"`},
		{"no listen", rollout.Traffic{}, good, "traffic.listen: empty"},
		{"half TLS", rollout.Traffic{Listen: "127.0.0.1:0", TLS: &rollout.TLS{CertFile: "c.pem"}}, good, "traffic.tls: both certFile and keyFile"},
		{"bad balance", rollout.Traffic{Listen: "127.0.0.1:0", Balance: "random"}, good, `balance: unknown policy "random"`},
		{"bad weight", rollout.Traffic{Listen: "127.0.0.1:0"}, rollout.Route{Generation: 1, Stable: good.Stable, Weight: 300}, "weight: 300"},
		{"address in use", rollout.Traffic{Listen: "256.0.0.1:1"}, good, "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Apply(ctx, "web", tc.traffic, tc.route)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `rollout "web"`) {
				t.Errorf("Apply = %v, want an error naming the rollout and containing %q", err, tc.want)
			}
			if _, ok := r.Proxy("web"); ok {
				t.Error("a failed first Apply left a proxy behind")
			}
		})
	}
}

func TestListenChangeMovesProxy(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	defer r.Close(ctx)
	route := rollout.Route{Generation: 1, Stable: rollout.Backend{Version: "v1", Upstreams: []string{upstream(t, "v1")}}}
	if err := r.Apply(ctx, "web", rollout.Traffic{Listen: "127.0.0.1:0"}, route); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Proxy("web")
	first := p.Addr().String()
	route.Generation = 2
	if err := r.Apply(ctx, "web", rollout.Traffic{Listen: "localhost:0"}, route); err != nil {
		t.Fatal(err)
	}
	second := p.Addr().String()
	if second == first {
		t.Fatal("listener did not move")
	}
	if got := fetch(t, second, nil); got != "v1" {
		t.Errorf("new listener: got %q", got)
	}
}

func TestConcurrentRollouts(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	defer r.Close(ctx)
	v1 := upstream(t, "v1")
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gen := range 20 {
				route := rollout.Route{Generation: int64(gen), Stable: rollout.Backend{Version: "v1", Upstreams: []string{v1}}}
				if err := r.Apply(ctx, name, rollout.Traffic{Listen: "127.0.0.1:0"}, route); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				if gen == 10 {
					if err := r.Remove(ctx, name); err != nil {
						t.Errorf("%s: remove: %v", name, err)
					}
				}
			}
			if cur, ok, _ := r.Current(ctx, name); !ok || cur.Generation != 19 {
				t.Errorf("%s: Current = generation %d (%v), want 19", name, cur.Generation, ok)
			}
		}()
	}
	wg.Wait()
}
