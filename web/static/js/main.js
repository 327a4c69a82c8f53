// main.js starts the dashboard: the token dialog, and the two pages picked
// by the address's fragment: #/ (the overview, #/?phase=Failed filters it)
// and #/rollouts/NAME. The fragment never holds the token.

import {session, validUser} from './api.js';
import {setupConfirm} from './actions.js';
import {setText} from './dom.js';
import {overviewPage} from './overview.js';
import {rolloutPage} from './rollout.js';

let page = null;

function route() {
  if (page) page.dispose();
  page = null;
  const main = document.getElementById('main');
  const hash = location.hash || '#/';
  const [path, query] = hash.slice(1).split('?');
  const m = path.match(/^\/rollouts\/([^/]+)$/);
  if (m) {
    let name;
    try {
      name = decodeURIComponent(m[1]);
    } catch {
      name = m[1];
    }
    page = rolloutPage(main, name);
  } else {
    page = overviewPage(main, new URLSearchParams(query || ''));
  }
  main.focus({preventScroll: true});
  window.scrollTo(0, 0);
}

function setupToken() {
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const token = document.getElementById('token-input');
  const user = document.getElementById('user-input');
  const error = document.getElementById('token-error');
  const button = document.getElementById('token-button');
  const label = document.getElementById('session-label');
  const forget = document.getElementById('token-forget');

  const show = () => {
    const has = session.token() !== '';
    setText(button, has ? 'Token' : 'Enter token');
    setText(label, has ? `operating${session.user() ? ` as ${session.user()}` : ''}` : 'read-only');
    label.dataset.mode = has ? 'operate' : 'read';
    forget.disabled = !has;
  };
  button.addEventListener('click', () => {
    token.value = '';
    user.value = session.user();
    error.hidden = true;
    dialog.showModal();
    token.focus();
  });
  document.getElementById('token-cancel').addEventListener('click', () => dialog.close());
  forget.addEventListener('click', () => {
    session.clear();
    dialog.close();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = token.value.trim();
    const u = user.value.trim();
    if (!t) {
      setText(error, 'Enter the token.');
      error.hidden = false;
      return;
    }
    if (!validUser(u)) {
      setText(error, 'The name can hold printable ASCII characters only (it is sent in a header), at most 64.');
      error.hidden = false;
      return;
    }
    try {
      session.set(t, u);
    } catch (err) {
      setText(error, err.message);
      error.hidden = false;
      return;
    }
    token.value = '';
    dialog.close();
  });
  window.addEventListener('aviary:session', show);
  // Another tab cannot change this tab's session storage, but a page
  // restored from the back-forward cache may have a stale label.
  window.addEventListener('pageshow', show);
  show();
}

setupToken();
setupConfirm();
window.addEventListener('hashchange', route);
route();
