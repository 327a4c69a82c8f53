//go:build docgen

package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server/servertest"
)

// TestGenerateDocExamples writes docs/api.md from testdata/api.md.tmpl,
// replacing each @@name@@ with a real request and its answer:
//
//	go test -tags docgen -run TestGenerateDocExamples ./internal/server
func TestGenerateDocExamples(t *testing.T) {
	examples := map[string]string{}
	defer writeDoc(t, examples)
	env := servertest.Start(t, servertest.Options{MaxBody: 64 << 10, Heartbeat: time.Hour})
	var on *servertest.Env
	ex := func(name string, rq request, bodyShown string) {
		t.Helper()
		res := call(t, on, rq)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", rq.method, rq.path)
		switch rq.token {
		case "":
		case servertest.Token:
			b.WriteString("Authorization: Bearer $AVIARY_TOKEN\n")
		default:
			fmt.Fprintf(&b, "Authorization: Bearer %s\n", rq.token)
		}
		for k, v := range rq.headers {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
		if bodyShown == "" {
			bodyShown = rq.body
		}
		if bodyShown != "" {
			fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(bodyShown, "\n"))
		}
		fmt.Fprintf(&b, "\nHTTP/1.1 %d %s\n", res.status, http.StatusText(res.status))
		for _, h := range []string{"Allow", "WWW-Authenticate", "Retry-After"} {
			if v := res.header.Get(h); v != "" {
				fmt.Fprintf(&b, "%s: %s\n", h, v)
			}
		}
		fmt.Fprintf(&b, "\n%s", res.body)
		examples[name] = b.String()
	}
	on = env
	tok := servertest.Token
	yamlCT := map[string]string{"Content-Type": "application/yaml"}
	ex("apply-v1", request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v1"), token: tok, headers: yamlCT}, "")
	watch := startCapture(t, env.URL+"/api/v1/watch?name=web")
	routes := startCapture(t, env.URL+"/api/v1/routes/watch")
	ex("apply-v2", request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v2"), token: tok, headers: yamlCT},
		"(the same manifest with version: v2)")
	servertest.WaitFor(t, "the pause", func() bool { return waiting(env, "web") })
	ex("list", request{method: "GET", path: "/api/v1/rollouts"}, "")
	ex("get", request{method: "GET", path: "/api/v1/rollouts/web"}, "")
	ex("routes", request{method: "GET", path: "/api/v1/routes"}, "")
	ex("pause", request{method: "POST", path: "/api/v1/rollouts/web/pause", body: `{"reason": "looking at the logs"}`, token: tok,
		headers: map[string]string{"X-Aviary-User": "alice"}}, "")
	ex("refused", request{method: "POST", path: "/api/v1/rollouts/web/pause", token: tok}, "")
	ex("resume", request{method: "POST", path: "/api/v1/rollouts/web/resume", token: tok}, "")
	ex("promote", request{method: "POST", path: "/api/v1/rollouts/web/promote", token: tok, headers: map[string]string{"X-Aviary-User": "alice"}}, "")
	env.Clock.Advance(10 * time.Second)
	servertest.WaitFor(t, "promotion", func() bool { return env.Phase("web") == rollout.PhaseSucceeded })
	ex("succeeded", request{method: "GET", path: "/api/v1/rollouts/web"}, "")
	ex("events", request{method: "GET", path: "/api/v1/rollouts/web/events?after=3&limit=3"}, "")
	ex("runs", request{method: "GET", path: "/api/v1/rollouts/web/runs"}, "")
	ex("measurements", request{method: "GET", path: "/api/v1/rollouts/web/runs/1/measurements"}, "")
	ex("revisions", request{method: "GET", path: "/api/v1/rollouts/web/revisions"}, "")
	ex("release", request{method: "POST", path: "/api/v1/rollouts/web/release", body: `{"version": "v3", "upstreams": ["http://127.0.0.1:9003"]}`, token: tok}, "")
	servertest.WaitFor(t, "the pause", func() bool { return waiting(env, "web") })
	ex("abort", request{method: "POST", path: "/api/v1/rollouts/web/abort", body: `{"reason": "latency on the EU dashboard"}`, token: tok,
		headers: map[string]string{"X-Aviary-User": "bob"}}, "")

	bad := strings.NewReplacer("setWeight: 20", "setWeight: 120", "max: 0.05", "max: 0.05\n        maxIncrease: 1%").Replace(servertest.Manifest("web", "v4"))
	ex("err-invalid", request{method: "POST", path: "/api/v1/rollouts", body: bad, token: tok, headers: yamlCT}, "")
	ex("err-yaml", request{method: "POST", path: "/api/v1/rollouts", body: "apiVersion: aviary.dev/v1alpha1\nkind: Rollout\nspec:\n\tversion: v1\n", token: tok}, "")
	ex("err-json", request{method: "POST", path: "/api/v1/rollouts", body: "{\"apiVersion\": \"aviary.dev/v1alpha1\",\n \"metadata\": {\"name\": \"web\",}}", token: tok,
		headers: map[string]string{"Content-Type": "application/json"}}, "")
	ex("err-notoken", request{method: "POST", path: "/api/v1/rollouts/web/abort"}, "")
	ex("err-token", request{method: "POST", path: "/api/v1/rollouts/web/abort", token: "guess"}, "")
	ex("err-notfound", request{method: "GET", path: "/api/v1/rollouts/nope"}, "")
	ex("err-method", request{method: "PUT", path: "/api/v1/rollouts/web", token: tok}, "")
	ex("err-large", request{method: "POST", path: "/api/v1/rollouts", body: strings.Repeat("#\n", 40<<10), token: tok}, "(80 KiB of YAML comments; this server's limit was set to 64 KiB)")
	ex("err-body", request{method: "POST", path: "/api/v1/rollouts/web/promote", body: `{"gate": "qa"}`, token: tok}, "")
	ex("healthz", request{method: "GET", path: "/healthz"}, "")
	ex("delete", request{method: "DELETE", path: "/api/v1/rollouts/web", token: tok}, "")
	time.Sleep(200 * time.Millisecond)
	for name, c := range map[string]*capture{"watch": watch, "routes-watch": routes} {
		c.cancel()
		examples[name] = c.text()
	}
	on = servertest.Start(t, servertest.Options{NoProvider: true})
	ex("err-unsupported", request{method: "POST", path: "/api/v1/rollouts", body: servertest.Manifest("web", "v1"), token: tok, headers: yamlCT},
		"(the manifest of web, to a server without the builtin provider)")
	on.StopController(t)
	ex("err-notrunning", request{method: "POST", path: "/api/v1/rollouts/web/abort", token: tok}, "")
}

var marker = regexp.MustCompile(`@@([a-z0-9-]+)@@`)

// writeDoc fills the template with the examples.
func writeDoc(t *testing.T, examples map[string]string) {
	if t.Failed() {
		return
	}
	tmpl, err := os.ReadFile(filepath.Join("testdata", "api.md.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	doc := marker.ReplaceAllStringFunc(string(tmpl), func(m string) string {
		name := m[2 : len(m)-2]
		ex, ok := examples[name]
		if !ok {
			t.Errorf("the template uses %s, which no example produced", m)
		}
		ex = strings.TrimRight(ex, "\n")
		if name == "revisions" { // two whole manifests are too long to read
			ex = strings.Join(strings.SplitAfterN(ex, "\n", 61)[:60], "") + "  …"
		}
		return ex
	})
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "api.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waiting(env *servertest.Env, name string) bool {
	r, err := env.Controller.Get(name)
	return err == nil && r.Status.Waiting != nil
}

// capture records a raw event stream.
type capture struct {
	cancel context.CancelFunc
	done   chan struct{}
	buf    strings.Builder
}

func startCapture(t *testing.T, url string) *capture {
	ctx, cancel := context.WithCancel(context.Background())
	c := &capture{cancel: cancel, done: make(chan struct{})}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		defer res.Body.Close()
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			c.buf.WriteString(line)
			if err == io.EOF || err != nil {
				return
			}
		}
	}()
	return c
}

func (c *capture) text() string {
	<-c.done
	return c.buf.String()
}
