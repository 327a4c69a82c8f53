package rollout

import (
	"fmt"
	"time"

	"aviary/internal/analysis"
)

// APIVersion and Kind identify a rollout manifest.
const (
	APIVersion = "aviary.dev/v1alpha1"
	Kind       = "Rollout"
)

// Manifest is one rollout document as written in YAML: a name and a spec.
type Manifest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names a rollout.
type Metadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is what the user wants: the version to run and how to release it.
type Spec struct {
	// Version is the desired version's name, e.g. "v2" or an image tag.
	Version string `json:"version"`
	// Upstreams are the desired version's addresses (standalone mode).
	Upstreams []string `json:"upstreams,omitempty"`
	// TargetRef names the workload in Kubernetes mode.
	TargetRef *TargetRef `json:"targetRef,omitempty"`

	Traffic  Traffic  `json:"traffic"`
	Strategy Strategy `json:"strategy"`
	Analysis Analysis `json:"analysis"`

	Webhooks []Webhook      `json:"webhooks,omitempty"`
	Notify   []Notification `json:"notify,omitempty"`

	// ProgressDeadline bounds how long a run may wait without progress
	// (inconclusive analysis, a webhook that keeps saying wait) before it
	// pauses for a person.
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
	// RollbackWindow is how long after a promotion `aviary rollback` can
	// restore the previous stable version in one step.
	RollbackWindow Duration `json:"rollbackWindow,omitempty"`
}

// TargetRef names a Kubernetes workload.
type TargetRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Router types.
const (
	RouterBuiltin = "builtin"
)

// Traffic says which router applies the rollout's routes and how.
type Traffic struct {
	Router string `json:"router,omitempty"`
	// Listen is where the built-in proxy accepts this service's traffic.
	Listen string `json:"listen,omitempty"`
	// TLS terminates TLS at the built-in proxy.
	TLS *TLS `json:"tls,omitempty"`
	// Balance picks an upstream within a version's pool: "round-robin" or
	// "least-requests".
	Balance string `json:"balance,omitempty"`
	// HealthCheck probes upstreams actively.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// Shield retries a failed idempotent canary request once on stable.
	Shield bool `json:"shield,omitempty"`
}

// Balance policies.
const (
	BalanceRoundRobin    = "round-robin"
	BalanceLeastRequests = "least-requests"
)

// TLS names certificate files.
type TLS struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// HealthCheck configures active health checks of upstreams.
type HealthCheck struct {
	Path               string   `json:"path,omitempty"`
	Interval           Duration `json:"interval,omitempty"`
	Timeout            Duration `json:"timeout,omitempty"`
	HealthyThreshold   int      `json:"healthyThreshold,omitempty"`
	UnhealthyThreshold int      `json:"unhealthyThreshold,omitempty"`
}

// Strategy is how a new version is released.
type Strategy struct {
	Canary Canary `json:"canary"`
}

// Canary describes a canary release: its steps and the routing rules that
// apply throughout.
type Canary struct {
	// Steps are explicit steps. Alternatively StepWeight/MaxWeight/Interval
	// (Flagger style) or StepWeights generate them.
	Steps       []Step   `json:"steps,omitempty"`
	StepWeight  int      `json:"stepWeight,omitempty"`
	MaxWeight   int      `json:"maxWeight,omitempty"`
	Interval    Duration `json:"interval,omitempty"`
	StepWeights []int    `json:"stepWeights,omitempty"`

	// Match rules send chosen requests to the canary regardless of weight.
	Match []Match `json:"match,omitempty"`
	// Stickiness keeps a client on the version it first got.
	Stickiness *Stickiness `json:"stickiness,omitempty"`
	// Mirror copies a share of stable requests to the canary.
	Mirror *Mirror `json:"mirror,omitempty"`
}

// Step is one item of the strategy; exactly one field is set.
type Step struct {
	SetWeight *int          `json:"setWeight,omitempty"`
	Pause     *PauseStep    `json:"pause,omitempty"`
	Analysis  *AnalysisStep `json:"analysis,omitempty"`
	Gate      *GateStep     `json:"gate,omitempty"`
}

// PauseStep waits for Duration, or for `aviary promote` when Duration is zero.
type PauseStep struct {
	Duration Duration `json:"duration,omitempty"`
}

// AnalysisStep runs the analysis until every check passes (and at least
// Duration has passed) or the run fails.
type AnalysisStep struct {
	Duration Duration `json:"duration,omitempty"`
}

// GateStep waits for a person's go-ahead: `aviary approve --gate NAME` or
// `aviary promote`.
type GateStep struct {
	Name string `json:"name"`
}

