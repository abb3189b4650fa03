// parts.js: pieces several pages share: a database's heading and tabs, the ref picker, the
// paging bar, a table of rows with typed headers.
import { get, db as dbPath } from './api.js';
import { authHeaders } from './auth.js';
import { h, num, valueCell, isNumeric, scroller } from './dom.js';
import { links, navigate } from './router.js';

// The heading of a database's pages: owner / name, and tabs for its pages (`active` names one).
// Does role r ("read", "write", "admin": a viewer_role the server sent) reach role `need`?
export function roleAtLeast(r, need) {
  const rank = { read: 1, write: 2, admin: 3 };
  return (rank[r] || 0) >= rank[need];
}

export function repoHeader(owner, name, active, ref, heading = true) {
  const tab = (key, href, label) =>
    h('a', { href, class: 'tab', 'aria-current': key === active ? 'page' : false }, label);
  return h(
    'div',
    { class: 'repo-head' },
    h(
      'p',
      { class: 'crumbs' },
      h('a', { href: links.home() }, 'Databases'),
      ' / ',
      h('a', { href: links.home(owner) }, owner),
    ),
    // The database's name is the page's heading, except where the page has its own (a pull).
    h(heading ? 'h1' : 'p', { tabindex: heading ? '-1' : null, class: 'repo-name' }, h('a', { href: links.db(owner, name), class: 'plain' }, `${owner}/${name}`)),
    h(
      'nav',
      { class: 'tabs', 'aria-label': 'Database' },
      tab('data', links.db(owner, name, ref), 'Data'),
      tab('pulls', links.pulls(owner, name), 'Pull requests'),
      tab('upload', links.upload(owner, name, ref && ref !== 'main' ? { branch: ref } : {}), 'Upload'),
      tab('sql', links.sql(owner, name, ref), 'SQL'),
    ),
  );
}

// The branches of a database (names), [] when they cannot be read.
export async function branches(owner, name, signal) {
  const b = await get(dbPath(owner, name) + '/branches', {}, { signal });
  return (b.branches || []).map((x) => x.branch_name);
}

// A branch/tag/commit picker: a select of branches plus a box for any other ref. Calls
// go(ref) with the chosen ref.
export function refPicker(current, branchNames, go, label = 'Ref') {
  const id = 'ref-' + Math.random().toString(36).slice(2, 8);
  const select = h(
    'select',
    {
      id,
      'data-focus': 'ref-select',
      onchange: () => {
        if (select.value !== '\u0000other') {
          go(select.value);
        } else {
          other.hidden = false;
          input.focus();
        }
      },
    },
    branchNames.map((b) => h('option', { value: b, selected: b === current }, b)),
    branchNames.includes(current) ? null : h('option', { value: current, selected: true }, current),
    h('option', { value: '\u0000other' }, 'Another commit or tag…'),
  );
  const input = h('input', {
    type: 'text',
    placeholder: 'commit id or tag',
    'aria-label': 'Commit id or tag',
    size: 18,
    spellcheck: 'false',
  });
  const other = h(
    'form',
    {
      class: 'inline',
      hidden: true,
      onsubmit: (e) => {
        e.preventDefault();
        if (input.value.trim()) go(input.value.trim());
      },
    },
    input,
    h('button', { type: 'submit' }, 'Go'),
  );
  return h('div', { class: 'refpicker' }, h('label', { for: id }, label), select, other);
}

// A pager: First / Previous / Next buttons (each a link when it has somewhere to go).
export function pager({ first, prev, next, info }) {
  const btn = (href, label, key) =>
    href
      ? h('a', { href, class: 'button', 'data-focus': key }, label)
      : h('button', { type: 'button', disabled: true, 'data-focus': key }, label);
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    btn(first, 'First', 'first'),
    btn(prev, '← Previous', 'prev'),
    btn(next, 'Next →', 'next'),
    info ? h('span', { class: 'muted' }, info) : null,
  );
}

// A table of result rows: columns [{name, type}], rows of objects keyed by column name.
export function rowsTable(columns, rows, caption) {
  return scroller(
    h(
      'table',
      { class: 'data' },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) =>
            h(
              'th',
              { scope: 'col', class: isNumeric(c.type) ? 'num' : null },
              h('span', { class: 'col-name' }, c.name),
              c.type ? h('span', { class: 'col-type' }, c.type) : null,
            ),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((r) => h('tr', {}, columns.map((c) => valueCell(r[c.name], c.type)))),
      ),
    ),
    caption,
  );
}

export { num, navigate };

// A link that downloads a table as CSV (GET /csv/...). Public databases download straight from
// the server; for a private one the request needs the token, so the file is fetched with it and
// handed to the browser as a download.
export function csvLink(o, d, ref, table, isPrivate, label = 'Download CSV', cls = 'button') {
  const href = links.csv(o, d, ref, table);
  const a = h('a', { href, download: `${table}.csv`, class: cls }, label);
  if (isPrivate) {
    a.addEventListener('click', async (e) => {
      e.preventDefault();
      const res = await fetch(href, { headers: authHeaders() });
      if (!res.ok) return;
      const url = URL.createObjectURL(await res.blob());
      const tmp = h('a', { href: url, download: `${table}.csv` });
      document.body.append(tmp);
      tmp.click();
      tmp.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
  }
  return a;
}

// What /databases says about owner/name ({visibility, description, ...}), or null.
export async function dbInfo(o, d, signal) {
  const r = await get('/databases', { owner: o, q: `${o}/${d}`, pageSize: 500 }, { signal });
  return r.databases.find((x) => x.database_name === d) || null;
}
