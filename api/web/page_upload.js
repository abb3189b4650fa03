// page_upload.js: /repositories/O/D/upload. Pick or drop a file, choose the table, the branch and
// the operation, the primary key from the file's own header (read here, in the browser); then a
// progress bar for the bytes sent, and the import's own progress (phase, rows) from polling its
// operation until it is Completed (a link to its pull request) or Failed (the rejected rows).
// The operation goes into the URL (?op=), so a reload or a shared link keeps following it.
import { get, upload, db as dbPath } from './api.js';
import { h, fill, errorBox, num, bytes, sleep, scroller, valueCell } from './dom.js';
import { links, setQuery } from './router.js';
import { repoHeader, branches as listBranches, roleAtLeast } from './parts.js';
import { readHeader, typeOf } from './filehead.js';

const OPS = [
  ['Create', 'A new table from this file. Fails if the table exists.'],
  ['Update', 'Insert new rows and change existing ones by primary key, over the columns in the file. Other rows and columns stay.'],
  ['Replace', 'The table’s rows become exactly the rows of this file. Its schema stays.'],
  ['Overwrite', 'Drop the table and create it again with the columns and types of this file.'],
  ['Append', 'Insert only. A key that already exists fails the import.'],
];
const TYPES = [
  ['Csv', 'CSV (comma)'],
  ['Tsv', 'TSV (tab)'],
  ['Psv', 'PSV (pipe)'],
  ['Json', 'JSON (rows, array or lines)'],
];

function rejectedTable(result) {
  const rows = (result && result.rejected_rows) || [];
  if (!rows.length) return null;
  const total = result.rejected_total || rows.length;
  return h(
    'section',
    { 'aria-labelledby': 'h-rejected' },
    h('h3', { id: 'h-rejected' }, `Rejected rows (${num(total)})`),
    total > rows.length ? h('p', { class: 'muted' }, `The first ${num(rows.length)} of ${num(total)} are listed.`) : null,
    scroller(
      h(
        'table',
        { class: 'data', id: 'rejected' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, 'Line'), h('th', { scope: 'col', class: 'num' }, 'Column'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, 'Reason'))),
        h('tbody', {}, rows.map((r) => h('tr', {}, valueCell(String(r.line), 'integer'), valueCell(r.column === undefined ? null : String(r.column), 'integer'), valueCell(r.value ?? null), h('td', {}, r.reason)))),
      ),
      'Rejected rows',
    ),
  );
}

