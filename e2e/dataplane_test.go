package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"aviary/internal/demo"
	"aviary/internal/rollout"
	"aviary/internal/server"
)

// The proxies as their own process serve with zero failed requests under
// load while the server is killed and restarted, with the routing it last
// knew; and a run started before the kills goes on after them.
func TestSeparateProxySurvivesServerRestarts(t *testing.T) {
	admin := freeAddr(t)
	e := newEnv(t, "--data-plane", "http://"+admin)
	state := filepath.Join(t.TempDir(), "proxy-state.json")
	proxyArgs := []string{"proxy", "--server", e.url, "--admin", admin, "--state", state}
	px := start(t, proxyArgs...)
	listen := freeAddr(t)
	v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0)
	e.apply(manifest("web", "v1", v1.URL, listen, `[{setWeight: 30}, {pause: {}}, {setWeight: 60}]`))
	e.waitPhase("web", rollout.PhaseInitialized, 20*time.Second)
	e.must("release", "web", "--version", "v2", "--upstream", v2.URL)
	e.waitFor("web", "weight 30 applied", 30*time.Second, func(st server.Status) bool {
		return st.CanaryWeight == 30 && st.Waiting != nil
	})

	load, err := demo.StartLoad(withContext(t), demo.LoadOptions{URL: "http://" + listen + "/", RPS: 200})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		time.Sleep(time.Second)
		e.server.kill()
		time.Sleep(time.Duration(500+300*i) * time.Millisecond) // the server is down
		e.startServer()
	}
	time.Sleep(time.Second)
	load.Stop()
	by, total := load.Stats()
	if total.Requests < 500 {
		t.Fatalf("only %d requests sent", total.Requests)
	}
	if total.Errors != 0 {
		t.Fatalf("%d of %d requests failed while the server restarted (by version: %+v)", total.Errors, total.Requests, by)
	}
	if by["v2"].Requests == 0 || by["v1"].Requests == 0 {
		t.Fatalf("the 30%% split was not kept: %+v", by)
	}

	// The routing survives on disk, and the run goes on.
	var s struct {
		Routes []server.RouteEntry `json:"routes"`
	}
	b, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(b, &s) != nil || len(s.Routes) != 1 || s.Routes[0].Route.Weight != 30 {
		t.Fatalf("persisted routing %s (%v)", b, err)
	}

	// A proxy restarted while the server is down serves from its state file.
	e.server.kill()
	px.kill()
	start(t, proxyArgs...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + listen + "/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted proxy does not serve without the server: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.startServer()
	e.must("promote", "web")
	e.waitPhase("web", rollout.PhaseSucceeded, 30*time.Second)
}
