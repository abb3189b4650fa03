// page_table.js: /repositories/O/D/data/REF/TABLE. A table at a ref, one page of rows at a time
// (sqlgen.js: paged by key through the SQL API, so a 1,000,000-row table costs one small query a
// page), with column types, sort and filter by any column, a jump to a key and the CSV download.
// Everything that picks the rows is in the URL, so a page of rows can be bookmarked and the back
// button returns to the previous page.
import { get, sql, db as dbPath } from './api.js';
import { h, fill, errorBox, num, valueCell, isNumeric, scroller } from './dom.js';
import { links, navigate } from './router.js';
import { repoHeader, branches as listBranches, refPicker, pager, csvLink, dbInfo } from './parts.js';
import { pageSql, filterSql, FILTER_OPS, ident } from './sqlgen.js';

const ROWID = '__tablehub_rowid';
const SIZES = [25, 50, 100, 200];

function parseVals(s) {
  try {
    const v = JSON.parse(s);
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

export default async function render({ main, params, query, signal }) {
  const { owner: o, db: d, ref, table } = params;
  document.title = `${table} · ${o}/${d} · tablehub`;
  const path = dbPath(o, d);
  fill(main, repoHeader(o, d, 'data', ref), h('p', { class: 'muted' }, 'Loading…'));
  const [tables, names, info] = await Promise.all([
    get(path + '/tables', { ref }, { signal }),
    listBranches(o, d, signal),
    dbInfo(o, d, signal).catch(() => null),
  ]);
  const t = tables.tables.find((x) => x.table_name === table);
  if (!t) {
    fill(main, repoHeader(o, d, 'data', ref), errorBox(`table '${table}' not found at ${ref}`, [' ', h('a', { href: links.db(o, d, ref) }, 'See the tables of this ref.')]));
    return;
  }
  const cols = t.columns;
  const typeOf = Object.fromEntries(cols.map((c) => [c.name, c.type]));
  const keyless = t.primary_key.length === 0;
  const keys = keyless ? [{ name: 'rowid', type: 'rowid' }] : t.primary_key.map((k) => ({ name: k, type: typeOf[k] }));

  // The state of the page, from the URL.
  const sort = typeOf[query.get('sort')] ? query.get('sort') : '';
  const desc = query.get('desc') === '1';
  const fcol = typeOf[query.get('fcol')] ? query.get('fcol') : '';
  const fop = query.get('fop') || '';
  const fval = query.get('fval') || '';
  const size = SIZES.includes(Number(query.get('size'))) ? Number(query.get('size')) : 50;
  const after = parseVals(query.get('after') || '');
  const before = parseVals(query.get('before') || '');
  const from = parseVals(query.get('from') || '');
  const order = sort ? [{ name: sort, type: typeOf[sort] }, ...keys.filter((k) => k.name !== sort)] : keys;
  const sorted = !!sort && !(keys.length === 1 && keys[0].name === sort);
  const state = { sort, desc: desc ? '1' : '', fcol, fop, fval, size: size === 50 ? '' : size };
  const here = (extra) => links.table(o, d, ref, table, { ...state, ...extra });

  const where = filterSql(fcol, typeOf[fcol], fop, fval);
  const select = keyless ? `rowid AS ${ident(ROWID)}, *` : '*';
  const cursor = after ? { after } : before ? { before } : from ? { from } : null;
  const q = pageSql({ table, select, where, order, sorted, desc, cursor, n: size });

  const status = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const grid = h('div', { class: 'grid-wrap' }, h('p', { class: 'muted' }, 'Loading rows…'));
  const pagers = [h('div'), h('div')];

  // Column headers: the name, the type, and a sort button cycling ascending, descending, key order.
  const head = h(
    'tr',
    {},
    cols.map((c) => {
      const on = sort === c.name;
      const next = !on ? { sort: c.name, desc: '' } : !desc ? { sort: c.name, desc: '1' } : { sort: '', desc: '' };
      const label = !on ? `Sort by ${c.name}` : !desc ? `Sort by ${c.name}, descending` : 'Back to key order';
      return h(
        'th',
        { scope: 'col', class: isNumeric(c.type) ? 'num' : null, 'aria-sort': on ? (desc ? 'descending' : 'ascending') : false },
        h(
          'a',
          { href: here({ ...next, after: '', before: '', from: '' }), class: 'sort', title: label, 'aria-label': label, 'data-focus': 'sort-' + c.name },
          h('span', { class: 'col-name' }, c.name),
          on ? h('span', { class: 'arrow', 'aria-hidden': 'true' }, desc ? ' ▼' : ' ▲') : null,
          t.primary_key.includes(c.name) ? h('span', { class: 'key', title: 'primary key' }, 'key') : null,
        ),
        h('span', { class: 'col-type' }, c.type, c.nullable ? '' : ' · not null'),
      );
    }),
  );

  // The filter form.
  const fcolSel = h('select', { id: 'fcol', name: 'fcol' }, h('option', { value: '' }, '(no filter)'), cols.map((c) => h('option', { value: c.name, selected: c.name === fcol }, c.name)));
  const fopSel = h('select', { id: 'fop', name: 'fop', 'aria-label': 'Condition' }, FILTER_OPS.map(([v, l]) => h('option', { value: v, selected: v === (fop || 'eq') }, l)));
  const fvalIn = h('input', { id: 'fval', name: 'fval', value: fval, 'aria-label': 'Value', autocomplete: 'off', spellcheck: 'false' });
  const syncVal = () => (fvalIn.disabled = fopSel.value === 'null' || fopSel.value === 'notnull');
  fopSel.addEventListener('change', syncVal);
  syncVal();
  const filterForm = h(
    'form',
    {
      class: 'filter',
      onsubmit: (e) => {
        e.preventDefault();
        const c = fcolSel.value;
        navigate(here({ fcol: c, fop: c ? fopSel.value : '', fval: c && !fvalIn.disabled ? fvalIn.value : '', after: '', before: '', from: '' }));
      },
    },
    h('label', { for: 'fcol' }, 'Filter'),
    fcolSel,
    fopSel,
    fvalIn,
    h('button', { type: 'submit', 'data-focus': 'filter-apply' }, 'Apply'),
    fcol ? h('a', { href: here({ fcol: '', fop: '', fval: '', after: '', before: '', from: '' }), class: 'button' }, 'Clear') : null,
  );

  // Jump to a key (in key order).
  const keyInputs = keyless ? [] : t.primary_key.map((k, i) => h('input', { id: 'jump-' + i, 'aria-label': `Key ${k}`, placeholder: k, size: 10, value: from && !sort ? from[i] ?? '' : '', autocomplete: 'off', spellcheck: 'false' }));
  const jumpForm = keyless
    ? null
    : h(
        'form',
        {
          class: 'filter',
          onsubmit: (e) => {
            e.preventDefault();
            navigate(here({ sort: '', desc: '', from: JSON.stringify(keyInputs.map((x) => x.value)), after: '', before: '' }));
          },
        },
        h('label', { for: 'jump-0' }, 'Jump to key'),
        keyInputs,
        h('button', { type: 'submit', 'data-focus': 'jump' }, 'Go'),
      );

  const sizeSel = h(
    'select',
    { id: 'size', onchange: () => navigate(here({ size: sizeSel.value === '50' ? '' : sizeSel.value, after: '', before: '', from: '' })) },
    SIZES.map((n) => h('option', { value: n, selected: n === size }, `${n} rows a page`)),
  );

  fill(
    main,
    repoHeader(o, d, 'data', ref),
    h(
      'div',
      { class: 'toolbar' },
      refPicker(ref, names, (r) => navigate(links.table(o, d, r, table, state)), 'Branch'),
      h('a', { href: links.db(o, d, ref) }, '← All tables'),
    ),
    h(
      'div',
      { class: 'table-title' },
      h('h2', {}, table),
      h('span', { class: 'muted' }, `${num(t.row_count)} rows · ${cols.length} columns · key ${keyless ? 'none (keyless)' : t.primary_key.join(', ')}`),
      h('span', { class: 'spacer' }),
      csvLink(o, d, ref, table, info && info.visibility === 'private'),
      h('a', { href: links.sql(o, d, ref, `SELECT * FROM ${ident(table)} LIMIT 100`), class: 'button' }, 'Query in SQL'),
    ),
    h('div', { class: 'controls' }, filterForm, sort ? null : jumpForm, h('label', { class: 'sr-only', for: 'size' }, 'Rows a page'), sizeSel),
    pagers[0],
    grid,
    pagers[1],
    status,
  );

  let res;
  try {
    res = await sql(o, d, ref, q.sql, { signal });
  } catch (e) {
    if (e.name !== 'AbortError') fill(grid, errorBox(e));
    return;
  }
  const body = res.body;
  if (body.query_execution_status === 'Error') {
    fill(grid, errorBox(body.query_execution_message));
    return;
  }
  let rows = body.rows || [];
  const more = rows.length > size;
  if (more) rows = rows.slice(0, size);
  if (q.reversed) rows.reverse();
  if (before && !more) {
    // Fewer rows than a page before the cursor: that is the start; show the first page.
    navigate(here({}), { replace: true });
    return;
  }
  const valuesOf = (r) => order.map((c) => (c.name === 'rowid' ? r[ROWID] : r[c.name]));
  const first = rows.length ? valuesOf(rows[0]) : null;
  const last = rows.length ? valuesOf(rows[rows.length - 1]) : null;
  const hasPrev = !!cursor && !(before && !more) && rows.length > 0;
  const hasNext = before ? true : more;
  for (const p of pagers) {
    fill(
      p,
      pager({
        first: cursor ? here({}) : null,
        prev: hasPrev ? here({ before: JSON.stringify(first) }) : null,
        next: hasNext && last ? here({ after: JSON.stringify(last) }) : null,
        info: rows.length ? `${num(rows.length)} rows shown` : null,
      }),
    );
  }
  fill(
    grid,
    rows.length
      ? scroller(
          h(
            'table',
            { class: 'data', id: 'rows' },
            h('caption', { class: 'sr-only' }, `Rows of ${table}`),
            h('thead', {}, head),
            h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => valueCell(r[c.name], c.type))))),
          ),
          `Rows of ${table}`,
        )
      : h('p', { class: 'muted empty-state' }, where ? 'No rows match the filter.' : cursor ? 'No more rows.' : 'This table has no rows.'),
  );
  fill(status, `Page fetched in ${Math.round(res.ms)} ms.`);
  if (where) {
    const c = await sql(o, d, ref, `SELECT count(*) AS n FROM ${ident(table)} WHERE ${where}`, { signal }).catch(() => null);
    if (c && c.body.rows && c.body.rows[0]) status.append(` ${num(c.body.rows[0].n)} rows match the filter.`);
  }
}
