package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server/servertest"
)

// The output of every read command, in every format, against a server
// with one rollout at a pause and one freshly created.
func TestReadCommandsGolden(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	a.ok("apply", "-f", writeFile(t, "api.yaml", servertest.Manifest("api", "v1")))
	env.Clock.Advance(90 * time.Second) // api was updated "1m30s ago"
	atPause(t, a, "web")
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"get.txt", []string{"get"}},
		{"get.json", []string{"get", "-o", "json"}},
		{"get.yaml", []string{"get", "-o", "yaml"}},
		{"get-web.txt", []string{"get", "web"}},
		{"get-web.json", []string{"get", "web", "-o", "json"}},
		{"status-pause.txt", []string{"status", "web"}},
		{"status-pause.json", []string{"status", "web", "-o", "json"}},
		{"status-api.txt", []string{"status", "api"}},
		{"events.txt", []string{"events", "web"}},
		{"events-after.json", []string{"events", "web", "--after", "2", "-o", "json"}},
		{"history-running.txt", []string{"history", "web"}},
		{"history-none.txt", []string{"history", "api"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			golden(t, tc.golden, a.normalize(a.ok(tc.args...).stdout))
		})
	}
}

// The output of the commands that change rollouts, through a whole
// release: apply, promote, promotion after analysis, rollback, release,
// abort, retry, and a failed run.
func TestWriteCommandsGolden(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	var out strings.Builder
	step := func(args ...string) {
		t.Helper()
		r := a.ok(args...)
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = a
			if strings.Contains(a, " ") {
				quoted[i] = `"` + a + `"`
			}
		}
		shown := strings.Join(quoted, " ")
		if args[0] == "apply" {
			shown = "apply -f " + filepath.Base(args[2])
		}
		fmt.Fprintf(&out, "$ aviary %s\n%s", shown, r.stdout)
	}
	step("apply", "-f", writeFile(t, "web.yaml", servertest.Manifest("web", "v1")))
	step("apply", "-f", writeFile(t, "web.yaml", servertest.Manifest("web", "v1")))
	step("release", "web", "--version", "v2", "--upstream", "http://127.0.0.1:9002")
	servertest.WaitFor(t, "the pause", func() bool { return waiting(env, "web") })
	step("pause", "web", "--reason", "looking at the logs")
	step("resume", "web")
	step("promote", "web")
	env.Clock.Advance(10 * time.Second) // one analysis interval: it passes
	servertest.WaitFor(t, "v2 promoted", func() bool { return env.Phase("web") == rollout.PhaseSucceeded })
	step("status", "web")
	step("rollback", "web", "--reason", "customer reports")
	step("release", "web", "--version", "v3", "--upstream", "http://127.0.0.1:9003", "--upstream", "http://127.0.0.1:9004")
	servertest.WaitFor(t, "the pause", func() bool { return waiting(env, "web") })
	step("abort", "web")
	step("retry", "web")
	servertest.WaitFor(t, "the pause", func() bool { return waiting(env, "web") })
	env.Provider.SetErrorRates(0.2, 0.01)
	step("promote", "web")
	env.Clock.Advance(10 * time.Second) // the check fails: rolled back
	servertest.WaitFor(t, "v3 rolled back", func() bool { return env.Phase("web") == rollout.PhaseFailed })
	step("status", "web")
	step("history", "web")
	step("delete", "web")
	golden(t, "release.txt", a.normalize(out.String()))
}

func waiting(env *servertest.Env, name string) bool {
	r, err := env.Controller.Get(name)
	return err == nil && r.Status.Waiting != nil
}

func TestApproveGate(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	gated := strings.Replace(servertest.Manifest("web", "v1"), "- pause: {}", "- gate: {name: qa}", 1)
	a.ok("apply", "-f", writeFile(t, "v1.yaml", gated))
	a.ok("apply", "-f", writeFile(t, "v2.yaml", strings.Replace(gated, "version: v1", "version: v2", 1)))
	servertest.WaitFor(t, "the gate", func() bool { return waiting(env, "web") })
	status := a.ok("status", "web").stdout
	if !strings.Contains(status, "at gate qa: `aviary approve web --gate qa`") {
		t.Errorf("status does not say how to pass the gate:\n%s", status)
	}
	wrong := a.run("approve", "web", "--gate", "security")
	if wrong.code != ExitFailed || !strings.Contains(wrong.stderr, `not at gate "security"`) {
		t.Errorf("approving the wrong gate: exit %d, stderr %q", wrong.code, wrong.stderr)
	}
	got := a.ok("approve", "web", "--gate", "qa").stdout
	if !strings.Contains(got, "web approve: Progressing at step 4/4, v2 at 60%") {
		t.Errorf("approve printed %q", got)
	}
}

