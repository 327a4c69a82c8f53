package rollout

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"aviary/internal/analysis"
)

// Routers and Providers are the router and provider types this build of
// aviary implements. An unknown type is an error, never a fallback.
var (
	Routers   = []string{RouterBuiltin}
	Providers = []string{ProviderBuiltin, ProviderPrometheus, ProviderWeb}
)

// BuiltinQueries are the measurements the built-in provider answers.
var BuiltinQueries = []string{"error-rate", "latency-p50", "latency-p90", "latency-p99", "request-rate", "slow-rate"}

// NotifyTypes and Severities are the accepted notification settings.
var (
	NotifyTypes = []string{"slack", "teams", "discord", "googlechat", "webhook"}
	Severities  = []string{"info", "warn", "error"}
	HookTypes   = []string{HookConfirmRollout, HookPreRollout, HookRollout, HookConfirmTrafficIncrease,
		HookConfirmPromotion, HookPostRollout, HookRollback, HookEvent, HookLoad}
)

// validator collects problems with their field paths.
type validator struct{ errs FieldErrors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate returns every problem with the manifest, each with its field path
// and a plain sentence. It checks the manifest as written, knowing the
// defaults that Normalize will fill in.
func (m Manifest) Validate() FieldErrors {
	var v validator
	if m.APIVersion != APIVersion {
		v.add("apiVersion", "want %q, got %q", APIVersion, m.APIVersion)
	}
	if m.Kind != Kind {
		v.add("kind", "want %q, got %q", Kind, m.Kind)
	}
	v.name("metadata.name", m.Metadata.Name)
	v.spec("spec", m.Spec)
	return v.errs
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (v *validator) name(path, name string) {
	switch {
	case name == "":
		v.add(path, "a rollout needs a name")
	case len(name) > 63 || !nameRE.MatchString(name):
		v.add(path, "%q is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
}

func (v *validator) spec(path string, s Spec) {
	if strings.TrimSpace(s.Version) == "" {
		v.add(path+".version", "the version to release is missing")
	}
	if s.TargetRef != nil {
		v.add(path+".targetRef", "targetRef is for Kubernetes mode, which this build does not run; give upstreams instead")
	}
	if len(s.Upstreams) == 0 {
		v.add(path+".upstreams", "give at least one upstream URL of the version, e.g. http://127.0.0.1:9002")
	}
	seen := map[string]bool{}
	for i, u := range s.Upstreams {
		p := fmt.Sprintf("%s.upstreams[%d]", path, i)
		if err := checkOrigin(u); err != nil {
			v.add(p, "%v", err)
		} else if seen[u] {
			v.add(p, "upstream %q is listed twice", u)
		}
		seen[u] = true
	}
	v.traffic(path+".traffic", s.Traffic)
	metrics := s.effectiveMetrics()
	v.canary(path+".strategy.canary", s.Strategy.Canary, len(metrics) > 0)
	v.analysis(path+".analysis", s)
	v.webhooks(path+".webhooks", s.Webhooks)
	v.notify(path+".notify", s.Notify)
	if s.ProgressDeadline < 0 {
		v.add(path+".progressDeadline", "must not be negative, got %s", s.ProgressDeadline)
	}
	if s.RollbackWindow < 0 {
		v.add(path+".rollbackWindow", "must not be negative, got %s", s.RollbackWindow)
	}
}

func (v *validator) traffic(path string, t Traffic) {
	router := orDefault(t.Router, RouterBuiltin)
	if !slices.Contains(Routers, router) {
		v.add(path+".router", "unknown router %q (this build supports: %s)", t.Router, strings.Join(Routers, ", "))
		return
	}
	if router != RouterBuiltin {
		return
	}
	if t.Listen == "" {
		v.add(path+".listen", "the built-in router needs a listen address, e.g. \"127.0.0.1:8080\"")
	} else if err := checkHostPort(t.Listen); err != nil {
		v.add(path+".listen", "%v", err)
	}
	if t.TLS != nil {
		if t.TLS.CertFile == "" {
			v.add(path+".tls.certFile", "tls needs a certificate file")
		}
		if t.TLS.KeyFile == "" {
			v.add(path+".tls.keyFile", "tls needs a key file")
		}
	}
	switch t.Balance {
	case "", BalanceRoundRobin, BalanceLeastRequests:
	default:
		v.add(path+".balance", "unknown balance policy %q (want %s or %s)", t.Balance, BalanceRoundRobin, BalanceLeastRequests)
	}
	if hc := t.HealthCheck; hc != nil {
		p := path + ".healthCheck"
		if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
			v.add(p+".path", "must start with '/', got %q", hc.Path)
		}
		if hc.Interval < 0 {
			v.add(p+".interval", "must not be negative, got %s", hc.Interval)
		}
		if hc.Timeout < 0 {
			v.add(p+".timeout", "must not be negative, got %s", hc.Timeout)
		}
		if hc.Interval > 0 && hc.Timeout > hc.Interval {
			v.add(p+".timeout", "timeout %s is longer than the interval %s", hc.Timeout, hc.Interval)
		}
		if hc.HealthyThreshold < 0 {
			v.add(p+".healthyThreshold", "must not be negative, got %d", hc.HealthyThreshold)
		}
		if hc.UnhealthyThreshold < 0 {
			v.add(p+".unhealthyThreshold", "must not be negative, got %d", hc.UnhealthyThreshold)
		}
	}
}

func (v *validator) canary(path string, c Canary, haveMetrics bool) {
	shorthand := c.StepWeight != 0 || c.MaxWeight != 0 || c.Interval != 0
	switch {
	case len(c.Steps) > 0 && (shorthand || len(c.StepWeights) > 0):
		v.add(path+".steps", "give either steps or a shorthand (stepWeight/maxWeight/interval, or stepWeights), not both")
	case shorthand && len(c.StepWeights) > 0:
		v.add(path+".stepWeights", "give either stepWeights or stepWeight/maxWeight, not both")
	case len(c.Steps) == 0 && !shorthand && len(c.StepWeights) == 0:
		v.add(path+".steps", "the strategy has no steps: give steps, stepWeight/maxWeight/interval, or stepWeights")
	}
	if shorthand && len(c.StepWeights) == 0 {
		if c.StepWeight < 1 || c.StepWeight > 100 {
			v.add(path+".stepWeight", "must be between 1 and 100, got %d", c.StepWeight)
		}
		if c.MaxWeight < 0 || c.MaxWeight > 100 {
			v.add(path+".maxWeight", "must be between 1 and 100, got %d", c.MaxWeight)
		} else if c.MaxWeight > 0 && c.StepWeight > c.MaxWeight {
			v.add(path+".stepWeight", "stepWeight %d is greater than maxWeight %d", c.StepWeight, c.MaxWeight)
		}
		if c.Interval < 0 {
			v.add(path+".interval", "must not be negative, got %s", c.Interval)
		}
	}
	v.weights(path+".stepWeights", c.StepWeights)
	v.steps(path+".steps", c.Steps, haveMetrics)
	for i, m := range c.Match {
		v.match(fmt.Sprintf("%s.match[%d]", path, i), m)
	}
	if s := c.Stickiness; s != nil {
		p := path + ".stickiness"
		if s.Cookie == "" && s.HashOn == "" {
			v.add(p, "stickiness needs a cookie name or hashOn")
		}
		if s.Cookie != "" && !tokenRE.MatchString(s.Cookie) {
			v.add(p+".cookie", "%q is not a valid cookie name", s.Cookie)
		}
		if s.MaxAge < 0 {
			v.add(p+".maxAge", "must not be negative, got %s", s.MaxAge)
		}
		if s.MaxAge != 0 && s.Cookie == "" {
			v.add(p+".maxAge", "maxAge applies to the stickiness cookie; set cookie too")
		}
		if s.HashOn != "" {
			kind, name, ok := strings.Cut(s.HashOn, "/")
			if !ok || (kind != "header" && kind != "cookie") || !tokenRE.MatchString(name) {
				v.add(p+".hashOn", "want \"header/NAME\" or \"cookie/NAME\", got %q", s.HashOn)
			}
		}
	}
	if m := c.Mirror; m != nil && (m.Percent < 1 || m.Percent > 100) {
		v.add(path+".mirror.percent", "must be between 1 and 100, got %d", m.Percent)
	}
}

func (v *validator) weights(path string, ws []int) {
	prev := 0
	for i, w := range ws {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case w < 1 || w > 100:
			v.add(p, "weight must be between 1 and 100, got %d", w)
		case w <= prev:
			v.add(p, "weights must increase: %d follows %d", w, prev)
		}
		prev = max(prev, w)
	}
}

func (v *validator) steps(path string, steps []Step, haveMetrics bool) {
	weight := 0
	gates := map[string]bool{}
	for i, s := range steps {
		p := fmt.Sprintf("%s[%d]", path, i)
		n := 0
		if s.SetWeight != nil {
			n++
			switch w := *s.SetWeight; {
			case w < 0 || w > 100:
				v.add(p+".setWeight", "weight must be between 0 and 100, got %d", w)
			case w < weight:
				v.add(p+".setWeight", "weights must not decrease: %d follows %d", w, weight)
			default:
				weight = w
			}
		}
		if s.Pause != nil {
			n++
			if s.Pause.Duration < 0 {
				v.add(p+".pause.duration", "must not be negative, got %s", s.Pause.Duration)
			}
		}
		if s.Analysis != nil {
			n++
			if !haveMetrics {
				v.add(p+".analysis", "an analysis step needs metrics: list them under spec.analysis.metrics")
			}
			if s.Analysis.Duration < 0 {
				v.add(p+".analysis.duration", "must not be negative, got %s", s.Analysis.Duration)
			}
		}
		if s.Gate != nil {
			n++
			switch {
			case s.Gate.Name == "":
				v.add(p+".gate.name", "a gate needs a name, for `aviary approve --gate NAME`")
			case !nameRE.MatchString(s.Gate.Name):
				v.add(p+".gate.name", "%q is not a valid gate name: use lowercase letters, digits and '-'", s.Gate.Name)
			case gates[s.Gate.Name]:
				v.add(p+".gate.name", "gate %q is used twice", s.Gate.Name)
			}
			gates[s.Gate.Name] = true
		}
		switch n {
		case 0:
			v.add(p, "empty step: give one of setWeight, pause, analysis or gate")
		case 1:
		default:
			v.add(p, "a step does one thing: give only one of setWeight, pause, analysis or gate")
		}
	}
}

var tokenRE = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)

func (v *validator) match(path string, m Match) {
	if len(m.Headers) == 0 && len(m.Query) == 0 && m.Cookie == nil && m.Users == nil && m.Segments == nil {
		v.add(path, "empty match: give headers, query, cookie, users or segments")
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		p := fmt.Sprintf("%s.headers[%q]", path, k)
		if !tokenRE.MatchString(k) {
			v.add(p, "%q is not a valid header name", k)
		}
		v.stringMatch(p, m.Headers[k])
	}
	for _, k := range slices.Sorted(maps.Keys(m.Query)) {
		p := fmt.Sprintf("%s.query[%q]", path, k)
		if k == "" {
			v.add(p, "a query parameter needs a name")
		}
		v.stringMatch(p, m.Query[k])
	}
	if c := m.Cookie; c != nil {
		if !tokenRE.MatchString(c.Name) {
			v.add(path+".cookie.name", "%q is not a valid cookie name", c.Name)
		}
		v.stringMatch(path+".cookie", c.StringMatch)
	}
	v.listMatch(path+".users", m.Users)
	v.listMatch(path+".segments", m.Segments)
}

func (v *validator) stringMatch(path string, s StringMatch) {
	n := 0
	if s.Exact != "" {
		n++
	}
	if s.Present {
		n++
	}
	if s.Regex != "" {
		n++
		if _, err := regexp.Compile(s.Regex); err != nil {
			v.add(path+".regex", "%q is not a valid regular expression: %v", s.Regex, err)
		}
	}
	if n != 1 {
		v.add(path, "give exactly one of exact, regex or present")
	}
}

func (v *validator) listMatch(path string, l *ListMatch) {
	if l == nil {
		return
	}
	if (l.Header == "") == (l.Cookie == "") {
		v.add(path, "give the header or the cookie that carries the value, not both")
	}
	if l.Header != "" && !tokenRE.MatchString(l.Header) {
		v.add(path+".header", "%q is not a valid header name", l.Header)
	}
	if l.Cookie != "" && !tokenRE.MatchString(l.Cookie) {
		v.add(path+".cookie", "%q is not a valid cookie name", l.Cookie)
	}
	if len(l.Values) == 0 {
		v.add(path+".values", "list at least one value")
	}
}

func (v *validator) analysis(path string, s Spec) {
	a := s.Analysis
	if a.Interval < 0 {
		v.add(path+".interval", "must not be negative, got %s", a.Interval)
	} else if a.Interval != 0 && a.Interval.D() < time.Second {
		v.add(path+".interval", "must be at least 1s, got %s", a.Interval)
	}
	if a.FailureLimit < 0 {
		v.add(path+".failureLimit", "must not be negative, got %d", a.FailureLimit)
	}
	if a.ErrorLimit != nil && *a.ErrorLimit < 0 {
		v.add(path+".errorLimit", "must not be negative, got %d", *a.ErrorLimit)
	}
	switch a.Decision {
	case "", DecisionAuto, DecisionManual, DecisionHybrid:
	default:
		v.add(path+".decision", "unknown decision mode %q (want auto, manual or hybrid)", a.Decision)
	}
	builtin := orDefault(s.Traffic.Router, RouterBuiltin) == RouterBuiltin
	names := map[string]bool{}
	for i, m := range a.Metrics {
		p := fmt.Sprintf("%s.metrics[%d]", path, i)
		switch {
		case m.Name == "":
			v.add(p+".name", "a metric needs a name")
		case names[m.Name]:
			v.add(p+".name", "metric %q is listed twice", m.Name)
		}
		names[m.Name] = true
		provider := m.Provider
		if provider == "" && builtin {
			provider = ProviderBuiltin
		}
		switch {
		case provider == "":
			v.add(p+".provider", "a metric needs a provider (this build supports: %s)", strings.Join(Providers, ", "))
		case !slices.Contains(Providers, provider):
			v.add(p+".provider", "unknown provider %q (this build supports: %s)", m.Provider, strings.Join(Providers, ", "))
		case provider == ProviderBuiltin:
			if !builtin {
				v.add(p+".provider", "the builtin provider measures the built-in router's traffic, but traffic.router is %q", s.Traffic.Router)
			}
			if q := orDefault(m.Query, m.Name); !slices.Contains(BuiltinQueries, q) {
				v.add(p+".query", "the builtin provider measures one of %s, not %q", strings.Join(BuiltinQueries, ", "), q)
			}
		default:
			if strings.TrimSpace(m.Query) == "" {
				v.add(p+".query", "provider %q needs a query", provider)
			}
		}
		v.sources(p, provider, m)
		for _, pr := range m.Criteria.Validate() {
			v.add(p+"."+pr.Field, "%s", pr.Message)
		}
	}
}

// sources checks a metric's prometheus or web block: present for its
// provider only, with templates that parse and name known fields.
func (v *validator) sources(p, provider string, m Metric) {
	if m.Prometheus != nil && provider != ProviderPrometheus {
		v.add(p+".prometheus", "a prometheus block is for provider: prometheus, not %q", provider)
	}
	if m.Web != nil && provider != ProviderWeb {
		v.add(p+".web", "a web block is for provider: web, not %q", provider)
	}
	switch provider {
	case ProviderPrometheus:
		src := m.Prometheus
		if src == nil {
			v.add(p+".prometheus", "provider prometheus needs a prometheus block with the server's address, e.g. {address: \"http://127.0.0.1:9090\"}")
			return
		}
		v.vars(p+".prometheus.vars", src.Vars)
		if err := checkURL(src.Address); err != nil {
			v.add(p+".prometheus.address", "%v", err)
		}
		v.template(p+".query", m.Query, src.Vars)
		if src.CountQuery != "" {
			v.template(p+".prometheus.countQuery", src.CountQuery, src.Vars)
		}
		v.auth(p+".prometheus.auth", src.Auth)
	case ProviderWeb:
		src := m.Web
		if src == nil {
			v.add(p+".web", "provider web needs a web block with the URL to ask, e.g. {url: \"http://127.0.0.1:9200/kpi?version={{.Version}}\"}")
			return
		}
		v.vars(p+".web.vars", src.Vars)
		if !strings.HasPrefix(src.URL, "http://") && !strings.HasPrefix(src.URL, "https://") {
			v.add(p+".web.url", "%q is not an http:// or https:// URL", src.URL)
		} else if u, ok := v.template(p+".web.url", src.URL, src.Vars); ok {
			if err := checkURL(u); err != nil {
				v.add(p+".web.url", "%v", err)
			}
		}
		switch src.Method {
		case "", "GET", "POST":
		default:
			v.add(p+".web.method", "unknown method %q (want GET or POST)", src.Method)
		}
		if src.Body != "" {
			if src.Method != "POST" {
				v.add(p+".web.body", "a body is sent with method: POST")
			}
			v.template(p+".web.body", src.Body, src.Vars)
		}
		for _, k := range slices.Sorted(maps.Keys(src.Headers)) {
			hp := fmt.Sprintf("%s.web.headers[%q]", p, k)
			switch {
			case !tokenRE.MatchString(k):
				v.add(hp, "%q is not a valid header name", k)
			case strings.EqualFold(k, "Authorization"):
				v.add(hp, "credentials are not written in specs: use web.auth")
			}
		}
		if strings.TrimSpace(m.Query) != "" {
			if _, err := analysis.ParseSelector(m.Query); err != nil {
				v.add(p+".query", "%v", err)
			}
		}
		if src.Count != "" {
			if _, err := analysis.ParseSelector(src.Count); err != nil {
				v.add(p+".web.count", "%v", err)
			}
		}
		v.auth(p+".web.auth", src.Auth)
	}
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) vars(path string, vars map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		switch {
		case !varNameRE.MatchString(k):
			v.add(fmt.Sprintf("%s[%q]", path, k), "%q is not a variable name: use letters, digits and '_', not starting with a digit", k)
		case slices.Contains(TemplateFields, k):
			v.add(fmt.Sprintf("%s[%q]", path, k), "%q is a built-in template field (%s); choose another name", k, strings.Join(TemplateFields, ", "))
		}
	}
}

