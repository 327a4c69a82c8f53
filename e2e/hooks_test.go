package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aviary/internal/demo"
	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/webhook"
)

// receiver is a webhook or notification endpoint that answers a status the
// test sets and records what it got.
type receiver struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	calls  []call
}

type call struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{}
	r.status.Store(int32(status))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls = append(r.calls, call{req.URL.Path, req.Header.Clone(), b})
		r.mu.Unlock()
		w.WriteHeader(int(r.status.Load()))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// hookSpec is a rollout with extra spec fields (indented two spaces).
func hookSpec(version, upstream, listen, steps, analysis, extra string) string {
	return fmt.Sprintf(`apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  version: %s
  upstreams: [%q]
  traffic: {listen: %q}
  progressDeadline: 5m
  strategy:
    canary:
      steps: %s
  analysis:
    interval: 1s
    metrics:
%s
%s`, version, upstream, listen, steps, analysis, extra)
}

const errorRateCheck = `      - {name: error-rate, compare: baseline, test: sequential, maxIncrease: 2%, minSamples: 40}`

// A release waits at confirm-promotion until the receiver turns to 200,
// and status shows what it waits on and since when.
func TestConfirmPromotionWaits(t *testing.T) {
	e := newEnv(t)
	listen := freeAddr(t)
	v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0)
	ship := newReceiver(t, http.StatusServiceUnavailable)
	hooks := fmt.Sprintf("  webhooks:\n    - {name: ship, type: confirm-promotion, url: %q}\n", ship.URL+"/ship")
	steps := `[{setWeight: 50}, {analysis: {}}]`
	e.apply(hookSpec("v1", v1.URL, listen, steps, errorRateCheck, hooks))
	load, err := demo.StartLoad(withContext(t), demo.LoadOptions{URL: "http://" + listen + "/", RPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer load.Stop()
	e.apply(hookSpec("v2", v2.URL, listen, steps, errorRateCheck, hooks))
	st := e.waitFor("web", "the confirm-promotion wait", 60*time.Second, func(st server.Status) bool {
		return st.Waiting != nil && st.Waiting.Kind == rollout.WaitWebhook && st.Waiting.Name == "ship"
	})
	if st.Waiting.Since.IsZero() {
		t.Fatal("the wait has no start time")
	}
	time.Sleep(2500 * time.Millisecond)
	if st := e.status("web"); st.Phase != rollout.PhaseProgressing {
		t.Fatalf("did not wait for the webhook: %s", st.Phase)
	}
	if n := len(ship.got()); n < 2 {
		t.Fatalf("the webhook was called %d times while it said wait; want it asked again", n)
	}
	out := e.must("status", "web")
	if !strings.Contains(out, "ship") {
		t.Fatalf("status does not show what the run waits on:\n%s", out)
	}
	ship.status.Store(http.StatusOK)
	e.waitPhase("web", rollout.PhaseSucceeded, 30*time.Second)
}

// A rollback hook that answers 2xx rolls the run back.
func TestRollbackHook(t *testing.T) {
	e := newEnv(t)
	listen := freeAddr(t)
	v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0)
	kill := newReceiver(t, http.StatusNotFound)
	hooks := fmt.Sprintf("  webhooks:\n    - {name: kill, type: rollback, url: %q}\n", kill.URL+"/kill")
	steps := `[{setWeight: 30}, {pause: {}}]`
	e.apply(hookSpec("v1", v1.URL, listen, steps, errorRateCheck, hooks))
	e.apply(hookSpec("v2", v2.URL, listen, steps, errorRateCheck, hooks))
	e.waitFor("web", "the rollback hook asked", 30*time.Second, func(server.Status) bool { return len(kill.got()) >= 2 })
	if st := e.status("web"); st.Phase != rollout.PhaseProgressing {
		t.Fatalf("a 404 from the rollback hook changed the run: %s", st.Phase)
	}
	kill.status.Store(http.StatusOK)
	st := e.waitPhase("web", rollout.PhaseFailed, 30*time.Second)
	if !strings.Contains(st.Message, "webhook kill asked for it") {
		t.Fatalf("message %q", st.Message)
	}
}

