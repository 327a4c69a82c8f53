package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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

const testSecret = "0123456789abcdef-hook-secret"

var fixedNow = time.Date(2026, 5, 4, 12, 30, 0, 0, time.UTC)

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver answers with the statuses in turn (the last one repeats) and
// records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	statuses []int
	body     string
}

func newReceiver(t *testing.T, body string, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses, body: body}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), b})
		st := r.statuses[min(len(r.got), len(r.statuses))-1]
		r.mu.Unlock()
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		if st == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(st)
		io.WriteString(w, r.body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// sleeps records the pauses a Caller asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) pauses() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func testCaller(t *testing.T, s *sleeps, logs io.Writer) *Caller {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	return New(Options{
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Secrets: &secret.Resolver{LookupEnv: func(k string) (string, bool) { return testSecret, k == "HOOK_SECRET" }, Redactor: secret.NewRedactor()},
		Version: "1.2.3",
		Now:     func() time.Time { return fixedNow },
		Sleep:   s.sleep,
		Jitter:  func() float64 { return 0.5 },
	})
}

func request(typ, url string) Request {
	r := Request{
		Rollout: "web",
		Hook: rollout.Webhook{Name: "my-" + typ, Type: typ, URL: url, Timeout: rollout.Duration(5 * time.Second),
			Secret: "${HOOK_SECRET}", Metadata: map[string]string{"team": "payments", "ticket": "OPS-42"}},
		Call:   rollout.CallHook{Name: "my-" + typ, Type: typ, Key: "3/s2/my-" + typ, Run: 3, Phase: rollout.PhaseProgressing, Version: "v2", Weight: 25},
		Canary: "v2",
		Stable: "v1",
	}
	switch typ {
	case rollout.HookEvent:
		r.Event = &rollout.Event{Time: fixedNow.Add(-time.Second), Run: 3, Type: rollout.EventPaused, Severity: rollout.SeverityWarn,
			Phase: rollout.PhasePaused, Weight: 25, Step: 2,
			Reason: "paused: error-rate canary 4.8% vs stable 0.3% (sequential test p=0.0004 < 0.01, 1,243 canary requests)"}
		r.Call.Phase, r.Call.Key = rollout.PhasePaused, "3/event"
	case rollout.HookPostRollout:
		r.Call.Phase, r.Call.Weight, r.Call.Key = rollout.PhaseSucceeded, 100, "3/post/my-post-rollout"
	case rollout.HookConfirmRollout, rollout.HookPreRollout:
		r.Call.Weight, r.Call.Key = 0, "3/open/my-"+typ
	}
	return r
}

var calledTypes = []string{
	rollout.HookConfirmRollout, rollout.HookPreRollout, rollout.HookRollout, rollout.HookConfirmTrafficIncrease,
	rollout.HookConfirmPromotion, rollout.HookPostRollout, rollout.HookRollback, rollout.HookEvent,
}

// Every webhook type gets its payload, checked against a golden file, with
// the headers and a signature the published Verify accepts.
func TestPayloadsByType(t *testing.T) {
	for _, typ := range calledTypes {
		t.Run(typ, func(t *testing.T) {
			rcv := newReceiver(t, "ok", http.StatusOK)
			c := testCaller(t, &sleeps{}, nil)
			res := c.Call(t.Context(), request(typ, rcv.URL+"/hook"))
			want := rollout.HookResult{Name: "my-" + typ, Key: request(typ, "").Call.Key, OK: true, Message: "200 OK: ok"}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			got := rcv.requests()
			if len(got) != 1 {
				t.Fatalf("got %d requests, want 1", len(got))
			}
			h := got[0].header
			for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "aviary/1.2.3",
				HeaderTimestamp: fmt.Sprint(fixedNow.Unix()), HeaderAttempt: "1"} {
				if h.Get(k) != v {
					t.Errorf("header %s: got %q, want %q", k, h.Get(k), v)
				}
			}
			if err := Verify([]byte(testSecret), h.Get(HeaderTimestamp), h.Get(HeaderSignature), got[0].body, fixedNow.Add(time.Minute), DefaultTolerance); err != nil {
				t.Errorf("signature: %v", err)
			}
			golden(t, filepath.Join("testdata", typ+".json"), got[0].body)
		})
	}
}

// golden compares a JSON body, indented, with a golden file.
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

