package prometheus_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/controller"
	"aviary/internal/provider/prometheus"
	"aviary/internal/provider/providertest"
	"aviary/internal/rollout"
)

var _ controller.Provider = (*prometheus.Provider)(nil)

const (
	valueQuery = `max_over_time(providertest_value{rollout="{{.Rollout}}",version="{{.Version}}",role="{{.Role}}"}[{{.Interval}}])`
	countQuery = `max_over_time(providertest_requests{rollout="{{.Rollout}}",version="{{.Version}}",role="{{.Role}}"}[{{.Interval}}])`
)

func metric(address, query, count string) rollout.Metric {
	return rollout.Metric{Name: "m", Provider: rollout.ProviderPrometheus, Query: query,
		Prometheus: &rollout.PrometheusSource{Address: address, CountQuery: count}}
}

func query(m rollout.Metric, rolloutName, version, role string, end time.Time) rollout.Query {
	return rollout.Query{Rollout: rolloutName, Metric: m, Version: version, Role: role, Start: end.Add(-30 * time.Second), End: end}
}

// closedAddress is an address where nothing listens.
func closedAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hangingServer accepts queries and answers none until the test ends.
func hangingServer(t *testing.T) string {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv.URL
}

// The conformance suite against a real Prometheus scraping a test exporter.
func TestConformance(t *testing.T) {
	s := startServer(t)
	end := time.Now()
	providertest.Run(t, func(t *testing.T) (providertest.Provider, providertest.Fixture) {
		p := prometheus.New(prometheus.Options{})
		m := metric(s.addr, valueQuery, countQuery)
		return p, providertest.Fixture{
			Canary:  providertest.Expect{Query: query(m, "web", "v2", rollout.RoleCanary, end), Value: 0.25, Count: 1200},
			Stable:  providertest.Expect{Query: query(m, "web", "v1", rollout.RoleStable, end), Value: 0.5, Count: 24000},
			NoData:  query(m, "web", "v3", rollout.RoleCanary, end),
			Unknown: query(metric(s.addr, `sum(rate(providertest_value[{{.Interval}}]`, ""), "web", "v2", rollout.RoleCanary, end),
			Down:    &providertest.Target{Provider: p, Query: query(metric(closedAddress(t), valueQuery, ""), "web", "v2", rollout.RoleCanary, end)},
			Hang:    &providertest.Target{Provider: p, Query: query(metric(hangingServer(t), valueQuery, ""), "web", "v2", rollout.RoleCanary, end)},
		}
	})
}

// Replies of the real server that are not one plain number.
func TestRealServerShapes(t *testing.T) {
	s := startServer(t)
	end := time.Now()
	p := prometheus.New(prometheus.Options{})
	cases := []struct {
		name  string
		query string
		value float64
		note  string
		err   string
	}{
		{"scalar", `scalar(max(providertest_value{rollout="{{.Rollout}}",version="{{.Version}}",role="{{.Role}}"})) * 2`, 0.5, "", ""},
		{"nan", `max(providertest_value{rollout="{{.Rollout}}",role="{{.Role}}"}) * 0 / 0`, 0, "NaN", ""},
		{"inf", `max(providertest_value{rollout="{{.Rollout}}",role="{{.Role}}"}) / 0`, 0, "+Inf", ""},
		{"several series", `providertest_value{rollout="split"}`, 0, "", `returned 2 series, want one (aggregate them in the query, e.g. with sum or max): providertest_value{instance=`},
		{"range vector", `providertest_value{rollout="{{.Rollout}}"}[{{.Interval}}]`, 0, "", "range vector"},
		{"string", `"hello"`, 0, "", `the query returned a string, not a number`},
		{"bad query", `rate(providertest_value`, 0, "", "bad_data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := p.Query(t.Context(), query(metric(s.addr, c.query, ""), "web", "v2", rollout.RoleCanary, end))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", m, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.note != "" {
				if m.HasValue || m.Count != 0 || !strings.Contains(m.Note, c.note) {
					t.Fatalf("got %+v; want no value, Count 0 and a note containing %q", m, c.note)
				}
				return
			}
			if !m.HasValue || m.Value != c.value || m.Count != -1 {
				t.Fatalf("got %+v; want %g with an unknown count", m, c.value)
			}
		})
	}
}

