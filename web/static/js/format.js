// format.js turns API values into text: durations, times, percentages and
// metric values in their units.

// duration writes milliseconds as "45s", "3m 12s", "2h 5m", "3d 4h".
export function duration(ms) {
  if (!Number.isFinite(ms)) return '–';
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

// ago writes how long before now a time was: "3m 12s ago".
export function ago(t, now = Date.now()) {
  if (t === null || t === undefined || !Number.isFinite(t)) return '–';
  return `${duration(now - t)} ago`;
}

// time parses an RFC 3339 time from the API to milliseconds (NaN for
// null).
export function time(s) {
  return s ? Date.parse(s) : NaN;
}

// clock writes a time as the browser's local date and time.
export function clock(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

// clockShort writes a time of day (today's times need no date).
export function clockShort(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const today = new Date();
  if (d.toDateString() !== today.toDateString()) return clock(ms);
  return d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

// count writes a whole number with grouping: 1,243.
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n < 0) return 'unknown';
  return n.toLocaleString('en-US');
}

// Units of metric values.
export const UNIT_RATIO = 'ratio';     // 0.012 is 1.2%
export const UNIT_SECONDS = 'seconds'; // latencies
export const UNIT_RATE = 'rate';       // requests per second
export const UNIT_NONE = '';

// unitOf guesses a metric's unit from its built-in query or name:
// error-rate and slow-rate are fractions, latency-* are seconds,
// request-rate is per second; anything else is a plain number.
export function unitOf(metric) {
  const q = String((metric && (metric.query || metric.name)) || '').toLowerCase();
  const provider = metric && metric.provider;
  const key = provider === 'builtin' || !provider ? q : String(metric.name || '').toLowerCase();
  if (/requests?[-_]?rate/.test(key)) return UNIT_RATE;
  if (/(error|slow)s?[-_]?(rate|ratio)/.test(key)) return UNIT_RATIO;
  if (/latency|duration/.test(key)) return UNIT_SECONDS;
  return UNIT_NONE;
}

// value writes a metric value in its unit.
export function value(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  switch (unit) {
    case UNIT_RATIO: return percent(v);
    case UNIT_SECONDS: return seconds(v);
    case UNIT_RATE: return `${num(v)}/s`;
    default: return num(v);
  }
}

// percent writes a fraction as a percentage with enough digits: 0.0123 is
// "1.23%".
export function percent(f) {
  const p = f * 100;
  const a = Math.abs(p);
  const digits = a === 0 ? 0 : a < 0.1 ? 3 : a < 10 ? 2 : 1;
  return `${p.toFixed(digits)}%`;
}

// seconds writes a latency: "87 ms", "1.25 s".
export function seconds(s) {
  if (s === 0) return '0';
  const a = Math.abs(s);
  if (a < 0.001 && a > 0) return `${(s * 1e6).toFixed(0)} µs`;
  if (a < 1) return `${(s * 1000).toFixed(a < 0.01 ? 2 : a < 0.1 ? 1 : 0)} ms`;
  return `${s.toFixed(2)} s`;
}

// num writes a plain number with up to 4 significant digits.
export function num(v) {
  if (!Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toLocaleString('en-US', {maximumFractionDigits: 6});
}

// pValue writes a p-value: "0.0004", "< 0.0001".
export function pValue(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return '–';
  if (p < 1e-4) return '< 0.0001';
  return p.toPrecision(2);
}

// stepText describes a plan step: "set weight 20%", "pause 2m", "pause for
// promote", "analysis", "gate qa".
export function stepText(step) {
  if (!step) return '';
  switch (step.kind) {
    case 'setWeight': return `set weight ${step.weight || 0}%`;
    case 'pause': return step.duration ? `pause ${step.duration}` : 'pause for promote';
    case 'analysis': return step.duration ? `analysis (at least ${step.duration})` : 'analysis';
    case 'gate': return `gate ${step.gate}`;
    default: return step.kind;
  }
}

// waitingText says what a run waits for.
export function waitingText(w) {
  if (!w) return '';
  switch (w.kind) {
    case 'pause': return 'waiting for promote';
    case 'gate': return `waiting at gate ${w.name}`;
    case 'decision': return w.name ? `waiting for a decision (${w.name})` : 'waiting for a decision';
    case 'webhook': return `waiting for webhook ${w.name}`;
    default: return `waiting (${w.kind})`;
  }
}