// Problems the server finds are printed with the offending fields and
// lines, and exit 1; usage errors exit 2.
func TestErrorsAndExitCodes(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	a.ok("apply", "-f", writeFile(t, "web.yaml", servertest.Manifest("web", "v1")))
	invalid := writeFile(t, "invalid.yaml", strings.NewReplacer("setWeight: 20", "setWeight: 120", "interval: 10s", "interval: soon").Replace(servertest.Manifest("web", "v2")))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"an invalid manifest", []string{"apply", "-f", invalid}, ExitFailed,
			"aviary: " + invalid + ": the manifest is invalid: spec.analysis.interval (line 18): \"soon\" is not a duration (examples: \"30s\", \"5m\", \"1h\")\n"},
		{"a missing file", []string{"apply", "-f", "/nonexistent.yaml"}, ExitFailed, "aviary: open /nonexistent.yaml: no such file or directory\n"},
		{"an unknown rollout", []string{"status", "nope"}, ExitFailed, "aviary: \"nope\": rollout not found\n"},
		{"a refused operation", []string{"promote", "web"}, ExitFailed, "aviary: promote: no run in progress (phase Initialized)\n"},
		{"a release without upstreams", []string{"release", "web", "--version", "v2"}, ExitFailed,
			"aviary: the release is invalid: upstreams: give the addresses where v2 runs (rollout \"web\" runs on upstreams, not a Kubernetes target)\n"},
		{"no version to release", []string{"release", "web"}, ExitUsage, "aviary: give the version to release with --version\n"},
		{"no name", []string{"status"}, ExitUsage, "aviary: aviary status takes one rollout name, got 0 argument(s)\n"},
		{"two names", []string{"get", "a", "b"}, ExitUsage, "aviary: aviary get takes at most one rollout name, got 2 arguments\n"},
		{"an unknown flag", []string{"promote", "web", "--force"}, ExitUsage, "aviary: unknown flag: --force\n"},
		{"--full on abort", []string{"abort", "web", "--full"}, ExitUsage, "aviary: unknown flag: --full\n"},
		{"an unknown format", []string{"get", "-o", "xml"}, ExitUsage, "aviary: unknown output format \"xml\" (want one of [table json yaml])\n"},
		{"an unknown command", []string{"deploy"}, ExitUsage, "aviary: unknown command \"deploy\" for \"aviary\"\n"},
		{"a bad server address", []string{"get", "--server", "localhost:7070"}, ExitUsage,
			"aviary: server address \"localhost:7070\" is not an http:// or https:// URL (set --server or AVIARY_SERVER)\n"},
		{"a negative --after", []string{"events", "web", "--after", "-1"}, ExitUsage, "aviary: --after must be 0 or more, got -1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.run(tc.args...)
			if r.code != tc.code || a.normalize(r.stderr) != tc.stderr {
				t.Errorf("aviary %s: exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestInvalidManifestListsEveryProblem(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	bad := strings.NewReplacer("setWeight: 20", "setWeight: 120", "max: 0.05", "max: 0.05\n        maxIncrease: 1%").Replace(servertest.Manifest("web", "v1"))
	path := writeFile(t, "bad.yaml", bad)
	r := a.run("apply", "-f", path)
	want := "aviary: " + path + ": the manifest is invalid (2 problems):\n" +
		"  spec.strategy.canary.steps[0].setWeight (line 13): weight must be between 0 and 100, got 120\n" +
		"  spec.analysis.metrics[0].maxIncrease (line 22): maxIncrease needs compare: baseline\n"
	if r.code != ExitFailed || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", r.code, r.stderr, want)
	}
	if _, err := env.Controller.Get("web"); err == nil {
		t.Error("the invalid manifest was applied")
	}
	// From standard input, with the same lines.
	r = a.runIn(context.Background(), bad, "apply", "-f", "-")
	if r.code != ExitFailed || !strings.HasPrefix(r.stderr, "aviary: standard input: the manifest is invalid (2 problems)") {
		t.Errorf("from stdin: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTokens(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	manifest := writeFile(t, "web.yaml", servertest.Manifest("web", "v1"))

	delete(a.vars, "AVIARY_TOKEN")
	r := a.run("apply", "-f", manifest)
	if r.code != ExitFailed || !strings.Contains(r.stderr, "needs the API token") || !strings.Contains(r.stderr, "set AVIARY_TOKEN or pass --token-file FILE") {
		t.Errorf("without a token: exit %d, stderr %q", r.code, r.stderr)
	}
	a.ok("get") // reads need no token

	a.vars["AVIARY_TOKEN"] = "wrong"
	r = a.run("apply", "-f", manifest)
	if r.code != ExitFailed || !strings.Contains(r.stderr, "the API token is wrong") || !strings.Contains(r.stderr, "did not accept this token") {
		t.Errorf("with a wrong token: exit %d, stderr %q", r.code, r.stderr)
	}
	tokenFile := writeFile(t, "token", servertest.Token+"\n")
	a.ok("apply", "-f", manifest, "--token-file", tokenFile) // the file wins over the environment
	if r := a.run("get", "--token-file", "/nonexistent"); r.code != ExitFailed || !strings.Contains(r.stderr, "read the API token") {
		t.Errorf("a missing token file: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := env.Controller.Get("web"); err != nil {
		t.Errorf("applied with --token-file: %v", err)
	}
}

// A server that cannot be reached is named, with how to point elsewhere.
func TestConnectionError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	env := servertest.Start(t, servertest.Options{})
	a := newAviary(t, env)
	a.vars["AVIARY_SERVER"] = addr
	r := a.run("get")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "cannot reach the aviary server at "+addr) ||
		!strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "--server URL or AVIARY_SERVER") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	delete(a.vars, "AVIARY_SERVER")
	if r := a.run("get"); !strings.Contains(r.stderr, "at "+DefaultServer) && r.code != ExitOK {
		t.Errorf("without AVIARY_SERVER: stderr %q, want the default address named", r.stderr)
	}
	if r := a.run("get", "--server", env.URL); r.code != ExitOK {
		t.Errorf("--server: exit %d, stderr %q", r.code, r.stderr)
	}
}

// Only implemented commands are listed in help.
func TestHelpListsCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	r := newAviary(t, env).ok("--help")
	golden(t, "help.txt", r.stdout)
}