// template parses a template and runs it on sample data, so that a typo in
// a field name is found now; it returns the sample output.
func (v *validator) template(path, text string, vars map[string]string) (string, bool) {
	t, err := template.New("t").Option("missingkey=error").Parse(text)
	if err != nil {
		v.add(path, "not a valid template: %s", templateError(err))
		return "", false
	}
	sample := Query{Rollout: "web", Version: "v2", Role: RoleCanary, Start: time.Unix(1767225600, 0), End: time.Unix(1767225630, 0)}
	var b strings.Builder
	if err := t.Execute(&b, TemplateData(sample, vars)); err != nil {
		msg := templateError(err)
		if _, key, ok := strings.Cut(msg, "map has no entry for key "); ok {
			msg = fmt.Sprintf("unknown field %s (templates may use %s and the metric's vars)", key, strings.Join(TemplateFields, ", "))
		}
		v.add(path, "%s", msg)
		return "", false
	}
	return b.String(), true
}

// templateError drops text/template's own prefixes: "template: t:1:44:
// executing "t" at <.X>: ..." becomes "...".
func templateError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "template: t:")
	if i := strings.Index(msg, ": executing "); i >= 0 {
		if j := strings.Index(msg[i:], ">: "); j >= 0 {
			return msg[i+j+3:]
		}
	}
	if line, rest, ok := strings.Cut(msg, ": "); ok {
		return "line " + line + ": " + rest
	}
	return msg
}

