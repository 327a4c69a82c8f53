// api.js is the dashboard's only way to the server (docs/api.md). Reads need
// no token. Operations send the token, which lives in this tab's
// sessionStorage only, in the Authorization header: never in a URL, never
// in a log, never printed by the dashboard.
//
// Paths are relative to the page, so that the dashboard also works behind
// a proxy that serves aviary under a prefix.

const TOKEN_KEY = 'aviary.token';
const USER_KEY = 'aviary.user';

// APIError is an answer of the API that is not a success: status is the
// HTTP status (0 when the server could not be reached), message the API's
// error text and fields its field errors ({field, line, message}).
export class APIError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.fields = fields || [];
  }
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the dashboard stays read-only
  }
}

// session holds the API token and the user's name for this tab.
export const session = {
  token() {
    const s = storage();
    return (s && s.getItem(TOKEN_KEY)) || '';
  },
  user() {
    const s = storage();
    return (s && s.getItem(USER_KEY)) || '';
  },
  set(token, user) {
    const s = storage();
    if (!s) throw new Error('this browser does not allow session storage, so the dashboard cannot keep a token');
    s.setItem(TOKEN_KEY, token);
    if (user) s.setItem(USER_KEY, user);
    else s.removeItem(USER_KEY);
    window.dispatchEvent(new Event('aviary:session'));
  },
  clear() {
    const s = storage();
    if (s) {
      s.removeItem(TOKEN_KEY);
      s.removeItem(USER_KEY);
    }
    window.dispatchEvent(new Event('aviary:session'));
  },
};

// validUser reports whether a name can be sent as X-Aviary-User: printable
// ASCII (a header value), at most 64 characters.
export function validUser(u) {
  return /^[\x20-\x7e]{0,64}$/.test(u);
}

async function answer(res) {
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const message = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`.trim();
    throw new APIError(res.status, message, body && Array.isArray(body.fields) ? body.fields : []);
  }
  return body;
}

async function send(path, init) {
  let res;
  try {
    res = await fetch(path, {cache: 'no-store', credentials: 'omit', ...init});
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new APIError(0, 'the server cannot be reached (is aviary server running?)');
  }
  return answer(res);
}

// rolloutPath is the API path of a rollout, or of one of its resources.
export function rolloutPath(name, ...rest) {
  return ['api/v1/rollouts', encodeURIComponent(name), ...rest].join('/');
}

// get reads JSON.
export function get(path, signal) {
  return send(path, {headers: {Accept: 'application/json'}, signal});
}

// operate runs an operation (promote, abort, …) on a rollout with the
// session's token; body is {full, gate, reason}. It returns the rollout's
// status after the operation.
export function operate(name, op, body) {
  const token = session.token();
  if (!token) return Promise.reject(new APIError(401, 'enter the API token to operate rollouts'));
  const headers = {
    Accept: 'application/json',
    'Content-Type': 'application/json',
    Authorization: `Bearer ${token}`,
  };
  const user = session.user();
  if (user) headers['X-Aviary-User'] = user;
  return send(rolloutPath(name, op), {method: 'POST', headers, body: JSON.stringify(body || {})});
}

// watch follows a server-sent event stream of rollout changes (the API
// opens each stream with a resync and the complete state). handlers:
//   rollout({rollout, events}), deleted(name),
//   synced(names): after a resync, once its complete state has arrived,
//   state(s): "connecting", "live" or "reconnecting",
//   gone(): optional and async; asked after the browser gave up on the
//     stream (an HTTP error): true stops watching for good.
// The browser reconnects by itself after a dropped connection (the server
// asks for 2s); when it gives up, watch retries with a growing delay. It
// returns a function that stops watching.
export function watch(path, handlers) {
  let es = null;
  let timer = null;
  let stopped = false;
  let delay = 2000;
  let expect = 0;
  let seen = new Set();

  const state = (s) => handlers.state && handlers.state(s);
  const open = () => {
    if (stopped) return;
    state('connecting');
    es = new EventSource(path);
    es.addEventListener('open', () => {
      delay = 2000;
      state('live');
    });
    es.addEventListener('resync', (e) => {
      expect = JSON.parse(e.data).count;
      seen = new Set();
      if (expect === 0) handlers.synced(seen);
    });
    es.addEventListener('rollout', (e) => {
      const change = JSON.parse(e.data);
      handlers.rollout(change);
      if (expect > 0) {
        seen.add(change.rollout.name);
        expect--;
        if (expect === 0) handlers.synced(seen);
      }
    });
    es.addEventListener('deleted', (e) => handlers.deleted(JSON.parse(e.data).name));
    es.addEventListener('error', async () => {
      if (stopped) return;
      state('reconnecting');
      if (es.readyState !== EventSource.CLOSED) return; // the browser retries
      es.close();
      if (handlers.gone) {
        try {
          if (await handlers.gone()) {
            stop();
            return;
          }
        } catch {
          // the server is unreachable: keep trying
        }
      }
      if (stopped) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    if (es) es.close();
  };
  open();
  return stop;
}
