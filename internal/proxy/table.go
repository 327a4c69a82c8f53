package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Table is the proxy's routing table: which versions serve and how requests
// are split between them. Tables are swapped atomically; a request keeps the
// version it was given when it started.
type Table struct {
	// Generation orders tables: Update ignores a table whose Generation is
	// lower than the current one's.
	Generation int64
	// Stable serves every request that is not sent to the canary.
	Stable Backend
	// Canary is nil when no canary runs.
	Canary *Backend
	// Weight is the percent (0-100) of unmatched requests sent to the canary.
	Weight int
	// Match rules send the requests they select to the canary regardless of
	// Weight. Any one rule suffices; all conditions of a rule must hold.
	Match []Match
	// StickyCookie, when set, names a cookie in which the proxy records the
	// version a client got by the weighted choice; later requests carrying
	// it go to that version while it still serves.
	StickyCookie string
	// StickyMaxAge is the sticky cookie's lifetime (0: a session cookie).
	StickyMaxAge time.Duration
	// HashOn makes the weighted choice consistent on a request key instead
	// of random: "header/NAME" or "cookie/NAME". The choice is then monotone:
	// a key sent to the canary at weight w is sent there at every weight >= w.
	// Requests without the key are split at random.
	HashOn string
	// MirrorPercent is the percent (0-100) of stable requests copied to the
	// canary as shadow traffic.
	MirrorPercent int
	// Balance picks an upstream within a pool: BalanceRoundRobin (default)
	// or BalanceLeastRequests.
	Balance string
	// HealthCheck, when set, probes every upstream actively.
	HealthCheck *HealthCheck
	// Shield retries a failed idempotent canary request once on stable.
	Shield bool
}

// Backend is one version and the upstreams it runs on.
type Backend struct {
	Version string
	// Upstreams are base URLs: http://host:port or https://host:port, with
	// an optional path prefix.
	Upstreams []string
}

// Match selects requests for the canary. All its conditions must hold.
type Match struct {
	// Headers and Query test request header and query parameter values.
	Headers map[string]StringMatch
	Query   map[string]StringMatch
	Cookie  *CookieMatch
	// Users matches when a header's (or cookie's) value is one of a list of
	// user ids; Segments when one of the comma-separated values of a header
	// (or cookie) is one of a list of segment names.
	Users    *ListMatch
	Segments *ListMatch
}

// StringMatch tests one value: exactly one of Exact, Regex or Present is set.
// A Regex must match the whole value.
type StringMatch struct {
	Exact   string
	Regex   string
	Present bool
}

// CookieMatch tests a cookie's value.
type CookieMatch struct {
	Name string
	StringMatch
}

// ListMatch tests whether a header's or a cookie's value is in Values.
type ListMatch struct {
	Header string
	Cookie string
	Values []string
}

// Balance policies.
const (
	BalanceRoundRobin    = "round-robin"
	BalanceLeastRequests = "least-requests"
)

// HealthCheck configures active health checks: every Interval each upstream
// gets GET Path; an answer 200-399 within Timeout is a success. An upstream
// turns unhealthy after UnhealthyThreshold consecutive failures and healthy
// again after HealthyThreshold consecutive successes. Zero fields take the
// defaults: path "/", interval 5s, timeout 2s, thresholds 2 and 3.
type HealthCheck struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Interval == 0 {
		h.Interval = 5 * time.Second
	}
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Second
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = 2
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = 3
	}
	return h
}

