package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"aviary/internal/rollout"
	"aviary/internal/secret"
)

// Request is one webhook call with what its payload needs. Its fields are
// those of controller.HookCall, in the same order, so the controller can
// convert one into the other.
type Request struct {
	// Rollout is the rollout's name.
	Rollout string
	// Hook is the spec's webhook (normalized: Timeout set).
	Hook rollout.Webhook
	// Call is the core's request; its Key identifies the answer.
	Call rollout.CallHook
	// Canary and Stable are the versions; Canary defaults to Call.Version.
	Canary string
	Stable string
	// Event is the event an event hook is told about.
	Event *rollout.Event
}

// Retry bounds retries; zero fields take the defaults.
type Retry struct {
	// Attempts is the most attempts per call, the first included
	// (default 3; 1 disables retries).
	Attempts int
	// Base is the pause before the first retry (default 250ms); each
	// further pause doubles, up to Max (default 2s). A pause is drawn
	// uniformly from [d/2, d] (jitter).
	Base time.Duration
	Max  time.Duration
}

// Default retry policy.
const (
	DefaultAttempts  = 3
	DefaultRetryBase = 250 * time.Millisecond
	DefaultRetryMax  = 2 * time.Second
)

// Options configure a Caller; the zero value works.
type Options struct {
	// Client makes the requests; nil: a client with its own transport that
	// honours HTTP_PROXY and friends. Redirects are never followed: a copy
	// of the client is used with CheckRedirect replaced. Deadlines come
	// from the hook's timeout, not from Client.Timeout.
	Client *http.Client
	// Logger receives one record per call (debug per retry); nil: none.
	Logger *slog.Logger
	// Secrets resolves the hooks' secrets and redacts them; nil: the
	// process environment and a private Redactor.
	Secrets *secret.Resolver
	// Version is aviary's version for the User-Agent ("dev" when empty).
	Version string
	// Retry is the retry policy.
	Retry Retry
	// Now tells the time for signatures; nil: time.Now.
	Now func() time.Time
	// Sleep pauses between attempts and returns early with ctx's error;
	// nil: a timer. Tests pass one that records and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1); nil: math/rand/v2.
	Jitter func() float64
}

// Caller calls webhooks. It is safe for concurrent use.
type Caller struct {
	client  *http.Client
	log     *slog.Logger
	secrets *secret.Resolver
	agent   string
	retry   Retry
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	jitter  func() float64
}

