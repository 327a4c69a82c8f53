package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/controller"
	"aviary/internal/rollout"
	"aviary/internal/server"
	"aviary/internal/server/servertest"
)

// sseEvent is one server-sent event; comments have typ ":".
type sseEvent struct {
	typ  string
	data string
}

// stream reads server-sent events from a GET in the background.
type stream struct {
	t      *testing.T
	events chan sseEvent
	cancel context.CancelFunc
	header http.Header
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	s := &stream{t: t, events: make(chan sseEvent, 1024), cancel: cancel, header: res.Header}
	go func() {
		defer close(s.events)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{typ: ":", data: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next event that is not a comment.
func (s *stream) next() sseEvent {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatal("the stream ended")
			}
			if ev.typ != ":" {
				return ev
			}
		case <-time.After(10 * time.Second):
			s.t.Fatal("no event within 10s")
		}
	}
}

// expect reads the next event and decodes it, failing unless it is typ.
func expect[T any](s *stream, typ string) T {
	s.t.Helper()
	ev := s.next()
	if ev.typ != typ {
		s.t.Fatalf("got a %s event (%s), want %s", ev.typ, ev.data, typ)
	}
	var v T
	if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
		s.t.Fatalf("decode %s event %s: %v", typ, ev.data, err)
	}
	return v
}

// ended waits for the stream to end.
func (s *stream) ended() bool {
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func TestWatchStreamsChanges(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	s := openStream(t, env.URL+"/api/v1/watch")
	if ct := s.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	if r := expect[server.Resync](s, server.EventResync); r.Count != 0 {
		t.Fatalf("resync of an empty server: count %d", r.Count)
	}
	applyVersion(t, env, "web", "v1")
	c := expect[server.RolloutChange](s, server.EventRollout)
	if c.Rollout.Name != "web" || c.Rollout.Phase != rollout.PhaseInitialized || len(c.Events) != 1 || c.Events[0].Type != rollout.EventInitialized {
		t.Fatalf("first change: got %s %s %+v, want web Initialized with its event", c.Rollout.Name, c.Rollout.Phase, c.Events)
	}
	applyVersion(t, env, "web", "v2")
	for {
		c = expect[server.RolloutChange](s, server.EventRollout)
		if c.Rollout.Waiting != nil {
			break
		}
	}
	if c.Rollout.CanaryWeight != 20 || c.Rollout.CanaryVersion != "v2" {
		t.Fatalf("at the pause: got %s at %d%%", c.Rollout.CanaryVersion, c.Rollout.CanaryWeight)
	}
	must(t, env, request{method: "DELETE", path: "/api/v1/rollouts/web", token: servertest.Token}, http.StatusOK)
	if d := expect[server.Deleted](s, server.EventDeleted); d.Name != "web" {
		t.Fatalf("deleted %q, want web", d.Name)
	}
	// Idle streams carry heartbeat comments.
	deadline := time.After(5 * time.Second)
	for heartbeat := false; !heartbeat; {
		select {
		case ev := <-s.events:
			heartbeat = ev.typ == ":" && ev.data == "heartbeat"
		case <-deadline:
			t.Fatal("no heartbeat within 5s")
		}
	}
}

// A stream opens with the current state: a resync and every rollout (or
// the one asked for).
func TestWatchOpensWithState(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "api", "v1")
	waitingAtPause(t, env, "web")
	all := openStream(t, env.URL+"/api/v1/watch")
	if r := expect[server.Resync](all, server.EventResync); r.Count != 2 {
		t.Fatalf("resync count %d, want 2", r.Count)
	}
	for _, name := range []string{"api", "web"} {
		if c := expect[server.RolloutChange](all, server.EventRollout); c.Rollout.Name != name || len(c.Events) != 0 {
			t.Fatalf("snapshot: got %s with %d events, want %s without events", c.Rollout.Name, len(c.Events), name)
		}
	}
	one := openStream(t, env.URL+"/api/v1/watch?name=web")
	if r := expect[server.Resync](one, server.EventResync); r.Count != 1 {
		t.Fatalf("resync count %d, want 1", r.Count)
	}
	if c := expect[server.RolloutChange](one, server.EventRollout); c.Rollout.Name != "web" || c.Rollout.CanaryWeight != 20 {
		t.Fatalf("snapshot: got %s at %d%%, want web at 20%%", c.Rollout.Name, c.Rollout.CanaryWeight)
	}
	applyVersion(t, env, "api", "v2") // not web: filtered out
	post(t, env, "/api/v1/rollouts/web/promote", "")
	if c := expect[server.RolloutChange](one, server.EventRollout); c.Rollout.Name != "web" || c.Rollout.CanaryWeight != 60 {
		t.Fatalf("after promote: got %s at %d%%, want web at 60%%", c.Rollout.Name, c.Rollout.CanaryWeight)
	}
}