// A quiet service (no traffic of its own) is promoted thanks to a load
// hook; without it the same release waits, neither failed nor promoted.
func TestLoadHookForQuietService(t *testing.T) {
	check := `      - {name: error-rate, test: sequential, max: 5%, minSamples: 40}`
	steps := `[{setWeight: 10}, {analysis: {}}]`
	for _, withLoad := range []bool{true, false} {
		t.Run(fmt.Sprintf("load=%v", withLoad), func(t *testing.T) {
			e := newEnv(t)
			listen := freeAddr(t)
			v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0)
			extra := ""
			if withLoad {
				extra = "  webhooks:\n    - {name: warm, type: load, load: {rps: 30, path: /}}\n"
			}
			e.apply(hookSpec("v1", v1.URL, listen, steps, check, extra))
			e.apply(hookSpec("v2", v2.URL, listen, steps, check, extra))
			if withLoad {
				e.waitPhase("web", rollout.PhaseSucceeded, 60*time.Second)
				if v2.served.Load() < 40 {
					t.Fatalf("the canary served %d requests", v2.served.Load())
				}
				if v1.served.Load() != 0 {
					t.Fatalf("load reached the stable version: %d requests", v1.served.Load())
				}
				return
			}
			time.Sleep(6 * time.Second)
			st := e.status("web")
			if st.Phase != rollout.PhaseProgressing || st.Failures != 0 || v2.served.Load() != 0 {
				t.Fatalf("without load: phase %s, failures %d, canary served %d; want waiting", st.Phase, st.Failures, v2.served.Load())
			}
			if len(st.Checks) == 0 || st.Checks[0].Verdict != "Inconclusive" {
				t.Fatalf("checks %+v, want Inconclusive", st.Checks)
			}
		})
	}
}

// Secrets (a webhook's signing key, a notification URL's token) never
// appear in the server's log, its events or anything the API returns,
// though the run uses them: hooks are signed, notifications delivered.
func TestSecretsNeverShow(t *testing.T) {
	const hookSecret = "hmac-key-5f1d8c2e9a7b4e60"
	const notifyToken = "T0KEN-a4c9e1f7b2d8"
	hooks := newReceiver(t, http.StatusOK)
	chat := newReceiver(t, http.StatusOK)
	notifyURL := chat.URL + "/services/" + notifyToken
	e := newEnvWith(t, []string{"HOOK_SECRET=" + hookSecret, "CHAT_URL=" + notifyURL},
		"--notify", "webhook@info=${CHAT_URL}", "--log-level", "debug")
	listen := freeAddr(t)
	v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0.5)
	extra := fmt.Sprintf(`  webhooks:
    - {name: go, type: confirm-rollout, url: %q, secret: "${HOOK_SECRET}"}
    - {name: audit, type: event, url: %q, secret: "${HOOK_SECRET}"}
  notify:
    - {type: webhook, url: "${CHAT_URL}", severity: warn}
`, hooks.URL+"/go", hooks.URL+"/audit")
	steps := `[{setWeight: 50}, {analysis: {}}]`
	e.apply(hookSpec("v1", v1.URL, listen, steps, errorRateCheck, extra))
	load, err := demo.StartLoad(withContext(t), demo.LoadOptions{URL: "http://" + listen + "/", RPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer load.Stop()
	e.apply(hookSpec("v2", v2.URL, listen, steps, errorRateCheck, extra))
	e.waitPhase("web", rollout.PhaseFailed, 60*time.Second)
	e.waitFor("web", "notifications delivered", 20*time.Second, func(server.Status) bool { return len(chat.got()) >= 2 })

	// The hooks were really signed with the secret.
	signed := 0
	for _, c := range hooks.got() {
		if webhook.Verify([]byte(hookSecret), c.header.Get("X-Aviary-Timestamp"), c.header.Get("X-Aviary-Signature"), c.body, time.Now(), time.Hour) == nil {
			signed++
		}
	}
	paths := map[string]int{}
	for _, c := range hooks.got() {
		paths[c.path]++
	}
	if signed != len(hooks.got()) || paths["/go"] == 0 || paths["/audit"] == 0 {
		t.Fatalf("%d of %d webhook calls validly signed; calls by path %v", signed, len(hooks.got()), paths)
	}

	var outputs []string
	outputs = append(outputs, e.server.log.String())
	for _, path := range []string{"/api/v1/rollouts", "/api/v1/rollouts/web", "/api/v1/rollouts/web/events?limit=1000",
		"/api/v1/rollouts/web/runs", "/api/v1/rollouts/web/revisions", "/api/v1/routes", "/metrics"} {
		res, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		outputs = append(outputs, string(b))
	}
	for _, args := range [][]string{{"get", "web", "-o", "yaml"}, {"status", "web", "-o", "json"}, {"events", "web"}, {"history", "web"}} {
		outputs = append(outputs, e.must(args...))
	}
	for _, c := range chat.got() {
		outputs = append(outputs, string(c.body))
	}
	for i, out := range outputs {
		for _, secret := range []string{hookSecret, notifyToken} {
			if strings.Contains(out, secret) {
				t.Errorf("output %d shows a secret:\n%s", i, excerpt(out, secret))
			}
		}
	}
	var ev struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := get(e.url+"/api/v1/rollouts/web/events?limit=1000", &ev); err != nil || len(ev.Events) == 0 {
		t.Fatalf("no events to check (%v)", err)
	}
}

func excerpt(s, needle string) string {
	i := strings.Index(s, needle)
	return s[max(0, i-200):min(len(s), i+len(needle)+200)]
}