// Validate returns every problem with t, joined; each names its field.
func (t Table) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	validateBackend("stable", t.Stable, add)
	if t.Canary != nil {
		validateBackend("canary", *t.Canary, add)
		if t.Canary.Version == t.Stable.Version && t.Stable.Version != "" {
			add("canary.version: %q is also the stable version", t.Canary.Version)
		}
	}
	if t.Weight < 0 || t.Weight > 100 {
		add("weight: %d is not a percent in 0-100", t.Weight)
	}
	if t.MirrorPercent < 0 || t.MirrorPercent > 100 {
		add("mirrorPercent: %d is not a percent in 0-100", t.MirrorPercent)
	}
	for i, m := range t.Match {
		if _, err := compileMatch(m); err != nil {
			add("match[%d]: %w", i, err)
		}
	}
	if t.StickyCookie != "" {
		if !validToken(t.StickyCookie) {
			add("stickyCookie: %q is not a valid cookie name", t.StickyCookie)
		}
		for _, b := range []*Backend{&t.Stable, t.Canary} {
			if b != nil && !validCookieValue(b.Version) {
				add("stickyCookie: version %q cannot be a cookie value (use letters, digits and .-_+)", b.Version)
			}
		}
	}
	if t.StickyMaxAge < 0 {
		add("stickyMaxAge: %s is negative", t.StickyMaxAge)
	}
	if t.HashOn != "" {
		if _, _, err := parseHashOn(t.HashOn); err != nil {
			add("hashOn: %w", err)
		}
	}
	switch t.Balance {
	case "", BalanceRoundRobin, BalanceLeastRequests:
	default:
		add("balance: unknown policy %q (want %s or %s)", t.Balance, BalanceRoundRobin, BalanceLeastRequests)
	}
	if hc := t.HealthCheck; hc != nil {
		if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
			add("healthCheck.path: %q does not start with /", hc.Path)
		}
		if hc.Interval < 0 || hc.Timeout < 0 || hc.HealthyThreshold < 0 || hc.UnhealthyThreshold < 0 {
			add("healthCheck: interval, timeout and thresholds must not be negative")
		}
	}
	return errors.Join(errs...)
}

func validateBackend(field string, b Backend, add func(string, ...any)) {
	if b.Version == "" {
		add("%s.version: empty", field)
	}
	if len(b.Upstreams) == 0 {
		add("%s.upstreams: none given for version %q", field, b.Version)
	}
	seen := map[string]bool{}
	for i, u := range b.Upstreams {
		if _, err := parseUpstreamURL(u); err != nil {
			add("%s.upstreams[%d]: %w", field, i, err)
		}
		if seen[u] {
			add("%s.upstreams[%d]: %q is listed twice", field, i, u)
		}
		seen[u] = true
	}
}

func parseHashOn(s string) (header, cookie string, err error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || name == "" || !validToken(name) {
		return "", "", fmt.Errorf("%q is not header/NAME or cookie/NAME", s)
	}
	switch kind {
	case "header":
		return textproto.CanonicalMIMEHeaderKey(name), "", nil
	case "cookie":
		return "", name, nil
	}
	return "", "", fmt.Errorf("%q: unknown key source %q (want header or cookie)", s, kind)
}

// upstreamURL is a parsed upstream base URL.
type upstreamURL struct {
	raw    string
	tls    bool
	host   string // host:port to dial
	sni    string
	prefix string // path prefix without a trailing slash
}

