// history.js keeps a rollout's events (read from the API, then followed
// live from the event stream) and derives what the status view does not
// say directly: when the current step began, when each step ended, and the
// canary's weight over time.

import {get, rolloutPath} from './api.js';
import {time} from './format.js';

const PAGE = 1000;      // the API's largest page
const MAX_PAGES = 100;  // 100,000 events: enough for any dashboard

// Event types that end a step (the step's number is the event's step).
const STEP_ENDS = new Set(['WeightChanged', 'StepCompleted', 'AnalysisPassed']);

// key identifies an event whether it came from the stream (id 0) or the
// store (numbered).
function key(e) {
  return `${e.time}|${e.run}|${e.type}|${e.step}|${e.reason}`;
}

// EventLog holds one rollout's events, oldest first. Events read from the
// store have ids; events from the stream (id 0) are kept apart until a
// later read returns them numbered. With keepLatestRun it forgets the
// events of earlier runs (the overview needs only the current run's).
export class EventLog {
  constructor(name, {keepLatestRun = false} = {}) {
    this.name = name;
    this.keepLatestRun = keepLatestRun;
    this.stored = [];
    this.live = [];
    this.next = 0;
    this.truncated = false;
    this.loading = null;
    this.again = false;
  }

  // load reads the events stored since the last load. Calls while a load
  // runs make it read once more when it ends, so that nothing committed
  // in between is missed.
  load() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          await this.readPages();
        } while (this.again);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  async readPages() {
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await get(`${rolloutPath(this.name, 'events')}?after=${this.next}&limit=${PAGE}`);
      this.stored.push(...page.events);
      this.next = page.next;
      if (page.events.length < PAGE) {
        this.prune();
        return;
      }
    }
    this.truncated = true;
    this.prune();
  }

  // add records events that arrived on the stream.
  add(events) {
    if (events && events.length) {
      this.live.push(...events);
      this.prune();
    }
  }

  prune() {
    const stored = new Set(this.stored.map(key));
    this.live = this.live.filter((e) => !stored.has(key(e)));
    if (!this.keepLatestRun) return;
    const run = Math.max(0, ...this.stored.map((e) => e.run), ...this.live.map((e) => e.run));
    this.stored = this.stored.filter((e) => e.run === run);
    this.live = this.live.filter((e) => e.run === run);
  }

  // all returns every event known, oldest first.
  all() {
    return this.stored.concat(this.live);
  }

  // latest is the time of the newest event (NaN when none is known).
  latest() {
    const all = this.all();
    return all.length ? time(all[all.length - 1].time) : NaN;
  }
}

// stepEnds maps each step (1-based) of run run to the time it ended.
export function stepEnds(events, run) {
  const ends = new Map();
  for (const e of events) {
    if (e.run === run && STEP_ENDS.has(e.type) && !ends.has(e.step)) ends.set(e.step, time(e.time));
  }
  return ends;
}

// stepStart is when the status's current step began: the server's
// stepStartedAt, or, from a server that does not send it, when the step
// before it ended, or when the canary could first receive traffic (the
// run's start for the first step). NaN without a run.
export function stepStart(status, events) {
  if (!status.run || !status.runStartedAt) return NaN;
  if (status.stepStartedAt) return time(status.stepStartedAt);
  let since = time(status.runStartedAt);
  for (const e of events) {
    if (e.run !== status.run) continue;
    const t = time(e.time);
    const began = (STEP_ENDS.has(e.type) && e.step === status.step - 1) || (e.type === 'Ready' && status.step === 1);
    if (began && t > since) since = t;
  }
  return since;
}

// weightSeries is the canary's weight over run run: [times in seconds,
// weights]. The run starts at 0; a promotion ends at 100 (the canary takes
// all traffic and becomes stable), a rollback at 0. For the current run of
// an active rollout the last weight is extended to now.
export function weightSeries(events, status, run, now = Date.now()) {
  const xs = [];
  const ys = [];
  const push = (t, w) => {
    const x = t / 1000;
    if (xs.length && xs[xs.length - 1] >= x) {
      ys[ys.length - 1] = w; // the same instant: the later event wins
      return;
    }
    xs.push(x);
    ys.push(w);
  };
  for (const e of events) {
    if (e.run !== run) continue;
    const t = time(e.time);
    switch (e.type) {
      case 'Started': push(t, 0); break;
      case 'WeightChanged': push(t, e.weight); break;
      case 'Promoting': case 'Promoted': push(t, 100); break;
      case 'RolledBack': case 'Superseded': case 'Withdrawn': push(t, 0); break;
      default:
    }
  }
  const active = ['Progressing', 'Paused', 'Promoting'].includes(status.phase);
  if (status.run === run && active) {
    if (!xs.length && status.runStartedAt) push(time(status.runStartedAt), 0);
    if (xs.length) push(Math.max(now, xs[xs.length - 1] * 1000 + 1), status.canaryWeight);
  }
  return [xs, ys];
}
