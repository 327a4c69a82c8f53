package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/secret"
)

// Defaults.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultQueueLen = 32
)

// Message is an event about a rollout and the rollout's own channels. Its
// fields are those of controller.Notification, in the same order, so the
// controller can convert one into the other.
type Message struct {
	// Rollout is the rollout's name; Version the canary's version (or
	// the stable one when no run is active).
	Rollout string
	Version string
	// Channels are the rollout's own channels (spec.notify), sent to
	// besides the global ones.
	Channels []rollout.Notification
	Event    rollout.Event
}

// Options configure a Dispatcher; only Global may need setting.
type Options struct {
	// Global are the server's channels, sent every rollout's events.
	Global []rollout.Notification
	// GlobalField names the global channels in errors and logs
	// (default "notify": "notify[0]", …).
	GlobalField string
	// Client sends the messages; nil: a client with its own transport
	// that honours HTTP_PROXY and friends. Redirects are not followed.
	Client *http.Client
	// Logger receives failures (warn), drops (warn) and sends (debug).
	Logger *slog.Logger
	// Secrets resolves channel URLs; nil: the process environment and a
	// private Redactor.
	Secrets *secret.Resolver
	// Version is aviary's version for the User-Agent ("dev" when empty).
	Version string
	// Timeout bounds each delivery (default DefaultTimeout).
	Timeout time.Duration
	// QueueLen bounds each destination's queue (default DefaultQueueLen).
	QueueLen int
}

// Stats count what happened to messages since the Dispatcher started.
type Stats struct {
	// Sent: answered 2xx. Failed: answered otherwise, or not at all.
	Sent, Failed uint64
	// Dropped: pushed out of a full queue, or discarded by Close.
	Dropped uint64
	// Invalid: a rollout channel that could not be built (unknown type,
	// unresolvable URL); logged with its field path.
	Invalid uint64
}

// Dispatcher sends events to channels. It is safe for concurrent use.
type Dispatcher struct {
	client   *http.Client
	log      *slog.Logger
	secrets  *secret.Resolver
	agent    string
	timeout  time.Duration
	queueLen int
	global   []*channel

	sent, failed, dropped, invalid atomic.Uint64

	mu      sync.Mutex
	lanes   map[string]*lane
	active  int           // lanes with a running goroutine
	idle    chan struct{} // closed when active drops to 0
	closed  bool
	closing chan struct{}
}

// channel is one destination with its filter and format.
type channel struct {
	field  string // "spec.notify[1]": names it in logs, never the URL
	typ    string
	url    string // a secret
	min    int    // least severity rank sent
	format formatter
}

// job is one message for one channel.
type job struct {
	ctx context.Context
	ch  *channel
	msg Message
}

// lane is one destination's queue; a goroutine drains it while it is
// not empty.
type lane struct {
	q       []job
	running bool
}

// New builds a Dispatcher and its global channels; an unknown type, a
// severity it does not know or a URL that cannot be resolved is an error
// naming the field.
func New(o Options) (*Dispatcher, error) {
	d := &Dispatcher{log: o.Logger, secrets: o.Secrets, timeout: o.Timeout, queueLen: o.QueueLen,
		lanes: map[string]*lane{}, closing: make(chan struct{})}
	if o.Client != nil {
		c := *o.Client
		d.client = &c
	} else {
		d.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	d.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.secrets == nil {
		d.secrets = &secret.Resolver{Redactor: secret.NewRedactor()}
	}
	v := o.Version
	if v == "" {
		v = "dev"
	}
	d.agent = "aviary/" + v
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.queueLen <= 0 {
		d.queueLen = DefaultQueueLen
	}
	field := o.GlobalField
	if field == "" {
		field = "notify"
	}
	chs, err := d.channels(field, o.Global)
	if err != nil {
		return nil, err
	}
	d.global = chs
	return d, nil
}

// Check builds channels without sending anything, so that a rollout whose
// channels are wrong (an unknown type, a missing variable or file) can be
// refused when it is applied. field is the list's path, e.g. "spec.notify".
func (d *Dispatcher) Check(field string, ns []rollout.Notification) error {
	_, err := d.channels(field, ns)
	return err
}

func (d *Dispatcher) channels(field string, ns []rollout.Notification) ([]*channel, error) {
	var out []*channel
	var errs []error
	for i, n := range ns {
		ch, err := d.channel(fmt.Sprintf("%s[%d]", field, i), n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ch)
	}
	return out, errors.Join(errs...)
}

func (d *Dispatcher) channel(field string, n rollout.Notification) (*channel, error) {
	f, err := formatFor(n.Type)
	if err != nil {
		return nil, fmt.Errorf("%s.type: %w", field, err)
	}
	sev := n.Severity
	if sev == "" {
		sev = rollout.DefaultNotifySeverity
	}
	least, ok := severityRank(sev)
	if !ok {
		return nil, fmt.Errorf("%s.severity: unknown severity %q (want info, warn or error)", field, n.Severity)
	}
	u, err := d.secrets.Either(field+".url", n.URL, field+".urlFile", n.URLFile)
	if err != nil {
		return nil, err
	}
	if u == "" {
		return nil, fmt.Errorf("%s.url: give the webhook URL as an environment variable (\"${SLACK_WEBHOOK}\") or urlFile", field)
	}
	// The URL is a secret: say what is wrong with it without quoting it.
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s.url: the resolved value is not a URL", field)
	case p.Scheme != "http" && p.Scheme != "https":
		return nil, fmt.Errorf("%s.url: the resolved value is not an http:// or https:// URL", field)
	case p.Host == "":
		return nil, fmt.Errorf("%s.url: the resolved URL has no host", field)
	}
	return &channel{field: field, typ: n.Type, url: u, min: least, format: f}, nil
}

