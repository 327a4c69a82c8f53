package secret_test

import (
	"bytes"
	"context"
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

	"aviary/internal/notify"
	"aviary/internal/rollout"
	"aviary/internal/secret"
	"aviary/internal/webhook"
)

// syncBuffer collects logs written from several goroutines.
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

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Secrets given to webhooks and notifiers, from the environment and from
// files, appear in no log record, result, error or stats, whether calls
// succeed, are refused, time out, fail to connect to a URL holding a token,
// or reach a receiver that echoes the secrets back.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	const (
		hookKeyEnv  = "hookkey-ENV-7f3a9c1e5b2d"
		hookKeyFile = "hookkey-FILE-0d4e8a6c2f1b"
		slackTok    = "SLACKTOKEN-9a8b7c6d"
		teamsTok    = "TEAMSTOKEN-1a2b3c4d"
		refusedTok  = "REFUSEDTOKEN-5e6f7a8b"
		echoTok     = "ECHOTOKEN-0c1d2e3f"
		hookURLTok  = "HOOKURLTOKEN-4b5c6d7e"
	)

	// Receivers: one that answers 200, one that echoes what it knows (the
	// URL it was called at, its headers and the secrets) in a 500, one
	// that hangs.
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") }))
	defer ok.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "cannot handle %s%s signature=%s keys %s %s",
			r.Host, r.URL.RequestURI(), r.Header.Get(webhook.HeaderSignature), hookKeyEnv, hookKeyFile)
	}))
	defer echo.Close()
	hangDone := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hangDone:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(hangDone)
	refused := closedPort(t)

	slackURL := ok.URL + "/services/T0/B0/" + slackTok
	teamsURL := ok.URL + "/workflows/" + teamsTok + "?sig=" + teamsTok
	refusedURL := "http://" + refused + "/hooks/" + refusedTok + "?token=" + refusedTok
	echoURL := echo.URL + "/discord/" + echoTok
	hangURL := hang.URL + "/chat/" + echoTok + "x"

	t.Setenv("AVIARY_TEST_HOOK_KEY", hookKeyEnv)
	t.Setenv("AVIARY_TEST_SLACK", slackURL)
	t.Setenv("AVIARY_TEST_REFUSED", refusedURL)
	t.Setenv("AVIARY_TEST_ECHO", echoURL)
	keyFile := filepath.Join(dir, "hook-key")
	teamsFile := filepath.Join(dir, "teams-url")
	badPermFile := filepath.Join(dir, "group-writable")
	os.WriteFile(keyFile, []byte(hookKeyFile+"\n"), 0o600)
	os.WriteFile(teamsFile, []byte(teamsURL+"\n"), 0o600)
	os.WriteFile(badPermFile, []byte(hookKeyFile+"\n"), 0o600)
	os.Chmod(badPermFile, 0o664)

	secrets := []string{hookKeyEnv, hookKeyFile, slackTok, teamsTok, refusedTok, echoTok, hookURLTok,
		slackURL, teamsURL, refusedURL, echoURL}

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	red := secret.NewRedactor()
	res := &secret.Resolver{Redactor: red}
	var seen []string // results, errors and stats

	// Webhooks.
	caller := webhook.New(webhook.Options{Logger: log, Secrets: res,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	hooks := []rollout.Webhook{
		{Name: "ok-env", Type: rollout.HookConfirmPromotion, URL: ok.URL + "/confirm", Secret: "${AVIARY_TEST_HOOK_KEY}"},
		{Name: "ok-file", Type: rollout.HookRollback, URL: ok.URL + "/rollback", SecretFile: keyFile},
		{Name: "echo", Type: rollout.HookRollout, URL: echo.URL + "/test?token=" + hookURLTok, SecretFile: keyFile},
		{Name: "refused", Type: rollout.HookPreRollout, URL: "http://" + refused + "/x/" + hookURLTok + "?token=" + hookURLTok, Secret: "${AVIARY_TEST_HOOK_KEY}"},
		{Name: "hang", Type: rollout.HookConfirmRollout, URL: hang.URL + "/" + hookURLTok, Secret: "${AVIARY_TEST_HOOK_KEY}",
			Timeout: rollout.Duration(100 * time.Millisecond)},
		{Name: "bad-perm", Type: rollout.HookRollout, URL: ok.URL, SecretFile: badPermFile},
		{Name: "event", Type: rollout.HookEvent, URL: echo.URL + "/event/" + hookURLTok, Secret: "${AVIARY_TEST_HOOK_KEY}"},
	}
	ev := rollout.Event{Time: time.Now(), Run: 1, Type: rollout.EventPaused, Severity: rollout.SeverityError, Phase: rollout.PhasePaused,
		Weight: 10, Reason: "webhook said: " + hookKeyEnv} // a reason that somehow quotes a secret
	for _, h := range hooks {
		if h.Timeout == 0 {
			h.Timeout = rollout.Duration(5 * time.Second)
		}
		r := caller.Call(t.Context(), webhook.Request{Rollout: "web", Hook: h, Canary: "v2", Stable: "v1", Event: &ev,
			Call: rollout.CallHook{Name: h.Name, Type: h.Type, Key: "1/x/" + h.Name, Run: 1, Phase: rollout.PhaseProgressing, Version: "v2", Weight: 10}})
		seen = append(seen, fmt.Sprintf("%+v", r))
		if err := caller.Check(h); err != nil {
			seen = append(seen, err.Error())
		}
		if (h.Name == "ok-env" || h.Name == "ok-file") != r.OK {
			t.Errorf("hook %s: got %+v", h.Name, r)
		}
	}

	// Notifiers: global channels from the environment and a file, a
	// rollout's own channels that fail in every way.
	d, err := notify.New(notify.Options{Logger: log, Secrets: res, Timeout: 100 * time.Millisecond, Global: []rollout.Notification{
		{Type: "slack", URL: "${AVIARY_TEST_SLACK}"},
		{Type: "teams", URLFile: teamsFile},
	}})
	if err != nil {
		t.Fatal(err)
	}
	own := []rollout.Notification{
		{Type: "webhook", URL: "${AVIARY_TEST_REFUSED}"},
		{Type: "discord", URL: "${AVIARY_TEST_ECHO}"},
		{Type: "googlechat", URL: hangURL},
		{Type: "teams", URLFile: badPermFile},
		{Type: "unknown", URL: "${AVIARY_TEST_SLACK}"},
	}
	d.Notify(t.Context(), notify.Message{Rollout: "web", Version: "v2", Channels: own, Event: ev})
	if err := d.Check("spec.notify", own); err != nil {
		seen = append(seen, err.Error())
	}
	if _, err := notify.New(notify.Options{Secrets: res, Global: own}); err != nil {
		seen = append(seen, err.Error())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d.Close()
	st := d.Stats()
	if st.Sent != 2 || st.Failed != 3 || st.Invalid != 2 {
		t.Errorf("got stats %+v, want 2 sent, 3 failed, 2 invalid", st)
	}
	seen = append(seen, fmt.Sprintf("%+v", st))

	out := logs.String() + "\n" + strings.Join(seen, "\n")
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q leaked", s)
		}
	}
	// The failures are explained all the same.
	for _, want := range []string{"connection refused", "timeout after 100ms", "500 Internal Server Error",
		"has unsafe permissions", "unknown notification type", "[redacted]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	// The shared Redactor knows every resolved secret, so the shell can
	// pass events and API output through it.
	for _, s := range []string{hookKeyEnv, hookKeyFile, slackURL, teamsURL, refusedURL, echoURL} {
		if got := red.String("x " + s + " y"); got != "x [redacted] y" {
			t.Errorf("redactor does not know %q: %q", s, got)
		}
	}
}