// api is a fake Prometheus HTTP API that records the queries it gets and
// answers with a fixed reply.
type api struct {
	mu      sync.Mutex
	queries []string
	times   []string
	timeout []string
	auth    []string
	status  int
	body    string
}

func (a *api) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		a.mu.Lock()
		a.queries = append(a.queries, r.Form.Get("query"))
		a.times = append(a.times, r.Form.Get("time"))
		a.timeout = append(a.timeout, r.Form.Get("timeout"))
		a.auth = append(a.auth, r.Header.Get("Authorization"))
		status, body := a.status, a.body
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status == 0 {
			status = 200
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func vector(samples ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func sample(labels, value string) string {
	return `{"metric":{` + labels + `},"value":[1767225630,"` + value + `"]}`
}

// Odd replies, HTTP errors and warnings, from a fake server.
func TestReplies(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		value  float64
		has    bool
		note   string
		err    string
	}{
		{"one sample", 0, vector(sample(`"version":"v2"`, "0.125")), 0.125, true, "", ""},
		{"empty vector", 0, vector(), 0, false, "no series", ""},
		{"nan", 0, vector(sample(``, "NaN")), 0, false, "NaN", ""},
		{"minus inf", 0, vector(sample(``, "-Inf")), 0, false, "-Inf", ""},
		{"several series", 0, vector(sample(`"pod":"b"`, "1"), sample(`"pod":"a"`, "2"), sample(`"pod":"c"`, "3")), 0, false, "",
			`the query returned 3 series, want one (aggregate them in the query, e.g. with sum or max): {pod="a"}, {pod="b"}, {pod="c"}`},
		{"scalar", 0, `{"status":"success","data":{"resultType":"scalar","result":[1767225630,"7"]}}`, 7, true, "", ""},
		{"string", 0, `{"status":"success","data":{"resultType":"string","result":[1767225630,"x"]}}`, 0, false, "", `the query returned a string, not a number`},
		{"warnings", 0, `{"status":"success","warnings":["results may be partial"],"data":{"resultType":"vector","result":[` + sample(``, "3") + `]}}`, 3, true, "Prometheus warned: results may be partial", ""},
		{"http 500", 500, `upstream exploded`, 0, false, "", "server_error: server error: 500: upstream exploded"},
		{"api error", 400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`, 0, false, "", "bad_data: parse error at char 5"},
		{"malformed json", 0, `{"status":"success","data":{"resultType":"vector","result":[`, 0, false, "", "bad_response"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &api{status: c.status, body: c.body}
			var logs bytes.Buffer
			p := prometheus.New(prometheus.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			end := time.Unix(1767225630, 0)
			q := query(metric(a.start(t), `up{version="{{.Version}}"}`, ""), "web", "v2", rollout.RoleCanary, end)
			m, err := p.Query(t.Context(), q)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", m, err, c.err)
				}
				if !strings.Contains(err.Error(), `query "up{version=\"v2\"}"`) {
					t.Errorf("error %q does not name the query", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.HasValue != c.has || m.Value != c.value || !strings.Contains(m.Note, c.note) {
				t.Fatalf("got %+v; want value %g (has %v) and a note containing %q", m, c.value, c.has, c.note)
			}
			if !c.has && m.Count != 0 {
				t.Errorf("no data with Count %d, want 0", m.Count)
			}
			if c.note != "" && strings.Contains(c.note, "warned") && !strings.Contains(logs.String(), "results may be partial") {
				t.Errorf("warnings not logged: %q", logs.String())
			}
		})
	}
}

// The templates are rendered with the query's fields and the user's vars,
// evaluated at the window's end, and the context's deadline becomes the
// query's timeout; the count query fills Count.
func TestTemplatesAndCount(t *testing.T) {
	a := &api{body: vector(sample(``, "1234.4"))}
	addr := a.start(t)
	m := metric(addr, `rate(x{svc="{{.svc}}",rollout="{{.Rollout}}",version="{{.Version}}",role="{{.Role}}"}[{{.Interval}}] @ {{.End}})`,
		`sum(increase(n{version="{{.Version}}"}[{{.Interval}}]))`)
	m.Prometheus.Vars = map[string]string{"svc": "checkout"}
	end := time.Unix(1767225690, 0)
	q := rollout.Query{Rollout: "web", Metric: m, Version: "v2", Role: rollout.RoleCanary, Start: end.Add(-90 * time.Second), End: end}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	got, err := prometheus.New(prometheus.Options{}).Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != 1234.4 || got.Count != 1234 {
		t.Fatalf("got value %g count %d, want 1234.4 and 1234", got.Value, got.Count)
	}
	want := []string{
		`rate(x{svc="checkout",rollout="web",version="v2",role="canary"}[1m30s] @ 1767225690)`,
		`sum(increase(n{version="v2"}[1m30s]))`,
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if strings.Join(a.queries, "\n") != strings.Join(want, "\n") {
		t.Fatalf("queries:\n%s\nwant:\n%s", strings.Join(a.queries, "\n"), strings.Join(want, "\n"))
	}
	for i, ts := range a.times {
		if ts != "1767225690" && ts != "1767225690.000" {
			t.Errorf("query %d evaluated at %q, want the window's end 1767225690", i, ts)
		}
		if a.timeout[i] == "" {
			t.Errorf("query %d has no timeout, want the context's deadline", i)
		}
	}
}

// A count query with no series says the value has no requests behind it.
func TestCountNoSeries(t *testing.T) {
	replies := []string{vector(sample(``, "0.5")), vector()}
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body := replies[n%2]
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	q := query(metric(srv.URL, "v", "c"), "web", "v2", rollout.RoleCanary, time.Unix(1767225630, 0))
	m, err := prometheus.New(prometheus.Options{}).Query(t.Context(), q)
	if err != nil || !m.HasValue || m.Count != 0 || !strings.Contains(m.Note, "count query: the query returned no series") {
		t.Fatalf("got %+v, %v; want 0.5 with Count 0 and a note", m, err)
	}
}

// Credentials come from files or the environment, are sent on every
// request, and never appear in errors.
func TestAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PROM_PASSWORD": "hunter2"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name string
		auth *rollout.HTTPAuth
		want string
		err  string
	}{
		{"bearer file", &rollout.HTTPAuth{BearerTokenFile: tokenFile}, "Bearer s3cret-token", ""},
		{"bearer env", &rollout.HTTPAuth{BearerToken: "${PROM_PASSWORD}"}, "Bearer hunter2", ""},
		{"basic env", &rollout.HTTPAuth{BasicAuth: &rollout.BasicAuth{Username: "aviary", Password: "${PROM_PASSWORD}"}},
			"Basic " + base64.StdEncoding.EncodeToString([]byte("aviary:hunter2")), ""},
		{"basic file", &rollout.HTTPAuth{BasicAuth: &rollout.BasicAuth{Username: "aviary", PasswordFile: tokenFile}},
			"Basic " + base64.StdEncoding.EncodeToString([]byte("aviary:s3cret-token")), ""},
		{"unset env", &rollout.HTTPAuth{BearerToken: "${NOPE}"}, "", "environment variable NOPE is not set"},
		{"missing file", &rollout.HTTPAuth{BearerTokenFile: filepath.Join(dir, "gone")}, "", "read credentials file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &api{body: vector(sample(``, "1"))}
			m := metric(a.start(t), "up", "")
			m.Prometheus.Auth = c.auth
			var logs bytes.Buffer
			p := prometheus.New(prometheus.Options{LookupEnv: lookup, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			_, err := p.Query(t.Context(), query(m, "web", "v2", rollout.RoleCanary, time.Unix(1767225630, 0)))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.auth[0] != c.want {
				t.Fatalf("Authorization %q, want %q", a.auth[0], c.want)
			}
			if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "hunter2") {
				t.Fatalf("a secret was logged: %s", logs.String())
			}
		})
	}
}

// Errors from an unreachable server name the server and the query.
func TestUnreachable(t *testing.T) {
	addr := closedAddress(t)
	q := query(metric(addr, "up", ""), "web", "v2", rollout.RoleCanary, time.Unix(1767225630, 0))
	_, err := prometheus.New(prometheus.Options{}).Query(t.Context(), q)
	if err == nil || !strings.Contains(err.Error(), "prometheus "+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want a connection error naming %s", err, addr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v is not a timeout", err)
	}
}