// severityRank orders severities: info < warn < error.
func severityRank(s string) (int, bool) {
	switch s {
	case rollout.SeverityInfo:
		return 0, true
	case rollout.SeverityWarn:
		return 1, true
	case rollout.SeverityError:
		return 2, true
	}
	return 0, false
}

// Notify queues the message for every global and rollout channel whose
// severity lets the event through and returns at once. A destination listed
// twice (globally and by the rollout) gets it once. ctx's values reach the
// delivery; its cancellation does not (the message outlives the call that
// raised it); Close stops deliveries.
func (d *Dispatcher) Notify(ctx context.Context, m Message) {
	rank, ok := severityRank(m.Event.Severity)
	if !ok {
		rank = 0
	}
	chs := d.global
	own, err := d.channels("spec.notify", m.Channels)
	if err != nil {
		d.invalid.Add(uint64(len(m.Channels) - len(own)))
		d.log.Error("rollout notification channel refused", "rollout", m.Rollout, "error", d.secrets.Redactor.String(err.Error()))
	}
	chs = append(chs[:len(chs):len(chs)], own...)
	seen := map[string]bool{}
	ctx = context.WithoutCancel(ctx)
	for _, ch := range chs {
		key := ch.typ + "\x00" + ch.url
		if rank < ch.min || seen[key] {
			continue
		}
		seen[key] = true
		d.enqueue(key, job{ctx: ctx, ch: ch, msg: m})
	}
}

func (d *Dispatcher) enqueue(key string, j job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.drop(j, "the dispatcher is closed")
		return
	}
	l := d.lanes[key]
	if l == nil {
		l = &lane{}
		d.lanes[key] = l
	}
	if len(l.q) >= d.queueLen {
		d.drop(l.q[0], "the channel's queue is full")
		l.q = l.q[1:]
	}
	l.q = append(l.q, j)
	if !l.running {
		l.running = true
		if d.active == 0 {
			d.idle = make(chan struct{})
		}
		d.active++
		go d.drain(key, l)
	}
}

// drain sends a lane's messages in order until it is empty, then retires
// the lane.
func (d *Dispatcher) drain(key string, l *lane) {
	for {
		d.mu.Lock()
		if len(l.q) == 0 {
			l.running = false
			delete(d.lanes, key)
			d.active--
			if d.active == 0 {
				close(d.idle)
			}
			d.mu.Unlock()
			return
		}
		j := l.q[0]
		l.q = l.q[1:]
		d.mu.Unlock()
		d.deliver(j)
	}
}

func (d *Dispatcher) drop(j job, why string) {
	d.dropped.Add(1)
	d.log.Warn("notification dropped", "channel", j.ch.field, "rollout", j.msg.Rollout, "event", j.msg.Event.Type, "why", why)
}

// Flush waits until every queued message has been delivered or has failed,
// or until ctx ends.
func (d *Dispatcher) Flush(ctx context.Context) error {
	d.mu.Lock()
	if d.active == 0 {
		d.mu.Unlock()
		return nil
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the Dispatcher: queued messages are dropped, deliveries in
// flight are cancelled, and Close returns when every goroutine has ended.
// Notify after Close drops its messages. Call Flush first to let queued
// messages go out.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.closing)
		for _, l := range d.lanes {
			for _, j := range l.q {
				d.drop(j, "the dispatcher is closed")
			}
			l.q = nil
		}
	}
	idle, active := d.idle, d.active
	d.mu.Unlock()
	if active > 0 {
		<-idle
	}
}

// Stats returns the counts so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{Sent: d.sent.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load(), Invalid: d.invalid.Load()}
}

// deliver sends one message within the timeout.
func (d *Dispatcher) deliver(j job) {
	ctx, cancel := context.WithTimeout(j.ctx, d.timeout)
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := d.log.With("channel", j.ch.field, "type", j.ch.typ, "rollout", j.msg.Rollout, "event", j.msg.Event.Type)
	body, err := j.ch.format(d.content(j.msg))
	if err != nil { // cannot happen: messages hold strings and numbers
		d.failed.Add(1)
		log.Error("notification not sent", "error", d.secrets.Redactor.String(err.Error()))
		return
	}
	start := time.Now()
	result, ok := d.post(ctx, j.ch.url, body)
	result = d.secrets.Redactor.String(result)
	if ok {
		d.sent.Add(1)
		log.Debug("notification sent", "result", result, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	d.failed.Add(1)
	log.Warn("notification failed", "result", result, "duration", time.Since(start).Round(time.Millisecond))
}

// post sends body and says what came of it, never quoting the URL.
func (d *Dispatcher) post(ctx context.Context, u string, body []byte) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "the URL cannot be used", false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.agent)
	resp, err := d.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return "timeout after " + rollout.Duration(d.timeout).String(), false
		case errors.Is(err, context.Canceled):
			return "canceled", false
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the rest may quote the URL
		}
		return err.Error(), false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	result := resp.Status
	if s := strings.Join(strings.Fields(string(b)), " "); s != "" {
		result += ": " + s
	}
	return result, resp.StatusCode >= 200 && resp.StatusCode < 300
}
