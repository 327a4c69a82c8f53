package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/controller"
	"aviary/internal/provider/providertest"
	"aviary/internal/provider/web"
	"aviary/internal/rollout"
)

var _ controller.Provider = (*web.Provider)(nil)

// kpi is a fake business-metrics service: a value and a session count per
// version, null for versions it does not know.
func kpi(t *testing.T) string {
	values := map[string][2]float64{"v2": {0.031, 1200}, "v1": {0.034, 24000}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kpi" {
			http.NotFound(w, r)
			return
		}
		v, ok := values[r.URL.Query().Get("version")]
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			fmt.Fprint(w, `{"data": {"conversion": null, "sessions": 0}}`)
			return
		}
		fmt.Fprintf(w, `{"data": {"conversion": %g, "sessions": %g, "role": %q}}`, v[0], v[1], r.URL.Query().Get("role"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func metric(base, query, count string) rollout.Metric {
	return rollout.Metric{Name: "conversion", Provider: rollout.ProviderWeb, Query: query,
		Web: &rollout.WebSource{URL: base + "/kpi?version={{.Version}}&role={{.Role}}&window={{.Interval}}", Count: count}}
}

func query(m rollout.Metric, version, role string) rollout.Query {
	end := time.Unix(1767225630, 0)
	return rollout.Query{Rollout: "web", Metric: m, Version: version, Role: role, Start: end.Add(-30 * time.Second), End: end}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (providertest.Provider, providertest.Fixture) {
		p := web.New(web.Options{})
		base := kpi(t)
		m := metric(base, "$.data.conversion", "$.data.sessions")
		closed := func() string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			return "http://" + l.Addr().String()
		}()
		stop := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(func() { close(stop); hang.Close() })
		return p, providertest.Fixture{
			Canary:  providertest.Expect{Query: query(m, "v2", rollout.RoleCanary), Value: 0.031, Count: 1200},
			Stable:  providertest.Expect{Query: query(m, "v1", rollout.RoleStable), Value: 0.034, Count: 24000},
			NoData:  query(m, "v3", rollout.RoleCanary),
			Unknown: query(metric(base, "$.data.nope", ""), "v2", rollout.RoleCanary),
			Down:    &providertest.Target{Provider: p, Query: query(metric(closed, "$.data.conversion", ""), "v2", rollout.RoleCanary)},
			Hang:    &providertest.Target{Provider: p, Query: query(metric(hang.URL, "$.data.conversion", ""), "v2", rollout.RoleCanary)},
		}
	})
}

// reply is a server answering with a fixed status and body, recording
// what it was asked.
type reply struct {
	status int
	body   string

	mu       sync.Mutex
	method   string
	url      string
	reqBody  string
	headers  http.Header
	requests int
}

func (r *reply) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.method, r.url, r.reqBody, r.headers = req.Method, req.URL.String(), string(b), req.Header.Clone()
		r.requests++
		r.mu.Unlock()
		if r.status != 0 {
			w.WriteHeader(r.status)
		}
		fmt.Fprint(w, r.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestReplies(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		query  string
		count  string
		value  float64
		has    bool
		cnt    int64
		err    string
	}{
		{"path", 0, `{"a": {"b": [4.5, 6]}}`, "$.a.b[0]", "", 4.5, true, -1, ""},
		{"expr", 0, `{"hits": 30, "total": 1200}`, "body.hits / body.total", "body.total", 0.025, true, 1200, ""},
		{"expr sum", 0, `{"shards": [{"errors": 2}, {"errors": 3}]}`, "sum(map(body.shards, .errors))", "", 5, true, -1, ""},
		{"top-level array", 0, `[1, 2, 3]`, "$[2]", "", 3, true, -1, ""},
		{"null", 0, `{"v": null}`, "$.v", "", 0, false, 0, ""},
		{"expr nan", 0, `{"a": 0, "b": 0}`, "body.a / body.b", "", 0, false, 0, ""},
		{"null count", 0, `{"v": 1, "n": null}`, "$.v", "$.n", 1, true, 0, ""},
		{"missing path", 0, `{"data": {"value": 1}}`, "$.data.rate", "", 0, false, 0, `value: $.data.rate: $.data has no key "rate" (it has: value)`},
		{"missing count", 0, `{"v": 1}`, "$.v", "$.n", 0, false, 0, `count: $.n: $ has no key "n"`},
		{"negative count", 0, `{"v": 1, "n": -3}`, "$.v", "$.n", 0, false, 0, "negative count"},
		{"not a number", 0, `{"v": "0.5"}`, "$.v", "", 0, false, 0, `$.v is the string "0.5", not a number`},
		{"bad json", 0, `{"v": 1`, "$.v", "", 0, false, 0, `the reply is not JSON (unexpected EOF): "{\"v\": 1"`},
		{"two values", 0, `{"v": 1} {"v": 2}`, "$.v", "", 0, false, 0, "more than one JSON value"},
		{"html", 0, `<html>oops</html>`, "$.v", "", 0, false, 0, "the reply is not JSON"},
		{"503", 503, `{"error": "warming up"}`, "$.v", "", 0, false, 0, `503 Service Unavailable: "{\"error\": \"warming up\"}"`},
		{"404", 404, ``, "$.v", "", 0, false, 0, "404 Not Found: (empty reply)"},
		{"expr error", 0, `{"v": "x"}`, "body.v * 2", "", 0, false, 0, "expression body.v * 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &reply{status: c.status, body: c.body}
			m := rollout.Metric{Name: "m", Provider: rollout.ProviderWeb, Query: c.query, Web: &rollout.WebSource{URL: r.start(t) + "/x", Count: c.count}}
			got, err := web.New(web.Options{}).Query(t.Context(), query(m, "v2", rollout.RoleCanary))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, c.err)
				}
				if !strings.Contains(err.Error(), "GET http://127.0.0.1:") {
					t.Errorf("error %q does not name the request", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.HasValue != c.has || got.Value != c.value || got.Count != c.cnt {
				t.Fatalf("got value %g (has %v) count %d, want %g (has %v) count %d", got.Value, got.HasValue, got.Count, c.value, c.has, c.cnt)
			}
			if !c.has && got.Note == "" {
				t.Errorf("no data without a note")
			}
		})
	}
}

