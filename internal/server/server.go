// Package server is aviary's HTTP API: JSON under /api/v1 for everything the
// command line does, server-sent-event streams of rollout and route changes,
// /healthz, /metrics and the dashboard's files. It drives the controller
// through the small interfaces declared here and reads history from the
// store; it holds no state of its own beyond open streams.
//
// It may import the core (rollout, analysis, manifest), the store's value
// types and the controller's errors and value types.
package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"aviary/internal/controller"
	"aviary/internal/rollout"
	"aviary/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Rollouts reads rollouts from the controller. Safe for concurrent use;
// Get fails with an error wrapping controller.ErrNotFound.
type Rollouts interface {
	Get(name string) (store.Record, error)
	List() []store.Record
	Subscribe() (<-chan controller.Change, func())
}

// Operator changes rollouts. Safe for concurrent use. Apply and Command
// refuse with errors wrapping rollout.FieldErrors, rollout.ErrRefused,
// controller.ErrNotFound, controller.ErrUnsupported or
// controller.ErrNotRunning, and change nothing when they do.
type Operator interface {
	Apply(ctx context.Context, m rollout.Manifest) (controller.ApplyResult, error)
	Command(ctx context.Context, name string, c rollout.Command) (store.Record, error)
	Delete(ctx context.Context, name string) error
	Supports(s rollout.Spec) error
}

// Controller is what the API drives; *controller.Controller is one.
type Controller interface {
	Rollouts
	Operator
}

// History reads what the store keeps about rollouts. Safe for concurrent
// use; a rollout without history answers empty lists, not errors.
type History interface {
	Events(ctx context.Context, q store.EventQuery) ([]store.EventRecord, error)
	Runs(ctx context.Context, name string) ([]store.Run, error)
	Series(ctx context.Context, name string, run int) ([]store.Point, error)
	Revisions(ctx context.Context, name string) ([]store.Revision, error)
}

// Options configure a Server. Controller, History and Token are required.
type Options struct {
	Controller Controller
	History    History
	// Token authorizes mutating calls (Authorization: Bearer TOKEN).
	Token string
	// Logger logs requests; nil discards.
	Logger *slog.Logger
	// Gatherer serves /metrics; nil answers 404 there.
	Gatherer prometheus.Gatherer
	// Dashboard serves / (index.html and its assets); nil serves a small
	// page that points at the API.
	Dashboard fs.FS
	// MaxBody bounds request bodies (default 1 MiB).
	MaxBody int64
	// Heartbeat is the interval of comments on idle event streams, which
	// keep proxies and load balancers from closing them (default 15s).
	Heartbeat time.Duration
	// Now tells the time (default time.Now); it decides whether a rollback
	// window is still open.
	Now func() time.Time
}

// DefaultMaxBody bounds request bodies unless Options.MaxBody says otherwise.
const DefaultMaxBody = 1 << 20

// Server is the API's http.Handler.
type Server struct {
	opts  Options
	log   *slog.Logger
	token [sha256.Size]byte
	mux   *http.ServeMux

	closeOnce sync.Once
	closed    chan struct{}
}

// New checks the options and builds the API.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Controller == nil:
		return nil, errors.New("server: a controller is required")
	case opts.History == nil:
		return nil, errors.New("server: a history store is required")
	case opts.Token == "":
		return nil, errors.New("server: an API token is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger, token: sha256.Sum256([]byte(opts.Token)), closed: make(chan struct{})}
	s.routes()
	return s, nil
}