// Follow operation `op` (its uuid) into `box` until it ends.
async function follow(box, o, d, op, signal, ready) {
  const name = `repositoryOwners/${o}/repositories/${d}/jobs/${op}`;
  const phase = h('p', { class: 'phase', 'aria-live': 'polite' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Import progress' });
  const detail = h('p', { class: 'muted small' });
  fill(box, h('h2', {}, 'Import'), phase, bar, detail);
  for (;;) {
    let r;
    try {
      r = await get(dbPath(o, d) + '/upload', { operationName: name }, { signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(box, h('h2', {}, 'Import'), errorBox(e));
      return;
    }
    const p = r.progress || {};
    const frac = p.bytes_total ? p.bytes_read / p.bytes_total : 0;
    box.dataset.state = r.job_status;
    ready();
    if (r.job_status === 'Pending') {
      fill(phase, 'Waiting for a worker to start the import…');
      bar.removeAttribute('value');
    } else if (r.job_status === 'In Progress') {
      if (frac < 1) {
        fill(phase, `Reading the file: ${Math.floor(frac * 100)}%`);
        bar.value = frac;
      } else {
        fill(phase, 'Writing the table and the commit…');
        bar.removeAttribute('value');
      }
      fill(detail, `${num(p.rows_processed || 0)} rows read · ${bytes(p.bytes_read || 0)} of ${bytes(p.bytes_total || 0)}`);
    } else if (r.job_status === 'Completed') {
      const res = r.result || {};
      bar.value = 1;
      fill(phase, h('strong', {}, 'Completed. '), `${num(res.rows_added || 0)} rows added, ${num(res.rows_modified || 0)} modified, ${num(res.rows_removed || 0)} removed in table ${r.table_name}.`);
      fill(
        detail,
        r.pull_id
          ? h('a', { href: links.pull(o, d, r.pull_id), class: 'button primary', id: 'pull-link' }, `Review pull request #${r.pull_id}`)
          : 'Nothing changed, so no pull request was opened.',
        ' ',
        h('a', { href: links.upload(o, d, { branch: r.branch_name }) }, 'Upload another file'),
      );
      return;
    } else if (r.job_status === 'Failed') {
      bar.remove();
      fill(phase, h('strong', {}, 'Failed. '), 'Nothing was committed.');
      fill(
        detail,
        errorBox(r.message + (r.line ? ` (line ${r.line}${r.column ? `, column ${r.column}` : ''})` : '')),
        rejectedTable(r.result),
        h('p', {}, h('a', { href: links.upload(o, d, { branch: r.branch_name }) }, 'Upload a corrected file')),
      );
      return;
    }
    await sleep(300, signal);
    if (signal.aborted) return;
  }
}

export default async function render({ main, params, query, signal, user, ready }) {
  const { owner: o, db: d } = params;
  document.title = `Upload · ${o}/${d} · tablehub`;
  const op = query.get('op');
  const status = h('section', { class: 'card', id: 'import-status', 'aria-live': 'polite' });
  if (op) {
    fill(main, repoHeader(o, d, 'upload'), status);
    await follow(status, o, d, op, signal, ready);
    return;
  }
  if (!user) {
    fill(main, repoHeader(o, d, 'upload'), h('p', { class: 'card' }, h('a', { href: links.signin(location.pathname + location.search) }, 'Sign in'), ' to upload files.'));
    return;
  }
  const [names, tables] = await Promise.all([listBranches(o, d, signal), get(dbPath(o, d) + '/tables', { ref: query.get('branch') || 'main' }, { signal }).catch(() => ({ tables: [] }))]);
  // Anyone with the write role uploads (the server's rule); a reader is told whom to ask.
  if (tables.viewer_role && !roleAtLeast(tables.viewer_role, 'write')) {
    fill(main, repoHeader(o, d, 'upload'), h('p', { class: 'card', id: 'upload-needs' }, `Uploading into ${o}/${d} needs the write role; you have ${tables.viewer_role}. Ask ${o} to make you a collaborator with the write role.`));
    return;
  }
  const existing = new Set(tables.tables.map((t) => t.table_name));
  let file = null;
  let columns = [];

  const fileInput = h('input', { type: 'file', id: 'file', accept: '.csv,.tsv,.psv,.json,.jsonl,text/csv,application/json', class: 'file-input' });
  const dropLabel = h('span', { class: 'drop-text' }, 'Choose a file or drop it here');
  const drop = h('label', { for: 'file', class: 'drop' }, dropLabel, h('span', { class: 'muted small' }, 'CSV, TSV, PSV or JSON, up to the server’s upload limit'));
  const tableIn = h('input', { id: 'table', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', autocomplete: 'off', list: 'tables-list', spellcheck: 'false' });
  const branchSel = h('select', { id: 'branch' }, names.map((b) => h('option', { value: b, selected: b === (query.get('branch') || 'main') }, b)));
  const typeSel = h('select', { id: 'ftype' }, TYPES.map(([v, l]) => h('option', { value: v }, l)));
  const opInputs = OPS.map(([v], i) => h('input', { type: 'radio', name: 'op', value: v, id: 'op-' + v, checked: i === 0, 'aria-describedby': 'op-help-' + v }));
  const pkBox = h('div', { class: 'pk-list' }, h('p', { class: 'muted' }, 'Choose a file to see its columns.'));
  const pkField = h('fieldset', { id: 'pk-field' }, h('legend', {}, 'Primary key'), pkBox, h('p', { class: 'help' }, 'The columns that identify a row. None: a keyless table, where duplicate rows are kept.'));
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Upload');
  const sendBar = h('progress', { max: 1, value: 0, 'aria-label': 'Bytes sent', hidden: true });
  const sendText = h('p', { class: 'muted small' });
  const sending = h('section', { class: 'sending', 'aria-label': 'File upload' }, h('h2', { class: 'sr-only' }, 'Upload'), sendBar, sendText);

  const chosenOp = () => opInputs.find((x) => x.checked).value;
  function syncOp() {
    const keyed = chosenOp() === 'Create' || chosenOp() === 'Overwrite';
    pkField.disabled = !keyed;
    pkField.classList.toggle('dim', !keyed);
    if (!keyed) pkField.title = 'The table keeps its own primary key';
    else pkField.removeAttribute('title');
  }
  opInputs.forEach((x) => x.addEventListener('change', syncOp));
  function suggestOp() {
    const name = tableIn.value.trim();
    const want = existing.has(name) ? 'Update' : 'Create';
    if (existing.has(name) === (chosenOp() === 'Create')) opInputs.find((x) => x.value === want).checked = true;
    syncOp();
  }
  tableIn.addEventListener('change', suggestOp);

  async function takeFile(f) {
    file = f;
    fill(msg);
    fill(dropLabel, f.name, ' ', h('span', { class: 'muted' }, `(${bytes(f.size)})`));
    typeSel.value = typeOf(f.name);
    if (!tableIn.value) tableIn.value = f.name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64) || 'data';
    suggestOp();
    await showColumns();
    submit.disabled = false;
  }
  async function showColumns() {
    try {
      columns = await readHeader(file, typeSel.value);
    } catch (e) {
      columns = [];
      fill(pkBox, errorBox(`cannot read the file's header: ${e.message}`));
      return;
    }
    fill(
      pkBox,
      columns.map((c, i) =>
        h('label', { class: 'choice' }, h('input', { type: 'checkbox', name: 'pk', value: c, checked: i === 0 }), ' ', h('span', { class: 'mono' }, c)),
      ),
    );
  }
  typeSel.addEventListener('change', () => file && showColumns());
  fileInput.addEventListener('change', () => fileInput.files[0] && takeFile(fileInput.files[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) takeFile(e.dataTransfer.files[0]);
  });

  const form = h(
    'form',
    {
      class: 'card upload-form',
      onsubmit: async (e) => {
        e.preventDefault();
        fill(msg);
        if (!file) return;
        const keyed = chosenOp() === 'Create' || chosenOp() === 'Overwrite';
        const pks = keyed ? [...pkBox.querySelectorAll('input[name=pk]:checked')].map((x) => x.value) : [];
        const params = { tableName: tableIn.value.trim(), fileName: file.name, branchName: branchSel.value, fileType: typeSel.value, importOp: chosenOp(), primaryKeys: pks };
        const fd = new FormData();
        fd.append('params', JSON.stringify(params));
        fd.append('file', file, file.name);
        submit.disabled = true;
        sendBar.hidden = false;
        fill(sendText, 'Sending…');
        const up = upload(dbPath(o, d) + '/upload', fd, (sent, total) => {
          sendBar.value = total ? sent / total : 0;
          fill(sendText, `Sent ${bytes(sent)} of ${bytes(total)}`);
        });
        signal.addEventListener('abort', up.abort);
        try {
          const r = await up.promise;
          const id = r.operation_name.split('/').pop();
          sendBar.value = 1;
          fill(sendText, `${file.name}: all ${bytes(file.size)} sent.`);
          setQuery({ op: id, branch: params.branchName }, { replace: false });
          form.replaceWith(status);
          // The bytes sent stay in view above the import's own progress.
          sending.classList.add('card');
          status.before(sending);
          await follow(status, o, d, id, signal, ready);
        } catch (err) {
          if (signal.aborted) return;
          submit.disabled = false;
          sendBar.hidden = true;
          fill(sendText);
          fill(msg, errorBox(err));
        }
      },
    },
    drop,
    fileInput,
    h('div', { class: 'field' }, h('label', { for: 'table' }, 'Table'), tableIn, h('datalist', { id: 'tables-list' }, [...existing].map((t) => h('option', { value: t })))),
    h('div', { class: 'field-row' }, h('div', { class: 'field' }, h('label', { for: 'branch' }, 'Branch'), branchSel), h('div', { class: 'field' }, h('label', { for: 'ftype' }, 'File type'), typeSel)),
    h('p', { class: 'help' }, 'The import is committed on a new branch and proposed for this branch as a pull request.'),
    h(
      'fieldset',
      { class: 'ops' },
      h('legend', {}, 'Operation'),
      OPS.map(([v, text], i) => h('div', { class: 'op' }, opInputs[i], h('label', { for: 'op-' + v }, h('strong', {}, v)), h('p', { id: 'op-help-' + v, class: 'help' }, text))),
    ),
    pkField,
    submit,
    msg,
  );
  fill(main, repoHeader(o, d, 'upload'), form, sending);
  syncOp();
}