// POST sends the rendered JSON body with the headers and credentials.
func TestPost(t *testing.T) {
	r := &reply{body: `{"result": {"value": 0.99}}`}
	base := r.start(t)
	m := rollout.Metric{Name: "m", Provider: rollout.ProviderWeb, Query: "$.result.value", Web: &rollout.WebSource{
		URL: base + "/q/{{.Rollout}}", Method: "POST",
		Body:    `{"version": "{{.Version}}", "role": "{{.Role}}", "from": "{{.StartRFC3339}}", "to": {{.End}}, "team": "{{.team}}"}`,
		Headers: map[string]string{"X-Tenant": "shop"},
		Auth:    &rollout.HTTPAuth{BearerToken: "${KPI_TOKEN}"},
		Vars:    map[string]string{"team": "payments"},
	}}
	p := web.New(web.Options{LookupEnv: func(k string) (string, bool) { return "tok-" + k, k == "KPI_TOKEN" }})
	got, err := p.Query(t.Context(), query(m, "v2", rollout.RoleCanary))
	if err != nil || got.Value != 0.99 {
		t.Fatalf("got %+v, %v", got, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var body map[string]any
	if err := json.Unmarshal([]byte(r.reqBody), &body); err != nil {
		t.Fatalf("body %q: %v", r.reqBody, err)
	}
	want := map[string]any{"version": "v2", "role": "canary", "from": "2026-01-01T00:00:00Z", "to": float64(1767225630), "team": "payments"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, body[k], v)
		}
	}
	if r.method != "POST" || r.url != "/q/web" || r.headers.Get("X-Tenant") != "shop" ||
		r.headers.Get("Authorization") != "Bearer tok-KPI_TOKEN" || r.headers.Get("Content-Type") != "application/json" {
		t.Fatalf("got %s %s with headers %v", r.method, r.url, r.headers)
	}
}

// Only http and https are asked, and a body that is not JSON once rendered
// is not sent.
func TestRefused(t *testing.T) {
	r := &reply{body: `{"v": 1}`}
	base := r.start(t)
	cases := []struct {
		name string
		src  rollout.WebSource
		err  string
	}{
		{"file", rollout.WebSource{URL: "file:///etc/passwd"}, "only http and https"},
		{"credentials", rollout.WebSource{URL: strings.Replace(base, "http://", "http://u:p@", 1)}, "holds credentials"},
		{"bad body", rollout.WebSource{URL: base, Method: "POST", Body: `{"v": {{.Version}}}`}, "not valid JSON once rendered"},
		{"template", rollout.WebSource{URL: base + "/{{.nope}}"}, `map has no entry for key "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			m := rollout.Metric{Name: "m", Provider: rollout.ProviderWeb, Query: "$.v", Web: &src}
			_, err := web.New(web.Options{}).Query(t.Context(), query(m, "v2", rollout.RoleCanary))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want an error containing %q", err, c.err)
			}
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests != 0 {
		t.Fatalf("%d requests were sent, want none", r.requests)
	}
}

// A redirect to another scheme is not followed.
func TestRedirectScheme(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.invalid/x", http.StatusFound)
	}))
	defer srv.Close()
	m := rollout.Metric{Name: "m", Provider: rollout.ProviderWeb, Query: "$.v", Web: &rollout.WebSource{URL: srv.URL}}
	_, err := web.New(web.Options{}).Query(t.Context(), query(m, "v2", rollout.RoleCanary))
	if err == nil || !strings.Contains(err.Error(), "only http and https") {
		t.Fatalf("got %v, want a refused redirect", err)
	}
}
