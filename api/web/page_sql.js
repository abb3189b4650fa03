// page_sql.js: /repositories/O/D/query/REF?q=. Read-only SQL at any ref: the query box (kept in
// the URL, so a query can be bookmarked and shared), the result as a table with column types, the
// time it took, and the sandbox's own refusal message when it says no.
import { get, sql, db as dbPath } from './api.js';
import { h, fill, errorBox, num } from './dom.js';
import { links, navigate } from './router.js';
import { repoHeader, branches as listBranches, refPicker, rowsTable } from './parts.js';
import { ident } from './sqlgen.js';

export default async function render({ main, params, query, signal }) {
  const { owner: o, db: d, ref } = params;
  const q = query.get('q') || '';
  document.title = `SQL · ${o}/${d} · tablehub`;
  const [names, tables] = await Promise.all([listBranches(o, d, signal), get(dbPath(o, d) + '/tables', { ref }, { signal }).catch(() => ({ tables: [] }))]);
  const box = h('textarea', { id: 'sql', rows: 5, spellcheck: 'false', autocomplete: 'off', class: 'mono', 'aria-describedby': 'sql-help' });
  box.value = q || (tables.tables[0] ? `SELECT * FROM ${ident(tables.tables[0].table_name)} LIMIT 100` : 'SHOW TABLES');
  const result = h('section', { 'aria-live': 'polite', 'aria-label': 'Result', id: 'result' });
  const run = () => navigate(links.sql(o, d, ref, box.value.trim()));
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  fill(
    main,
    repoHeader(o, d, 'sql', ref),
    h('div', { class: 'toolbar' }, refPicker(ref, names, (r) => navigate(links.sql(o, d, r, q)), 'At')),
    h(
      'form',
      {
        class: 'sql-form',
        onsubmit: (e) => {
          e.preventDefault();
          run();
        },
      },
      h('label', { for: 'sql' }, 'SQL query'),
      box,
      h(
        'p',
        { id: 'sql-help', class: 'help' },
        'Read-only SQLite over the tables at this ref; at most 1,000 rows and 10 seconds. Ctrl+Enter runs it.',
        tables.tables.length ? [' Tables: ', tables.tables.map((t, i) => [i ? ', ' : '', h('code', {}, t.table_name)])] : null,
      ),
      h('button', { type: 'submit', class: 'primary', 'data-focus': 'run' }, 'Run query'),
    ),
    result,
  );
  if (!q) return;
  fill(result, h('p', { class: 'muted' }, 'Running…'));
  let r;
  try {
    r = await sql(o, d, ref, q, { signal });
  } catch (e) {
    if (e.name !== 'AbortError') fill(result, errorBox(e));
    return;
  }
  const b = r.body;
  const ms = `${r.ms < 10 ? r.ms.toFixed(1) : Math.round(r.ms)} ms`;
  if (b.query_execution_status === 'Error') {
    fill(result, h('div', { class: 'error refusal', role: 'alert' }, h('strong', {}, 'The query was refused: '), b.query_execution_message), h('p', { class: 'muted small' }, ms));
    return;
  }
  const rows = b.rows || [];
  fill(
    result,
    h(
      'p',
      { class: 'result-meta' },
      h('strong', {}, `${num(rows.length)} row${rows.length === 1 ? '' : 's'}`),
      ` in ${ms}`,
      b.query_execution_status === 'RowLimit' ? h('span', { class: 'warn' }, ` · only the first ${num(rows.length)} rows are shown (RowLimit)`) : null,
      b.query_execution_message && b.query_execution_status !== 'RowLimit' ? ` · ${b.query_execution_message}` : null,
    ),
    rows.length || (b.schema || []).length ? rowsTable((b.schema || []).map((c) => ({ name: c.columnName, type: c.columnType })), rows, 'Query result') : null,
  );
}
