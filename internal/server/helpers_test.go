package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/server/servertest"
)

// request is one call to the API.
type request struct {
	method  string
	path    string
	body    string
	token   string            // "" sends none; use servertest.Token for the right one
	headers map[string]string // extra headers
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, env *servertest.Env, rq request) response {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, env.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must calls the API and fails the test unless the answer is want.
func must(t *testing.T, env *servertest.Env, rq request, want int) response {
	t.Helper()
	res := call(t, env, rq)
	if res.status != want {
		t.Fatalf("%s %s: got %d, want %d: %s", rq.method, rq.path, res.status, want, res.body)
	}
	return res
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

// post sends an authorized POST.
func post(t *testing.T, env *servertest.Env, path, body string) response {
	t.Helper()
	return must(t, env, request{method: "POST", path: path, body: body, token: servertest.Token}, http.StatusOK)
}

// applyVersion applies the test manifest of name at version.
func applyVersion(t *testing.T, env *servertest.Env, name, version string) server.ApplyResult {
	t.Helper()
	res := post(t, env, "/api/v1/rollouts", servertest.Manifest(name, version))
	out := decode[server.Applied](t, res.body)
	if len(out.Results) != 1 {
		t.Fatalf("apply %s %s: got %d results, want 1", name, version, len(out.Results))
	}
	return out.Results[0]
}

func status(t *testing.T, env *servertest.Env, name string) server.Status {
	t.Helper()
	return decode[server.Status](t, must(t, env, request{method: "GET", path: "/api/v1/rollouts/" + name}, http.StatusOK).body)
}

// waitingAtPause starts a run of v2 over v1 and waits until it holds at
// the pause step (weight 20%).
func waitingAtPause(t *testing.T, env *servertest.Env, name string) {
	t.Helper()
	applyVersion(t, env, name, "v1")
	applyVersion(t, env, name, "v2")
	servertest.WaitFor(t, "the pause", func() bool {
		r, err := env.Controller.Get(name)
		return err == nil && r.Status.Waiting != nil && r.Status.Waiting.Kind == rollout.WaitPause
	})
}

// advanceUntil moves the clock 10s at a time until cond holds.
func advanceUntil(t *testing.T, env *servertest.Env, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		env.Clock.Advance(10 * time.Second)
		time.Sleep(10 * time.Millisecond)
	}
}

// serve calls a handler directly.
func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}
