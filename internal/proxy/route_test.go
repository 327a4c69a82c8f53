package proxy

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/quick"
	"time"
)

func TestWeightedSplitOverSockets(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	p, addr := startProxy(t, Options{Rand: seeded(42)}, twoVersions(stable, canary, 0))
	c := newClient()
	const n = 1000
	for gen, w := range []int{0, 1, 5, 50, 100} {
		t.Run(fmt.Sprintf("weight=%d", w), func(t *testing.T) {
			tb := twoVersions(stable, canary, w)
			tb.Generation = int64(gen + 2)
			if _, err := p.Update(tb); err != nil {
				t.Fatal(err)
			}
			got := 0
			for range n {
				st, v := get(t, c, addr+"/", nil)
				if st != http.StatusOK {
					t.Fatalf("status %d, want 200", st)
				}
				if v == "v2" {
					got++
				}
			}
			pr := float64(w) / 100
			mean, sigma := n*pr, math.Sqrt(n*pr*(1-pr))
			// Five standard deviations: a false alarm once in ~1.7 million
			// runs (and the seed is fixed).
			if math.Abs(float64(got)-mean) > 5*sigma {
				t.Errorf("canary got %d of %d requests at weight %d, want %.0f ± %.1f", got, n, w, mean, 5*sigma)
			}
		})
	}
}

// compiledFor compiles a table without starting anything.
func compiledFor(t *testing.T, tb Table) *compiled {
	t.Helper()
	p, err := New(Options{Name: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(t.Context()) })
	if err := tb.Validate(); err != nil {
		t.Fatal(err)
	}
	return p.compile(tb)
}

func unitTable(weight int) Table {
	return Table{
		Generation: 1,
		Stable:     Backend{Version: "v1", Upstreams: []string{"http://127.0.0.1:1"}},
		Canary:     &Backend{Version: "v2", Upstreams: []string{"http://127.0.0.1:2"}},
		Weight:     weight,
	}
}

func TestHashedChoiceIsMonotone(t *testing.T) {
	tables := make([]*compiled, 101)
	for w := range tables {
		tb := unitTable(w)
		tb.HashOn = "header/x-user-id"
		tables[w] = compiledFor(t, tb)
	}
	noRand := func() uint64 { panic("a keyed request must not use randomness") }
	toCanary := func(key string, w int) bool {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-User-Id", key)
		return tables[w].route(r, 0, noRand).be.role == RoleCanary
	}
	prop := func(key string, a, b uint8) bool {
		w1, w2 := int(a)%101, int(b)%101
		if w1 > w2 {
			w1, w2 = w2, w1
		}
		key = "k" + key // a request without the key is split at random
		return !toCanary(key, w1) || toCanary(key, w2)
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
	// The same key always gets the same answer, and the share of keys at
	// the canary follows the weight.
	for _, w := range []int{0, 10, 50, 100} {
		n := 0
		for i := range 2000 {
			key := fmt.Sprintf("user-%d", i)
			first := toCanary(key, w)
			if again := toCanary(key, w); again != first {
				t.Fatalf("key %q: two answers at weight %d", key, w)
			}
			if first {
				n++
			}
		}
		pr := float64(w) / 100
		if mean, sigma := 2000*pr, math.Sqrt(2000*pr*(1-pr)); math.Abs(float64(n)-mean) > 5*sigma {
			t.Errorf("weight %d: %d of 2000 keys at the canary, want %.0f ± %.0f", w, n, mean, 5*sigma)
		}
	}
}

func TestMatchRules(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	tb := twoVersions(stable, canary, 0)
	tb.Match = []Match{
		{Headers: map[string]StringMatch{"x-canary": {Exact: "always"}}},
		{Headers: map[string]StringMatch{"x-build": {Regex: `b-[0-9]+`}, "x-debug": {Present: true}}},
		{Query: map[string]StringMatch{"preview": {Exact: "1"}}},
		{Cookie: &CookieMatch{Name: "beta", StringMatch: StringMatch{Exact: "1"}}},
		{Users: &ListMatch{Header: "x-user-id", Values: []string{"alice", "bob"}}},
		{Segments: &ListMatch{Cookie: "segments", Values: []string{"staff"}}},
	}
	p, addr := startProxy(t, Options{}, tb)
	c := newClient()
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		canary bool
	}{
		{"no rule", "/", nil, false},
		{"header exact", "/", map[string]string{"X-Canary": "always"}, true},
		{"header exact differs", "/", map[string]string{"X-Canary": "never"}, false},
		{"regex and present", "/", map[string]string{"X-Build": "b-42", "X-Debug": ""}, true},
		{"regex must match whole value", "/", map[string]string{"X-Build": "b-42x", "X-Debug": "1"}, false},
		{"all conditions of a rule", "/", map[string]string{"X-Build": "b-42"}, false},
		{"query", "/?preview=1", nil, true},
		{"query differs", "/?preview=0", nil, false},
		{"cookie", "/", map[string]string{"Cookie": "a=b; beta=1"}, true},
		{"cookie differs", "/", map[string]string{"Cookie": "beta=0"}, false},
		{"user in list", "/", map[string]string{"X-User-Id": "bob"}, true},
		{"user not in list", "/", map[string]string{"X-User-Id": "carol"}, false},
		{"segment in cookie list", "/", map[string]string{"Cookie": "segments=beta,staff"}, true},
		{"segment not in list", "/", map[string]string{"Cookie": "segments=beta"}, false},
	}
	matched := int64(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, v := get(t, c, addr+tc.path, tc.hdr)
			if got := v == "v2"; got != tc.canary {
				t.Errorf("went to %s, want canary=%v", v, tc.canary)
			}
		})
		if tc.canary {
			matched++
		}
	}
	if w := measure(t, p, "v2", RoleCanary, KindMatched); w.Requests != matched {
		t.Errorf("canary matched requests = %d, want %d", w.Requests, matched)
	}
	if w := measure(t, p, "v2", RoleCanary, KindWeighted); w.Requests != 0 {
		t.Errorf("canary weighted requests = %d, want 0 at weight 0", w.Requests)
	}
}

