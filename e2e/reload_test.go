package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
)

// SIGHUP applies the config file again: an edited version starts a run, an
// invalid edit is refused and changes nothing, and the server keeps going.
func TestSIGHUPReloadsConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "rollouts.yaml")
	v1, v2 := newUpstream(t, "v1", 0), newUpstream(t, "v2", 0)
	listen := freeAddr(t)
	write := func(s string) {
		if err := os.WriteFile(config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(manifest("web", "v1", v1.URL, listen, `[{setWeight: 20}, {pause: {}}]`))
	e := newEnv(t, "--config", config)
	e.waitPhase("web", rollout.PhaseInitialized, 10*time.Second)

	hup := func(want string) {
		t.Helper()
		before := strings.Count(e.server.log.String(), "aviary server")
		e.server.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(e.server.log.String(), "aviary server") == before {
			if time.Now().After(deadline) {
				t.Fatalf("no answer to SIGHUP:\n%s", e.server.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if log := e.server.log.String(); !strings.Contains(log, want) {
			t.Fatalf("after SIGHUP the server says:\n%s\nwant %q", log, want)
		}
	}
	// Invalid: refused, nothing changes.
	write(strings.Replace(manifest("web", "v2", v2.URL, listen, `[{setWeight: 20}, {pause: {}}]`), "setWeight: 20", "setWeight: 120", 1))
	hup("setWeight")
	if st := e.status("web"); st.Phase != rollout.PhaseInitialized || st.DesiredVersion != "v1" {
		t.Fatalf("an invalid config changed the rollout: %s, desired %s", st.Phase, st.DesiredVersion)
	}
	// A new version: a run starts.
	write(manifest("web", "v2", v2.URL, listen, `[{setWeight: 20}, {pause: {}}]`))
	hup("reloaded " + config + ": 1 rollout(s): 0 created, 1 configured, 0 unchanged")
	e.waitFor("web", "v2 at 20%", 20*time.Second, func(st server.Status) bool { return st.CanaryVersion == "v2" && st.CanaryWeight == 20 })
}
