package web_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
	"aviary/internal/server/servertest"
	"aviary/web"
	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the dashboard's screenshots to docs/")

// The browser tests run a real server (the real controller over the real
// SQLite store, on the wall clock) with the embedded dashboard, release a
// canary, and drive the pages in headless Chromium while the run moves on
// its own.

// webManifest is the rollout the tests watch: its weight climbs 10, 30, 50
// with three-second pauses, then it waits at 50% for a person. The
// analysis runs every second.
const webManifest = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  version: %s
  upstreams: ["http://127.0.0.1:9001"]
  traffic:
    listen: "127.0.0.1:18080"
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {duration: 3s}
        - setWeight: 30
        - pause: {duration: 3s}
        - setWeight: 50
        - pause: {}
      mirror: {percent: 10}
  analysis:
    interval: 1s
    failureLimit: 2
    metrics:
      - name: error-rate
        compare: baseline
        maxIncrease: 1%%
      - name: latency-p99
        max: 0.5
`

// otherManifest is a rollout that waits for promote at its first step.
const otherManifest = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: %s
spec:
  version: %s
  upstreams: ["http://127.0.0.1:9001"]
  traffic:
    listen: "127.0.0.1:%d"
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
        - setWeight: 60
  analysis:
    interval: 30s
    metrics:
      - name: error-rate
        max: 0.05
`

// measure is the fake provider: steady, slightly noisy values, the canary a
// little worse than stable (within the spec's tolerances).
func measure(q rollout.Query) analysis.Measurement {
	x := float64(q.End.UnixMilli()) / 1000
	canary := q.Role == rollout.RoleCanary
	wobble := 0.5 + 0.25*math.Sin(x/2.3) + 0.25*math.Sin(x/0.7+1)
	var v float64
	switch q.Metric.Name {
	case "latency-p99":
		v = 0.180 + 0.040*wobble
		if canary {
			v += 0.025
		}
	default: // error-rate
		v = 0.008 + 0.004*wobble
		if canary {
			v += 0.003
		}
	}
	n := int64(1800 + 400*wobble)
	if canary {
		n /= 3
	}
	if q.Shadow { // a tenth of the canary's live requests
		n = int64(180 + 40*wobble)
		n /= 3
	}
	return analysis.Measurement{Start: q.Start, End: q.End, Value: v, HasValue: true, Count: n,
		Requests: n, Errors: int64(float64(n) * v)}
}

// api calls the server's API and decodes the answer into out (when not
// nil), failing the test unless the status is want.
func api(t *testing.T, base, method, path, body string, token bool, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+servertest.Token)
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	// A connection per call: the test drops the server's connections.
	client := &http.Client{Timeout: actionTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("%s %s: got status %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// status is the part of the API's status view the tests read.
type status struct {
	Name         string `json:"name"`
	Phase        string `json:"phase"`
	CanaryWeight int    `json:"canaryWeight"`
	Step         int    `json:"step"`
	Message      string `json:"message"`
}

func getStatus(t *testing.T, base, name string) status {
	t.Helper()
	var st status
	api(t, base, "GET", "/api/v1/rollouts/"+name, "", false, http.StatusOK, &st)
	return st
}

// dashboardServer starts the API with the dashboard on the wall clock,
// behind an httptest server that counts the event streams opened and can
// drop every connection.
type dashboardServer struct {
	env     *servertest.Env
	hs      *httptest.Server
	URL     string
	watches atomic.Int64
}

func startDashboard(t *testing.T) *dashboardServer {
	t.Helper()
	env := servertest.Start(t, servertest.Options{RealClock: true, Dashboard: web.FS(), Heartbeat: time.Second})
	env.Provider.SetFunc(measure)
	d := &dashboardServer{env: env}
	d.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/watch" {
			d.watches.Add(1)
		}
		env.Server.ServeHTTP(w, r)
	}))
	d.URL = d.hs.URL
	t.Cleanup(func() {
		env.Server.Close() // ends the event streams, which would hold hs.Close
		d.hs.CloseClientConnections()
		d.hs.Close()
	})
	return d
}