func parseUpstreamURL(s string) (upstreamURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return upstreamURL{}, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	out := upstreamURL{raw: s, sni: u.Hostname()}
	switch u.Scheme {
	case "http":
	case "https":
		out.tls = true
	default:
		return upstreamURL{}, fmt.Errorf("%q: scheme %q is not http or https", s, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return upstreamURL{}, fmt.Errorf("%q has no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return upstreamURL{}, fmt.Errorf("%q: an upstream is scheme://host:port[/prefix], without user, query or fragment", s)
	}
	out.host = u.Host
	if u.Port() == "" {
		port := "80"
		if out.tls {
			port = "443"
		}
		out.host = u.Hostname() + ":" + port
		if strings.Contains(u.Hostname(), ":") {
			out.host = "[" + u.Hostname() + "]:" + port
		}
	}
	out.prefix = strings.TrimSuffix(u.EscapedPath(), "/")
	return out, nil
}

// validToken reports whether s is an RFC 7230 token (header and cookie names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validCookieValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_+", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// matcher is a compiled Match.
type matcher struct {
	headers  []headerCond
	query    []headerCond // name is the raw parameter name
	cookie   *cookieCond
	users    *listCond
	segments *listCond
}

type stringCond struct {
	exact   string
	re      *regexp.Regexp
	present bool
}

type headerCond struct {
	name string
	cond stringCond
}

type cookieCond struct {
	name string
	cond stringCond
}

type listCond struct {
	header string // canonical, or ""
	cookie string
	split  bool // comma-separated values (segments)
	values map[string]bool
}

func compileString(m StringMatch) (stringCond, error) {
	n := 0
	if m.Exact != "" {
		n++
	}
	if m.Regex != "" {
		n++
	}
	if m.Present {
		n++
	}
	if n != 1 {
		return stringCond{}, fmt.Errorf("set exactly one of exact, regex or present (%d set)", n)
	}
	c := stringCond{exact: m.Exact, present: m.Present}
	if m.Regex != "" {
		re, err := regexp.Compile(`^(?:` + m.Regex + `)$`)
		if err != nil {
			return stringCond{}, fmt.Errorf("regex %q: %w", m.Regex, err)
		}
		c.re = re
	}
	return c, nil
}

func (c stringCond) test(v string) bool {
	switch {
	case c.present:
		return true
	case c.re != nil:
		return c.re.MatchString(v)
	}
	return v == c.exact
}

func compileList(l *ListMatch, split bool) (*listCond, error) {
	if (l.Header == "") == (l.Cookie == "") {
		return nil, errors.New("set exactly one of header or cookie")
	}
	if len(l.Values) == 0 {
		return nil, errors.New("values: empty list")
	}
	c := &listCond{cookie: l.Cookie, split: split, values: make(map[string]bool, len(l.Values))}
	if l.Header != "" {
		c.header = textproto.CanonicalMIMEHeaderKey(l.Header)
	}
	for _, v := range l.Values {
		c.values[v] = true
	}
	return c, nil
}

func compileMatch(m Match) (*matcher, error) {
	out := &matcher{}
	var errs []error
	for _, name := range sortedKeys(m.Headers) {
		c, err := compileString(m.Headers[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("headers[%q]: %w", name, err))
			continue
		}
		out.headers = append(out.headers, headerCond{name: textproto.CanonicalMIMEHeaderKey(name), cond: c})
	}
	for _, name := range sortedKeys(m.Query) {
		c, err := compileString(m.Query[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("query[%q]: %w", name, err))
			continue
		}
		out.query = append(out.query, headerCond{name: name, cond: c})
	}
	if m.Cookie != nil {
		c, err := compileString(m.Cookie.StringMatch)
		switch {
		case m.Cookie.Name == "":
			errs = append(errs, errors.New("cookie.name: empty"))
		case err != nil:
			errs = append(errs, fmt.Errorf("cookie %q: %w", m.Cookie.Name, err))
		default:
			out.cookie = &cookieCond{name: m.Cookie.Name, cond: c}
		}
	}
	var err error
	if m.Users != nil {
		if out.users, err = compileList(m.Users, false); err != nil {
			errs = append(errs, fmt.Errorf("users: %w", err))
		}
	}
	if m.Segments != nil {
		if out.segments, err = compileList(m.Segments, true); err != nil {
			errs = append(errs, fmt.Errorf("segments: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(m.Headers)+len(m.Query) == 0 && m.Cookie == nil && m.Users == nil && m.Segments == nil {
		return nil, errors.New("a match needs at least one condition")
	}
	return out, nil
}

func sortedKeys(m map[string]StringMatch) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// matches reports whether every condition of m holds for r.
func (m *matcher) matches(r *http.Request, q *url.Values) bool {
	for _, h := range m.headers {
		vs, ok := r.Header[h.name]
		if !ok || !anyValue(vs, h.cond) {
			return false
		}
	}
	if len(m.query) > 0 {
		if *q == nil {
			*q = r.URL.Query()
		}
		for _, h := range m.query {
			vs, ok := (*q)[h.name]
			if !ok || !anyValue(vs, h.cond) {
				return false
			}
		}
	}
	if m.cookie != nil {
		c, err := r.Cookie(m.cookie.name)
		if err != nil || !m.cookie.cond.test(c.Value) {
			return false
		}
	}
	if m.users != nil && !m.users.matches(r) {
		return false
	}
	if m.segments != nil && !m.segments.matches(r) {
		return false
	}
	return true
}

func anyValue(vs []string, c stringCond) bool {
	for _, v := range vs {
		if c.test(v) {
			return true
		}
	}
	return false
}

func (l *listCond) matches(r *http.Request) bool {
	var vs []string
	if l.header != "" {
		vs = r.Header[l.header]
	} else if c, err := r.Cookie(l.cookie); err == nil {
		vs = []string{c.Value}
	}
	for _, v := range vs {
		if !l.split {
			if l.values[strings.TrimSpace(v)] {
				return true
			}
			continue
		}
		for part := range strings.SplitSeq(v, ",") {
			if l.values[strings.TrimSpace(part)] {
				return true
			}
		}
	}
	return false
}
