// ui.js holds the parts of the page shared by every view: the connection
// indicator and the toasts.

import {h, setText} from './dom.js';

const CONNECTION_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  offline: 'offline',
};

// setConnection shows the state of the page's event stream.
export function setConnection(state) {
  const el = document.getElementById('conn');
  if (!el) return;
  el.dataset.state = state;
  setText(el, CONNECTION_TEXT[state] || state);
  el.title = state === 'live'
    ? 'following the server’s event stream: changes show as they happen'
    : 'the event stream is not connected: what you see may be out of date';
}

// toast shows a short message for a while; kind is "info" or "error".
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button', {type: 'button', class: 'toast-close', 'aria-label': 'dismiss'}, '×');
  const t = h('div', {class: 'toast', 'data-kind': kind}, h('span', {}, text), close);
  close.addEventListener('click', () => t.remove());
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 15000 : 6000);
}
