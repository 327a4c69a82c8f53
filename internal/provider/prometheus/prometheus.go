// Package prometheus is the metrics provider that asks a Prometheus server
// (provider: prometheus). A metric's query is a text/template of PromQL,
// rendered with rollout.TemplateData and the metric's vars, and evaluated as
// an instant query at the end of the window (q.End), so range selectors
// written with {{.Interval}} cover exactly the window. An optional count
// query, rendered and evaluated the same way, gives the number of requests
// behind the value.
//
// What a reply means:
//
//   - one sample, or a scalar: the value;
//   - no series: no data (HasValue false, Count 0, no error);
//   - NaN or ±Inf (e.g. 0/0 when no requests arrived): no data, with the
//     reason in Measurement.Note;
//   - several series: an error naming how many and their labels — aviary
//     does not guess how to combine them; aggregate in the query (sum, max);
//   - a range vector or a string: an error;
//   - warnings: the value, with the warnings in Note and the log;
//   - an HTTP or API error, a malformed reply, an unreachable server or an
//     expired context: an error.
//
// It imports the core (rollout, analysis) and client_golang's API client;
// never the controller or another adapter.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/provider/httpauth"
	"aviary/internal/rollout"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Options configure a Provider. The zero value works.
type Options struct {
	// Logger receives warnings from Prometheus; nil discards.
	Logger *slog.Logger
	// Transport makes the HTTP requests (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// LookupEnv and ReadFile resolve credentials ("${VAR}" references and
	// files); they default to os.LookupEnv and os.ReadFile.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
}

// Provider queries Prometheus servers named by the metrics' prometheus
// blocks. It is safe for concurrent use; each query's deadline comes from
// its context (and is passed to Prometheus as the query timeout).
type Provider struct {
	log     *slog.Logger
	base    http.RoundTripper
	secrets httpauth.Credentials

	mu      sync.Mutex
	clients map[clientKey]v1.API
}

type clientKey struct {
	address string
	auth    rollout.HTTPAuth
	basic   rollout.BasicAuth
}

// New returns a Provider.
func New(opts Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Provider{log: log, base: base, secrets: httpauth.New(opts.LookupEnv, opts.ReadFile), clients: map[clientKey]v1.API{}}
}

