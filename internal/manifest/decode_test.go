package manifest

import (
	"errors"
	"strings"
	"testing"

	"aviary/internal/rollout"
	yaml "go.yaml.in/yaml/v3"
)

const base = `
apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  version: v2
  upstreams: ["http://127.0.0.1:9002"]
  traffic:
    router: builtin
    listen: "127.0.0.1:8080"
  strategy:
    canary:
      steps:
        - setWeight: 5
        - pause: {duration: 2m}
        - analysis: {}
        - setWeight: 25
        - pause: {}
        - setWeight: 50
  analysis:
    interval: 30s
    failureLimit: 2
    metrics:
      - name: error-rate
        provider: builtin
        compare: baseline
        maxIncrease: 0.5%
      - name: latency-p99
        provider: builtin
        max: 0.5
  webhooks:
    - {name: smoke, type: pre-rollout, url: "http://127.0.0.1:9100/smoke", timeout: 10s}
  notify:
    - {type: slack, url: "${SLACK_WEBHOOK}", severity: warn}
  progressDeadline: 10m
  rollbackWindow: 1h
`

// patched returns base with overrides merged in: mappings merge key by
// key, anything else replaces; a null value deletes the key.
func patched(t *testing.T, override string) []byte {
	t.Helper()
	var b, o map[string]any
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(override), &o); err != nil {
		t.Fatalf("override: %v", err)
	}
	out, err := yaml.Marshal(merge(b, o))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, ok1 := v.(map[string]any)
		dm, ok2 := dst[k].(map[string]any)
		if ok1 && ok2 {
			dst[k] = merge(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

func TestBaseIsValid(t *testing.T) {
	ds, err := Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if errs := ds[0].Validate(); len(errs) > 0 {
		t.Fatalf("base spec is invalid:\n%v", errs)
	}
}

// Every invalid spec is refused with an error naming the field path.
func TestInvalidSpecs(t *testing.T) {
	cases := []struct {
		name, override, path, msg string
	}{
		{"wrong apiVersion", `apiVersion: v1`, "apiVersion", `want "aviary.dev/v1alpha1"`},
		{"wrong kind", `kind: Deployment`, "kind", `want "Rollout"`},
		{"missing name", `metadata: {name: null}`, "metadata.name", "needs a name"},
		{"bad name", `metadata: {name: Web_1}`, "metadata.name", "not a valid name"},
		{"unknown top field", `spec: {versoin: v3}`, "spec.versoin", `unknown field "versoin" (did you mean "version"?)`},
		{"unknown nested field", `spec: {analysis: {metrics: [{name: e, max: 1, treshold: 2}]}}`, "spec.analysis.metrics[0].treshold", "unknown field"},
		{"missing version", `spec: {version: null}`, "spec.version", "version to release is missing"},
		{"missing upstreams", `spec: {upstreams: null}`, "spec.upstreams", "at least one upstream"},
		{"upstream not a URL", `spec: {upstreams: ["127.0.0.1:9002"]}`, "spec.upstreams[0]", "not an http:// or https:// URL"},
		{"upstream with path", `spec: {upstreams: ["http://127.0.0.1:9002/api"]}`, "spec.upstreams[0]", "without a path"},
		{"upstream bad port", `spec: {upstreams: ["http://127.0.0.1:99999"]}`, "spec.upstreams[0]", "port"},
		{"duplicate upstream", `spec: {upstreams: ["http://a:1", "http://a:1"]}`, "spec.upstreams[1]", "listed twice"},
		{"unknown router", `spec: {traffic: {router: linkerd}}`, "spec.traffic.router", `unknown router "linkerd"`},
		{"missing listen", `spec: {traffic: {listen: null}}`, "spec.traffic.listen", "needs a listen address"},
		{"bad listen", `spec: {traffic: {listen: "localhost"}}`, "spec.traffic.listen", "not host:port"},
		{"listen port out of range", `spec: {traffic: {listen: "127.0.0.1:0"}}`, "spec.traffic.listen", "port"},
		{"unknown balance", `spec: {traffic: {balance: random}}`, "spec.traffic.balance", "unknown balance policy"},
		{"health path", `spec: {traffic: {healthCheck: {path: healthz}}}`, "spec.traffic.healthCheck.path", "start with '/'"},
		{"health timeout over interval", `spec: {traffic: {healthCheck: {interval: 1s, timeout: 5s}}}`, "spec.traffic.healthCheck.timeout", "longer than the interval"},
		{"tls without key", `spec: {traffic: {tls: {certFile: /c.pem}}}`, "spec.traffic.tls.keyFile", "needs a key file"},
		{"no steps", `spec: {strategy: {canary: {steps: []}}}`, "spec.strategy.canary.steps", "no steps"},
		{"steps and shorthand", `spec: {strategy: {canary: {stepWeight: 10}}}`, "spec.strategy.canary.steps", "not both"},
		{"weight over 100", `spec: {strategy: {canary: {steps: [{setWeight: 120}]}}}`, "spec.strategy.canary.steps[0].setWeight", "between 0 and 100"},
		{"negative weight", `spec: {strategy: {canary: {steps: [{setWeight: -5}]}}}`, "spec.strategy.canary.steps[0].setWeight", "between 0 and 100"},
		{"decreasing weights", `spec: {strategy: {canary: {steps: [{setWeight: 50}, {setWeight: 20}]}}}`, "spec.strategy.canary.steps[1].setWeight", "must not decrease"},
		{"weight not a number", `spec: {strategy: {canary: {steps: [{setWeight: ten}]}}}`, "spec.strategy.canary.steps[0].setWeight", "want a whole number"},
		{"empty step", `spec: {strategy: {canary: {steps: [{}]}}}`, "spec.strategy.canary.steps[0]", "empty step"},
		{"two things in a step", `spec: {strategy: {canary: {steps: [{setWeight: 5, pause: {}}]}}}`, "spec.strategy.canary.steps[0]", "only one of"},
		{"bad pause duration", `spec: {strategy: {canary: {steps: [{pause: {duration: 2 minutes}}]}}}`, "spec.strategy.canary.steps[0].pause.duration", "not a duration"},
		{"bare number duration", `spec: {progressDeadline: 600}`, "spec.progressDeadline", "want a duration string"},
		{"negative pause", `spec: {strategy: {canary: {steps: [{pause: {duration: -1m}}]}}}`, "spec.strategy.canary.steps[0].pause.duration", "must not be negative"},
		{"gate without name", `spec: {strategy: {canary: {steps: [{gate: {}}]}}}`, "spec.strategy.canary.steps[0].gate.name", "needs a name"},
		{"duplicate gate", `spec: {strategy: {canary: {steps: [{gate: {name: qa}}, {gate: {name: qa}}]}}}`, "spec.strategy.canary.steps[1].gate.name", "used twice"},
		{"stepWeight over max", `spec: {strategy: {canary: {steps: null, stepWeight: 60, maxWeight: 50}}}`, "spec.strategy.canary.stepWeight", "greater than maxWeight"},
		{"stepWeight zero", `spec: {strategy: {canary: {steps: null, stepWeight: 0, maxWeight: 50}}}`, "spec.strategy.canary.stepWeight", "between 1 and 100"},
		{"stepWeights not increasing", `spec: {strategy: {canary: {steps: null, stepWeights: [10, 10, 50]}}}`, "spec.strategy.canary.stepWeights[1]", "must increase"},
		{"stepWeights out of range", `spec: {strategy: {canary: {steps: null, stepWeights: [10, 150]}}}`, "spec.strategy.canary.stepWeights[1]", "between 1 and 100"},
		{"empty match", `spec: {strategy: {canary: {match: [{}]}}}`, "spec.strategy.canary.match[0]", "empty match"},
		{"bad regex", `spec: {strategy: {canary: {match: [{headers: {x-user: {regex: "(["}}}]}}}`, `spec.strategy.canary.match[0].headers["x-user"].regex`, "not a valid regular expression"},
		{"two string conditions", `spec: {strategy: {canary: {match: [{headers: {x-a: {exact: a, present: true}}}]}}}`, `spec.strategy.canary.match[0].headers["x-a"]`, "exactly one of"},
		{"users without values", `spec: {strategy: {canary: {match: [{users: {header: x-user-id, values: []}}]}}}`, "spec.strategy.canary.match[0].users.values", "at least one value"},
		{"bad hashOn", `spec: {strategy: {canary: {stickiness: {hashOn: user}}}}`, "spec.strategy.canary.stickiness.hashOn", `want "header/NAME"`},
		{"mirror percent", `spec: {strategy: {canary: {mirror: {percent: 0}}}}`, "spec.strategy.canary.mirror.percent", "between 1 and 100"},
		{"negative failureLimit", `spec: {analysis: {failureLimit: -1}}`, "spec.analysis.failureLimit", "must not be negative"},
		{"negative errorLimit", `spec: {analysis: {errorLimit: -2}}`, "spec.analysis.errorLimit", "must not be negative"},
		{"interval too short", `spec: {analysis: {interval: 10ms}}`, "spec.analysis.interval", "at least 1s"},
		{"unknown decision", `spec: {analysis: {decision: yolo}}`, "spec.analysis.decision", `unknown decision mode "yolo"`},
		{"duplicate metric", `spec: {analysis: {metrics: [{name: e, max: 1}, {name: e, max: 2}]}}`, "spec.analysis.metrics[1].name", "listed twice"},
		{"metric without name", `spec: {analysis: {metrics: [{max: 1}]}}`, "spec.analysis.metrics[0].name", "needs a name"},
		{"unknown provider", `spec: {analysis: {metrics: [{name: e, provider: datadoge, max: 1}]}}`, "spec.analysis.metrics[0].provider", `unknown provider "datadoge"`},
		{"unknown builtin query", `spec: {analysis: {metrics: [{name: e, query: p95, max: 1}]}}`, "spec.analysis.metrics[0].query", "builtin provider measures one of"},
		{"min over max", `spec: {analysis: {metrics: [{name: error-rate, min: 5, max: 1}]}}`, "spec.analysis.metrics[0].min", "greater than max"},
		{"no criteria", `spec: {analysis: {metrics: [{name: error-rate}]}}`, "spec.analysis.metrics[0].max", "needs min, max, or compare"},
		{"unknown compare", `spec: {analysis: {metrics: [{name: error-rate, compare: previous}]}}`, "spec.analysis.metrics[0].compare", "unknown comparison"},
		{"unknown test", `spec: {analysis: {metrics: [{name: error-rate, compare: baseline, maxIncrease: 1%, test: t-test}]}}`, "spec.analysis.metrics[0].test", `unknown test "t-test"`},
		{"bad percentage", `spec: {analysis: {metrics: [{name: error-rate, compare: baseline, maxIncrease: "half%"}]}}`, "spec.analysis.metrics[0].maxIncrease", "not a percentage"},
		{"unknown webhook type", `spec: {webhooks: [{name: w, type: pre-deploy, url: "http://h:1/"}]}`, "spec.webhooks[0].type", `unknown webhook type "pre-deploy"`},
		{"webhook bad url", `spec: {webhooks: [{name: w, type: rollout, url: "ftp://h/"}]}`, "spec.webhooks[0].url", "not an http:// or https:// URL"},
		{"duplicate webhook", `spec: {webhooks: [{name: w, type: rollout, url: "http://h:1/"}, {name: w, type: event, url: "http://h:1/"}]}`, "spec.webhooks[1].name", "listed twice"},
		{"secret written in the spec", `spec: {webhooks: [{name: w, type: rollout, url: "http://h:1/", secret: hunter2}]}`, "spec.webhooks[0].secret", "name an environment variable"},
		{"load hook without settings", `spec: {webhooks: [{name: l, type: load}]}`, "spec.webhooks[0].load", "needs its load settings"},
		{"load hook too fast", `spec: {webhooks: [{name: l, type: load, load: {rps: 5000}}]}`, "spec.webhooks[0].load.rps", "between 0 and 100"},
		{"load hook with url", `spec: {webhooks: [{name: l, type: load, url: "http://h:1/", load: {rps: 1}}]}`, "spec.webhooks[0].url", "leave url out"},
		{"notify url and urlFile", `spec: {notify: [{type: slack, url: "http://h/", urlFile: /run/secrets/slack}]}`, "spec.notify[0].urlFile", "not both"},
		{"unknown notify type", `spec: {notify: [{type: pager, url: "http://h/"}]}`, "spec.notify[0].type", `unknown notification type "pager"`},
		{"unknown severity", `spec: {notify: [{type: slack, url: "http://h/", severity: critical}]}`, "spec.notify[0].severity", `unknown severity "critical"`},
		{"negative rollbackWindow", `spec: {rollbackWindow: -1h}`, "spec.rollbackWindow", "must not be negative"},
		{"list where mapping", `spec: {traffic: [builtin]}`, "spec.traffic", "want a mapping of fields"},
		{"targetRef standalone", `spec: {targetRef: {kind: Deployment, name: web}}`, "spec.targetRef", "Kubernetes mode"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := decodeErrors(t, patched(t, c.override))
			for _, e := range errs {
				if e.Path == c.path && strings.Contains(e.Message, c.msg) {
					if e.Line == 0 {
						t.Errorf("%s: no line number", e.Path)
					}
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v", c.path, c.msg, errs)
		})
	}
}

func decodeErrors(t *testing.T, doc []byte) rollout.FieldErrors {
	t.Helper()
	ds, err := Decode(doc)
	if err != nil {
		var fe rollout.FieldErrors
		if !errors.As(err, &fe) {
			t.Fatalf("decode error is not a FieldErrors: %v", err)
		}
		return fe
	}
	return ds[0].Validate()
}

// Validate reports every problem at once, not just the first.
func TestAllProblemsAtOnce(t *testing.T) {
	errs := decodeErrors(t, patched(t, `
spec:
  version: null
  traffic: {balance: random}
  analysis: {failureLimit: -1, decision: yolo}
  rollbackWindow: -1h`))
	want := []string{"spec.version", "spec.traffic.balance", "spec.analysis.failureLimit", "spec.analysis.decision", "spec.rollbackWindow"}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, p := range want {
		if errs[i].Path != p {
			t.Errorf("problem %d at %s, want %s", i, errs[i].Path, p)
		}
	}
}

func TestErrorsCarryLines(t *testing.T) {
	doc := "apiVersion: aviary.dev/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec:\n  version: v2\n  upstreams: [\"http://127.0.0.1:9002\"]\n  traffic: {listen: \"127.0.0.1:8080\"}\n  strategy:\n    canary:\n      steps:\n        - setWeight: 500\n"
	errs := decodeErrors(t, []byte(doc))
	if len(errs) != 1 || errs[0].Line != 11 || errs[0].Path != "spec.strategy.canary.steps[0].setWeight" {
		t.Fatalf("got %v, want one error at line 11", errs)
	}
	if got := errs[0].Error(); got != "spec.strategy.canary.steps[0].setWeight (line 11): weight must be between 0 and 100, got 500" {
		t.Errorf("got %q", got)
	}
}

func TestMultipleDocuments(t *testing.T) {
	doc := base + "\n---\n" + strings.Replace(base, "name: web", "name: api", 1) + "\n---\n"
	ds, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Manifest.Metadata.Name != "web" || ds[1].Manifest.Metadata.Name != "api" {
		t.Fatalf("got %d documents", len(ds))
	}
	_, err = Decode([]byte(base + "\n---\n" + "apiVersion: aviary.dev/v1alpha1\nbogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "document 2: bogus") {
		t.Fatalf("got %v, want an error naming document 2", err)
	}
	if _, err := Decode([]byte("\n---\n")); err == nil {
		t.Fatal("empty input decoded")
	}
}

// The builtin router with no metrics gets the default analysis, so an
// analysis step is valid there.
func TestDefaultAnalysis(t *testing.T) {
	ds, err := Decode(patched(t, `spec: {analysis: {metrics: null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := ds[0].Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	n := ds[0].Manifest.Normalize()
	if len(n.Spec.Analysis.Metrics) == 0 {
		t.Fatal("no default metrics")
	}
	for _, m := range n.Spec.Analysis.Metrics {
		if m.Provider != rollout.ProviderBuiltin {
			t.Errorf("default metric %s has provider %q", m.Name, m.Provider)
		}
	}
}

// FuzzDecode: decoding and validating any input never panics, and every
// error names a field path.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("spec: {strategy: {canary: {steps: [{setWeight: 5}]}}}"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("---\n---\nkind: Rollout\n"))
	f.Add([]byte(`{"apiVersion": "aviary.dev/v1alpha1", "spec": {"analysis": {"metrics": [{"name": "e", "max": "1%"}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := Decode(data)
		if err != nil {
			var fe rollout.FieldErrors
			if errors.As(err, &fe) {
				for _, e := range fe {
					if e.Path == "" || e.Message == "" {
						t.Fatalf("error without path or message: %#v", e)
					}
				}
			}
			return
		}
		for _, d := range ds {
			for _, e := range d.Validate() {
				if e.Path == "" || e.Message == "" {
					t.Fatalf("problem without path or message: %#v", e)
				}
			}
			if len(d.Validate()) == 0 {
				n := d.Manifest.Normalize()
				if errs := n.Validate(); len(errs) > 0 {
					t.Fatalf("normalized spec is invalid: %v", errs)
				}
			}
		}
	})
}