func (v *validator) auth(path string, a *HTTPAuth) {
	if a == nil {
		return
	}
	n := 0
	if a.BearerToken != "" {
		n++
		if !envRefRE.MatchString(a.BearerToken) {
			v.add(path+".bearerToken", "name an environment variable, e.g. \"${PROM_TOKEN}\", or use bearerTokenFile: secrets are not written in specs")
		}
	}
	if a.BearerTokenFile != "" {
		n++
	}
	if b := a.BasicAuth; b != nil {
		n++
		if b.Username == "" {
			v.add(path+".basicAuth.username", "basic auth needs a username")
		}
		switch {
		case b.Password != "" && b.PasswordFile != "":
			v.add(path+".basicAuth.passwordFile", "give password or passwordFile, not both")
		case b.Password == "" && b.PasswordFile == "":
			v.add(path+".basicAuth.password", "give the password as an environment variable (\"${PROM_PASSWORD}\") or passwordFile")
		case b.Password != "" && !envRefRE.MatchString(b.Password):
			v.add(path+".basicAuth.password", "name an environment variable, e.g. \"${PROM_PASSWORD}\", or use passwordFile: secrets are not written in specs")
		}
	}
	if n > 1 {
		v.add(path, "give one of bearerToken, bearerTokenFile or basicAuth")
	}
}

