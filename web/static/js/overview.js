// overview.js is the list of every rollout: phase, versions, weight, step,
// time in the step and the last decision, filtered by phase, kept current
// by the server's event stream.

import {watch} from './api.js';
import {badge, h, replace, setText} from './dom.js';
import {ago, duration, stepText, time, waitingText} from './format.js';
import {EventLog, stepStart} from './history.js';
import {setConnection} from './ui.js';

export const PHASES = ['Progressing', 'Paused', 'Promoting', 'Succeeded', 'Failed', 'Initialized'];
const ACTIVE = new Set(['Progressing', 'Paused', 'Promoting']);

// At most this many event reads run at once (one per rollout on load).
const READERS = 4;

// overviewPage renders the overview into main; params are the hash's query
// (phase=…, q=…). It returns {dispose}.
export function overviewPage(main, params) {
  const rollouts = new Map(); // name -> {status, log}
  let synced = false;
  let phase = PHASES.includes(params.get('phase')) ? params.get('phase') : '';
  let query = params.get('q') || '';

  const chips = new Map();
  const chipAll = chip('', 'All');
  for (const p of PHASES) chip(p, p);
  function chip(value, label) {
    const count = h('span', {class: 'chip-count'}, '0');
    const b = h('button', {type: 'button', class: 'chip', 'data-phase': value || 'all', 'aria-pressed': 'false'}, label, ' ', count);
    b.addEventListener('click', () => {
      phase = value;
      remember();
      render();
    });
    chips.set(value, {b, count});
    return b;
  }
  const search = h('input', {type: 'search', class: 'search', placeholder: 'Filter by name', 'aria-label': 'filter by name'});
  search.value = query;
  search.addEventListener('input', () => {
    query = search.value.trim();
    remember();
    render();
  });
  const tbody = h('tbody');
  const table = h('table', {class: 'rollouts'},
    h('thead', {}, h('tr', {},
      ['Rollout', 'Phase', 'Stable', 'Canary', 'Weight', 'Step', 'In step', 'Last decision'].map((t) => h('th', {scope: 'col'}, t)))),
    tbody);
  const note = h('p', {class: 'empty'}, 'Loading rollouts…');
  replace(main,
    h('section', {class: 'overview'},
      h('div', {class: 'toolbar'},
        h('h1', {}, 'Rollouts'),
        h('div', {class: 'chips', role: 'group', 'aria-label': 'filter by phase'}, chipAll, PHASES.map((p) => chips.get(p).b)),
        search),
      h('div', {class: 'table-wrap'}, table),
      note));
  document.title = 'aviary · rollouts';

  // remember keeps the filter in the address (not in the history, and
  // without a hashchange, so that the stream stays open).
  function remember() {
    const q = new URLSearchParams();
    if (phase) q.set('phase', phase);
    if (query) q.set('q', query);
    const s = q.toString();
    history.replaceState(null, '', s ? `#/?${s}` : '#/');
  }

  // Event reads, a few at a time.
  const queue = [];
  let reading = 0;
  function readEvents(entry) {
    queue.push(entry);
    pump();
  }
  function pump() {
    while (reading < READERS && queue.length) {
      const entry = queue.shift();
      if (rollouts.get(entry.status.name) !== entry) continue;
      reading++;
      entry.log.load()
        .then(() => { entry.loaded = true; })
        .catch(() => { entry.failed = true; })
        .finally(() => {
          reading--;
          schedule();
          pump();
        });
    }
  }

  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
  }

  function render() {
    const all = [...rollouts.values()].sort((a, b) => a.status.name.localeCompare(b.status.name));
    const counts = new Map(PHASES.map((p) => [p, 0]));
    for (const r of all) counts.set(r.status.phase, (counts.get(r.status.phase) || 0) + 1);
    for (const [value, c] of chips) {
      setText(c.count, value ? counts.get(value) || 0 : all.length);
      c.b.setAttribute('aria-pressed', String(value === phase));
    }
    const shown = all.filter((r) => (!phase || r.status.phase === phase) &&
      (!query || r.status.name.toLowerCase().includes(query.toLowerCase())));
    tbody.replaceChildren(...shown.map(row));
    note.hidden = synced && shown.length > 0;
    setText(note, !synced ? 'Loading rollouts…'
      : all.length === 0 ? 'No rollouts yet: apply one with `aviary apply -f FILE`.'
        : 'No rollout matches the filter.');
    tick();
  }

  function row(r) {
    const st = r.status;
    const link = h('a', {href: `#/rollouts/${encodeURIComponent(st.name)}`}, st.name);
    const step = st.run ? `${st.step}/${st.steps}` : '–';
    const plan = st.plan && st.step ? st.plan[st.step - 1] : null;
    let stepNote = '';
    if (st.phase === 'Paused') stepNote = st.pause ? `paused (${st.pause.cause})` : 'paused';
    else if (st.phase === 'Promoting') stepNote = 'promoting to 100%';
    else if (st.waiting) stepNote = waitingText(st.waiting);
    else if (ACTIVE.has(st.phase)) stepNote = stepText(plan);
    else if (st.phase === 'Succeeded' && st.run) stepNote = 'promoted';
    else if (st.phase === 'Failed') stepNote = 'rolled back';
    const inStep = h('span', {class: 'in-step'});
    const when = h('span', {class: 'muted small decided'});
    r.inStep = inStep;
    r.when = when;
    return h('tr', {'data-name': st.name, 'data-phase': st.phase},
      h('th', {scope: 'row', 'data-label': 'Rollout'}, link),
      h('td', {'data-label': 'Phase'}, badge(st.phase, st.phase)),
      h('td', {'data-label': 'Stable', class: 'version'}, st.stableVersion || '–'),
      h('td', {'data-label': 'Canary', class: 'version'}, ACTIVE.has(st.phase) ? st.canaryVersion : st.canaryVersion ? h('span', {class: 'muted'}, st.canaryVersion) : '–'),
      h('td', {'data-label': 'Weight', class: 'weight'}, weightBar(ACTIVE.has(st.phase) ? st.canaryWeight : 0)),
      h('td', {'data-label': 'Step'}, step, stepNote ? h('div', {class: 'muted small'}, stepNote) : null),
      h('td', {'data-label': 'In step'}, inStep),
      h('td', {'data-label': 'Last decision', class: 'decision'}, h('div', {class: 'message'}, st.message || '–'), when));
  }

  // tick refreshes the texts that depend on the time.
  function tick() {
    const now = Date.now();
    for (const r of rollouts.values()) {
      if (!r.inStep) continue;
      const st = r.status;
      let text = '–';
      if (ACTIVE.has(st.phase) && st.run) {
        text = r.loaded || st.stepStartedAt ? duration(now - stepStart(st, r.log.all())) : r.failed ? '?' : '…';
      }
      setText(r.inStep, text);
      const latest = r.log.latest();
      setText(r.when, ago(Number.isFinite(latest) ? latest : time(st.updatedAt), now));
    }
  }
  const ticker = setInterval(tick, 1000);

  const stop = watch('api/v1/watch', {
    state: setConnection,
    rollout(change) {
      const st = change.rollout;
      let entry = rollouts.get(st.name);
      if (!entry) {
        entry = {status: st, log: new EventLog(st.name, {keepLatestRun: true}), loaded: false};
        rollouts.set(st.name, entry);
        readEvents(entry);
      }
      entry.status = st;
      entry.log.add(change.events);
      schedule();
    },
    deleted(name) {
      rollouts.delete(name);
      schedule();
    },
    synced(names) {
      synced = true;
      for (const name of [...rollouts.keys()]) {
        if (!names.has(name)) rollouts.delete(name);
      }
      // Catch up on events committed while the stream was away.
      for (const entry of rollouts.values()) {
        if (entry.loaded) readEvents(entry);
      }
      schedule();
    },
  });

  render();
  return {
    dispose() {
      stop();
      clearInterval(ticker);
      if (frame) cancelAnimationFrame(frame);
    },
  };
}

// weightBar shows a weight as a bar and a number.
export function weightBar(w) {
  const bar = h('span', {class: 'bar'}, h('span', {class: 'bar-fill', 'data-weight': w}));
  bar.firstChild.style.width = `${Math.max(0, Math.min(100, w))}%`;
  return h('span', {class: 'weight-cell', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': w, 'aria-label': 'canary weight'},
    bar, h('span', {class: 'weight-num'}, `${w}%`));
}
