// actions.js is the rollout page's operations: a bar of buttons that are
// disabled without the API token (the page is then read-only) and when the
// rollout's state does not allow the operation, and a confirmation dialog
// that sends it and shows the API's error, if any.

import {APIError, operate, session} from './api.js';
import {h, setText} from './dom.js';
import {clock, time, waitingText} from './format.js';
import {toast} from './ui.js';

const active = (st) => ['Progressing', 'Paused', 'Promoting'].includes(st.phase);

// ACTIONS are the operations in the order of the bar. allowed returns ""
// when the rollout's state allows the operation, else why not (the same
// rules the server applies; the server has the last word).
export const ACTIONS = [
  {
    id: 'promote', op: 'promote', label: 'Promote',
    allowed: (st) => (st.phase === 'Promoting' ? 'the canary is already being promoted'
      : !active(st) ? 'no run in progress' : ''),
    text: (st) => `Pass what holds run ${st.run} of ${st.name} at step ${st.step}/${st.steps}` +
      `${st.waiting ? ` (${waitingText(st.waiting)})` : ''} and go on with the next step.`,
  },
  {
    id: 'promote-full', op: 'promote', full: true, label: 'Promote fully',
    allowed: (st) => (st.phase === 'Promoting' ? 'the canary is already being promoted'
      : !active(st) ? 'no run in progress' : ''),
    text: (st) => `Skip the remaining steps: ${st.canaryVersion} takes 100% of ${st.name}'s traffic now ` +
      `and replaces ${st.stableVersion} as the stable version.`,
    danger: true,
  },
  {
    id: 'approve', op: 'approve', label: 'Approve',
    allowed: (st) => (!active(st) ? 'no run in progress'
      : !st.waiting || st.waiting.kind === 'webhook' ? 'the run is not waiting for a person' : ''),
    text: (st) => `Answer what run ${st.run} of ${st.name} waits for${st.waiting ? ` (${waitingText(st.waiting)})` : ''}.`,
    gate: true,
  },
  {
    id: 'pause', op: 'pause', label: 'Pause',
    allowed: (st) => (st.phase === 'Paused' ? 'the run is already paused'
      : st.phase === 'Promoting' ? 'the canary is being promoted; abort it instead'
        : st.phase !== 'Progressing' ? 'no run in progress' : ''),
    text: (st) => `Hold run ${st.run} of ${st.name} at weight ${st.canaryWeight}% (step ${st.step}/${st.steps}) until it is resumed.`,
  },
  {
    id: 'resume', op: 'resume', label: 'Resume',
    allowed: (st) => (st.phase !== 'Paused' ? 'the run is not paused' : ''),
    text: (st) => `Resume run ${st.run} of ${st.name} at step ${st.step}/${st.steps}, weight ${st.canaryWeight}%.`,
  },
  {
    id: 'abort', op: 'abort', label: 'Abort', danger: true,
    allowed: (st) => (!active(st) ? 'no run in progress' : ''),
    text: (st) => `Roll run ${st.run} of ${st.name} back now: ${st.stableVersion} takes all traffic again ` +
      `and ${st.canaryVersion} (now at ${st.canaryWeight}%) gets none.`,
  },
  {
    id: 'retry', op: 'retry', label: 'Retry',
    allowed: (st) => (st.phase !== 'Failed' ? 'only a failed run can be retried' : ''),
    text: (st) => `Release ${st.desiredVersion} of ${st.name} again: a new run starts from the first step.`,
  },
  {
    id: 'rollback', op: 'rollback', label: 'Roll back', danger: true,
    allowed: (st) => (st.phase !== 'Succeeded' || !st.rollbackUntil ? 'no promotion within its rollback window' : ''),
    text: (st) => `Restore ${st.previousVersion} as the stable version of ${st.name} in one step; ` +
      `${st.stableVersion} is taken out of service. Possible until ${clock(time(st.rollbackUntil))}.`,
  },
];