func (v *validator) webhooks(path string, hooks []Webhook) {
	names := map[string]bool{}
	for i, h := range hooks {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case h.Name == "":
			v.add(p+".name", "a webhook needs a name")
		case names[h.Name]:
			v.add(p+".name", "webhook %q is listed twice", h.Name)
		}
		names[h.Name] = true
		if !slices.Contains(HookTypes, h.Type) {
			v.add(p+".type", "unknown webhook type %q (want one of %s)", h.Type, strings.Join(HookTypes, ", "))
		}
		if h.Type == HookLoad {
			v.load(p, h)
		} else if err := checkURL(h.URL); err != nil {
			v.add(p+".url", "%v", err)
		}
		if h.Timeout < 0 {
			v.add(p+".timeout", "must not be negative, got %s", h.Timeout)
		}
		if h.Secret != "" && !envRefRE.MatchString(h.Secret) {
			v.add(p+".secret", "name an environment variable, e.g. \"${HOOK_SECRET}\", or use secretFile: secrets are not written in specs")
		}
		if h.Secret != "" && h.SecretFile != "" {
			v.add(p+".secretFile", "give secret or secretFile, not both")
		}
	}
}

func (v *validator) load(p string, h Webhook) {
	if h.URL != "" {
		v.add(p+".url", "a load hook sends requests to the canary itself: leave url out")
	}
	l := h.Load
	if l == nil {
		v.add(p+".load", "a load hook needs its load settings, e.g. {rps: 2, path: /}")
		return
	}
	if l.RPS < 0 || l.RPS > MaxLoadRPS {
		v.add(p+".load.rps", "must be between 0 and %g requests per second, got %g", MaxLoadRPS, l.RPS)
	}
	if l.Path != "" && !strings.HasPrefix(l.Path, "/") {
		v.add(p+".load.path", "must start with '/', got %q", l.Path)
	}
	if l.Method != "" && !tokenRE.MatchString(l.Method) {
		v.add(p+".load.method", "%q is not an HTTP method", l.Method)
	}
	switch l.Target {
	case "", LoadViaProxy, LoadToUpstreams:
	default:
		v.add(p+".load.target", "unknown target %q (want proxy or upstreams)", l.Target)
	}
	for _, k := range slices.Sorted(maps.Keys(l.Headers)) {
		if !tokenRE.MatchString(k) {
			v.add(fmt.Sprintf("%s.load.headers[%q]", p, k), "%q is not a valid header name", k)
		}
	}
}