// Match selects requests that always go to the canary. All conditions of one
// Match must hold; any one Match of a list suffices.
type Match struct {
	Headers  map[string]StringMatch `json:"headers,omitempty"`
	Query    map[string]StringMatch `json:"query,omitempty"`
	Cookie   *CookieMatch           `json:"cookie,omitempty"`
	Users    *ListMatch             `json:"users,omitempty"`
	Segments *ListMatch             `json:"segments,omitempty"`
}

// StringMatch tests one value: exactly one of Exact, Regex or Present is set.
type StringMatch struct {
	Exact   string `json:"exact,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
}

// CookieMatch tests a cookie's value.
type CookieMatch struct {
	Name        string `json:"name"`
	StringMatch `json:",inline"`
}

// ListMatch sends a request to the canary when the value of a header (or
// cookie) is one of Values: a list of user ids, or of segment names.
type ListMatch struct {
	Header string   `json:"header,omitempty"`
	Cookie string   `json:"cookie,omitempty"`
	Values []string `json:"values"`
}

// Stickiness keeps clients on one version: with Cookie, the proxy sets a
// cookie naming the version a client got; with HashOn ("header/NAME" or
// "cookie/NAME"), the weighted choice is consistent on that key and monotone
// as the weight grows.
type Stickiness struct {
	Cookie string   `json:"cookie,omitempty"`
	MaxAge Duration `json:"maxAge,omitempty"`
	HashOn string   `json:"hashOn,omitempty"`
}

// Mirror copies Percent of stable requests to the canary and drops the replies.
type Mirror struct {
	Percent int `json:"percent"`
}

// Decision modes.
const (
	DecisionAuto   = "auto"
	DecisionManual = "manual"
	DecisionHybrid = "hybrid"
)

// Analysis is how canaries are judged.
type Analysis struct {
	// Interval is how often checks run.
	Interval Duration `json:"interval,omitempty"`
	// FailureLimit is how many failed checks are tolerated; one more rolls
	// the run back (or, in hybrid mode, pauses it for a person).
	FailureLimit int `json:"failureLimit,omitempty"`
	// ErrorLimit is how many consecutive intervals may end in a measurement
	// error before the run pauses for a person.
	ErrorLimit *int `json:"errorLimit,omitempty"`
	// Decision is auto, manual (every advance needs a promote) or hybrid (on
	// failure, pause for a person instead of rolling back).
	Decision string `json:"decision,omitempty"`
	// Metrics are the checks.
	Metrics []Metric `json:"metrics,omitempty"`
}

// Provider types.
const (
	ProviderBuiltin    = "builtin"
	ProviderPrometheus = "prometheus"
	ProviderWeb        = "web"
)

// Metric is one check: where its values come from and how they are judged.
type Metric struct {
	Name string `json:"name"`
	// Provider is the metrics source: builtin, prometheus or web.
	Provider string `json:"provider,omitempty"`
	// Query is the provider's query; for the built-in provider one of
	// error-rate, latency-p50, latency-p90, latency-p99, slow-rate or
	// request-rate (default: the metric's name).
	Query string `json:"query,omitempty"`
	// Criteria say how the values are judged.
	analysis.Criteria `json:",inline"`
	// Prometheus says where and how provider prometheus queries; Query
	// is then a PromQL template.
	Prometheus *PrometheusSource `json:"prometheus,omitempty"`
	// Web says where and how provider web asks; Query is then the selector
	// of the value in the JSON reply (a path such as $.data.value, or an
	// expression over body).
	Web *WebSource `json:"web,omitempty"`
}

// PrometheusSource is a Prometheus server and the templates' variables.
// Templates (Query, CountQuery) are Go text/template with the fields of
// TemplateData and Vars.
type PrometheusSource struct {
	// Address is the server's base URL, e.g. http://127.0.0.1:9090.
	Address string `json:"address"`
	// Auth authenticates to the server.
	Auth *HTTPAuth `json:"auth,omitempty"`
	// CountQuery, when set, is a query template giving the number of
	// requests (samples) behind the value: the measurement's Count.
	CountQuery string `json:"countQuery,omitempty"`
	// Vars are user variables of the templates: {{.name}}.
	Vars map[string]string `json:"vars,omitempty"`
}

// WebSource is an HTTP endpoint answering JSON.
type WebSource struct {
	// URL is a template of the http(s) URL asked.
	URL string `json:"url"`
	// Method is GET (default) or POST.
	Method string `json:"method,omitempty"`
	// Body is a template of the JSON sent with POST.
	Body string `json:"body,omitempty"`
	// Headers are sent with every request (not credentials: see Auth).
	Headers map[string]string `json:"headers,omitempty"`
	// Auth authenticates to the endpoint.
	Auth *HTTPAuth `json:"auth,omitempty"`
	// Count, when set, selects the sample size behind the value, like
	// the metric's query selects the value.
	Count string `json:"count,omitempty"`
	// Vars are user variables of the templates: {{.name}}.
	Vars map[string]string `json:"vars,omitempty"`
}

// HTTPAuth is a bearer token or basic auth credentials, each read from an
// environment variable reference ("${PROM_TOKEN}") or a file, never written
// in the spec; providers read them at every request and never log them.
type HTTPAuth struct {
	BearerToken     string     `json:"bearerToken,omitempty"`
	BearerTokenFile string     `json:"bearerTokenFile,omitempty"`
	BasicAuth       *BasicAuth `json:"basicAuth,omitempty"`
}

// BasicAuth is a user name and a password from the environment or a file.
type BasicAuth struct {
	Username     string `json:"username"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// TemplateFields are the names a provider's templates may use besides the
// metric's Vars, as filled in by TemplateData.
var TemplateFields = []string{"Rollout", "Version", "Role", "Interval", "Start", "End", "StartRFC3339", "EndRFC3339"}

// TemplateData is what a provider's templates see for a query: the
// rollout's name, the version and its role (stable or canary), the window's
// length as a Prometheus duration (30s, 1m, 1m30s), its start and end as
// Unix seconds (for PromQL's @ modifier) and as RFC 3339 text, and the
// user's vars.
func TemplateData(q Query, vars map[string]string) map[string]any {
	d := map[string]any{
		"Rollout":      q.Rollout,
		"Version":      q.Version,
		"Role":         q.Role,
		"Interval":     PromDuration(q.Interval()),
		"Start":        q.Start.Unix(),
		"End":          q.End.Unix(),
		"StartRFC3339": q.Start.UTC().Format(time.RFC3339),
		"EndRFC3339":   q.End.UTC().Format(time.RFC3339),
	}
	for k, v := range vars {
		d[k] = v
	}
	return d
}

// PromDuration writes d as a Prometheus duration: 30s, 1m, 1h30m, 1500ms
// (whole milliseconds; at least 1ms).
func PromDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		return "1ms"
	}
	if ms%1000 != 0 {
		return fmt.Sprintf("%dms", ms)
	}
	s := ms / 1000
	out := ""
	for _, u := range []struct {
		name string
		secs int64
	}{{"h", 3600}, {"m", 60}, {"s", 1}} {
		if n := s / u.secs; n > 0 {
			out += fmt.Sprintf("%d%s", n, u.name)
			s -= n * u.secs
		}
	}
	return out
}

