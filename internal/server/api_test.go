package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/server/servertest"
	"github.com/google/go-cmp/cmp"
)

func TestApplyCreatesConfiguresAndLeavesUnchanged(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	for _, step := range []struct {
		version, action string
		phase           rollout.Phase
	}{
		{"v1", server.ActionCreated, rollout.PhaseInitialized},
		{"v1", server.ActionUnchanged, rollout.PhaseInitialized},
		{"v2", server.ActionConfigured, rollout.PhaseProgressing},
	} {
		res := applyVersion(t, env, "web", step.version)
		if res.Name != "web" || res.Action != step.action || res.Rollout.Phase != step.phase {
			t.Fatalf("apply %s: got %s %s %s, want web %s %s", step.version, res.Name, res.Action, res.Rollout.Phase, step.action, step.phase)
		}
	}
	st := status(t, env, "web")
	want := server.Status{
		Name: "web", Phase: rollout.PhaseProgressing, DesiredVersion: "v2", StableVersion: "v1", CanaryVersion: "v2",
		CanaryWeight: 20, Step: 2, Steps: 4, Run: 1, Revision: 2, Decision: rollout.DecisionAuto,
		Plan: []server.PlanStep{{Kind: "setWeight", Weight: 20}, {Kind: "pause"}, {Kind: "setWeight", Weight: 60}, {Kind: "analysis"}},
	}
	got := st
	got.RunStartedAt, got.StepStartedAt, got.CreatedAt, got.UpdatedAt, got.Message, got.Waiting, got.Checks, got.RouteGeneration = nil, nil, want.CreatedAt, want.UpdatedAt, "", nil, nil, 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if st.Waiting == nil || st.Waiting.Kind != rollout.WaitPause || !st.Waiting.Since.Equal(servertest.Epoch) {
		t.Errorf("waiting: got %+v, want a pause since %s", st.Waiting, servertest.Epoch)
	}
	if !strings.Contains(st.Message, "aviary promote") {
		t.Errorf("message %q does not say how to go on", st.Message)
	}

	list := decode[server.List](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts"}, http.StatusOK).body)
	if len(list.Rollouts) != 1 || list.Rollouts[0].Name != "web" || list.Rollouts[0].CanaryWeight != 20 {
		t.Fatalf("list: got %+v, want web at 20%%", list.Rollouts)
	}
}

func TestApplyFormats(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	jsonDoc := func(name string) string {
		return fmt.Sprintf(`{"apiVersion": "aviary.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": %q},
  "spec": {"version": "v1", "upstreams": ["http://127.0.0.1:9001"], "traffic": {"listen": "127.0.0.1:18081"},
    "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}}`, name)
	}
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		want        []string
	}{
		{"one YAML document", "application/yaml", servertest.Manifest("a", "v1"), []string{"a"}},
		{"YAML documents", "", servertest.Manifest("b", "v1") + "---\n" + servertest.Manifest("c", "v1"), []string{"b", "c"}},
		{"a JSON object", "application/json", jsonDoc("d"), []string{"d"}},
		{"a JSON array", "application/json", "[" + jsonDoc("e") + ",\n" + jsonDoc("f") + "]", []string{"e", "f"}},
		{"JSON without a content type", "", jsonDoc("g"), []string{"g"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := must(t, env, request{method: "POST", path: "/api/v1/rollouts", body: tc.body, token: servertest.Token,
				headers: map[string]string{"Content-Type": tc.contentType}}, http.StatusOK)
			out := decode[server.Applied](t, res.body)
			var got []string
			for _, r := range out.Results {
				got = append(got, r.Name)
				if r.Action != server.ActionCreated || r.Rollout.Phase != rollout.PhaseInitialized {
					t.Errorf("%s: got %s %s, want created and Initialized", r.Name, r.Action, r.Rollout.Phase)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
		})
	}
}

// Every operation, carried out in an order that the rollout allows.
func TestOperations(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	op := func(name, body string, user string) server.Status {
		t.Helper()
		res := must(t, env, request{method: "POST", path: "/api/v1/rollouts/web/" + name, body: body, token: servertest.Token,
			headers: map[string]string{"X-Aviary-User": user}}, http.StatusOK)
		return decode[server.Status](t, res.body)
	}
	if st := op("pause", `{"reason": "checking dashboards"}`, "alice"); st.Phase != rollout.PhasePaused || st.Pause == nil ||
		st.Pause.Cause != rollout.PauseOperator || !strings.Contains(st.Pause.Reason, "alice") || !strings.Contains(st.Pause.Reason, "checking dashboards") {
		t.Fatalf("pause: got %s %+v, want Paused by alice with the reason", st.Phase, st.Pause)
	}
	if st := op("resume", "", ""); st.Phase != rollout.PhaseProgressing || !strings.Contains(st.Message, "by api") {
		t.Fatalf("resume: got %s %q, want Progressing, resumed by api (the default user)", st.Phase, st.Message)
	}
	if st := op("promote", "", "bob"); st.CanaryWeight != 60 {
		t.Fatalf("promote: got weight %d, want 60", st.CanaryWeight)
	}
	if st := op("abort", `{"reason": "bad logs"}`, "carol"); st.Phase != rollout.PhaseFailed || st.StableVersion != "v1" ||
		!strings.Contains(st.Message, "carol") || !strings.Contains(st.Message, "bad logs") {
		t.Fatalf("abort: got %s stable %s %q, want Failed, stable v1, by carol with the reason", st.Phase, st.StableVersion, st.Message)
	}
	if st := op("retry", "", ""); st.Phase != rollout.PhaseProgressing || st.Run != 2 {
		t.Fatalf("retry: got %s run %d, want Progressing run 2", st.Phase, st.Run)
	}
	servertest.WaitFor(t, "the pause of run 2", func() bool { return status(t, env, "web").Waiting != nil })
	if st := op("promote", `{"full": true}`, ""); st.Phase != rollout.PhasePromoting && st.Phase != rollout.PhaseSucceeded {
		t.Fatalf("promote --full: got %s, want Promoting or Succeeded", st.Phase)
	}
	servertest.WaitFor(t, "v2 promoted", func() bool { return env.Phase("web") == rollout.PhaseSucceeded })
	st := status(t, env, "web")
	if st.RollbackUntil == nil || st.PreviousVersion != "v1" || st.StableVersion != "v2" {
		t.Fatalf("after promotion: got rollbackUntil %v previous %q stable %s, want a window to roll back to v1", st.RollbackUntil, st.PreviousVersion, st.StableVersion)
	}
	if st := op("rollback", "", "dave"); st.Phase != rollout.PhaseFailed || st.StableVersion != "v1" || st.RollbackUntil != nil {
		t.Fatalf("rollback: got %s stable %s rollbackUntil %v, want Failed with v1 stable and no window", st.Phase, st.StableVersion, st.RollbackUntil)
	}
}

func TestApproveGate(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	gated := strings.Replace(servertest.Manifest("web", "v1"), "- pause: {}", "- gate: {name: qa}", 1)
	post(t, env, "/api/v1/rollouts", gated)
	post(t, env, "/api/v1/rollouts", strings.Replace(gated, "version: v1", "version: v2", 1))
	servertest.WaitFor(t, "the gate", func() bool {
		w := status(t, env, "web").Waiting
		return w != nil && w.Kind == rollout.WaitGate && w.Name == "qa"
	})
	res := must(t, env, request{method: "POST", path: "/api/v1/rollouts/web/approve", body: `{"gate": "security"}`, token: servertest.Token}, http.StatusConflict)
	if e := decode[server.ErrorBody](t, res.body); !strings.Contains(e.Error, `gate "qa", not at gate "security"`) {
		t.Errorf("approving the wrong gate: got %q", e.Error)
	}
	st := decode[server.Status](t, post(t, env, "/api/v1/rollouts/web/approve", `{"gate": "qa"}`).body)
	if st.CanaryWeight != 60 || st.Waiting != nil {
		t.Fatalf("approve qa: got weight %d waiting %+v, want 60 and no wait", st.CanaryWeight, st.Waiting)
	}
}

func TestRelease(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	res := decode[server.ApplyResult](t, post(t, env, "/api/v1/rollouts/web/release",
		`{"version": "v3", "upstreams": ["http://127.0.0.1:9003", "http://127.0.0.1:9004"]}`).body)
	if res.Action != server.ActionConfigured || res.Rollout.CanaryVersion != "v3" || res.Rollout.Phase != rollout.PhaseProgressing || res.Rollout.Revision != 2 {
		t.Fatalf("release: got %s canary %s %s revision %d, want configured, canary v3 Progressing at revision 2", res.Action, res.Rollout.CanaryVersion, res.Rollout.Phase, res.Rollout.Revision)
	}
	rec, _ := env.Controller.Get("web")
	if diff := cmp.Diff([]string{"http://127.0.0.1:9003", "http://127.0.0.1:9004"}, rec.Manifest.Spec.Upstreams); diff != "" {
		t.Errorf("spec upstreams (-want +got):\n%s", diff)
	}
	if rec.Manifest.Spec.Traffic.Listen != "127.0.0.1:18080" {
		t.Errorf("release changed the rest of the spec: listen %q", rec.Manifest.Spec.Traffic.Listen)
	}
	again := decode[server.ApplyResult](t, post(t, env, "/api/v1/rollouts/web/release",
		`{"version": "v3", "upstreams": ["http://127.0.0.1:9003", "http://127.0.0.1:9004"]}`).body)
	if again.Action != server.ActionUnchanged {
		t.Errorf("releasing the same version again: got %s, want unchanged", again.Action)
	}
}

func TestDelete(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	if _, ok := env.Router.Route("web"); !ok {
		t.Fatal("the router does not serve web")
	}
	res := must(t, env, request{method: "DELETE", path: "/api/v1/rollouts/web", token: servertest.Token}, http.StatusOK)
	if got := string(res.body); !strings.Contains(got, `"deleted": true`) {
		t.Errorf("delete answered %s", got)
	}
	must(t, env, request{method: "GET", path: "/api/v1/rollouts/web"}, http.StatusNotFound)
	if _, ok := env.Router.Route("web"); ok {
		t.Error("the router still serves web")
	}
	must(t, env, request{method: "DELETE", path: "/api/v1/rollouts/web", token: servertest.Token}, http.StatusNotFound)
}

func TestHistory(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	post(t, env, "/api/v1/rollouts/web/promote", "")
	advanceUntil(t, env, "v2 promoted", func() bool { return env.Phase("web") == rollout.PhaseSucceeded })

	all := decode[server.Events](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/web/events"}, http.StatusOK).body)
	if len(all.Events) < 5 || all.Events[0].Type != rollout.EventInitialized || all.Events[len(all.Events)-1].Type != rollout.EventPromoted {
		t.Fatalf("events: got %d from %+v, want Initialized … Promoted", len(all.Events), all.Events)
	}
	page := decode[server.Events](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/web/events?limit=2"}, http.StatusOK).body)
	rest := decode[server.Events](t, must(t, env, request{method: "GET", path: fmt.Sprintf("/api/v1/rollouts/web/events?after=%d", page.Next)}, http.StatusOK).body)
	if len(page.Events) != 2 || page.Next != page.Events[1].ID || len(page.Events)+len(rest.Events) != len(all.Events) || rest.Events[0].ID != page.Next+1 {
		t.Fatalf("paging: got %d then %d events (next %d), want 2 then the other %d", len(page.Events), len(rest.Events), page.Next, len(all.Events)-2)
	}
	end := decode[server.Events](t, must(t, env, request{method: "GET", path: fmt.Sprintf("/api/v1/rollouts/web/events?after=%d", all.Next)}, http.StatusOK).body)
	if len(end.Events) != 0 || end.Next != all.Next {
		t.Errorf("after the last event: got %d events, next %d; want none, next %d", len(end.Events), end.Next, all.Next)
	}

	runs := decode[server.Runs](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/web/runs"}, http.StatusOK).body)
	if len(runs.Runs) != 1 || runs.Runs[0].Outcome != rollout.PhaseSucceeded || runs.Runs[0].Version != "v2" || runs.Runs[0].StableVersion != "v1" || runs.Runs[0].EndedAt == nil {
		t.Fatalf("runs: got %+v, want run 1 of v2 over v1, Succeeded", runs.Runs)
	}
	ms := decode[server.Measurements](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/web/runs/1/measurements"}, http.StatusOK).body)
	if ms.Run != 1 || len(ms.Points) == 0 || ms.Points[0].Metric != "error-rate" || ms.Points[0].Canary.Value != 0.01 {
		t.Fatalf("measurements: got %+v, want error-rate points of run 1", ms)
	}
	revs := decode[server.Revisions](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/web/revisions"}, http.StatusOK).body)
	if len(revs.Revisions) != 2 || revs.Revisions[0].Manifest.Spec.Version != "v1" || revs.Revisions[1].Manifest.Spec.Version != "v2" {
		t.Fatalf("revisions: got %+v, want v1 then v2", revs.Revisions)
	}
}

func TestRoutes(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	routes := decode[server.Routes](t, must(t, env, request{method: "GET", path: "/api/v1/routes"}, http.StatusOK).body)
	applied, _ := env.Router.Route("web")
	if len(routes.Routes) != 1 {
		t.Fatalf("routes: got %d, want 1", len(routes.Routes))
	}
	r := routes.Routes[0]
	if r.Name != "web" || r.Revision != 2 || r.Traffic.Listen != "127.0.0.1:18080" || r.Traffic.Router != rollout.RouterBuiltin || r.Route == nil {
		t.Fatalf("route entry: got %+v", r)
	}
	if diff := cmp.Diff(applied, *r.Route); diff != "" {
		t.Errorf("the API's route differs from the router's (-router +api):\n%s", diff)
	}
	if r.Route.Weight != 20 || r.Route.Canary == nil || r.Route.Canary.Version != "v2" {
		t.Errorf("route: got weight %d canary %+v, want v2 at 20%%", r.Route.Weight, r.Route.Canary)
	}
}

func TestHealthMetricsAndDashboard(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	if res := must(t, env, request{method: "GET", path: "/healthz"}, http.StatusOK); !strings.Contains(string(res.body), `"ok"`) {
		t.Errorf("healthz: %s", res.body)
	}
	metrics := string(must(t, env, request{method: "GET", path: "/metrics"}, http.StatusOK).body)
	if !strings.Contains(metrics, `aviary_rollouts{phase="Initialized"} 1`) {
		t.Errorf("metrics lack the rollouts by phase:\n%s", metrics)
	}
	page := must(t, env, request{method: "GET", path: "/"}, http.StatusOK)
	if !strings.Contains(string(page.body), "/api/v1/rollouts") || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Errorf("placeholder page: %s %s", page.header.Get("Content-Type"), page.body)
	}
	must(t, env, request{method: "GET", path: "/nothing-here"}, http.StatusNotFound)
	must(t, env, request{method: "HEAD", path: "/api/v1/rollouts"}, http.StatusOK)
}

func TestDashboardFiles(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	srv, err := server.New(server.Options{Controller: env.Controller, History: env.Store, Token: "t",
		Dashboard: fstest.MapFS{"index.html": {Data: []byte("<h1>dashboard</h1>")}, "app.js": {Data: []byte("let x")}}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/": "<h1>dashboard</h1>", "/app.js": "let x"} {
		rec := serve(srv, "GET", path)
		if rec.Code != http.StatusOK || rec.Body.String() != want {
			t.Errorf("GET %s: got %d %q, want 200 %q", path, rec.Code, rec.Body.String(), want)
		}
	}
	if rec := serve(srv, "GET", "/api/v1/nope"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("unknown API path with a dashboard: got %d %s, want a JSON 404", rec.Code, rec.Body.String())
	}
}

func TestNewRefusesMissingOptions(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	for _, tc := range []struct {
		name string
		opts server.Options
		want string
	}{
		{"no controller", server.Options{History: env.Store, Token: "t"}, "controller"},
		{"no history", server.Options{Controller: env.Controller, Token: "t"}, "history"},
		{"no token", server.Options{Controller: env.Controller, History: env.Store}, "token"},
	} {
		if _, err := server.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about the %s", tc.name, err, tc.want)
		}
	}
}

// The request log names method, path, status and user, and never the token.
func TestRequestLog(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	must(t, env, request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v1"), token: servertest.Token,
		headers: map[string]string{"X-Aviary-User": "alice"}}, http.StatusOK)
	must(t, env, request{method: "POST", path: "/api/v1/rollouts/web/abort", token: "not-the-token"}, http.StatusUnauthorized)
	logs := env.Logs.String()
	for _, want := range []string{"method=POST path=/api/v1/rollouts status=200", "user=alice", "path=/api/v1/rollouts/web/abort status=401"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{servertest.Token, "not-the-token", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}
