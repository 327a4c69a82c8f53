package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/store"
	"sigs.k8s.io/yaml"
)

// One server per data directory: a second is refused with a message that
// names the directory and the holder, and starts once the first is gone.
func TestDataDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "aviary.db"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("a second server on the same data directory started")
	}
	for _, want := range []string{dir, "in use by another aviary server", fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, err := os.ReadFile(filepath.Join(dir, "aviary.db"))
	if err != nil || string(after) != string(before) {
		t.Errorf("the refused server touched the store (%v)", err)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := first.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	second, err := Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("after the first server stopped: %v", err)
	}
	if err := second.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

// With RetainRuns, the server prunes the measurements of old runs at start
// and then periodically, and keeps the latest runs' and all runs' records.
func TestPrunesOldMeasurements(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "aviary.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var m rollout.Manifest
	listen := freeAddr(t)
	doc := fmt.Sprintf(`{apiVersion: aviary.dev/v1alpha1, kind: Rollout, metadata: {name: web},
  spec: {version: v3, upstreams: ["http://127.0.0.1:9"], traffic: {listen: %q}, strategy: {canary: {steps: [{setWeight: 50}]}}}}`, listen)
	if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for run := 1; run <= 3; run++ {
		tr := store.Transition{Name: "web", At: t0.Add(time.Duration(run) * time.Minute),
			Status: rollout.Status{Phase: rollout.PhaseSucceeded, Run: run, Stable: rollout.Backend{Version: fmt.Sprintf("v%d", run), Upstreams: []string{"http://127.0.0.1:9"}}},
			Points: []store.Point{{Run: run, Interval: 1, Metric: "error-rate", At: t0, Canary: analysis.Measurement{Count: -1}, Stable: analysis.Measurement{Count: -1}}}}
		if run == 1 {
			tr.Manifest = &m
		}
		if err := db.Commit(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	d, err := Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0", RetainRuns: 2, PruneEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		old, err1 := d.db.Series(ctx, "web", 1)
		kept, err2 := d.db.Series(ctx, "web", 2)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if len(old) == 0 {
			if len(kept) != 1 {
				t.Fatalf("run 2 has %d points, want its 1 kept (RetainRuns 2)", len(kept))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run 1's measurements were not pruned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if runs, err := d.db.Runs(ctx, "web"); err != nil || len(runs) != 3 {
		t.Errorf("runs after pruning: %d (%v), want all 3", len(runs), err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// On a wildcard address the server's URL is the loopback one, which
// reaches it from this machine.
func TestURLOnEveryInterface(t *testing.T) {
	ctx := context.Background()
	d, err := Start(ctx, Options{DataDir: t.TempDir(), Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(ctx)
	if !d.AllInterfaces() || !strings.HasPrefix(d.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %s, AllInterfaces() = %v; want a loopback URL on every interface", d.URL(), d.AllInterfaces())
	}
	res, err := http.Get(d.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz at %s: %s", d.URL(), res.Status)
	}
}