// ActionBar is the row of operation buttons for one rollout.
export class ActionBar {
  constructor(onDone) {
    this.onDone = onDone;
    this.status = null;
    this.deleted = false;
    this.buttons = new Map();
    for (const a of ACTIONS) {
      const b = h('button', {type: 'button', class: a.danger ? 'button danger' : 'button', 'data-action': a.id}, a.label);
      b.addEventListener('click', () => this.confirm(a));
      this.buttons.set(a.id, b);
    }
    this.hint = h('p', {class: 'actions-hint'});
    this.el = h('section', {class: 'actions', 'aria-label': 'operations'},
      h('div', {class: 'actions-buttons'}, [...this.buttons.values()]), this.hint);
    this.onSession = () => this.update(this.status);
    window.addEventListener('aviary:session', this.onSession);
  }

  dispose() {
    window.removeEventListener('aviary:session', this.onSession);
  }

  update(st) {
    this.status = st;
    const token = session.token() !== '';
    for (const a of ACTIONS) {
      const b = this.buttons.get(a.id);
      const why = !st ? 'loading' : this.deleted ? 'the rollout was deleted'
        : !token ? 'read-only: enter the API token to operate' : a.allowed(st);
      b.disabled = why !== '';
      b.title = why || `${a.label}: asks for confirmation`;
    }
    setText(this.hint, token
      ? (st && st.phase === 'Promoting' ? 'The canary is being promoted.' : 'Every operation asks for confirmation.')
      : 'Read-only: enter the API token (top right) to operate this rollout.');
  }

  confirm(a) {
    const st = this.status;
    if (!st) return;
    openConfirm(a, st, (next) => this.onDone(next));
  }
}

// The confirmation dialog is shared; current is the operation it shows.
let current = null;

function dialogParts() {
  return {
    dialog: document.getElementById('confirm-dialog'),
    form: document.getElementById('confirm-form'),
    title: document.getElementById('confirm-title'),
    text: document.getElementById('confirm-text'),
    gateLabel: document.getElementById('confirm-gate-label'),
    gate: document.getElementById('confirm-gate'),
    reason: document.getElementById('confirm-reason'),
    error: document.getElementById('confirm-error'),
    ok: document.getElementById('confirm-ok'),
    cancel: document.getElementById('confirm-cancel'),
  };
}

function openConfirm(a, st, done) {
  const p = dialogParts();
  current = {a, st, done};
  setText(p.title, `${a.label} ${st.name}?`);
  setText(p.text, a.text(st));
  p.gateLabel.hidden = !a.gate;
  p.gate.value = a.gate && st.waiting && st.waiting.kind === 'gate' ? st.waiting.name : '';
  p.reason.value = '';
  p.error.hidden = true;
  p.error.replaceChildren();
  setText(p.ok, a.label);
  p.ok.className = a.danger ? 'button danger' : 'button primary';
  p.ok.disabled = false;
  p.dialog.showModal();
  p.reason.focus();
}

// setupConfirm wires the dialog's buttons once.
export function setupConfirm() {
  const p = dialogParts();
  p.cancel.addEventListener('click', () => p.dialog.close());
  p.dialog.addEventListener('close', () => {
    current = null;
  });
  p.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!current) return;
    const {a, st, done} = current;
    const body = {};
    if (a.full) body.full = true;
    if (a.gate && p.gate.value.trim()) body.gate = p.gate.value.trim();
    if (p.reason.value.trim()) body.reason = p.reason.value.trim();
    p.ok.disabled = true;
    p.error.hidden = true;
    try {
      const next = await operate(st.name, a.op, body);
      if (current && current.a === a) p.dialog.close();
      toast(`${a.label} ${st.name}: ${next.message || next.phase}`);
      done(next);
    } catch (err) {
      showError(p.error, err);
      p.ok.disabled = false;
    }
  });
}

function showError(box, err) {
  const lines = [h('strong', {}, err instanceof APIError && err.status ? `${err.status}: ` : ''), err.message || String(err)];
  const fields = err instanceof APIError ? err.fields : [];
  const list = fields.length
    ? h('ul', {}, fields.map((f) => h('li', {}, `${f.field}: ${f.message}`)))
    : null;
  const hint = err instanceof APIError && err.status === 401
    ? h('p', {}, 'Check the token: “Enter token” at the top right replaces it.')
    : null;
  box.replaceChildren(...[h('p', {}, lines), list, hint].filter(Boolean));
  box.hidden = false;
}
