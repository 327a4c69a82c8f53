package server_test

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server/servertest"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The JSON of the API is a contract (docs/api.md): these golden files fail
// when a key is renamed, removed or changes type.
func TestAnswersGolden(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	post(t, env, "/api/v1/rollouts/web/promote", "")
	env.Clock.Advance(10 * time.Second)
	servertest.WaitFor(t, "v2 promoted", func() bool { return env.Phase("web") == rollout.PhaseSucceeded })
	for name, path := range map[string]string{
		"status.json":       "/api/v1/rollouts/web",
		"list.json":         "/api/v1/rollouts",
		"events.json":       "/api/v1/rollouts/web/events?after=4&limit=3",
		"runs.json":         "/api/v1/rollouts/web/runs",
		"measurements.json": "/api/v1/rollouts/web/runs/1/measurements",
		"revisions.json":    "/api/v1/rollouts/web/revisions",
		"routes.json":       "/api/v1/routes",
	} {
		t.Run(name, func(t *testing.T) {
			golden(t, name, string(must(t, env, request{method: "GET", path: path}, http.StatusOK).body))
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/server -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
