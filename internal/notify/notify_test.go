package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aviary/internal/deptest"
	"aviary/internal/rollout"
	"aviary/internal/secret"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestImports(t *testing.T) {
	deptest.Check(t, ".", deptest.Rules{Allow: []string{"aviary/internal/rollout", "aviary/internal/secret"}})
}

var when = time.Date(2026, 5, 4, 12, 30, 0, 0, time.UTC)

// receiver records the bodies it gets and answers with status.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	arrived chan struct{}
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{arrived: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != "aviary/1.2.3" || req.Method != http.MethodPost {
			t.Errorf("got %s with Content-Type %q and User-Agent %q", req.Method, req.Header.Get("Content-Type"), req.Header.Get("User-Agent"))
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		r.arrived <- struct{}{}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// hanging returns a receiver that blocks until the test ends and a channel
// that receives a value for every request that arrives.
func hanging(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	arrived := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, arrived
}

func newDispatcher(t *testing.T, o Options, logs io.Writer) *Dispatcher {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Version = "1.2.3"
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// syncBuffer is a log sink the test may read while deliveries write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func flush(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func event(severity string) rollout.Event {
	return rollout.Event{Time: when, Run: 3, Type: rollout.EventPaused, Severity: severity, Phase: rollout.PhasePaused, Weight: 25, Step: 2,
		Reason: "paused: error-rate canary 4.8% vs stable 0.3% (sequential test p=0.0004 < 0.01, 1,243 canary requests) & <@everyone>"}
}

// Every notifier gets its format, checked against a golden file.
func TestFormats(t *testing.T) {
	for _, typ := range rollout.NotifyTypes {
		t.Run(typ, func(t *testing.T) {
			rcv := newReceiver(t, http.StatusOK)
			d := newDispatcher(t, Options{}, nil)
			d.Notify(t.Context(), Message{Rollout: "web", Version: "v2", Event: event(rollout.SeverityWarn),
				Channels: []rollout.Notification{{Type: typ, URL: rcv.URL + "/hook"}}})
			flush(t, d)
			got := rcv.got()
			if len(got) != 1 {
				t.Fatalf("got %d messages, want 1", len(got))
			}
			golden(t, filepath.Join("testdata", typ+".json"), got[0])
			text := string(got[0])
			weight := "25%"
			if typ == TypeWebhook {
				weight = `"weight":25`
			}
			for _, want := range []string{"web", "v2", "Paused", weight, "4.8%", "0.3%", "1,243"} {
				if !strings.Contains(text, want) {
					t.Errorf("message does not name %q: %s", want, text)
				}
			}
			if s := d.Stats(); s != (Stats{Sent: 1}) {
				t.Errorf("got stats %+v, want one sent", s)
			}
		})
	}
}

func golden(t *testing.T, path string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	buf.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// A channel's severity is the least severe event it gets; global and
// rollout channels both get events, and a destination listed in both gets
// each event once.
func TestSeverityAndChannels(t *testing.T) {
	info, warn, errs := newReceiver(t, 200), newReceiver(t, 200), newReceiver(t, 200)
	own := newReceiver(t, 200)
	d := newDispatcher(t, Options{Global: []rollout.Notification{
		{Type: "webhook", URL: info.URL}, // default: info
		{Type: "webhook", URL: warn.URL, Severity: "warn"},
		{Type: "webhook", URL: errs.URL, Severity: "error"},
	}}, nil)
	chans := []rollout.Notification{{Type: "webhook", URL: own.URL, Severity: "warn"}, {Type: "webhook", URL: errs.URL, Severity: "info"}}
	for _, sev := range []string{"info", "warn", "error", "info", ""} {
		d.Notify(t.Context(), Message{Rollout: "web", Version: "v2", Event: event(sev), Channels: chans})
	}
	flush(t, d)
	for _, c := range []struct {
		name string
		r    *receiver
		want []string
	}{
		{"info", info, []string{"info", "warn", "error", "info", "info"}},
		{"warn", warn, []string{"warn", "error"}},
		// The rollout lists the global error channel with severity info:
		// it gets every event, once.
		{"error", errs, []string{"info", "warn", "error", "info", "info"}},
		{"own", own, []string{"warn", "error"}},
	} {
		var got []string
		for _, b := range c.r.got() {
			var p GenericPayload
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			got = append(got, p.Severity)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("channel %s: severities (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestConstructionErrors(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"NOT_URL": "ftp://files.example.com/x?token=sekrit-value"}[k]
		return v, ok
	}
	tests := []struct {
		name string
		n    rollout.Notification
		want string
	}{
		{"unknown type", rollout.Notification{Type: "pagerduty", URL: "http://127.0.0.1:1/x"},
			"notify[0].type: unknown notification type \"pagerduty\" (want one of slack, teams, discord, googlechat, webhook)"},
		{"unknown severity", rollout.Notification{Type: "slack", URL: "http://127.0.0.1:1/x", Severity: "debug"},
			"notify[0].severity: unknown severity \"debug\" (want info, warn or error)"},
		{"unset variable", rollout.Notification{Type: "slack", URL: "${SLACK_URL}"},
			"notify[0].url: environment variable SLACK_URL is not set"},
		{"not http", rollout.Notification{Type: "slack", URL: "${NOT_URL}"},
			"notify[0].url: the resolved value is not an http:// or https:// URL"},
		{"missing file", rollout.Notification{Type: "teams", URLFile: "/nonexistent/url"},
			"notify[0].urlFile: file /nonexistent/url no such file or directory"},
		{"no url", rollout.Notification{Type: "teams"},
			"notify[0].url: give the webhook URL as an environment variable (\"${SLACK_WEBHOOK}\") or urlFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &secret.Resolver{LookupEnv: env}
			_, err := New(Options{Global: []rollout.Notification{tt.n}, Secrets: res})
			if err == nil || err.Error() != tt.want {
				t.Errorf("New: got %v, want %q", err, tt.want)
			}
			d, _ := New(Options{Secrets: res})
			err = d.Check("notify", []rollout.Notification{tt.n})
			if err == nil || err.Error() != tt.want {
				t.Errorf("Check: got %v, want %q", err, tt.want)
			}
		})
	}
}

// A rollout channel that cannot be built is counted and logged; the
// others still get the message.
func TestInvalidRolloutChannel(t *testing.T) {
	rcv := newReceiver(t, 200)
	var logs syncBuffer
	d := newDispatcher(t, Options{}, &logs)
	d.Notify(t.Context(), Message{Rollout: "web", Event: event("info"), Channels: []rollout.Notification{
		{Type: "pagerduty", URL: rcv.URL}, {Type: "webhook", URL: rcv.URL}}})
	flush(t, d)
	if s := d.Stats(); s != (Stats{Sent: 1, Invalid: 1}) {
		t.Errorf("got %+v, want one sent, one invalid", s)
	}
	if !strings.Contains(logs.String(), `spec.notify[0].type: unknown notification type \"pagerduty\"`) {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
}

// A hanging chat service neither blocks Notify nor delays other channels;
// its queue is bounded and drops the oldest messages.
func TestHangingChannel(t *testing.T) {
	slow, arrived := hanging(t)
	fast := newReceiver(t, 200)
	var logs syncBuffer
	d := newDispatcher(t, Options{QueueLen: 2, Timeout: time.Hour,
		Global: []rollout.Notification{{Type: "slack", URL: slow.URL}, {Type: "discord", URL: fast.URL}}}, &logs)
	d.Notify(t.Context(), Message{Rollout: "web", Version: "v2", Event: event("info")})
	<-arrived // the first message hangs in flight
	<-fast.arrived
	for range 4 {
		d.Notify(t.Context(), Message{Rollout: "web", Version: "v2", Event: event("info")})
		<-fast.arrived // the other channel gets each message while the first hangs
	}
	if s := d.Stats(); s.Dropped != 2 {
		t.Errorf("got %+v, want 2 dropped (5 messages: 1 in flight, 2 queued)", s)
	}
	if n := strings.Count(logs.String(), "notification dropped"); n != 2 {
		t.Errorf("got %d drop records, want 2:\n%s", n, logs.String())
	}
	select {
	case <-arrived:
		t.Fatal("a second message reached the hanging channel while the first was in flight")
	default:
	}
	// Let the fast channel's last answer be counted.
	for deadline := time.Now().Add(10 * time.Second); d.Stats().Sent < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	d.Close() // cancels the hanging delivery and drops the two queued
	if s := d.Stats(); s.Dropped != 4 || s.Failed != 1 || s.Sent != 5 {
		t.Errorf("after Close: got %+v, want 5 sent, 1 failed, 4 dropped", s)
	}
	d.Notify(t.Context(), Message{Rollout: "web", Event: event("info")})
	if s := d.Stats(); s.Dropped != 6 {
		t.Errorf("Notify after Close: got %+v, want its 2 messages dropped", s)
	}
}

func TestTimeoutAndFailure(t *testing.T) {
	slow, _ := hanging(t)
	failing := newReceiver(t, http.StatusForbidden)
	var logs syncBuffer
	d := newDispatcher(t, Options{Timeout: 100 * time.Millisecond, Global: []rollout.Notification{
		{Type: "googlechat", URL: slow.URL}, {Type: "teams", URL: failing.URL}}}, &logs)
	d.Notify(t.Context(), Message{Rollout: "web", Event: event("error")})
	flush(t, d)
	if s := d.Stats(); s != (Stats{Failed: 2}) {
		t.Errorf("got %+v, want 2 failed", s)
	}
	for _, want := range []string{`channel=notify[0] type=googlechat rollout=web event=Paused result="timeout after 100ms"`,
		`channel=notify[1] type=teams rollout=web event=Paused result="403 Forbidden"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

// Messages to one channel arrive in the order they were raised.
func TestOrder(t *testing.T) {
	rcv := newReceiver(t, 200)
	d := newDispatcher(t, Options{Global: []rollout.Notification{{Type: "webhook", URL: rcv.URL}}}, nil)
	for i := range 20 {
		e := event("info")
		e.Weight = i
		d.Notify(t.Context(), Message{Rollout: "web", Event: e})
	}
	flush(t, d)
	for i, b := range rcv.got() {
		var p GenericPayload
		json.Unmarshal(b, &p)
		if p.Weight != i {
			t.Fatalf("message %d has weight %d: out of order", i, p.Weight)
		}
	}
}

func TestClip(t *testing.T) {
	s := strings.Repeat("é", maxReason)
	if got := clip(s, maxReason); len(got) > maxReason+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("clip: got %d bytes", len(got))
	}
	if got := clip("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
}