// Close ends every open event stream; call it before http.Server.Shutdown,
// which otherwise waits for streams that never end. Later streams end at
// once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// handlerFunc is a handler that returns its error; serve writes it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one path's handlers by method; mutating methods need the
// token. The method "" takes any method without a token (for answers that
// change nothing, such as an unknown path's 404).
type route map[string]handlerFunc

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	api := map[string]route{
		"/api/v1/rollouts":                                {"GET": s.list, "POST": s.apply},
		"/api/v1/rollouts/{name}":                         {"GET": s.get, "DELETE": s.delete},
		"/api/v1/rollouts/{name}/release":                 {"POST": s.release},
		"/api/v1/rollouts/{name}/events":                  {"GET": s.events},
		"/api/v1/rollouts/{name}/runs":                    {"GET": s.runs},
		"/api/v1/rollouts/{name}/runs/{run}/measurements": {"GET": s.measurements},
		"/api/v1/rollouts/{name}/revisions":               {"GET": s.revisions},
		"/api/v1/routes":                                  {"GET": s.listRoutes},
		"/api/v1/routes/watch":                            {"GET": s.watchRoutes},
		"/api/v1/watch":                                   {"GET": s.watch},
		"/healthz":                                        {"GET": s.healthz},
		"/metrics":                                        {"GET": s.metrics},
		"/api/":                                           {"": s.unknownPath},
	}
	for _, op := range []string{rollout.OpPromote, rollout.OpAbort, rollout.OpPause, rollout.OpResume,
		rollout.OpRetry, rollout.OpRollback, rollout.OpApprove} {
		api["/api/v1/rollouts/{name}/"+op] = route{"POST": s.command(op)}
	}
	for pattern, rt := range api {
		s.mux.Handle(pattern, s.dispatch(rt))
	}
	s.mux.Handle("/", s.dashboard())
}

// dispatch picks the handler for the request's method, checks the token for
// mutating methods and writes the handler's error.
func (s *Server) dispatch(rt route) http.Handler {
	allow := make([]string, 0, len(rt))
	for m := range rt {
		if m != "" {
			allow = append(allow, m)
		}
	}
	if _, ok := rt["GET"]; ok {
		allow = append(allow, "HEAD")
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := rt[method]
		anyMethod := false
		if !ok {
			h, ok = rt[""]
			anyMethod = ok
		}
		if !ok {
			w.Header().Set("Allow", allowed)
			s.writeError(w, r, apiError{errMethod, r.Method + " is not allowed on " + r.URL.Path + " (allowed: " + allowed + ")"})
			return
		}
		if method != http.MethodGet && !anyMethod && !s.authorized(r) {
			s.writeError(w, r, apiError{errUnauthorized, unauthorizedMessage(r)})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authorized compares the bearer token in constant time (hashes first, so
// that not even the length leaks).
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

func unauthorizedMessage(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		return "this call changes rollouts and needs the API token: send Authorization: Bearer TOKEN (aviary reads it from AVIARY_TOKEN or --token-file)"
	}
	return "the API token is wrong: send the token of this server as Authorization: Bearer TOKEN"
}

func (s *Server) unknownPath(_ http.ResponseWriter, r *http.Request) error {
	return notFound("no API endpoint at %s (see docs/api.md)", r.URL.Path)
}

// ServeHTTP logs each request and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	}
	if u := r.Header.Get(userHeader); u != "" {
		attrs = append(attrs, slog.String("user", user(r)))
	}
	level := slog.LevelInfo
	if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
		level = slog.LevelDebug // probes and scrapes would drown the log
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// recorder remembers the status and size of an answer. Unwrap lets
// http.ResponseController reach the Flusher of the connection.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// marshal encodes v as JSON without escaping <, > and & (the answers are
// not HTML), indented or on one line.
func marshal(v any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON answers with v as indented JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v, true)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error": "encode the answer: ` + strings.ReplaceAll(err.Error(), `"`, `'`) + `", "fields": []}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Gatherer == nil {
		return apiError{errNoMetrics, errNoMetrics.Error()}
	}
	promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)}).ServeHTTP(w, r)
	return nil
}

// dashboard serves the dashboard's files, or a placeholder page.
func (s *Server) dashboard() http.Handler {
	if s.opts.Dashboard != nil {
		return http.FileServerFS(s.opts.Dashboard)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			s.writeError(w, r, notFound("nothing at %s", r.URL.Path))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(placeholder))
	})
}

const placeholder = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aviary</title></head>
<body>
<h1>aviary</h1>
<p>This server has no dashboard built in. The API is at
<a href="/api/v1/rollouts">/api/v1/rollouts</a>; live changes stream from
<a href="/api/v1/watch">/api/v1/watch</a>; metrics are at <a href="/metrics">/metrics</a>.</p>
</body></html>
`
