package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"aviary/web"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// The values the pages derive from the API (history.js, format.js), checked
// in the browser that runs them, on events shaped as the API sends them.
func TestDerivedValues(t *testing.T) {
	hs := httptest.NewServer(http.FileServerFS(web.FS()))
	t.Cleanup(hs.Close)
	b := startBrowser(t, 800, 600)
	// A page of the dashboard's origin that runs no script of its own (and
	// links no icon, so the browser asks for /favicon.ico).
	b.expect("favicon.ico")
	b.navigate(hs.URL + "/vendor/uplot/SOURCE.md")
	got := eval[string](b, `(async () => {
		const h = await import('/js/history.js');
		const f = await import('/js/format.js');
		const ev = (time, run, type, step, weight) => ({id: 0, rollout: 'web', time, run, type, severity: 'info', phase: '', weight, step, reason: type});
		const t = (s) => '2026-01-02T03:04:' + s + 'Z';
		// Run 2: started at :00, weight 20 at once, a pause, weight 60 at :20, then
		// waiting at step 4 of 4; run 1 ended earlier.
		const events = [
			ev(t('00'), 1, 'Started', 1, 0), ev(t('01'), 1, 'WeightChanged', 1, 50), ev(t('02'), 1, 'RolledBack', 1, 0),
			ev(t('10'), 2, 'Started', 1, 0), ev(t('10'), 2, 'WeightChanged', 1, 20),
			ev(t('15'), 2, 'Waiting', 2, 20), ev(t('18'), 2, 'StepCompleted', 2, 20),
			ev(t('20'), 2, 'WeightChanged', 3, 60),
		];
		const status = {run: 2, step: 4, steps: 4, phase: 'Progressing', canaryWeight: 60, runStartedAt: t('10')};
		const secs = (s) => Date.parse(t(s)) / 1000;
		const now = Date.parse(t('30'));
		const promoted = events.slice(3).concat([ev(t('40'), 2, 'Promoting', 4, 100), ev(t('41'), 2, 'Promoted', 4, 0)]);
		return JSON.stringify({
			stepStart: (h.stepStart(status, events) - Date.parse(t('00'))) / 1000,
			stepStartFirst: (h.stepStart({...status, step: 1}, events) - Date.parse(t('00'))) / 1000,
			stepStartNoRun: String(h.stepStart({run: 0, step: 0}, [])),
			stepStartServer: (h.stepStart({...status, stepStartedAt: t('25')}, events) - Date.parse(t('00'))) / 1000,
			stepEnds: [...h.stepEnds(events, 2)].map(([s, at]) => [s, (at - Date.parse(t('00'))) / 1000]),
			weights: h.weightSeries(events, status, 2, now).map((a, i) => i === 0 ? a.map((x) => x - secs('00')) : a),
			pastRun: h.weightSeries(events, status, 1, now).map((a, i) => i === 0 ? a.map((x) => x - secs('00')) : a),
			promoted: h.weightSeries(promoted, {...status, phase: 'Succeeded'}, 2, now)[1],
			noEvents: h.weightSeries([], status, 2, now)[1],
			values: [f.value(0.0123, f.UNIT_RATIO), f.value(0.2151, f.UNIT_SECONDS), f.value(1.5, f.UNIT_SECONDS),
				f.value(0, f.UNIT_SECONDS), f.value(42.5, f.UNIT_RATE), f.value(1234.5678, ''), f.value(null, '')],
			units: ['error-rate', 'latency-p99', 'request-rate', 'slow-rate', 'saturation'].map((n) => f.unitOf({name: n, provider: 'builtin', query: n}))
				.concat([f.unitOf({name: 'checkout-errors-ratio', provider: 'prometheus', query: 'sum(rate(x[1m]))'})]),
			durations: [f.duration(0), f.duration(45500), f.duration(192000), f.duration(7500000), f.duration(3 * 86400000 + 4 * 3600000)],
			steps: [{kind: 'setWeight', weight: 20}, {kind: 'pause'}, {kind: 'pause', duration: '2m'}, {kind: 'analysis', duration: '5m'}, {kind: 'gate', gate: 'qa'}].map(f.stepText),
		});
	})()`, chromedp.EvalAwaitPromise)
	var res map[string]any
	if err := json.Unmarshal([]byte(got), &res); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	want := map[string]any{
		"stepStart":       20.0, // step 4 began when step 3 (weight 60) ended
		"stepStartFirst":  10.0, // the run's start
		"stepStartNoRun":  "NaN",
		"stepStartServer": 25.0, // the server's stepStartedAt wins over the events
		"stepEnds":        []any{[]any{1.0, 10.0}, []any{2.0, 18.0}, []any{3.0, 20.0}},
		// The start and weight 20 at the same instant are one point; the
		// line reaches to now.
		"weights": []any{[]any{10.0, 20.0, 30.0}, []any{20.0, 60.0, 60.0}},
		// An ended run stops at its rollback.
		"pastRun":  []any{[]any{0.0, 1.0, 2.0}, []any{0.0, 50.0, 0.0}},
		"promoted": []any{20.0, 60.0, 100.0, 100.0},
		// Without events, an active run still starts at 0 and shows its weight now.
		"noEvents":  []any{0.0, 60.0},
		"values":    []any{"1.23%", "215 ms", "1.50 s", "0", "42.5/s", "1,235", "–"},
		"units":     []any{"ratio", "seconds", "rate", "ratio", "", "ratio"},
		"durations": []any{"0s", "45s", "3m 12s", "2h 5m", "3d 4h"},
		"steps":     []any{"set weight 20%", "pause for promote", "pause 2m", "analysis (at least 5m)", "gate qa"},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("derived values (-want +got):\n%s", diff)
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("the page reported errors: %v", p)
	}
}
