// Package web is the metrics provider that asks an HTTP endpoint answering
// JSON (provider: web). The metric's web block gives the URL (a
// text/template rendered with rollout.TemplateData and the metric's vars),
// the method (GET, or POST with a templated JSON body), headers and
// credentials; the metric's query selects the value in the reply (a
// JSONPath subset such as $.data.value, or an expr-lang expression over
// body, see analysis.Selector) and web.count the sample size.
//
// A JSON null (or a NaN an expression computes) is no data; a reply that is
// not 2xx, not JSON, or lacks the selected path is an error naming it. Only
// http and https URLs are asked. The deadline comes from the context.
//
// It imports the core (rollout, analysis) and the standard library; never
// the controller or another adapter.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/template"

	"aviary/internal/analysis"
	"aviary/internal/provider/httpauth"
	"aviary/internal/rollout"
)

// MaxReply bounds the size of a reply read (10 MiB).
const MaxReply = 10 << 20

// Options configure a Provider. The zero value works.
type Options struct {
	// Logger is for debugging; nil discards.
	Logger *slog.Logger
	// Transport makes the HTTP requests (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// LookupEnv and ReadFile resolve credentials; they default to
	// os.LookupEnv and os.ReadFile.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
}

// Provider asks HTTP endpoints for metric values. It is safe for concurrent
// use.
type Provider struct {
	log     *slog.Logger
	client  *http.Client
	secrets httpauth.Credentials
}

// New returns a Provider.
func New(opts Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %s: only http and https are asked", req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return &Provider{log: log, client: client, secrets: httpauth.New(opts.LookupEnv, opts.ReadFile)}
}

// Query asks q.Metric's endpoint for q's version over [q.Start, q.End).
func (p *Provider) Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error) {
	m := analysis.Measurement{Start: q.Start, End: q.End, Count: -1}
	src := q.Metric.Web
	if src == nil {
		return m, fmt.Errorf("metric %q: provider web needs a web block with the URL to ask", q.Metric.Name)
	}
	value, err := analysis.ParseSelector(q.Metric.Query)
	if err != nil {
		return m, fmt.Errorf("metric %q: query: %w", q.Metric.Name, err)
	}
	var count *analysis.Selector
	if src.Count != "" {
		if count, err = analysis.ParseSelector(src.Count); err != nil {
			return m, fmt.Errorf("metric %q: count: %w", q.Metric.Name, err)
		}
	}
	req, err := p.request(ctx, q, src)
	if err != nil {
		return m, fmt.Errorf("metric %q: %w", q.Metric.Name, err)
	}
	doc, err := p.do(ctx, req)
	if err != nil {
		return m, err
	}
	where := req.Method + " " + req.URL.Redacted()
	v, ok, err := value.Select(doc)
	if err != nil {
		return m, fmt.Errorf("web %s: value: %w", where, err)
	}
	if !ok {
		m.Count = 0
		m.Note = fmt.Sprintf("the reply's %s is null", value)
		if v != 0 {
			m.Note = fmt.Sprintf("the reply's %s is %v", value, v)
		}
		return m, nil
	}
	m.Value, m.HasValue = v, true
	if count == nil {
		return m, nil
	}
	n, ok, err := count.Select(doc)
	switch {
	case err != nil:
		return m, fmt.Errorf("web %s: count: %w", where, err)
	case !ok:
		m.Count = 0
	case n < 0:
		return m, fmt.Errorf("web %s: count %s is %g, a negative count", where, count, n)
	default:
		m.Count = int64(n + 0.5)
	}
	return m, nil
}

// request builds the HTTP request for q.
func (p *Provider) request(ctx context.Context, q rollout.Query, src *rollout.WebSource) (*http.Request, error) {
	data := rollout.TemplateData(q, src.Vars)
	raw, err := render("url", src.URL, data)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("url %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url %q: only http and https URLs are asked", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("url %q has no host", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("url %q holds credentials: use web.auth", u.Redacted())
	}
	method := src.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if method == http.MethodPost && src.Body != "" {
		b, err := render("body", src.Body, data)
		if err != nil {
			return nil, err
		}
		if !json.Valid([]byte(b)) {
			return nil, fmt.Errorf("body %q is not valid JSON once rendered", b)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range src.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := p.secrets.Authorize(req, src.Auth); err != nil {
		return nil, err
	}
	return req, nil
}

// do sends req and decodes its JSON reply.
func (p *Provider) do(ctx context.Context, req *http.Request) (any, error) {
	where := req.Method + " " + req.URL.Redacted()
	resp, err := p.client.Do(req)
	if err != nil {
		if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
			return nil, fmt.Errorf("web %s: %w (%w)", where, err, ce)
		}
		return nil, fmt.Errorf("web %s: %w", where, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply+1))
	if err != nil {
		if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
			return nil, fmt.Errorf("web %s: reading the reply: %w (%w)", where, err, ce)
		}
		return nil, fmt.Errorf("web %s: reading the reply: %w", where, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("web %s: %s: %s", where, resp.Status, snippet(b))
	}
	if len(b) > MaxReply {
		return nil, fmt.Errorf("web %s: the reply is larger than %d MiB", where, MaxReply>>20)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("web %s: the reply is not JSON (%v): %s", where, err, snippet(b))
	}
	if dec.More() {
		return nil, fmt.Errorf("web %s: the reply holds more than one JSON value: %s", where, snippet(b))
	}
	p.log.Debug("web reply", "request", where, "bytes", len(b))
	return doc, nil
}

func render(name, text string, data map[string]any) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s template: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s template: %w", name, err)
	}
	return b.String(), nil
}

// snippet is the start of a reply, for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty reply)"
	}
	return fmt.Sprintf("%q", s)
}