// New returns a Caller.
func New(o Options) *Caller {
	c := &Caller{log: o.Logger, secrets: o.Secrets, retry: o.Retry, now: o.Now, sleep: o.Sleep, jitter: o.Jitter}
	if o.Client != nil {
		cl := *o.Client
		c.client = &cl
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		c.client = &http.Client{Transport: t}
	}
	c.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.secrets == nil {
		c.secrets = &secret.Resolver{Redactor: secret.NewRedactor()}
	}
	v := o.Version
	if v == "" {
		v = "dev"
	}
	c.agent = "aviary/" + v
	if c.retry.Attempts <= 0 {
		c.retry.Attempts = DefaultAttempts
	}
	if c.retry.Base <= 0 {
		c.retry.Base = DefaultRetryBase
	}
	if c.retry.Max <= 0 {
		c.retry.Max = DefaultRetryMax
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
	if c.jitter == nil {
		c.jitter = rand.Float64
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Check resolves a hook's secret, so that a rollout whose secret is missing
// or too short can be refused when it is applied rather than at its first
// call. The error names the field and never the value.
func (c *Caller) Check(h rollout.Webhook) error {
	_, err := c.key(h)
	return err
}

// key resolves the hook's signing secret; nil when it has none.
func (c *Caller) key(h rollout.Webhook) ([]byte, error) {
	field := fmt.Sprintf("webhook %s: secret", h.Name)
	v, err := c.secrets.Either(field, h.Secret, field+"File", h.SecretFile)
	if err != nil || v == "" {
		return nil, err
	}
	if len(v) < MinSecretLen {
		src := "secret " + h.Secret
		if h.SecretFile != "" {
			src = "secretFile " + h.SecretFile
		}
		return nil, fmt.Errorf("webhook %s: %s is %d bytes, want at least %d", h.Name, src, len(v), MinSecretLen)
	}
	return []byte(v), nil
}

// attempt is what one try brought.
type attempt struct {
	status     int    // 0 without an answer
	statusText string // "503 Service Unavailable"
	excerpt    string // the start of the answer's body, redacted
	err        error  // the transport's error, when there is no answer
	retryAfter time.Duration
}

func (a attempt) ok() bool { return a.status >= 200 && a.status < 300 }

func (a attempt) retryable() bool {
	return a.err != nil || a.status >= 500 || a.status == http.StatusTooManyRequests
}

// Call makes one webhook call, retrying as the policy allows within the
// hook's timeout, and reports the answer. It never panics and never returns
// a secret or the URL in the result.
func (c *Caller) Call(ctx context.Context, r Request) rollout.HookResult {
	res := rollout.HookResult{Name: r.Hook.Name, Key: r.Call.Key}
	if res.Name == "" {
		res.Name = r.Call.Name
	}
	log := c.log.With("rollout", r.Rollout, "hook", res.Name, "type", r.Hook.Type, "key", r.Call.Key)
	if r.Hook.Type == rollout.HookLoad {
		res.Message = "a load hook is run by the load generator, not called"
		return res
	}
	key, err := c.key(r.Hook)
	if err != nil {
		res.Message = c.secrets.Redactor.String(err.Error())
		log.Warn("webhook not called", "result", res.Message)
		return res
	}
	body, err := c.payload(r)
	if err != nil { // cannot happen: the payload holds strings and numbers
		res.Message = "cannot encode the payload: " + c.secrets.Redactor.String(err.Error())
		return res
	}
	timeout := r.Hook.Timeout.D()
	if timeout <= 0 {
		timeout = rollout.DefaultHookTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	// The hook's URL is not a secret of the spec, but it may carry a
	// token, and a receiver may quote it: keep it out of results too.
	red := secret.NewRedactor()
	red.Add(r.Hook.URL)
	var a attempt
	n := 0
	for {
		n++
		a = c.try(ctx, r.Hook.URL, key, body, n)
		a.excerpt = red.String(a.excerpt)
		if !a.retryable() || n >= c.retry.Attempts || ctx.Err() != nil {
			break
		}
		pause := c.backoff(n)
		if a.retryAfter > pause {
			pause = a.retryAfter
		}
		// Retry only if a pause leaves a tenth of the budget to try in.
		if time.Until(deadline)-pause < timeout/10 {
			break
		}
		log.Debug("webhook attempt failed, retrying", "attempt", n, "result", c.describe(a, 1, 0), "pause", pause)
		if c.sleep(ctx, pause) != nil {
			break
		}
	}
	res.OK = a.ok()
	budget := timeout
	if d := deadline.Sub(start); d < budget {
		budget = d // the caller's deadline came first
	}
	if a.err != nil && ctx.Err() != nil {
		a.err = ctx.Err() // the budget ran out, or the caller gave up
	}
	res.Message = c.describe(a, n, budget)
	attrs := []any{"ok", res.OK, "attempts", n, "status", a.status, "result", res.Message,
		"duration", time.Since(start).Round(time.Millisecond)}
	if res.OK {
		log.Info("webhook answered", attrs...)
	} else {
		log.Warn("webhook failed", attrs...)
	}
	return res
}

// payload encodes the request's payload on one line, without escaping
// <, > and & (receivers are not web pages); event reasons are redacted.
func (c *Caller) payload(r Request) ([]byte, error) {
	p := NewPayload(r)
	if p.Event != nil {
		p.Event.Reason = c.secrets.Redactor.String(p.Event.Reason)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// backoff is the pause after attempt n (1-based): Base·2^(n-1) capped at
// Max, drawn from [d/2, d].
func (c *Caller) backoff(n int) time.Duration {
	d := c.retry.Base
	for i := 1; i < n && d < c.retry.Max; i++ {
		d *= 2
	}
	d = min(d, c.retry.Max)
	return d/2 + time.Duration(c.jitter()*float64(d/2))
}

// excerptLen bounds how much of an answer's body a result quotes.
const excerptLen = 200

func (c *Caller) try(ctx context.Context, u string, key, body []byte, n int) attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return attempt{err: errors.New("the URL cannot be used")} // never quote it
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	if key != nil {
		req.Header.Set(HeaderSignature, Sign(key, ts, body))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	a := attempt{status: resp.StatusCode, statusText: resp.Status, excerpt: c.secrets.Redactor.String(excerpt(b))}
	if a.statusText == "" {
		a.statusText = strconv.Itoa(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			a.retryAfter = time.Duration(s) * time.Second
		}
	}
	return a
}

// describe says what happened in a few words, without URL or secret.
func (c *Caller) describe(a attempt, n int, budget time.Duration) string {
	var what string
	switch {
	case a.err != nil && errors.Is(a.err, context.DeadlineExceeded):
		what = "timeout after " + rollout.Duration(budget.Round(time.Millisecond)).String()
		if n > 1 {
			what += fmt.Sprintf(" (%d attempts)", n)
		}
		return what
	case a.err != nil && errors.Is(a.err, context.Canceled):
		return fmt.Sprintf("canceled during attempt %d", n)
	case a.err != nil:
		what = reason(a.err)
	default:
		what = a.statusText
	}
	if n > 1 {
		what += fmt.Sprintf(" after %d attempts", n)
	}
	if a.excerpt != "" {
		what += ": " + a.excerpt
	}
	return c.secrets.Redactor.String(what)
}

// reason names a transport error briefly. net/http's errors quote the URL
// (*url.Error); only what lies beneath is used.
func reason(err error) string {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "host not found"
		}
		return "cannot resolve the host"
	case errors.As(err, &unknownCA):
		return "tls: certificate signed by an unknown authority"
	case errors.As(err, &hostname):
		return "tls: certificate is not valid for the host"
	case errors.As(err, &cert):
		return "tls: certificate not trusted"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// excerpt is the start of an answer's body on one line, printable only.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > excerptLen {
		cut := excerptLen
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
