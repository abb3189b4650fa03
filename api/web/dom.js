// dom.js: building the page. Every value that comes from data or from the server goes into the
// page as text (text nodes, textContent, attribute values): nothing here parses HTML, so a cell
// holding `<img src=x onerror=...>` shows as those characters and never runs.

// h('a', {href: '/x', class: 'y', onclick: fn}, 'text', child, [more, children])
// Props: `class`, `text`, `on<event>` (a listener), booleans (true sets, false omits), anything
// else as an attribute. Children: strings and numbers become text nodes; null/false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Replace el's children.
export function fill(el, ...children) {
  clear(el);
  return append(el, children);
}

const NUMERIC = new Set(['integer', 'real']);
export const isNumeric = (type) => NUMERIC.has(type);

// A table cell for a data value: NULL and the empty string look different (both markers come
// from CSS, so neither can be mistaken for, or copied as, data), numbers are right-aligned.
export function valueCell(value, type, tag = 'td') {
  const td = document.createElement(tag);
  setValue(td, value, type);
  return td;
}

export function setValue(el, value, type) {
  if (value === null || value === undefined) {
    el.classList.add('null');
    el.title = 'NULL';
  } else if (value === '') {
    el.classList.add('empty');
    el.title = 'empty string';
  } else {
    el.textContent = value;
  }
  if (isNumeric(type)) el.classList.add('num');
  return el;
}

// Numbers with the viewer's digit grouping.
const nf = new Intl.NumberFormat();
export const num = (n) => nf.format(Number(n) || 0);

// Dates and times in the viewer's own time zone; the exact UTC instant on hover.
const df = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  return h('time', { datetime: d.toISOString(), title: d.toString() }, df.format(d));
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const u = ['KB', 'MB', 'GB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
}

// A box for an error message (role=alert, so screen readers announce it).
export function errorBox(e, extra) {
  const msg = e instanceof Error ? e.message : String(e);
  return h('div', { class: 'error', role: 'alert' }, msg, extra || null);
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || String(text).toLowerCase().replace(/\s+/g, '-')}` }, text);
}

// A scrolling wrapper for wide tables (they scroll sideways at 375 px, not the page).
export const scroller = (table, label) =>
  h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': label || 'table' }, table);

// The first line of a commit message or description.
export const firstLine = (s) => String(s || '').split('\n')[0];

// Shorten a commit id for display.
export const short = (id) => String(id || '').slice(0, 8);

// Wait ms milliseconds, or less when signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