// subscriptions is a controller whose subscriptions the test feeds.
type subscriptions struct {
	*controller.Controller
	mu        sync.Mutex
	ch        chan controller.Change
	cancelled chan struct{}
}

func (s *subscriptions) Subscribe() (<-chan controller.Change, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ch, s.cancelled = make(chan controller.Change, 16), make(chan struct{})
	var once sync.Once
	cancelled := s.cancelled
	return s.ch, func() { once.Do(func() { close(cancelled) }) }
}

func (s *subscriptions) feed() (chan controller.Change, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch, s.cancelled
}

// A subscriber that fell behind is told to resync and sent the complete
// state; a client that leaves ends its subscription; Close ends streams.
func TestWatchResyncDisconnectAndClose(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	subs := &subscriptions{Controller: env.Controller}
	srv, err := server.New(server.Options{Controller: subs, History: env.Store, Token: "t", Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	for _, path := range []string{"/api/v1/watch", "/api/v1/routes/watch"} {
		t.Run(path, func(t *testing.T) {
			s := openStream(t, hs.URL+path)
			expect[server.Resync](s, server.EventResync)
			s.next() // web
			ch, cancelled := subs.feed()
			ch <- controller.Change{Resync: true}
			if r := expect[server.Resync](s, server.EventResync); r.Count != 1 {
				t.Fatalf("resync count %d, want 1", r.Count)
			}
			if ev := s.next(); !strings.Contains(ev.data, `"name":"web"`) {
				t.Fatalf("after resync: got %s %s, want web's state", ev.typ, ev.data)
			}
			s.cancel()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the subscription outlived its client")
			}
		})
	}

	s := openStream(t, hs.URL+"/api/v1/watch")
	expect[server.Resync](s, server.EventResync)
	srv.Close()
	if !s.ended() {
		t.Fatal("Close did not end the stream")
	}
}

// The route stream sends a rollout's route when its generation (or the
// spec) changes, not on every status change.
func TestRoutesWatch(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	waitingAtPause(t, env, "web")
	s := openStream(t, env.URL+"/api/v1/routes/watch")
	expect[server.Resync](s, server.EventResync)
	first := expect[server.RouteEntry](s, server.EventRoute)
	if first.Name != "web" || first.Route == nil || first.Route.Weight != 20 || first.Traffic.Listen != "127.0.0.1:18080" {
		t.Fatalf("snapshot: got %+v", first)
	}
	post(t, env, "/api/v1/rollouts/web/pause", "") // status only: no new route
	post(t, env, "/api/v1/rollouts/web/resume", "")
	post(t, env, "/api/v1/rollouts/web/promote", "")
	next := expect[server.RouteEntry](s, server.EventRoute)
	if next.Route.Weight != 60 || next.Route.Generation <= first.Route.Generation {
		t.Fatalf("after promote: got weight %d generation %d, want 60 after generation %d", next.Route.Weight, next.Route.Generation, first.Route.Generation)
	}
	must(t, env, request{method: "DELETE", path: "/api/v1/rollouts/web", token: servertest.Token}, http.StatusOK)
	if d := expect[server.Deleted](s, server.EventDeleted); d.Name != "web" {
		t.Fatalf("deleted %q", d.Name)
	}
}

// A stream is not cut by the http.Server's write timeout, and HEAD answers
// the headers without opening one.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	applyVersion(t, env, "web", "v1")
	hs := httptest.NewUnstartedServer(env.Server)
	hs.Config.WriteTimeout = 100 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close) // after the stream's cleanup ends it
	s := openStream(t, hs.URL+"/api/v1/watch")
	expect[server.Resync](s, server.EventResync)
	expect[server.RolloutChange](s, server.EventRollout)
	time.Sleep(300 * time.Millisecond)
	applyVersion(t, env, "web", "v2")
	if c := expect[server.RolloutChange](s, server.EventRollout); c.Rollout.DesiredVersion != "v2" {
		t.Fatalf("after the write timeout: got %s, want the change to v2", c.Rollout.DesiredVersion)
	}
	res := must(t, env, request{method: "HEAD", path: "/api/v1/watch"}, http.StatusOK)
	if ct := res.header.Get("Content-Type"); ct != "text/event-stream" || len(res.body) != 0 {
		t.Errorf("HEAD: content type %q, body %q", ct, res.body)
	}
}