// chartData reads what the chart in the element sel draws: uPlot's data
// arrays ([xs, series…]).
func chartData(b *browser, sel string) [][]*float64 {
	return eval[[][]*float64](b, fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		return el && el.aviaryChart ? el.aviaryChart.uplot.data.map((s) => Array.from(s, (v) => v ?? null)) : [];
	})()`, sel))
}

// weights is the weight series the chart draws (nil when there is no
// chart or no point).
func weights(b *browser) []float64 {
	data := chartData(b, `[data-chart="weight"]`)
	if len(data) < 2 {
		return nil
	}
	var out []float64
	for _, v := range data[1] {
		if v != nil {
			out = append(out, *v)
		}
	}
	return out
}

func TestDashboardFollowsALiveRun(t *testing.T) {
	d := startDashboard(t)
	// The rollouts of the overview, one in each phase.
	api(t, d.URL, "POST", "/api/v1/rollouts", fmt.Sprintf(webManifest, "v1"), true, http.StatusOK, nil)
	for i, name := range []string{"api", "billing", "checkout", "search"} {
		api(t, d.URL, "POST", "/api/v1/rollouts", fmt.Sprintf(otherManifest, name, "v1", 18081+i), true, http.StatusOK, nil)
		if name != "search" {
			api(t, d.URL, "POST", "/api/v1/rollouts", fmt.Sprintf(otherManifest, name, "v2", 18081+i), true, http.StatusOK, nil)
		}
	}
	api(t, d.URL, "POST", "/api/v1/rollouts/api/promote", `{"full": true}`, true, http.StatusOK, nil)
	api(t, d.URL, "POST", "/api/v1/rollouts/billing/pause", `{"reason": "waiting for the load test"}`, true, http.StatusOK, nil)
	api(t, d.URL, "POST", "/api/v1/rollouts/checkout/abort", `{"reason": "p99 latency doubled in eu-west"}`, true, http.StatusOK, nil)
	servertest.WaitFor(t, "api to be promoted", func() bool { return d.env.Phase("api") == rollout.PhaseSucceeded })

	b := startBrowser(t, 1280, 800)

	// The overview lists every rollout, with its phase.
	b.navigate(d.URL + "/#/")
	b.waitFor("the overview to list 5 rollouts", `document.querySelectorAll('table.rollouts tbody tr').length === 5`)
	want := map[string]string{"api": "Succeeded", "billing": "Paused", "checkout": "Failed", "search": "Initialized", "web": "Initialized"}
	for name, phase := range want {
		b.waitFor(name+" to show as "+phase, fmt.Sprintf(
			`document.querySelector('tr[data-name=%q] .badge')?.textContent === %q`, name, phase))
	}
	// The phase filter keeps only the failed rollout, and says so in the
	// address (not a new history entry).
	b.click(`.chip[data-phase="Failed"]`)
	b.waitFor("the filter to show checkout only", `(() => {
		const rows = [...document.querySelectorAll('table.rollouts tbody tr')].map((r) => r.dataset.name);
		return rows.length === 1 && rows[0] === 'checkout' && location.hash === '#/?phase=Failed';
	})()`)
	if got := eval[string](b, `document.querySelector('tr[data-name="checkout"] .message').textContent`); !strings.Contains(got, "p99 latency doubled in eu-west") {
		t.Errorf("checkout's last decision: got %q, want the abort's reason", got)
	}
	b.click(`.chip[data-phase="all"]`)
	b.waitFor("the filter to show all again", `document.querySelectorAll('table.rollouts tbody tr').length === 5`)

	// The rollout page of web, before its first run, without a token: every
	// operation is disabled.
	b.click(`tr[data-name="web"] a`)
	b.waitFor("the rollout page", `location.hash === '#/rollouts/web' && document.querySelector('.rollout-head h1')?.textContent === 'web'`)
	b.waitFor("the action buttons", `document.querySelectorAll('[data-action]').length === 8`)
	assertButtons(t, b, nil)
	if got := eval[string](b, `document.querySelector('.actions-hint').textContent`); !strings.Contains(got, "Read-only") {
		t.Errorf("the actions' hint without a token: got %q, want it to say the page is read-only", got)
	}
	if w := weights(b); len(w) != 0 {
		t.Fatalf("before the first run, the weight chart draws %v, want nothing", w)
	}

	// Release v2: the weight chart grows as the run advances.
	api(t, d.URL, "POST", "/api/v1/rollouts/web/release", `{"version": "v2", "upstreams": ["http://127.0.0.1:9002"]}`, true, http.StatusOK, nil)
	var seen []float64 // the chart's largest weight, each time it changed
	deadline := time.Now().Add(waitTimeout)
	for {
		w := weights(b)
		if len(w) > 0 && (len(seen) == 0 || slices.Max(w) != seen[len(seen)-1]) {
			seen = append(seen, slices.Max(w))
		}
		if len(w) > 0 && w[len(w)-1] == 50 {
			if !slices.Equal(dedupe(w), []float64{10, 30, 50}) {
				t.Fatalf("the weight chart draws %v, want the steps 10, 30, 50", w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the weight chart to reach 50%% (it drew %v; maxima seen %v)%s", w, seen, b.pageText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 2 || !slices.IsSorted(seen) {
		t.Fatalf("the weight chart's maximum went %v: want it to grow while the page watched (at least two values, rising)", seen)
	}
	b.waitFor("the timeline to mark step 6 as the current one", `(() => {
		const cur = document.querySelectorAll('.timeline li[aria-current="step"]');
		return cur.length === 1 && cur[0].querySelector('.step-num').textContent === '6' &&
			cur[0].textContent.includes('waiting for promote') &&
			document.querySelectorAll('.timeline li[data-state="done"]').length === 5;
	})()`)

	// The metric charts: canary and stable per interval, and the
	// thresholds of the spec.
	b.waitFor("three intervals in each metric chart", `['error-rate', 'latency-p99'].every((m) =>
		Number(document.querySelector('.metric-card[data-metric="' + m + '"]')?.dataset.points) >= 3)`)
	checkMetricChart(t, b, "error-rate", 4) // canary, stable, tolerance
	latency := checkMetricChart(t, b, "latency-p99", 4)
	for i, v := range latency[3] {
		if v == nil || *v != 0.5 {
			t.Fatalf("latency-p99's threshold line at point %d: got %v, want 0.5 (the spec's max)", i, v)
		}
	}
	b.waitFor("the checks with values, samples and verdicts", `(() => {
		const rows = [...document.querySelectorAll('table.checks:not([data-table="shadow"]) tbody tr')];
		return rows.length === 2 && rows.every((r) => r.querySelector('.badge')?.textContent === 'Pass' &&
			/n = [0-9,]+/.test(r.textContent) && r.querySelector('.reason').textContent.length > 0);
	})()`)
	if got := eval[string](b, `document.querySelector('#shadow-title')?.parentElement.textContent || ''`); !strings.Contains(got, "10% of the requests") {
		t.Errorf("the shadow traffic card: got %q, want it to tell that 10%% of requests are mirrored", got)
	}
	// The shadow results: each metric's check of the mirrored requests,
	// with their own sample size (a tenth of the canary's live requests).
	b.waitFor("the shadow results of both metrics", `(() => {
		const rows = [...document.querySelectorAll('table[data-table="shadow"] tbody tr')];
		return rows.length === 2 && rows.every((r) => ['Pass', 'Fail', 'Inconclusive'].includes(r.querySelector('.badge')?.textContent) &&
			/n = [0-9,]+/.test(r.textContent) && r.querySelector('.reason').textContent.length > 0);
	})()`)
	if got := eval[string](b, `document.querySelector('table[data-table="shadow"] tr[data-metric="error-rate"] td[data-label="Canary (mirrored)"] .small').textContent`); !regexp.MustCompile(`^n = (6[0-9]|7[0-3])$`).MatchString(got) {
		t.Errorf("the shadow error-rate row: got %q, want the mirrored sample size (60-73)", got)
	}
	b.waitFor("the run in the runs table", `document.querySelector('table.runs tr[data-run="1"]')?.textContent.includes('running')`)
	b.waitFor("the events of the run", `[...document.querySelectorAll('table.events tr[data-type="WeightChanged"]')].length === 3`)
	if *updateScreenshots {
		// A few more intervals make the charts worth looking at.
		b.waitFor("ten intervals", `Number(document.querySelector('.metric-card[data-metric="error-rate"]').dataset.points) >= 10`)
		b.scrollTop()
		b.screenshot(filepath.Join("..", "docs", "dashboard-rollout.png"))
		b.fullScreenshot(filepath.Join("..", "docs", "dashboard-rollout-full.png"))
	}

	// The overview shows web's run: weight, step, time in step.
	b.navigate(d.URL + "/#/")
	b.waitFor("web's row to show the run", `(() => {
		const row = document.querySelector('tr[data-name="web"]');
		return row && row.dataset.phase === 'Progressing' && row.querySelector('.weight-num').textContent === '50%' &&
			row.querySelector('[data-label="Canary"]').textContent === 'v2' &&
			row.querySelector('[data-label="Step"]').textContent.startsWith('6/6') &&
			/^[0-9]+s$/.test(row.querySelector('.in-step').textContent);
	})()`)
	if *updateScreenshots {
		b.screenshot(filepath.Join("..", "docs", "dashboard-overview.png"))
	}

	// Drop every connection: the page reconnects to the event stream and
	// shows what changed meanwhile.
	before := d.watches.Load()
	b.expect("api/v1/watch") // the dropped stream may be reported
	d.hs.CloseClientConnections()
	api(t, d.URL, "POST", "/api/v1/rollouts/web/pause", `{"reason": "after the drop"}`, true, http.StatusOK, nil)
	b.waitFor("the overview to show web paused after the reconnection",
		`document.querySelector('tr[data-name="web"]')?.dataset.phase === 'Paused' && document.querySelector('#conn').dataset.state === 'live'`)
	if got := d.watches.Load(); got <= before {
		t.Fatalf("event streams opened: %d before dropping the connections, %d after; want a new one", before, got)
	}
	api(t, d.URL, "POST", "/api/v1/rollouts/web/resume", "", true, http.StatusOK, nil)
	b.waitFor("web to progress again", `document.querySelector('tr[data-name="web"]')?.dataset.phase === 'Progressing'`)

	// A wrong token: the operation fails with the API's message.
	b.navigate(d.URL + "/#/rollouts/web")
	b.waitFor("the rollout page", `document.querySelector('.rollout-head .badge')?.textContent === 'Progressing'`)
	enterToken(b, "not-the-token", "")
	b.waitFor("the buttons to follow the token", `!document.querySelector('[data-action="pause"]').disabled`)
	b.expect("401")
	b.click(`[data-action="pause"]`)
	b.waitFor("the confirmation", `document.querySelector('#confirm-dialog').open`)
	b.click(`#confirm-ok`)
	b.waitFor("the API's error in the dialog", `document.querySelector('#confirm-error').textContent.includes('the API token is wrong')`)
	b.click(`#confirm-cancel`)
	if st := getStatus(t, d.URL, "web"); st.Phase != "Progressing" {
		t.Fatalf("after a refused pause, web is %s, want Progressing", st.Phase)
	}

	// The right token enables what the run allows.
	enterToken(b, servertest.Token, "alice")
	assertButtons(t, b, []string{"promote", "promote-full", "approve", "pause", "abort"})
	if got := eval[string](b, `location.href + ' ' + document.title`); strings.Contains(got, servertest.Token) {
		t.Fatalf("the token shows in the address or title: %s", got)
	}
	if got := eval[string](b, `sessionStorage.getItem('aviary.token') + ' ' + (localStorage.getItem('aviary.token') ?? '')`); got != servertest.Token+" " {
		t.Fatalf("storage holds %q, want the token in sessionStorage only", got)
	}

	// Abort, with a reason that would be markup if the page parsed it.
	evil := `<img src=x onerror="window.pwned=1">`
	b.click(`[data-action="abort"]`)
	b.waitFor("the confirmation", `document.querySelector('#confirm-dialog').open && document.querySelector('#confirm-title').textContent === 'Abort web?'`)
	b.typeInto(`#confirm-reason`, evil)
	b.click(`#confirm-ok`)
	b.waitFor("the page to show the rollback", `document.querySelector('.rollout-head .badge')?.textContent === 'Failed' &&
		!document.querySelector('#confirm-dialog').open`)
	st := getStatus(t, d.URL, "web")
	if st.Phase != "Failed" || st.CanaryWeight != 0 || !strings.Contains(st.Message, "aborted by alice") {
		t.Fatalf("after Abort, the API says web is %+v, want Failed at weight 0, aborted by alice", st)
	}
	if route, ok := d.env.Router.Route("web"); !ok || route.Weight != 0 {
		t.Fatalf("after Abort, the router serves %+v, want weight 0", route)
	}
	b.waitFor("the reason shown as text", fmt.Sprintf(`document.querySelector('[data-field="message"]').textContent.includes(%q) &&
		document.querySelector('table.events tr[data-type="RolledBack"] .reason')?.textContent.includes(%q)`, evil, evil))
	if n := eval[int](b, `document.querySelectorAll('main img').length + (window.pwned ? 1000 : 0)`); n != 0 {
		t.Fatalf("the reason became markup: %d img elements or a script ran", n)
	}
	if w := weights(b); len(w) == 0 || w[len(w)-1] != 0 {
		t.Fatalf("after Abort, the weight chart ends at %v, want 0", w)
	}
	assertButtons(t, b, []string{"retry"})

	// The token is nowhere but in the Authorization header.
	if strings.Contains(d.env.Logs.String(), servertest.Token) {
		t.Fatal("the server's request log holds the token")
	}
	if strings.Contains(b.console(), servertest.Token) {
		t.Fatal("the browser's console holds the token")
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("the pages reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// dedupe drops repeated neighbours: [0 10 10 30] is [0 10 30].
func dedupe(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// checkMetricChart checks that a metric's chart draws series series (and
// the x values), all of the same length, with canary and stable values at
// every point, and returns its data.
func checkMetricChart(t *testing.T, b *browser, metric string, series int) [][]*float64 {
	t.Helper()
	data := chartData(b, fmt.Sprintf(`[data-chart="metric:%s"]`, metric))
	if len(data) != series {
		t.Fatalf("%s's chart has %d arrays, want %d (x, canary, stable, threshold)", metric, len(data), series)
	}
	for i, s := range data {
		if len(s) != len(data[0]) || len(s) < 3 {
			t.Fatalf("%s's chart: array %d has %d values, x has %d; want the same, at least 3", metric, i, len(s), len(data[0]))
		}
	}
	for i := range data[0] {
		c, s := data[1][i], data[2][i]
		if c == nil || s == nil || *c <= 0 || *s <= 0 {
			t.Fatalf("%s's chart at point %d: canary %v, stable %v; want both measured", metric, i, c, s)
		}
	}
	return data
}

// assertButtons checks that exactly the operations enabled are enabled.
func assertButtons(t *testing.T, b *browser, enabled []string) {
	t.Helper()
	want := strings.Join(enabled, ",")
	expr := fmt.Sprintf(`[...document.querySelectorAll('[data-action]')].filter((b) => !b.disabled).map((b) => b.dataset.action).join(',') === %q`, want)
	b.waitFor("the enabled operations to be ["+want+"]", expr)
}

// enterToken types a token (and a name) into the token dialog.
func enterToken(b *browser, token, user string) {
	b.t.Helper()
	b.click(`#token-button`)
	b.waitFor("the token dialog", `document.querySelector('#token-dialog').open`)
	b.typeInto(`#token-input`, token)
	b.do("clear the name", chromedp.Evaluate[chromedp.Void](`document.querySelector('#user-input').value = ''`))
	if user != "" {
		b.typeInto(`#user-input`, user)
	}
	b.click(`#token-save`)
	b.waitFor("the token dialog to close", `!document.querySelector('#token-dialog').open`)
}

func TestDashboardOnAPhoneAndInTheDark(t *testing.T) {
	d := startDashboard(t)
	api(t, d.URL, "POST", "/api/v1/rollouts", fmt.Sprintf(webManifest, "v1"), true, http.StatusOK, nil)
	api(t, d.URL, "POST", "/api/v1/rollouts", fmt.Sprintf(webManifest, "v2"), true, http.StatusOK, nil)
	servertest.WaitFor(t, "web to reach 50%", func() bool { return getStatus(t, d.URL, "web").CanaryWeight == 50 })

	// A phone, 390 pixels wide: no sideways scrolling, tables as cards.
	b := startBrowser(t, 390, 844)
	b.viewport(390, 844, true)
	noOverflow := `document.documentElement.scrollWidth <= window.innerWidth`
	b.navigate(d.URL + "/#/")
	b.waitFor("web's card", `document.querySelector('tr[data-name="web"]')?.dataset.phase === 'Progressing'`)
	if got := eval[string](b, `getComputedStyle(document.querySelector('tr[data-name="web"]')).display`); got != "grid" {
		t.Errorf("at phone width the overview's rows display as %q, want grid (cards)", got)
	}
	b.waitFor("the overview to fit the phone's width", noOverflow)
	if *updateScreenshots {
		b.screenshot(filepath.Join("..", "docs", "dashboard-overview-phone.png"))
	}
	b.navigate(d.URL + "/#/rollouts/web")
	b.waitFor("three intervals in the charts", `Number(document.querySelector('.metric-card[data-metric="error-rate"]')?.dataset.points) >= 3`)
	b.waitFor("the rollout page to fit the phone's width", noOverflow+` &&
		[...document.querySelectorAll('.chart canvas')].every((c) => c.getBoundingClientRect().right <= window.innerWidth)`)
	if *updateScreenshots {
		b.screenshot(filepath.Join("..", "docs", "dashboard-rollout-phone.png"))
	}

	// Dark mode, at 1280x800: the colours follow, and the charts redraw.
	b.viewport(1280, 800, false)
	b.do("remember the weight chart", chromedp.Evaluate[chromedp.Void](
		`window.lightChart = document.querySelector('[data-chart="weight"]').aviaryChart.uplot`))
	light := eval[string](b, `getComputedStyle(document.body).backgroundColor`)
	b.colorScheme("dark")
	b.waitFor("the dark colours", fmt.Sprintf(`getComputedStyle(document.body).backgroundColor !== %q`, light))
	if got := eval[string](b, `getComputedStyle(document.body).backgroundColor + ' ' + getComputedStyle(document.body).color`); got != "rgb(14, 17, 22) rgb(230, 233, 238)" {
		t.Errorf("in dark mode the page's background and text are %s, want rgb(14, 17, 22) rgb(230, 233, 238)", got)
	}
	b.waitFor("the charts to redraw in the dark colours",
		`document.querySelector('[data-chart="weight"]').aviaryChart.uplot !== window.lightChart`)
	if *updateScreenshots {
		b.waitFor("ten intervals", `Number(document.querySelector('.metric-card[data-metric="error-rate"]').dataset.points) >= 10`)
		b.scrollTop()
		b.screenshot(filepath.Join("..", "docs", "dashboard-rollout-dark.png"))
	}

	// Deleted while the page shows it: the page says so.
	api(t, d.URL, "DELETE", "/api/v1/rollouts/web", "", true, http.StatusOK, nil)
	b.waitFor("the page to tell of the deletion", `document.querySelector('.notice:not([hidden])')?.textContent === 'The rollout web was deleted.'`)

	// An unknown rollout.
	b.expect("404") // the event stream and the read of the rollout
	b.navigate(d.URL + "/#/rollouts/nope")
	b.waitFor("the page to say there is no such rollout", `document.querySelector('.rollout-head')?.textContent === 'No rollout is named nope.' &&
		[...document.querySelectorAll('[data-action]')].every((b) => b.disabled)`)
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("the pages reported errors:\n%s", strings.Join(p, "\n"))
	}
}