func TestVerify(t *testing.T) {
	body := []byte(`{"schema":"aviary.dev/webhook/v1"}`)
	ts := fmt.Sprint(fixedNow.Unix())
	sig := Sign([]byte(testSecret), ts, body)
	tests := []struct {
		name      string
		secret    string
		ts, sig   string
		body      []byte
		now       time.Time
		wantError error
	}{
		{"valid", testSecret, ts, sig, body, fixedNow, nil},
		{"valid within tolerance", testSecret, ts, sig, body, fixedNow.Add(4 * time.Minute), nil},
		{"replayed later", testSecret, ts, sig, body, fixedNow.Add(6 * time.Minute), ErrStale},
		{"from the future", testSecret, ts, sig, body, fixedNow.Add(-6 * time.Minute), ErrStale},
		{"body changed", testSecret, ts, sig, []byte(`{"schema":"other"}`), fixedNow, ErrBadSignature},
		{"timestamp changed", testSecret, fmt.Sprint(fixedNow.Unix() + 1), sig, body, fixedNow, ErrBadSignature},
		{"other secret", "another-secret-0123456", ts, sig, body, fixedNow, ErrBadSignature},
		{"unsigned", testSecret, ts, "", body, fixedNow, ErrNoSignature},
		{"no prefix", testSecret, ts, strings.TrimPrefix(sig, "sha256="), body, fixedNow, ErrBadSignature},
		{"not hex", testSecret, ts, "sha256=zz", body, fixedNow, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]byte(tt.secret), tt.ts, tt.sig, tt.body, tt.now, DefaultTolerance)
			if !errors.Is(err, tt.wantError) {
				t.Errorf("got %v, want %v", err, tt.wantError)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		body       string
		wantOK     bool
		wantMsg    string
		wantCalls  int
		wantPauses []time.Duration
	}{
		{"2xx is yes", []int{204}, "", true, "204 No Content", 1, nil},
		{"503 retried then 200", []int{503, 503, 200}, "", true, "200 OK after 3 attempts", 3,
			[]time.Duration{187500 * time.Microsecond, 375 * time.Millisecond}},
		{"503 every time", []int{503}, "db down\n", false, "503 Service Unavailable after 3 attempts: db down", 3,
			[]time.Duration{187500 * time.Microsecond, 375 * time.Millisecond}},
		{"429 retried", []int{429, 200}, "", true, "200 OK after 2 attempts", 2, []time.Duration{187500 * time.Microsecond}},
		{"404 is a definite no", []int{404}, "no such test", false, "404 Not Found: no such test", 1, nil},
		{"400 is a definite no", []int{400, 200}, "", false, "400 Bad Request", 1, nil},
		{"redirect not followed", []int{302, 200}, "", false, "302 Found", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.body, tt.statuses...)
			s := &sleeps{}
			res := testCaller(t, s, nil).Call(t.Context(), request(rollout.HookConfirmPromotion, rcv.URL))
			if res.OK != tt.wantOK || res.Message != tt.wantMsg {
				t.Errorf("got ok=%v %q, want ok=%v %q", res.OK, res.Message, tt.wantOK, tt.wantMsg)
			}
			got := rcv.requests()
			if len(got) != tt.wantCalls {
				t.Errorf("got %d requests, want %d", len(got), tt.wantCalls)
			}
			for i, r := range got {
				if a := r.header.Get(HeaderAttempt); a != fmt.Sprint(i+1) {
					t.Errorf("request %d: attempt header %q", i, a)
				}
				if err := Verify([]byte(testSecret), r.header.Get(HeaderTimestamp), r.header.Get(HeaderSignature), r.body, fixedNow, DefaultTolerance); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(tt.wantPauses, s.pauses()); diff != "" {
				t.Errorf("pauses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, j := range []float64{0, 0.5, 0.999} {
		c := New(Options{Jitter: func() float64 { return j }, Retry: Retry{Attempts: 10}})
		prev := time.Duration(0)
		for n := 1; n <= 8; n++ {
			d := c.backoff(n)
			ceil := min(DefaultRetryBase<<(n-1), DefaultRetryMax)
			if d < ceil/2 || d > ceil {
				t.Errorf("jitter %v: pause %d is %v, want within [%v, %v]", j, n, d, ceil/2, ceil)
			}
			if d < prev {
				t.Errorf("jitter %v: pause %d (%v) shorter than pause %d (%v)", j, n, d, n-1, prev)
			}
			prev = d
		}
	}
}

// A Retry-After beyond the budget ends the call instead of overrunning it.
func TestRetryWithinBudget(t *testing.T) {
	rcv := newReceiver(t, "", 503)
	rcv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rcv.mu.Lock()
		rcv.got = append(rcv.got, received{})
		rcv.mu.Unlock()
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(503)
	})
	s := &sleeps{}
	res := testCaller(t, s, nil).Call(t.Context(), request(rollout.HookRollout, rcv.URL))
	if res.OK || res.Message != "503 Service Unavailable" || len(rcv.requests()) != 1 || len(s.pauses()) != 0 {
		t.Errorf("got %+v after %d requests and pauses %v; want one attempt, no pause", res, len(rcv.requests()), s.pauses())
	}
}

// hanging returns a receiver that blocks until the test ends, and a channel
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

func TestTimeout(t *testing.T) {
	srv, _ := hanging(t)
	req := request(rollout.HookConfirmRollout, srv.URL)
	req.Hook.Timeout = rollout.Duration(100 * time.Millisecond)
	res := testCaller(t, &sleeps{}, nil).Call(t.Context(), req)
	if res.OK || res.Message != "timeout after 100ms" {
		t.Errorf("got %+v, want a timeout after 100ms", res)
	}
}

func TestCanceled(t *testing.T) {
	srv, arrived := hanging(t)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	res := testCaller(t, &sleeps{}, nil).Call(ctx, request(rollout.HookConfirmRollout, srv.URL))
	if res.OK || res.Message != "canceled during attempt 1" {
		t.Errorf("got %+v, want canceled", res)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &sleeps{}
	res := testCaller(t, s, nil).Call(t.Context(), request(rollout.HookRollback, "http://"+addr+"/kill"))
	if res.OK || res.Message != "connection refused after 3 attempts" {
		t.Errorf("got %+v, want connection refused after 3 attempts", res)
	}
	if len(s.pauses()) != 2 {
		t.Errorf("got pauses %v, want 2", s.pauses())
	}
}

// A receiver that hangs holds up only the call made to it: calls to other
// receivers made at the same time complete while it still hangs.
func TestHangingReceiverIsolated(t *testing.T) {
	slow, arrived := hanging(t)
	c := testCaller(t, &sleeps{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hung := make(chan rollout.HookResult, 1)
	go func() {
		req := request(rollout.HookConfirmPromotion, slow.URL)
		req.Hook.Timeout = rollout.Duration(time.Hour)
		hung <- c.Call(ctx, req)
	}()
	<-arrived // the hanging call is in flight
	var wg sync.WaitGroup
	results := make([]rollout.HookResult, 8)
	for i := range results {
		rcv := newReceiver(t, "", http.StatusOK)
		wg.Go(func() {
			req := request(rollout.HookConfirmTrafficIncrease, rcv.URL)
			req.Hook.Timeout = rollout.Duration(10 * time.Second)
			results[i] = c.Call(t.Context(), req)
		})
	}
	wg.Wait()
	for i, r := range results {
		if !r.OK {
			t.Errorf("call %d: got %+v, want OK", i, r)
		}
	}
	select {
	case r := <-hung:
		t.Fatalf("the hanging call returned %+v before the test ended it", r)
	default:
	}
	cancel()
	if r := <-hung; r.OK {
		t.Errorf("hanging call: got %+v, want a failure", r)
	}
}

func TestSecretProblems(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	tests := []struct {
		name string
		hook rollout.Webhook
		want string
	}{
		{"unset variable", rollout.Webhook{Name: "h", Secret: "${NOPE}"}, "webhook h: secret: environment variable NOPE is not set"},
		{"too short", rollout.Webhook{Name: "h", SecretFile: short}, "webhook h: secretFile " + short + " is 4 bytes, want at least 16"},
		{"missing file", rollout.Webhook{Name: "h", SecretFile: filepath.Join(dir, "none")}, "webhook h: secretFile: file " + filepath.Join(dir, "none") + " no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, "", http.StatusOK)
			c := testCaller(t, &sleeps{}, nil)
			if err := c.Check(tt.hook); err == nil || err.Error() != tt.want {
				t.Errorf("Check: got %v, want %q", err, tt.want)
			}
			req := request(rollout.HookRollout, rcv.URL)
			req.Hook.Name, req.Hook.Secret, req.Hook.SecretFile = "h", tt.hook.Secret, tt.hook.SecretFile
			res := c.Call(t.Context(), req)
			if res.OK || res.Message != tt.want || len(rcv.requests()) != 0 {
				t.Errorf("Call: got %+v after %d requests, want %q without a call", res, len(rcv.requests()), tt.want)
			}
		})
	}
}

func TestUnsigned(t *testing.T) {
	rcv := newReceiver(t, "", http.StatusOK)
	req := request(rollout.HookRollout, rcv.URL)
	req.Hook.Secret = ""
	res := testCaller(t, &sleeps{}, nil).Call(t.Context(), req)
	got := rcv.requests()
	if !res.OK || len(got) != 1 || got[0].header.Get(HeaderSignature) != "" {
		t.Errorf("got %+v, want one unsigned call", res)
	}
}

func TestLoadHookNotCalled(t *testing.T) {
	res := testCaller(t, &sleeps{}, nil).Call(t.Context(), Request{Hook: rollout.Webhook{Name: "l", Type: rollout.HookLoad}})
	if res.OK || !strings.Contains(res.Message, "load generator") {
		t.Errorf("got %+v", res)
	}
}

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("é", 150)
	if got := excerpt([]byte(long)); len(got) > excerptLen+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("excerpt of a long body: got %d bytes %q", len(got), got)
	}
	if got := excerpt([]byte("a\n\tb\x00c  ")); got != "a bc" {
		t.Errorf("got %q, want %q", got, "a bc")
	}
}