// Webhook types.
const (
	HookConfirmRollout         = "confirm-rollout"
	HookPreRollout             = "pre-rollout"
	HookRollout                = "rollout"
	HookConfirmTrafficIncrease = "confirm-traffic-increase"
	HookConfirmPromotion       = "confirm-promotion"
	HookPostRollout            = "post-rollout"
	HookRollback               = "rollback"
	HookEvent                  = "event"
	HookLoad                   = "load"
)

// Webhook is an outside party the run talks to at given moments.
type Webhook struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// URL receives the call; a load hook has none (it sends requests to the
	// canary itself).
	URL     string   `json:"url,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
	// Secret signs each call with HMAC-SHA256: an environment variable
	// reference such as "${HOOK_SECRET}". SecretFile names a file holding it.
	Secret     string `json:"secret,omitempty"`
	SecretFile string `json:"secretFile,omitempty"`
	// Metadata is passed to the receiver with every call.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Load configures a load hook.
	Load *Load `json:"load,omitempty"`
}

// Load targets for a load hook.
const (
	LoadViaProxy      = "proxy"     // through the rollout's listen address, forced to the canary
	LoadToUpstreams   = "upstreams" // straight to the canary's upstreams
	DefaultLoadRPS    = 1.0
	MaxLoadRPS        = 100.0
	DefaultLoadPath   = "/"
	DefaultLoadMethod = "GET"
)

// Load sends a bounded rate of requests to the canary while it is under
// analysis, so that quiet services still produce evidence.
type Load struct {
	// RPS is requests per second (at most MaxLoadRPS).
	RPS float64 `json:"rps,omitempty"`
	// Method, Path and Headers shape each request.
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Target is "proxy" (default) or "upstreams".
	Target string `json:"target,omitempty"`
}

// Notification sends events to a chat or a generic webhook.
type Notification struct {
	Type string `json:"type"`
	// URL is the webhook address, or an environment variable reference such
	// as "${SLACK_WEBHOOK}"; URLFile names a file holding it instead.
	URL      string `json:"url,omitempty"`
	URLFile  string `json:"urlFile,omitempty"`
	Severity string `json:"severity,omitempty"`
}