func TestStickyCookie(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	tb := twoVersions(stable, canary, 50)
	tb.StickyCookie = "aviary-version"
	tb.StickyMaxAge = time.Hour
	p, addr := startProxy(t, Options{Rand: seeded(7)}, tb)
	c := newClient()

	// fetch returns the version and the cookie the proxy set, if any.
	fetch := func(cookie string) (string, string) {
		req, _ := http.NewRequest(http.MethodGet, addr+"/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		set := ""
		for _, ck := range resp.Cookies() {
			if ck.Name == "aviary-version" {
				set = ck.Name + "=" + ck.Value
				if ck.MaxAge != 3600 {
					t.Errorf("cookie Max-Age = %d, want 3600", ck.MaxAge)
				}
			}
		}
		return resp.Header.Get("X-Version"), set
	}
	// Clients without the cookie get one naming the version they got, and
	// keep that version.
	for i := range 40 {
		v, set := fetch("")
		if !strings.HasPrefix(set, "aviary-version="+v+":") {
			t.Fatalf("request %d: got %s with cookie %q, want a cookie naming %s", i, v, set, v)
		}
		for range 5 {
			again, set2 := fetch(set)
			if again != v {
				t.Fatalf("client with %q moved from %s to %s", set, v, again)
			}
			if set2 != "" {
				t.Fatalf("proxy set %q again for a client that has %q", set2, set)
			}
		}
	}
	// A client on stable moves to the canary once its bucket is below the
	// weight, and a canary cookie sticks even at weight 0.
	tb.Generation, tb.Weight = 2, 100
	p.Update(tb)
	if v, set := fetch("aviary-version=v1:99"); v != "v2" || set != "aviary-version=v2:99" {
		t.Errorf("stable client at weight 100: got %s, cookie %q; want v2, aviary-version=v2:99", v, set)
	}
	tb.Generation, tb.Weight = 3, 0
	p.Update(tb)
	if v, _ := fetch("aviary-version=v2:99"); v != "v2" {
		t.Errorf("canary client at weight 0: got %s, want v2", v)
	}
	// A cookie naming a version that no longer serves is ignored.
	if v, set := fetch("aviary-version=v0:3"); v != "v1" || !strings.HasPrefix(set, "aviary-version=v1:") {
		t.Errorf("stale cookie: got %s, cookie %q; want v1 and a new cookie", v, set)
	}
}

func TestTableValidation(t *testing.T) {
	good := unitTable(10)
	cases := []struct {
		name string
		edit func(*Table)
		want string
	}{
		{"no stable version", func(tb *Table) { tb.Stable.Version = "" }, "stable.version: empty"},
		{"no upstreams", func(tb *Table) { tb.Canary.Upstreams = nil }, `canary.upstreams: none given for version "v2"`},
		{"bad scheme", func(tb *Table) { tb.Stable.Upstreams = []string{"ftp://x:1"} }, `stable.upstreams[0]: "ftp://x:1": scheme "ftp" is not http or https`},
		{"same versions", func(tb *Table) { tb.Canary.Version = "v1" }, `canary.version: "v1" is also the stable version`},
		{"weight", func(tb *Table) { tb.Weight = 101 }, "weight: 101 is not a percent in 0-100"},
		{"mirror", func(tb *Table) { tb.MirrorPercent = -1 }, "mirrorPercent: -1"},
		{"bad regex", func(tb *Table) {
			tb.Match = []Match{{Headers: map[string]StringMatch{"x": {Regex: "("}}}}
		}, `match[0]: headers["x"]: regex "("`},
		{"two conditions in one string match", func(tb *Table) {
			tb.Match = []Match{{Query: map[string]StringMatch{"q": {Exact: "a", Present: true}}}}
		}, `match[0]: query["q"]: set exactly one of exact, regex or present (2 set)`},
		{"empty match", func(tb *Table) { tb.Match = []Match{{}} }, "match[0]: a match needs at least one condition"},
		{"list without source", func(tb *Table) { tb.Match = []Match{{Users: &ListMatch{Values: []string{"a"}}}} }, "match[0]: users: set exactly one of header or cookie"},
		{"hashOn", func(tb *Table) { tb.HashOn = "query/x" }, `hashOn: "query/x": unknown key source "query"`},
		{"balance", func(tb *Table) { tb.Balance = "random" }, `balance: unknown policy "random"`},
		{"sticky version", func(tb *Table) { tb.StickyCookie = "v"; tb.Canary.Version = "v 2" }, `stickyCookie: version "v 2" cannot be a cookie value`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := cloneTable(good)
			tc.edit(&tb)
			err := tb.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(good) = %v", err)
	}
	// Several problems are reported at once.
	bad := Table{Weight: -1}
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("Validate() = %v, want every problem", err)
	}
}

func TestUpstreamURLPrefix(t *testing.T) {
	var got string
	up := newTestUpstream(t, "v1")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) { got = r.RequestURI })
	_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL() + "/base/"}}})
	get(t, newClient(), addr+"/x?y=%20z", nil)
	if want := "/base/x?y=%20z"; got != want {
		t.Errorf("upstream got %q, want %q", got, want)
	}
	if _, err := url.Parse(addr); err != nil {
		t.Fatal(err)
	}
}