// client returns the API client of a server with its credentials.
func (p *Provider) client(src *rollout.PrometheusSource) (v1.API, error) {
	k := clientKey{address: src.Address}
	if src.Auth != nil {
		k.auth = *src.Auth
		if src.Auth.BasicAuth != nil {
			k.basic = *src.Auth.BasicAuth
			k.auth.BasicAuth = nil
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[k]; ok {
		return c, nil
	}
	c, err := api.NewClient(api.Config{
		Address:      src.Address,
		RoundTripper: p.secrets.Transport(p.base, src.Auth),
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %w", src.Address, err)
	}
	a := v1.NewAPI(c)
	p.clients[k] = a
	return a, nil
}

// Query measures q.Metric for q's version over [q.Start, q.End).
func (p *Provider) Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error) {
	m := analysis.Measurement{Start: q.Start, End: q.End, Count: -1}
	src := q.Metric.Prometheus
	if src == nil {
		return m, fmt.Errorf("metric %q: provider prometheus needs a prometheus block with the server's address", q.Metric.Name)
	}
	c, err := p.client(src)
	if err != nil {
		return m, err
	}
	data := rollout.TemplateData(q, src.Vars)
	query, err := render("query", q.Metric.Query, data)
	if err != nil {
		return m, fmt.Errorf("metric %q: %w", q.Metric.Name, err)
	}
	v, note, err := p.instant(ctx, c, src.Address, query, q)
	if err != nil {
		return m, err
	}
	m.Note = note
	if math.IsNaN(v) || math.IsInf(v, 0) {
		m.Count = 0 // no data; the note says why
		return m, nil
	}
	m.Value, m.HasValue = v, true
	if src.CountQuery == "" {
		return m, nil
	}
	cq, err := render("countQuery", src.CountQuery, data)
	if err != nil {
		return m, fmt.Errorf("metric %q: %w", q.Metric.Name, err)
	}
	n, cnote, err := p.instant(ctx, c, src.Address, cq, q)
	if err != nil {
		return m, fmt.Errorf("count: %w", err)
	}
	switch {
	case math.IsNaN(n) || math.IsInf(n, 0):
		m.Count = 0
	case n < 0:
		return m, fmt.Errorf("prometheus %s: count query %q returned %g, a negative count", src.Address, cq, n)
	default:
		m.Count = int64(math.Round(n))
	}
	if cnote != "" {
		m.Note = strings.TrimPrefix(m.Note+"; count query: "+cnote, "; ")
	}
	return m, nil
}

// render runs a template with missing keys as errors.
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

// instant evaluates query at q.End and reduces the reply to one number:
// NaN with a note when there is no usable value.
func (p *Provider) instant(ctx context.Context, c v1.API, address, query string, q rollout.Query) (float64, string, error) {
	var opts []v1.Option
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left > 0 {
			opts = append(opts, v1.WithTimeout(left))
		}
	}
	val, warnings, _, err := c.Query(ctx, query, q.End, opts...)
	if err != nil {
		return math.NaN(), "", queryError(ctx, address, query, err)
	}
	var note string
	if len(warnings) > 0 {
		p.log.Warn("prometheus warnings", "address", address, "rollout", q.Rollout, "metric", q.Metric.Name, "query", query, "warnings", []string(warnings))
		note = "Prometheus warned: " + strings.Join(warnings, "; ")
	}
	v, why, err := single(val)
	if err != nil {
		return math.NaN(), "", fmt.Errorf("prometheus %s: query %q: %w", address, query, err)
	}
	if why != "" {
		note = strings.TrimPrefix(note+"; "+why, "; ")
	}
	return v, note, nil
}

// queryError names the server and the query, keeps the reply's detail
// short, and wraps the context's error when it ended the query.
func queryError(ctx context.Context, address, query string, err error) error {
	var ae *v1.Error
	if errors.As(err, &ae) {
		msg := fmt.Sprintf("%s: %s", ae.Type, ae.Msg)
		if ae.Type == v1.ErrBadResponse && strings.Contains(ae.Msg, `unexpected value type "string"`) {
			// client_golang does not decode string results.
			msg = "the query returned a string, not a number"
		}
		if d := strings.TrimSpace(ae.Detail); d != "" {
			if len(d) > 200 {
				d = d[:200] + "…"
			}
			msg += ": " + d
		}
		err = errors.New(msg)
	}
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		return fmt.Errorf("prometheus %s: query %q: %w (%w)", address, query, err, ce)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("prometheus %s: query %q: the reply was cut short: %w", address, query, err)
	}
	return fmt.Errorf("prometheus %s: query %q: %w", address, query, err)
}

// single reduces an instant query's result to one number. No series, NaN
// and ±Inf give NaN (no data) with the reason; shapes that are not one
// number are errors.
func single(v model.Value) (float64, string, error) {
	switch r := v.(type) {
	case *model.Scalar:
		return number(float64(r.Value))
	case model.Vector:
		switch len(r) {
		case 0:
			return math.NaN(), "the query returned no series", nil
		case 1:
			return number(float64(r[0].Value))
		}
		return 0, "", fmt.Errorf("the query returned %d series, want one (aggregate them in the query, e.g. with sum or max): %s", len(r), seriesLabels(r))
	case model.Matrix:
		return 0, "", fmt.Errorf("the query returned a range vector (%d series); an instant query needs an instant vector or a scalar: apply a function such as rate() or max_over_time()", len(r))
	case *model.String:
		return 0, "", fmt.Errorf("the query returned the string %q, not a number", r.Value)
	case nil:
		return math.NaN(), "the query returned no result", nil
	}
	return 0, "", fmt.Errorf("the query returned a %s, not a number", v.Type())
}

func number(f float64) (float64, string, error) {
	switch {
	case math.IsNaN(f):
		return f, "Prometheus returned NaN (e.g. 0/0: nothing to divide in the window)", nil
	case math.IsInf(f, 0):
		return f, fmt.Sprintf("Prometheus returned %v (e.g. a division by zero)", f), nil
	}
	return f, "", nil
}

// seriesLabels lists up to five series' labels, sorted.
func seriesLabels(v model.Vector) string {
	ls := make([]string, len(v))
	for i, s := range v {
		ls[i] = s.Metric.String()
	}
	sort.Strings(ls)
	if len(ls) > 5 {
		ls = append(ls[:5], fmt.Sprintf("and %d more", len(ls)-5))
	}
	return strings.Join(ls, ", ")
}
