package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
)

// fakeServer streams the route events it is given, one connection at a
// time, then holds the stream open until the test ends.
type fakeServer struct {
	streams chan []string // each connection sends one batch of "type\ndata"
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/routes/watch" {
		http.NotFound(w, r)
		return
	}
	var batch []string
	select {
	case batch = <-f.streams:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, ev := range batch {
		typ, data, _ := strings.Cut(ev, "\n")
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
	}
	w.(http.Flusher).Flush()
	// The connection ends here: the data plane reconnects for the next batch.
}

func entry(t *testing.T, name, listen string, gen int64, weight int) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(up.Close)
	e := server.RouteEntry{Name: name, Revision: 1, Traffic: rollout.Traffic{Router: rollout.RouterBuiltin, Listen: listen},
		Route: &rollout.Route{Generation: gen, Stable: rollout.Backend{Version: "v1", Upstreams: []string{up.URL}}, Weight: weight}}
	b, _ := json.Marshal(e)
	return "route\n" + string(b)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serves(addr, body string) bool {
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b) == body
}

// The data plane applies the server's routes, persists them, forgets the
// rollouts a resync no longer names, and serves the persisted routing when
// it starts without a server.
func TestFollowPersistRestore(t *testing.T) {
	fs := &fakeServer{streams: make(chan []string, 4)}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	webAddr, apiAddr := freeAddr(t), freeAddr(t)
	ctx := context.Background()
	dp, err := Start(ctx, Options{Server: srv.URL, State: state, Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	fs.streams <- []string{"resync\n{\"count\":2}", entry(t, "web", webAddr, 3, 0), entry(t, "api", apiAddr, 5, 0)}
	waitFor(t, "both rollouts served", func() bool { return serves(webAddr, "web") && serves(apiAddr, "api") })
	fs.streams <- []string{"resync\n{\"count\":1}", entry(t, "web", webAddr, 4, 0)}
	waitFor(t, "api removed after the resync", func() bool { return !serves(apiAddr, "api") })

	var res Applied
	r, err := http.Get(dp.AdminURL() + "/api/v1/applied")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if len(res.Generations) != 1 || res.Generations["web"] != 4 {
		t.Fatalf("applied %v, want web at generation 4 only", res.Generations)
	}
	if err := dp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	// Without a server, a new data plane serves what was persisted.
	dp2, err := Start(ctx, Options{Server: srv.URL, State: state, Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer dp2.Close(ctx)
	waitFor(t, "web served from the state file", func() bool { return serves(webAddr, "web") })
	if serves(apiAddr, "api") {
		t.Fatal("a removed rollout came back from the state file")
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(state, []byte("{not json"), 0o600)
	_, err := Start(context.Background(), Options{Server: "http://127.0.0.1:1", State: state, Admin: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Fatalf("got %v", err)
	}
}
