package secret

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces a secret in redacted text.
const Redacted = "[redacted]"

// minDerived is the shortest derived form (a URL's path and query, an
// escaped variant) worth redacting: shorter ones, such as a path "/hook",
// are not secret on their own and would mangle unrelated text.
const minDerived = 8

// Redactor knows secret values and removes them from text. It is safe for
// concurrent use; a nil *Redactor redacts nothing.
type Redactor struct {
	mu     sync.RWMutex
	values map[string]bool
	rep    *strings.Replacer
}

// NewRedactor returns a Redactor that knows no secret yet.
func NewRedactor() *Redactor { return &Redactor{values: map[string]bool{}} }

// Add teaches r secret values. Besides each value it redacts the forms the
// value takes when it is escaped into a URL or JSON and, for a URL, its path
// and query, so that an error quoting a re-encoded URL is redacted too.
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	add := func(s string, derived bool) {
		if s == "" || r.values[s] || derived && len(s) < minDerived {
			return
		}
		r.values[s] = true
		changed = true
	}
	for _, v := range values {
		add(v, false)
		add(url.QueryEscape(v), true)
		add(url.PathEscape(v), true)
		if b, err := json.Marshal(v); err == nil {
			add(string(b[1:len(b)-1]), true)
		}
		if u, err := url.Parse(v); err == nil && u.Host != "" {
			add(u.String(), true)
			add(u.RequestURI(), true)
			add(u.EscapedPath(), true)
			add(u.RawQuery, true)
			if p, ok := u.User.Password(); ok {
				add(p, false)
			}
		}
	}
	if !changed {
		return
	}
	// Longest first, so a URL is replaced whole rather than around a
	// shorter secret it contains.
	olds := make([]string, 0, len(r.values))
	for v := range r.values {
		olds = append(olds, v)
	}
	slices.SortFunc(olds, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	pairs := make([]string, 0, 2*len(olds))
	for _, v := range olds {
		pairs = append(pairs, v, Redacted)
	}
	r.rep = strings.NewReplacer(pairs...)
}

// String returns s with every known secret replaced by "[redacted]".
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.rep
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Error returns err with a redacted message, or nil. errors.Is and As still
// see the original chain; printing the result shows only redacted text.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Handler wraps h so that every record's message and attribute values
// (strings, errors, Stringers, also inside groups) are redacted before h
// sees them. Attributes bound with WithAttrs are redacted when bound.
func (r *Redactor) Handler(h slog.Handler) slog.Handler { return &handler{r: r, next: h} }

type handler struct {
	r    *Redactor
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &handler{r: h.r, next: h.next.WithAttrs(red)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, next: h.next.WithGroup(name)}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = h.attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.r.String(x.String()))
		case []byte:
			return slog.String(a.Key, h.r.String(string(x)))
		}
		// Other values are formatted by the next handler; format them
		// here instead so that nothing unredacted reaches it.
		if b, err := json.Marshal(v.Any()); err == nil {
			return slog.String(a.Key, h.r.String(string(b)))
		}
		return slog.String(a.Key, Redacted)
	}
	return slog.Attr{Key: a.Key, Value: v}
}
