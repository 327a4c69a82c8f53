// dom.js builds elements. Text from the API only ever becomes text nodes or
// attribute values: nothing here (or anywhere in the dashboard) parses
// strings as HTML.

// h creates an element. attrs: attribute values (strings, numbers or
// booleans; false and null leave the attribute out), plus "on<event>"
// handlers and "props" (properties set as they are). children: nodes,
// strings (text), arrays of them, and null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'props') {
      Object.assign(el, value);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace makes children the element's only content.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// setText sets an element's text when it changed (so that selections and
// screen readers are not disturbed by identical updates).
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

// badge is a small label whose colour says what its text is (a phase, a
// verdict, a severity).
export function badge(kind, text) {
  return h('span', {class: 'badge', 'data-kind': kind}, text);
}
