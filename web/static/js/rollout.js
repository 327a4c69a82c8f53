// rollout.js is one rollout's page: its state and operations, the steps as
// a timeline, the canary's weight over time, canary against stable for each
// metric with the spec's thresholds, the checks, shadow traffic, past runs
// and events. The event stream keeps it current.

import {APIError, get, rolloutPath, watch} from './api.js';
import {ActionBar} from './actions.js';
import {Chart} from './charts.js';
import {badge, h, replace, setText} from './dom.js';
import {
  UNIT_SECONDS, ago, clock, clockShort, count, duration, num, pValue, stepText, time, unitOf, value, waitingText,
} from './format.js';
import {EventLog, stepEnds, stepStart, weightSeries} from './history.js';
import {setConnection} from './ui.js';

const ACTIVE = new Set(['Progressing', 'Paused', 'Promoting']);
const EVENTS_SHOWN = 50;

// rolloutPage renders rollout name into main and returns {dispose}.
export function rolloutPage(main, name) {
  const s = {
    status: null,
    spec: null,
    revision: -1,
    runs: [],
    log: new EventLog(name),
    eventsLoaded: false,
    selectedRun: 0, // 0: follow the current run
    points: [],
    pointsRun: 0,
    deleted: false,
    allEvents: false,
  };
  const charts = new Map(); // metric name -> {chart, card, strip, criteria}

  const actions = new ActionBar((next) => update(next, []));
  const el = {
    notice: h('div', {class: 'notice', hidden: true, role: 'alert'}),
    readNotice: h('div', {class: 'notice', hidden: true, role: 'alert'}),
    head: h('section', {class: 'rollout-head'}),
    timeline: h('ol', {class: 'timeline'}),
    weightNow: h('span', {class: 'muted'}),
    weightChart: h('div', {class: 'chart', 'data-chart': 'weight'}),
    runSelect: h('select', {'aria-label': 'run shown in the charts and checks'}),
    metrics: h('div', {class: 'metrics'}),
    checks: h('div', {class: 'table-wrap'}),
    shadow: h('section', {class: 'card', hidden: true, 'aria-labelledby': 'shadow-title'}),
    runs: h('div', {class: 'table-wrap'}),
    events: h('div', {class: 'table-wrap'}),
  };
  el.runSelect.addEventListener('change', () => {
    s.selectedRun = Number(el.runSelect.value);
    loadPoints();
    schedule();
  });

  replace(main,
    h('nav', {class: 'crumbs'}, h('a', {href: '#/'}, 'Rollouts'), ' / ', h('span', {}, name)),
    el.notice,
    el.readNotice,
    el.head,
    actions.el,
    h('div', {class: 'grid-2'},
      h('section', {class: 'card', 'aria-labelledby': 'steps-title'}, h('h2', {id: 'steps-title'}, 'Steps'), el.timeline),
      h('section', {class: 'card', 'aria-labelledby': 'weight-title'},
        h('div', {class: 'card-head'}, h('h2', {id: 'weight-title'}, 'Canary weight'), el.weightNow,
          h('span', {class: 'grow'}), h('label', {class: 'run-select'}, 'Run ', el.runSelect)),
        el.weightChart)),
    h('section', {class: 'card', 'aria-labelledby': 'metrics-title'},
      h('h2', {id: 'metrics-title'}, 'Canary against stable'), el.metrics),
    h('section', {class: 'card', 'aria-labelledby': 'checks-title'}, h('h2', {id: 'checks-title'}, 'Checks'), el.checks),
    el.shadow,
    h('section', {class: 'card', 'aria-labelledby': 'runs-title'}, h('h2', {id: 'runs-title'}, 'Runs'), el.runs),
    h('section', {class: 'card', 'aria-labelledby': 'events-title'}, h('h2', {id: 'events-title'}, 'Events'), el.events));
  replace(el.head, h('p', {class: 'empty'}, 'Loading…'));
  document.title = `aviary · ${name}`;

  const weightChart = new Chart(el.weightChart, {
    series: [{label: 'canary weight', role: 'weight', stepped: true, fill: true}],
    format: (v) => `${Math.round(v)}%`,
    yRange: [0, 100],
    height: 250,
    empty: 'No run yet: the weight shows here once a canary is released.',
  });

  const shownRun = () => s.selectedRun || (s.status ? s.status.run : 0);

  // Reads. A read that fails is named in a notice until it succeeds.
  const failures = new Map();
  function fail(what, err) {
    if (err && err.name === 'AbortError') return;
    failures.set(what, err.message || String(err));
    showFailures();
  }
  function done(what) {
    if (failures.delete(what)) showFailures();
  }
  function showFailures() {
    el.readNotice.hidden = failures.size === 0;
    setText(el.readNotice, [...failures].map(([what, msg]) => `Could not read ${what}: ${msg}.`).join(' '));
  }
  function showNotice(text) {
    setText(el.notice, text);
    el.notice.hidden = false;
  }
  async function loadSpec() {
    const rev = s.status.revision;
    try {
      const r = await get(rolloutPath(name, 'revisions'));
      const last = r.revisions[r.revisions.length - 1];
      s.spec = last ? last.manifest.spec : null;
      s.revision = rev;
      done('the spec');
      schedule();
    } catch (err) {
      fail('the spec', err);
    }
  }
  async function loadRuns() {
    try {
      s.runs = (await get(rolloutPath(name, 'runs'))).runs;
      done('the runs');
      schedule();
    } catch (err) {
      fail('the runs', err);
    }
  }
  async function loadEvents() {
    try {
      await s.log.load();
      s.eventsLoaded = true;
      done('the events');
      schedule();
    } catch (err) {
      fail('the events', err);
    }
  }
  let pointsTimer = 0;
  let pointsSeq = 0;
  function loadPointsSoon() {
    if (!pointsTimer) pointsTimer = setTimeout(() => { pointsTimer = 0; loadPoints(); }, 500);
  }
  async function loadPoints() {
    const run = shownRun();
    const seq = ++pointsSeq;
    if (!run) {
      s.points = [];
      s.pointsRun = 0;
      schedule();
      return;
    }
    try {
      const m = await get(rolloutPath(name, 'runs', String(run), 'measurements'));
      if (seq !== pointsSeq) return; // a newer read was asked for
      s.points = m.points;
      s.pointsRun = run;
      done('the measurements');
      schedule();
    } catch (err) {
      fail('the measurements', err);
    }
  }

  function reloadAll() {
    loadSpec();
    loadRuns();
    loadEvents();
    loadPoints();
    schedule();
  }

  // update takes a new status (from the stream or an operation's answer).
  function update(st, events) {
    const prev = s.status;
    if (prev && Date.parse(st.updatedAt) < Date.parse(prev.updatedAt)) return; // older than what we show
    s.status = st;
    s.log.add(events);
    if (!prev) return; // the first status: synced() reads the rest
    if (st.revision !== s.revision) loadSpec();
    if (st.run !== prev.run || st.phase !== prev.phase) loadRuns();
    if (!s.selectedRun || s.selectedRun === st.run) loadPointsSoon();
    schedule();
  }

  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
  }

  function render() {
    const st = s.status;
    if (!st) return;
    actions.update(st);
    renderHead(st);
    renderTimeline(st);
    renderRunSelect(st);
    renderWeight();
    renderMetrics();
    renderChecks(st);
    renderShadow(st);
    renderRuns();
    renderEvents();
  }

  const live = {}; // texts that change with the time
  function renderHead(st) {
    const facts = [
      ['Stable', st.stableVersion || '–'],
      ['Canary', st.canaryVersion ? (ACTIVE.has(st.phase) ? st.canaryVersion : `${st.canaryVersion} (${st.phase === 'Succeeded' ? 'promoted' : st.phase === 'Failed' ? 'rolled back' : 'last run'})`) : '–'],
      ['Weight', `${st.canaryWeight}%`],
      ['Step', st.run ? `${st.step}/${st.steps} · ${stepText(st.plan[st.step - 1])}` : '–'],
      ['In step', live.inStep = h('span', {'data-field': 'in-step'})],
      ['Run', st.run ? [`${st.run} · started `, live.runAgo = h('span', {}), ''] : 'none yet'],
      ['Failed checks', `${st.failures} of ${st.failureLimit} tolerated`],
      ['Decision', st.decision],
    ];
    if (st.waiting) facts.push(['Waiting', `${waitingText(st.waiting)} since ${clockShort(time(st.waiting.since))}`]);
    if (st.pause) facts.push(['Paused', `${st.pause.cause}: ${st.pause.reason}`]);
    if (st.rollbackUntil) facts.push(['Rollback', `to ${st.previousVersion} possible until ${clock(time(st.rollbackUntil))}`]);
    if (s.spec) facts.push(['Analysis', `every ${s.spec.analysis.interval || '–'}, ${s.spec.analysis.metrics ? s.spec.analysis.metrics.length : 0} metric(s)`]);
    replace(el.head,
      h('div', {class: 'title-row'}, h('h1', {}, name), badge(st.phase, st.phase)),
      h('p', {class: 'message', 'data-field': 'message'}, st.message || ''),
      h('dl', {class: 'facts'}, facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))));
    tick();
  }

  function renderTimeline(st) {
    const ends = stepEnds(s.log.all(), st.run);
    const known = s.eventsLoaded;
    const items = st.plan.map((step, i) => {
      const n = i + 1;
      const endedAt = ends.get(n);
      let state = 'pending';
      let note = '';
      if (st.run === 0) {
        state = 'pending';
      } else if (Number.isFinite(endedAt) || (!known && n < st.step) || (st.phase === 'Promoting' && n <= st.step)) {
        state = 'done';
        note = Number.isFinite(endedAt) ? `done ${clockShort(endedAt)}` : 'done';
      } else if (n === st.step && ACTIVE.has(st.phase)) {
        state = 'current';
        note = st.waiting ? waitingText(st.waiting) : st.phase === 'Paused' ? 'paused' : 'in progress';
      } else if (n === st.step && st.phase === 'Failed') {
        state = 'stopped';
        note = 'rolled back here';
      } else if (st.phase === 'Succeeded' || st.phase === 'Promoting') {
        state = 'skipped';
        note = 'skipped (promoted fully)';
      }
      return h('li', {'data-state': state, 'aria-current': state === 'current' ? 'step' : false},
        h('span', {class: 'step-num'}, String(n)),
        h('div', {class: 'step-text'}, h('span', {class: 'step-name'}, stepText(step)), note ? h('span', {class: 'muted small step-note'}, note) : null));
    });
    let promo = 'pending';
    if (st.phase === 'Promoting') promo = 'current';
    else if (st.phase === 'Succeeded' && st.run) promo = 'done';
    else if (st.phase === 'Failed') promo = 'not-reached';
    items.push(h('li', {'data-state': promo, 'aria-current': promo === 'current' ? 'step' : false},
      h('span', {class: 'step-num'}, '✓'),
      h('div', {class: 'step-text'}, h('span', {class: 'step-name'}, 'promote to 100%'),
        promo === 'current' ? h('span', {class: 'muted small step-note'}, 'in progress') : null)));
    replace(el.timeline, items);
  }

  function renderRunSelect(st) {
    const runs = new Map(s.runs.map((r) => [r.run, r]));
    if (st.run && !runs.has(st.run)) runs.set(st.run, {run: st.run, version: st.canaryVersion, outcome: ''});
    const want = [...runs.values()].sort((a, b) => b.run - a.run);
    const sig = want.map((r) => `${r.run}:${r.outcome}`).join(',') + `|${s.selectedRun}`;
    if (el.runSelect.dataset.sig === sig) return;
    el.runSelect.dataset.sig = sig;
    el.runSelect.replaceChildren(
      h('option', {value: '0'}, st.run ? `current (${st.run})` : 'none'),
      ...want.map((r) => h('option', {value: String(r.run)}, `${r.run} · ${r.version}${r.outcome ? ` · ${r.outcome}` : ''}`)));
    el.runSelect.value = String(s.selectedRun);
  }

  function renderWeight() {
    const st = s.status;
    const run = shownRun();
    const [xs, ys] = weightSeries(s.log.all(), st, run);
    weightChart.setData([xs, ys]);
    setText(el.weightNow, run === st.run && ACTIVE.has(st.phase) ? `now ${st.canaryWeight}%` : run ? `run ${run}` : '');
  }

  function specMetrics() {
    return (s.spec && s.spec.analysis && s.spec.analysis.metrics) || [];
  }

  function renderMetrics() {
    const run = shownRun();
    const points = s.pointsRun === run ? s.points : [];
    const byMetric = new Map();
    for (const m of specMetrics()) byMetric.set(m.name, []);
    for (const p of points) {
      if (!byMetric.has(p.metric)) byMetric.set(p.metric, []);
      byMetric.get(p.metric).push(p);
    }
    for (const [metric, c] of charts) {
      if (!byMetric.has(metric)) {
        c.chart.destroy();
        c.card.remove();
        charts.delete(metric);
      }
    }
    if (byMetric.size === 0) {
      replace(el.metrics, h('p', {class: 'empty'}, s.spec ? 'The spec has no metrics: nothing is measured.' : 'Loading…'));
      return;
    }
    const note = el.metrics.querySelector(':scope > .empty');
    if (note) note.remove();
    for (const [metric, pts] of byMetric) {
      const spec = specMetrics().find((m) => m.name === metric) || {name: metric};
      const sig = thresholdLabels(spec).map((t) => t.label).join('|');
      let c = charts.get(metric);
      if (c && c.sig !== sig) { // the spec changed its thresholds
        c.chart.destroy();
        c.card.remove();
        c = null;
      }
      if (!c) {
        c = metricCard(spec);
        c.sig = sig;
        charts.set(metric, c);
      }
      el.metrics.appendChild(c.card); // keeps the spec's order
      const series = metricSeries(pts, spec);
      c.chart.setData(series.data);
      setText(c.criteria, criteriaText(spec));
      c.strip.replaceChildren(...pts.map((p) => h('span', {
        class: 'verdict-dot', 'data-kind': p.check.verdict,
        title: `interval ${p.interval} (${clockShort(time(p.at))}): ${p.check.verdict}: ${p.check.reason}`,
      })));
      c.count = pts.length;
      c.card.dataset.points = String(pts.length);
    }
  }

  function metricCard(spec) {
    const unit = unitOf(spec);
    const holder = h('div', {class: 'chart', 'data-chart': `metric:${spec.name}`});
    const criteria = h('p', {class: 'muted small criteria'});
    const strip = h('div', {class: 'verdicts', 'aria-label': 'verdict of each interval'});
    const card = h('div', {class: 'metric-card', 'data-metric': spec.name},
      h('h3', {}, spec.name), criteria, holder, strip);
    el.metrics.appendChild(card);
    const chart = new Chart(holder, {
      series: thresholdLabels(spec).reduce((acc, t) => acc.concat([{label: t.label, role: t.role, dash: t.dash}]),
        [{label: 'canary', role: 'canary'}, {label: 'stable', role: 'stable'}]),
      format: (v) => value(v, unit),
      height: 200,
      empty: 'No measurements in this run yet.',
    });
    return {card, chart, criteria, strip};
  }

  function renderChecks(st) {
    const run = shownRun();
    let checks = [];
    if (run === st.run) {
      checks = st.checks;
    } else if (s.pointsRun === run) {
      const last = new Map();
      for (const p of s.points) last.set(p.metric, p.check);
      checks = [...last.values()];
    }
    if (!checks.length) {
      replace(el.checks, h('p', {class: 'empty'}, run ? 'No check has run yet in this run.' : 'No run yet.'));
      return;
    }
    const specOf = (metric) => specMetrics().find((m) => m.name === metric) || {name: metric};
    const rows = checks.map((c) => {
      const spec = specOf(c.metric);
      const unit = unitOf(spec);
      const ratio = spec.maxRatio !== undefined && spec.maxRatio !== null;
      const test = [c.p !== null ? `p ${pValue(c.p)}` : '', c.e !== null ? `e ${num(c.e)}` : '', c.statistic !== null ? `stat ${num(c.statistic)}` : '']
        .filter(Boolean).join(' · ');
      return h('tr', {'data-metric': c.metric},
        h('th', {scope: 'row', 'data-label': 'Metric'}, c.metric),
        h('td', {'data-label': 'Verdict'}, badge(c.verdict, c.verdict)),
        h('td', {'data-label': 'Canary'}, value(c.canary, unit), h('div', {class: 'muted small'}, `n = ${count(c.canarySamples)}`)),
        h('td', {'data-label': 'Stable'}, c.stable === null ? '–' : value(c.stable, unit),
          c.stableSamples === null ? null : h('div', {class: 'muted small'}, `n = ${count(c.stableSamples)}`)),
        h('td', {'data-label': 'Effect'}, c.effect === null ? '–' : ratio ? `× ${num(c.effect)}` : signed(c.effect, unit)),
        h('td', {'data-label': 'Test'}, test || '–'),
        h('td', {'data-label': 'Explanation', class: 'reason'}, c.reason));
    });
    replace(el.checks, h('table', {class: 'checks'},
      h('thead', {}, h('tr', {}, ['Metric', 'Verdict', 'Canary', 'Stable', 'Effect', 'Test', 'Explanation'].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, rows)));
  }

  function renderShadow(st) {
    const mirror = s.spec && s.spec.strategy && s.spec.strategy.canary && s.spec.strategy.canary.mirror;
    el.shadow.hidden = !mirror;
    if (!mirror) return;
    // The latest shadow result of each metric in the run shown.
    const last = new Map();
    if (s.pointsRun === shownRun()) for (const p of s.points) if (p.shadow) last.set(p.metric, p.shadow);
    let body;
    if (!last.size) {
      body = h('p', {class: 'empty'}, 'No shadow measurement in this run yet.');
    } else {
      const rows = [...last.entries()].map(([metric, sh]) => {
        const c = sh.check;
        const unit = unitOf(specMetrics().find((m) => m.name === metric) || {name: metric});
        return h('tr', {'data-metric': metric},
          h('th', {scope: 'row', 'data-label': 'Metric'}, metric),
          h('td', {'data-label': 'Verdict'}, badge(c.verdict, c.verdict)),
          h('td', {'data-label': 'Canary (mirrored)'}, c.canary === null ? '–' : value(c.canary, unit),
            h('div', {class: 'muted small'}, `n = ${count(c.canarySamples)}`)),
          h('td', {'data-label': 'Stable'}, c.stable === null ? '–' : value(c.stable, unit),
            c.stableSamples === null ? null : h('div', {class: 'muted small'}, `n = ${count(c.stableSamples)}`)),
          h('td', {'data-label': 'Explanation', class: 'reason'}, c.reason));
      });
      body = h('table', {class: 'checks', 'data-table': 'shadow'},
        h('thead', {}, h('tr', {}, ['Metric', 'Verdict', 'Canary (mirrored)', 'Stable', 'Explanation'].map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', {}, rows));
    }
    replace(el.shadow,
      h('h2', {id: 'shadow-title'}, 'Shadow traffic'),
      h('p', {}, `${mirror.percent}% of the requests that stable ${st.stableVersion} serves are copied to the canary` +
        `${st.canaryVersion ? ` ${st.canaryVersion}` : ''}; the canary's replies to these copies are dropped, so users only ever see stable's.`),
      h('p', {class: 'muted'}, 'The canary\'s answers to the copies, judged by each metric\'s check against stable. ' +
        'Shown, not acted on: only the live checks above decide the run.'),
      body);
  }

  function renderRuns() {
    if (!s.runs.length) {
      replace(el.runs, h('p', {class: 'empty'}, 'No run yet.'));
      return;
    }
    const rows = s.runs.map((r) => {
      const started = time(r.startedAt);
      const ended = time(r.endedAt);
      const show = h('button', {type: 'button', class: 'button small', 'data-run': r.run}, 'Show');
      show.addEventListener('click', () => {
        s.selectedRun = s.status && r.run === s.status.run ? 0 : r.run;
        loadPoints();
        schedule();
        el.weightChart.scrollIntoView({behavior: 'smooth', block: 'center'});
      });
      return h('tr', {'data-run': r.run, 'aria-selected': shownRun() === r.run ? 'true' : false},
        h('th', {scope: 'row', 'data-label': 'Run'}, String(r.run)),
        h('td', {'data-label': 'Canary', class: 'version'}, r.version),
        h('td', {'data-label': 'Stable', class: 'version'}, r.stableVersion),
        h('td', {'data-label': 'Started'}, clockShort(started)),
        h('td', {'data-label': 'Took'}, Number.isFinite(ended) ? duration(ended - started) : '–'),
        h('td', {'data-label': 'Outcome'}, r.outcome ? badge(r.outcome, r.outcome) : badge('Progressing', 'running')),
        h('td', {'data-label': 'Reason', class: 'reason'}, r.reason || ''),
        h('td', {'data-label': ''}, show));
    });
    replace(el.runs, h('table', {class: 'runs'},
      h('thead', {}, h('tr', {}, ['Run', 'Canary', 'Stable', 'Started', 'Took', 'Outcome', 'Reason', ''].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, rows)));
  }

  function renderEvents() {
    const all = s.log.all();
    if (!all.length) {
      replace(el.events, h('p', {class: 'empty'}, s.eventsLoaded ? 'No events yet.' : 'Loading…'));
      return;
    }
    const newest = all.slice().reverse();
    const shown = s.allEvents ? newest : newest.slice(0, EVENTS_SHOWN);
    const rows = shown.map((e) => h('tr', {'data-type': e.type},
      h('td', {'data-label': 'Time', class: 'nowrap'}, h('time', {datetime: e.time, title: clock(time(e.time))}, clockShort(time(e.time)))),
      h('td', {'data-label': 'Run'}, String(e.run)),
      h('td', {'data-label': 'Event'}, badge(e.severity, e.type)),
      h('td', {'data-label': 'Step'}, e.run ? String(e.step) : '–'),
      h('td', {'data-label': 'Weight'}, `${e.weight}%`),
      h('td', {'data-label': 'Reason', class: 'reason'}, e.reason)));
    const more = newest.length > shown.length
      ? h('button', {type: 'button', class: 'button small', onclick: () => { s.allEvents = true; renderEvents(); }}, `Show all ${newest.length} events`)
      : null;
    replace(el.events,
      h('table', {class: 'events'},
        h('thead', {}, h('tr', {}, ['Time', 'Run', 'Event', 'Step', 'Weight', 'Reason'].map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', {}, rows)),
      more,
      s.log.truncated ? h('p', {class: 'muted small'}, 'Only the first 100,000 events were read.') : null);
  }

  function tick() {
    const st = s.status;
    if (!st) return;
    if (live.inStep) {
      setText(live.inStep, ACTIVE.has(st.phase) && st.run
        ? (s.eventsLoaded || st.stepStartedAt ? duration(Date.now() - stepStart(st, s.log.all())) : '…') : '–');
    }
    if (live.runAgo) setText(live.runAgo, ago(time(st.runStartedAt)));
    if (ACTIVE.has(st.phase) && shownRun() === st.run) renderWeight();
  }
  const ticker = setInterval(tick, 1000);

  const stop = watch(`api/v1/watch?name=${encodeURIComponent(name)}`, {
    state: setConnection,
    rollout(change) {
      if (s.deleted) { // created again under the same name: a new history
        s.deleted = false;
        actions.deleted = false;
        el.notice.hidden = true;
        s.status = null;
        s.log = new EventLog(name);
        s.eventsLoaded = false;
        s.runs = [];
        update(change.rollout, change.events);
        reloadAll();
        return;
      }
      update(change.rollout, change.events);
    },
    deleted() {
      s.deleted = true;
      actions.deleted = true;
      showNotice(`The rollout ${name} was deleted.`);
      schedule();
    },
    synced() {
      if (!s.status) return;
      // The first sync, or a reconnect: read everything that may have
      // changed meanwhile.
      reloadAll();
    },
    async gone() {
      try {
        await get(rolloutPath(name));
        return false;
      } catch (err) {
        if (err instanceof APIError && err.status === 404) {
          replace(el.head, h('p', {class: 'empty'}, `No rollout is named ${name}.`));
          actions.deleted = true;
          actions.update(s.status);
          setConnection('offline');
          return true;
        }
        throw err;
      }
    },
  });

  return {
    dispose() {
      stop();
      clearInterval(ticker);
      clearTimeout(pointsTimer);
      if (frame) cancelAnimationFrame(frame);
      actions.dispose();
      weightChart.destroy();
      for (const c of charts.values()) c.chart.destroy();
    },
  };
}

// thresholdLabels lists the lines a metric's criteria draw: fixed bounds
// (min, max) and the tolerance against stable (compare: baseline).
export function thresholdLabels(spec) {
  const unit = unitOf(spec);
  const out = [];
  if (spec.condition) return out;
  if (spec.max !== undefined && spec.max !== null) out.push({key: 'max', label: `max ${value(spec.max, unit)}`, role: 'threshold', dash: [6, 4]});
  if (spec.min !== undefined && spec.min !== null) out.push({key: 'min', label: `min ${value(spec.min, unit)}`, role: 'threshold', dash: [2, 4]});
  if (spec.compare === 'baseline') out.push({key: 'tolerance', label: toleranceLabel(spec, unit), role: 'tolerance', dash: [4, 3]});
  return out;
}

function toleranceLabel(spec, unit) {
  const parts = ['stable'];
  if (spec.maxRatio !== undefined && spec.maxRatio !== null) parts[0] = `stable × ${num(spec.maxRatio)}`;
  if (spec.maxIncrease !== undefined && spec.maxIncrease !== null) parts.push(`+ ${value(spec.maxIncrease, unit)}`);
  return `tolerated (${parts.join(' ')})`;
}

// metricSeries turns one metric's points into chart data: canary, stable
// and one series per threshold line.
export function metricSeries(points, spec) {
  const lines = thresholdLabels(spec);
  const xs = [];
  const canary = [];
  const stable = [];
  const extra = lines.map(() => []);
  const ratio = spec.maxRatio ?? 1;
  const increase = spec.maxIncrease ?? 0;
  for (const p of points) {
    xs.push(time(p.at) / 1000);
    const c = p.canary.hasValue ? p.canary.value : null;
    const b = p.stable.hasValue ? p.stable.value : null;
    canary.push(c);
    stable.push(b);
    lines.forEach((l, i) => {
      if (l.key === 'max') extra[i].push(spec.max);
      else if (l.key === 'min') extra[i].push(spec.min);
      else extra[i].push(b === null ? null : b * ratio + increase);
    });
  }
  return {data: [xs, canary, stable, ...extra]};
}

// criteriaText says how a metric is judged, in one line.
export function criteriaText(spec) {
  const unit = unitOf(spec);
  if (spec.condition) return `judged by the condition ${spec.condition} (no threshold line)`;
  const parts = [];
  if (spec.provider) parts.push(`provider ${spec.provider}`);
  if (spec.max !== undefined && spec.max !== null) parts.push(`canary ≤ ${value(spec.max, unit)}`);
  if (spec.min !== undefined && spec.min !== null) parts.push(`canary ≥ ${value(spec.min, unit)}`);
  if (spec.compare === 'baseline') parts.push(`canary ≤ ${toleranceLabel(spec, unit).replace(/^tolerated \((.*)\)$/, '$1')}`);
  if (spec.test) parts.push(`${spec.test} test${spec.alpha ? `, α ${spec.alpha}` : ''}`);
  if (spec.slowerThan) parts.push(`counting requests slower than ${value(spec.slowerThan, UNIT_SECONDS)}`);
  if (spec.slowerThanQuantile) parts.push(`counting requests slower than stable's ${num(spec.slowerThanQuantile * 100)}th percentile`);
  if (spec.minSamples) parts.push(`at least ${count(spec.minSamples)} samples`);
  return parts.join(' · ');
}

function signed(v, unit) {
  const text = value(Math.abs(v), unit);
  return v > 0 ? `+${text}` : v < 0 ? `−${text}` : text;
}