var envRefRE = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

func (v *validator) notify(path string, ns []Notification) {
	for i, n := range ns {
		p := fmt.Sprintf("%s[%d]", path, i)
		if !slices.Contains(NotifyTypes, n.Type) {
			v.add(p+".type", "unknown notification type %q (want one of %s)", n.Type, strings.Join(NotifyTypes, ", "))
		}
		switch {
		case n.URL != "" && n.URLFile != "":
			v.add(p+".urlFile", "give url or urlFile, not both")
		case n.URLFile != "":
		case n.URL == "":
			v.add(p+".url", "give the webhook URL as an environment variable (\"${SLACK_WEBHOOK}\") or urlFile")
		case !envRefRE.MatchString(n.URL):
			if err := checkURL(n.URL); err != nil {
				v.add(p+".url", "%v (or name an environment variable: \"${SLACK_WEBHOOK}\")", err)
			}
		}
		if n.Severity != "" && !slices.Contains(Severities, n.Severity) {
			v.add(p+".severity", "unknown severity %q (want info, warn or error)", n.Severity)
		}
	}
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) error {
	if s == "" {
		return fmt.Errorf("the URL is missing")
	}
	rest, ok := strings.CutPrefix(s, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "https://")
	}
	if !ok {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if strings.ContainsAny(s, " \t\n") {
		return fmt.Errorf("%q contains whitespace", s)
	}
	if strings.Contains(host, "@") {
		return fmt.Errorf("%q holds credentials in the URL: pass them another way", s)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	return nil
}

// checkOrigin accepts scheme://host[:port] with at most a trailing slash.
func checkOrigin(s string) error {
	if err := checkURL(s); err != nil {
		return err
	}
	rest := s[strings.Index(s, "//")+2:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && rest[i:] != "/" {
		return fmt.Errorf("%q: an upstream is an origin (scheme://host:port) without a path or query", s)
	}
	return nil
}

// checkHostPort accepts "host:port", "[v6]:port" and ":port".
func checkHostPort(s string) error {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return fmt.Errorf("%q is not host:port (e.g. \"127.0.0.1:8080\")", s)
	}
	host, port := s[:i], s[i+1:]
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if host == "" {
		return nil
	}
	if err := checkHost(host + ":" + port); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return nil
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?$`)
var ipv6RE = regexp.MustCompile(`^[0-9A-Fa-f:.]+(%[0-9A-Za-z]+)?$`)

// checkHost accepts host, host:port, [v6] and [v6]:port.
func checkHost(hp string) error {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return fmt.Errorf("unclosed '[' in host")
		}
		host, port = hp[1:end], strings.TrimPrefix(hp[end+1:], ":")
		if hp[end+1:] != "" && !strings.HasPrefix(hp[end+1:], ":") {
			return fmt.Errorf("unexpected text after the IPv6 address")
		}
		if !ipv6RE.MatchString(host) || !strings.Contains(host, ":") {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
	} else if i := strings.LastIndex(hp, ":"); i >= 0 {
		host, port = hp[:i], hp[i+1:]
	}
	if port != "" || strings.HasSuffix(hp, ":") {
		if err := checkPort(port); err != nil {
			return err
		}
	}
	if host == "" {
		return fmt.Errorf("the host is missing")
	}
	if !strings.HasPrefix(hp, "[") && !hostnameRE.MatchString(host) {
		return fmt.Errorf("%q is not a valid host name or address", host)
	}
	return nil
}
