package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/server/servertest"
	"github.com/google/go-cmp/cmp"
)

// invalidSpec has two problems: a weight over 100 (line 12) and a
// maxIncrease without compare: baseline (line 18).
const invalidSpec = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  version: v3
  upstreams: ["http://127.0.0.1:9001"]
  traffic:
    listen: "127.0.0.1:18080"
  strategy:
    canary:
      steps: [{setWeight: 150}]
  analysis:
    interval: 10s
    metrics:
      - name: error-rate
        max: 0.05
        maxIncrease: 1%
`

const unknownField = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: v3
  upstreams: ["http://127.0.0.1:9001"]
  strategy:
    canary:
      stepz: [{setWeight: 10}]
`

const wrongType = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: v3
  upstreams: ["http://127.0.0.1:9001"]
  strategy:
    canary:
      steps: [{setWeight: ten}]
  progressDeadline: 10
`

// badCase is one bad request, what it must answer, and (checked for every
// case) that the store did not change.
type badCase struct {
	name   string
	rq     request
	status int
	// errText must appear in the error message.
	errText string
	// fields are the offending fields the answer must name (all of them).
	fields []rollout.FieldError
}

func badCases() []badCase {
	tok := servertest.Token
	apply := func(body string) request {
		return request{method: "POST", path: "/api/v1/rollouts", body: body, token: tok}
	}
	applyJSON := func(body string) request {
		r := apply(body)
		r.headers = map[string]string{"Content-Type": "application/json"}
		return r
	}
	valid := servertest.Manifest("api", "v1")
	return []badCase{
		{"malformed YAML", apply("apiVersion: aviary.dev/v1alpha1\nkind: Rollout\nspec:\n\tversion: v1\n"), 400,
			"malformed YAML: document 1: yaml: line 4: found character that cannot start any token",
			[]rollout.FieldError{{Path: "(document 1)", Line: 4}}},
		{"malformed JSON", applyJSON("{\"apiVersion\": \"aviary.dev/v1alpha1\",\n \"kind\": \"Rollout\",\n \"metadata\": {\"name\": \"web\",}\n}"), 400,
			"malformed JSON at line 3", []rollout.FieldError{{Path: "(body)", Line: 3}}},
		{"truncated JSON", applyJSON(`{"apiVersion": "aviary.dev/v1alpha1", "kind": `), 400, "malformed JSON", nil},
		{"invalid spec", apply(invalidSpec), 400, "the manifest is invalid (2 problems)", []rollout.FieldError{
			{Path: "spec.strategy.canary.steps[0].setWeight", Line: 12},
			{Path: "spec.analysis.metrics[0].maxIncrease", Line: 18},
		}},
		{"unknown field", apply(unknownField), 400, `unknown field "stepz"`,
			[]rollout.FieldError{{Path: "spec.strategy.canary.stepz", Line: 9}}},
		{"wrong types", apply(wrongType), 400, "the manifest is invalid (2 problems)", []rollout.FieldError{
			{Path: "spec.strategy.canary.steps[0].setWeight", Line: 9},
			{Path: "spec.progressDeadline", Line: 10},
		}},
		{"one invalid document of two applies none", apply(valid + "---\n" + invalidSpec), 400, "the request (2 manifests) is invalid",
			[]rollout.FieldError{{Path: "document 2: spec.strategy.canary.steps[0].setWeight", Line: 34}}},
		{"an invalid element of a JSON array", applyJSON(`[{"apiVersion": "aviary.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "x"},
  "spec": {"version": "v1", "upstreams": ["http://127.0.0.1:9001"]}},
 {"apiVersion": "aviary.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "y"},
  "spec": {"version": "v1", "upstreamz": []}}]`), 400, `unknown field "upstreamz"`,
			[]rollout.FieldError{{Path: "document 2: spec.upstreamz", Line: 4}}},
		{"the same rollout twice", apply(valid + "---\n" + valid), 400, "is invalid",
			[]rollout.FieldError{{Path: "document 2: metadata.name", Line: 26}}},
		{"an empty body", apply(""), 400, "the request body is empty", nil},
		{"only comments", apply("# nothing\n---\n"), 400, "no rollout manifest", nil},
		{"an unknown router", apply(strings.Replace(valid, `listen: "127.0.0.1:18080"`, "router: istio", 1)), 400, "the manifest is invalid (2 problems)",
			[]rollout.FieldError{{Path: "spec.traffic.router", Line: 9}}},
		{"an unknown provider", apply(valid + "        provider: datadog\n        query: up\n"), 400, `unknown provider "datadog"`,
			[]rollout.FieldError{{Path: "spec.analysis.metrics[0].provider", Line: 22}}},
		{"a body over the limit", apply(valid + strings.Repeat("# padding\n", server.DefaultMaxBody/10+1)), 413, "larger than the limit of 1048576 bytes", nil},

		{"no token", request{method: "POST", path: "/api/v1/rollouts", body: valid}, 401, "needs the API token", nil},
		{"a wrong token", request{method: "POST", path: "/api/v1/rollouts", body: valid, token: "guess"}, 401, "the API token is wrong", nil},
		{"a token of another scheme", request{method: "POST", path: "/api/v1/rollouts", body: valid,
			headers: map[string]string{"Authorization": "Basic " + tok}}, 401, "the API token is wrong", nil},
		{"delete without a token", request{method: "DELETE", path: "/api/v1/rollouts/web"}, 401, "needs the API token", nil},
		{"promote with a wrong token", request{method: "POST", path: "/api/v1/rollouts/web/promote", token: tok + "x"}, 401, "wrong", nil},

		{"get an unknown rollout", request{method: "GET", path: "/api/v1/rollouts/nope"}, 404, `"nope": rollout not found`, nil},
		{"delete an unknown rollout", request{method: "DELETE", path: "/api/v1/rollouts/nope", token: tok}, 404, "not found", nil},
		{"promote an unknown rollout", request{method: "POST", path: "/api/v1/rollouts/nope/promote", token: tok}, 404, "not found", nil},
		{"release an unknown rollout", request{method: "POST", path: "/api/v1/rollouts/nope/release", body: `{"version": "v9", "upstreams": ["http://127.0.0.1:1"]}`, token: tok}, 404, "not found", nil},
		{"events of an unknown rollout", request{method: "GET", path: "/api/v1/rollouts/nope/events"}, 404, "not found", nil},
		{"runs of an unknown rollout", request{method: "GET", path: "/api/v1/rollouts/nope/runs"}, 404, "not found", nil},
		{"revisions of an unknown rollout", request{method: "GET", path: "/api/v1/rollouts/nope/revisions"}, 404, "not found", nil},
		{"watch an unknown rollout", request{method: "GET", path: "/api/v1/watch?name=nope"}, 404, "not found", nil},
		{"measurements of a run that never was", request{method: "GET", path: "/api/v1/rollouts/web/runs/7/measurements"}, 404, `"web" has no run 7 (its last run is 1)`, nil},
		{"an unknown operation", request{method: "POST", path: "/api/v1/rollouts/web/explode", token: tok}, 404, "no API endpoint at /api/v1/rollouts/web/explode", nil},

		{"resume a run that is not paused", request{method: "POST", path: "/api/v1/rollouts/web/resume", token: tok}, 409, "resume: the run is not paused (phase Progressing)", nil},
		{"retry a run that did not fail", request{method: "POST", path: "/api/v1/rollouts/web/retry", token: tok}, 409, "only a failed run can be retried", nil},
		{"roll back during a run", request{method: "POST", path: "/api/v1/rollouts/web/rollback", token: tok}, 409, "abort it to roll back", nil},
		{"approve a pause for promote", request{method: "POST", path: "/api/v1/rollouts/web/approve", body: `{"gate": "qa"}`, token: tok}, 409, `not at gate "qa"`, nil},

		{"full on abort", request{method: "POST", path: "/api/v1/rollouts/web/abort", body: `{"full": true}`, token: tok}, 400, "is invalid: full",
			[]rollout.FieldError{{Path: "full"}}},
		{"gate on promote", request{method: "POST", path: "/api/v1/rollouts/web/promote", body: `{"gate": "qa"}`, token: tok}, 400, "gate applies to approve",
			[]rollout.FieldError{{Path: "gate"}}},
		{"an unknown field of an operation", request{method: "POST", path: "/api/v1/rollouts/web/abort", body: `{"force": true}`, token: tok}, 400, `unknown field "force"`,
			[]rollout.FieldError{{Path: "force"}}},
		{"a wrong type in an operation", request{method: "POST", path: "/api/v1/rollouts/web/promote", body: "{\n\"full\": \"yes\"}", token: tok}, 400, "is invalid",
			[]rollout.FieldError{{Path: "full", Line: 2}}},
		{"malformed JSON of an operation", request{method: "POST", path: "/api/v1/rollouts/web/pause", body: `{"reason": }`, token: tok}, 400, "malformed JSON", nil},
		{"two JSON values", request{method: "POST", path: "/api/v1/rollouts/web/pause", body: `{} {}`, token: tok}, 400, "more than one JSON value", nil},
		{"a release without a version", request{method: "POST", path: "/api/v1/rollouts/web/release", body: `{"upstreams": ["http://127.0.0.1:9009"]}`, token: tok}, 400,
			"give the version", []rollout.FieldError{{Path: "version"}}},
		{"a release without upstreams", request{method: "POST", path: "/api/v1/rollouts/web/release", body: `{"version": "v9"}`, token: tok}, 400,
			"give the addresses", []rollout.FieldError{{Path: "upstreams"}}},
		{"a release to a bad address", request{method: "POST", path: "/api/v1/rollouts/web/release", body: `{"version": "v9", "upstreams": ["not a url"]}`, token: tok}, 400,
			"is invalid", []rollout.FieldError{{Path: "upstreams[0]"}}},
		{"a release without a body", request{method: "POST", path: "/api/v1/rollouts/web/release", token: tok}, 400, "the request body is empty", nil},

		{"limit is not a number", request{method: "GET", path: "/api/v1/rollouts/web/events?limit=ten"}, 400, `limit="ten": want a whole number of at least 1`, nil},
		{"limit too large", request{method: "GET", path: "/api/v1/rollouts/web/events?limit=5000"}, 400, "more than the maximum of 1000", nil},
		{"after is negative", request{method: "GET", path: "/api/v1/rollouts/web/events?after=-1"}, 400, "at least 0", nil},
		{"run is not a number", request{method: "GET", path: "/api/v1/rollouts/web/runs/first/measurements"}, 400, `run="first"`, nil},

		{"a wrong method on a collection", request{method: "PUT", path: "/api/v1/rollouts", token: tok}, 405, "PUT is not allowed on /api/v1/rollouts (allowed: GET, HEAD, POST)", nil},
		{"GET on an operation", request{method: "GET", path: "/api/v1/rollouts/web/promote"}, 405, "allowed: POST", nil},
		{"POST on events", request{method: "POST", path: "/api/v1/rollouts/web/events", token: tok}, 405, "allowed: GET, HEAD", nil},
		{"an unknown API path", request{method: "GET", path: "/api/v2/rollouts"}, 404, "no API endpoint", nil},
		{"a POST to an unknown API path without a token", request{method: "POST", path: "/api/v1/nothing"}, 404, "no API endpoint at /api/v1/nothing", nil},
	}
}

// Every bad request gets a 4xx with a clear JSON error naming the offending
// fields and lines, and leaves the store exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	settle(t, env)
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := env.Snapshot(t)
			route, _ := env.Router.Route("web")
			res := call(t, env, tc.rq)
			if res.status != tc.status {
				t.Fatalf("got %d, want %d: %s", res.status, tc.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q, want application/json", ct)
			}
			body := decode[server.ErrorBody](t, res.body)
			if !strings.Contains(body.Error, tc.errText) {
				t.Errorf("error %q does not say %q", body.Error, tc.errText)
			}
			if body.Fields == nil {
				t.Errorf("fields is null, want a list: %s", res.body)
			}
			for _, want := range tc.fields {
				if !hasField(body.Fields, want) {
					t.Errorf("fields %+v lack %s at line %d", body.Fields, want.Path, want.Line)
				}
			}
			for _, f := range body.Fields {
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Path)
				}
			}
			if tc.status == http.StatusUnauthorized && res.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == http.StatusMethodNotAllowed && res.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			time.Sleep(5 * time.Millisecond) // let anything wrongly started reach the store
			unchanged(t, before, env.Snapshot(t))
			if after, _ := env.Router.Route("web"); !cmp.Equal(route, after) {
				t.Errorf("the route changed: %s", cmp.Diff(route, after))
			}
		})
	}
}

func hasField(fs []rollout.FieldError, want rollout.FieldError) bool {
	for _, f := range fs {
		if f.Path == want.Path && (want.Line == 0 || f.Line == want.Line) {
			return true
		}
	}
	return false
}

// unchanged fails the test unless the store's files are byte for byte as
// they were; the difference in content explains a failure.
func unchanged(t *testing.T, before, after servertest.Snapshot) {
	t.Helper()
	if before.Equal(after) {
		return
	}
	t.Errorf("the store's files changed: %v -> %v\ncontent (-before +after):\n%s", before.Files, after.Files, cmp.Diff(before.Dump, after.Dump))
}

// settle waits until the controller stops writing to the store.
func settle(t *testing.T, env *servertest.Env) {
	t.Helper()
	last := env.Snapshot(t)
	for stable := 0; stable < 5; {
		time.Sleep(10 * time.Millisecond)
		if now := env.Snapshot(t); now.Equal(last) {
			stable++
		} else {
			last, stable = now, 0
		}
	}
}

// With the controller stopped, calls that change rollouts answer 503.
func TestControllerNotRunning(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	env.StopController(t)
	res := must(t, env, request{method: "POST", path: "/api/v1/rollouts/web/abort", token: servertest.Token}, http.StatusServiceUnavailable)
	if e := decode[server.ErrorBody](t, res.body); !strings.Contains(e.Error, "the controller is not running") || res.header.Get("Retry-After") == "" {
		t.Errorf("got %q, Retry-After %q", e.Error, res.header.Get("Retry-After"))
	}
	must(t, env, request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v2"), token: servertest.Token}, http.StatusServiceUnavailable)
	must(t, env, request{method: "GET", path: "/api/v1/rollouts/web"}, http.StatusOK)
}

// A valid spec that needs a router or provider this server was not given is
// unprocessable (422), and nothing is applied.
func TestUnsupportedAdapters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  servertest.Options
		want  string
		field rollout.FieldError
	}{
		{"no builtin router", servertest.Options{Router: "other"}, `router "builtin" is unsupported by this server`,
			rollout.FieldError{Path: "spec.traffic.router", Line: 9}},
		{"no builtin provider", servertest.Options{NoProvider: true}, `provider "builtin" is unsupported by this server`,
			rollout.FieldError{Path: "spec.analysis.metrics[0].provider", Line: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.Start(t, tc.opts)
			before := env.Snapshot(t)
			res := must(t, env, request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v1"), token: servertest.Token},
				http.StatusUnprocessableEntity)
			body := decode[server.ErrorBody](t, res.body)
			if !strings.Contains(body.Error, tc.want) || !hasField(body.Fields, tc.field) {
				t.Errorf("got %s, want %q naming %s at line %d", res.body, tc.want, tc.field.Path, tc.field.Line)
			}
			unchanged(t, before, env.Snapshot(t))
		})
	}
}
