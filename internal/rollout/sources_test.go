package rollout

import (
	"strings"
	"testing"
	"time"
)

// The prometheus and web blocks and conditions: every problem named by its
// field path.
func TestValidateSources(t *testing.T) {
	base := func(ms ...Metric) Manifest {
		return Manifest{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "web"}, Spec: Spec{
			Version: "v2", Upstreams: []string{"http://127.0.0.1:9002"},
			Traffic:  Traffic{Router: RouterBuiltin, Listen: "127.0.0.1:8080"},
			Strategy: Strategy{Canary: Canary{StepWeight: 50}},
			Analysis: Analysis{Metrics: ms},
		}}
	}
	prom := func(q string, src *PrometheusSource) Metric {
		m := Metric{Name: "m", Provider: ProviderPrometheus, Query: q, Prometheus: src}
		m.Condition = "canary.value < 1"
		return m
	}
	web := func(q string, src *WebSource) Metric {
		m := Metric{Name: "m", Provider: ProviderWeb, Query: q, Web: src}
		m.Condition = "canary.value < 1"
		return m
	}
	addr := "http://127.0.0.1:9090"
	cases := []struct {
		name  string
		m     Metric
		field string
		msg   string
	}{
		{"ok prometheus", prom(`rate(x{version="{{.Version}}",svc="{{.svc}}"}[{{.Interval}}])`,
			&PrometheusSource{Address: addr, CountQuery: `sum(increase(n{role="{{.Role}}"}[{{.Interval}}] @ {{.End}}))`,
				Vars: map[string]string{"svc": "checkout"}, Auth: &HTTPAuth{BearerTokenFile: "/run/token"}}), "", ""},
		{"no block", prom("up", nil), "spec.analysis.metrics[0].prometheus", "needs a prometheus block"},
		{"bad address", prom("up", &PrometheusSource{Address: "ftp://x"}), "spec.analysis.metrics[0].prometheus.address", "not an http"},
		{"bad template", prom("x{v=\"{{.Version\"}", &PrometheusSource{Address: addr}), "spec.analysis.metrics[0].query", "not a valid template"},
		{"unknown field", prom("x{v=\"{{.Verison}}\"}", &PrometheusSource{Address: addr}), "spec.analysis.metrics[0].query", `"Verison"`},
		{"count template", prom("up", &PrometheusSource{Address: addr, CountQuery: "{{.nope}}"}), "spec.analysis.metrics[0].prometheus.countQuery", "templates may use Rollout"},
		{"var shadows", prom("up", &PrometheusSource{Address: addr, Vars: map[string]string{"Version": "x"}}), `spec.analysis.metrics[0].prometheus.vars["Version"]`, "built-in"},
		{"literal token", prom("up", &PrometheusSource{Address: addr, Auth: &HTTPAuth{BearerToken: "s3cret"}}), "spec.analysis.metrics[0].prometheus.auth.bearerToken", "environment variable"},
		{"two auths", prom("up", &PrometheusSource{Address: addr, Auth: &HTTPAuth{BearerToken: "${T}", BasicAuth: &BasicAuth{Username: "u", PasswordFile: "/p"}}}), "spec.analysis.metrics[0].prometheus.auth", "give one of"},
		{"no password", prom("up", &PrometheusSource{Address: addr, Auth: &HTTPAuth{BasicAuth: &BasicAuth{Username: "u"}}}), "spec.analysis.metrics[0].prometheus.auth.basicAuth.password", "passwordFile"},
		{"wrong block", Metric{Name: "m", Provider: ProviderWeb, Query: "$.a", Web: &WebSource{URL: "http://h/"}, Prometheus: &PrometheusSource{Address: addr}}, "spec.analysis.metrics[0].prometheus", "for provider: prometheus"},
		{"ok web", web("$.data.rate", &WebSource{URL: "https://kpi.internal/v1/{{.Rollout}}?v={{.Version}}", Method: "POST", Body: `{"role": "{{.Role}}"}`, Count: "body.data.n"}), "", ""},
		{"web no block", web("$.a", nil), "spec.analysis.metrics[0].web", "needs a web block"},
		{"web scheme", web("$.a", &WebSource{URL: "file:///etc/passwd"}), "spec.analysis.metrics[0].web.url", "not an http"},
		{"web bad selector", web("$.a[*]", &WebSource{URL: "http://h/"}), "spec.analysis.metrics[0].query", "wildcards"},
		{"web bad count", web("$.a", &WebSource{URL: "http://h/", Count: "body.n +"}), "spec.analysis.metrics[0].web.count", "column"},
		{"web method", web("$.a", &WebSource{URL: "http://h/", Method: "PUT"}), "spec.analysis.metrics[0].web.method", "GET or POST"},
		{"web body on get", web("$.a", &WebSource{URL: "http://h/", Body: "{}"}), "spec.analysis.metrics[0].web.body", "POST"},
		{"web auth header", web("$.a", &WebSource{URL: "http://h/", Headers: map[string]string{"authorization": "Bearer x"}}), `spec.analysis.metrics[0].web.headers["authorization"]`, "web.auth"},
		{"condition", func() Metric { m := web("$.a", &WebSource{URL: "http://h/"}); m.Condition = "canary.value >"; return m }(), "spec.analysis.metrics[0].condition", "column"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := base(c.m).Validate()
			if c.field == "" {
				if len(errs) > 0 {
					t.Fatalf("want no problems, got %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Path == c.field && strings.Contains(e.Message, c.msg) {
					return
				}
			}
			t.Fatalf("problems:\n%v\nwant one at %s containing %q", errs, c.field, c.msg)
		})
	}
}

func TestTemplateData(t *testing.T) {
	q := Query{Rollout: "web", Version: "v2", Role: RoleCanary, Start: time.Unix(100, 0), End: time.Unix(190, 0)}
	d := TemplateData(q, map[string]string{"svc": "checkout"})
	want := map[string]any{"Rollout": "web", "Version": "v2", "Role": "canary", "Interval": "1m30s", "Start": int64(100), "End": int64(190),
		"StartRFC3339": "1970-01-01T00:01:40Z", "EndRFC3339": "1970-01-01T00:03:10Z", "svc": "checkout"}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: got %v (%T), want %v", k, d[k], d[k], v)
		}
	}
	if len(d) != len(want) || len(TemplateFields)+1 != len(want) {
		t.Errorf("got %d fields, want %d", len(d), len(want))
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{30 * time.Second, "30s"}, {time.Minute, "1m"}, {time.Hour + 30*time.Minute, "1h30m"}, {1500 * time.Millisecond, "1500ms"}, {0, "1ms"}} {
		if got := PromDuration(c.d); got != c.want {
			t.Errorf("PromDuration(%s) = %s, want %s", c.d, got, c.want)
		}
	}
}
