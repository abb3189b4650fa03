// page_pull.js: /repositories/O/D/pulls/ID. One pull request: its title and description
// (editable by the author and the write role), what its merge needs and what blocks it (the
// viewer's own role among it), the diff table by table (schema changes above the rows; rows
// added, removed and modified, each changed cell highlighted with its old value beside the new;
// paged, filterable by kind), comments and reviews (reviews from the write role), the reviewers
// requested with their latest review (asked for and withdrawn here by the author and the write
// role; a reviewer withdraws their own), and the merge button, which starts the merge and
// follows its operation until the pull is Merged or the conflicts are listed. ?table= ?type=
// ?page= pick the rows; ?merge= follows a merge across a reload.
import { get, post, patch, del, db as dbPath } from './api.js';
import { h, fill, append, errorBox, time, badge, num, setValue, isNumeric, scroller, sleep, short } from './dom.js';
import { links, navigate, setQuery } from './router.js';
import { repoHeader, pager, roleAtLeast } from './parts.js';
import { reviewSummary } from './page_pulls.js';

const PAGE = 50;
const KINDS = [
  ['', 'All'],
  ['added', 'Added'],
  ['modified', 'Modified'],
  ['removed', 'Removed'],
];
const MARK = { added: ['+', 'added'], removed: ['−', 'removed'], modified: ['~', 'modified'] };

const refresh = () => navigate(location.pathname + location.search, { replace: true });

// Remember, per pull/table/kind, which page token came before which, so Previous works after
// Next (the API's tokens only go forward). Kept for the browser tab's life.
function prevTokens(key) {
  const k = 'tablehub.diffpages.' + key;
  const m = JSON.parse(sessionStorage.getItem(k) || '{}');
  return {
    prev: (tok) => (tok in m ? m[tok] : null),
    record: (tok, next) => {
      m[next] = tok;
      sessionStorage.setItem(k, JSON.stringify(m));
    },
  };
}

function conflictsTable(list, total) {
  return h(
    'div',
    {},
    scroller(
      h(
        'table',
        { class: 'data', id: 'conflicts' },
        h('caption', {}, `${num(total ?? list.length)} conflict${(total ?? list.length) === 1 ? '' : 's'}`),
        h('thead', {}, h('tr', {}, ['Table', 'Key', 'Column', 'Base', 'Ours (target)', 'Theirs (this pull)', 'Why'].map((x) => h('th', { scope: 'col' }, x)))),
        h(
          'tbody',
          {},
          list.map((c) =>
            h('tr', {}, h('td', {}, c.table), h('td', { class: 'mono' }, c.key ?? ''), h('td', {}, c.column ?? ''), setValue(h('td'), c.base), setValue(h('td', { class: 'ours' }), c.ours), setValue(h('td', { class: 'theirs' }), c.theirs), h('td', { class: 'muted' }, c.reason || '')),
          ),
        ),
      ),
      'Conflicts',
    ),
    total > list.length ? h('p', { class: 'muted' }, `The first ${num(list.length)} are listed.`) : null,
  );
}

function schemaChanges(t) {
  const items = [];
  if (t.diff_type === 'added') items.push(h('li', {}, 'New table with columns in the rows below.'));
  if (t.diff_type === 'dropped') items.push(h('li', {}, 'The table is dropped.'));
  for (const c of t.columns_added || []) items.push(h('li', {}, 'Column ', h('code', {}, c), ' added'));
  for (const c of t.columns_dropped || []) items.push(h('li', {}, 'Column ', h('code', {}, c), ' dropped'));
  for (const c of t.columns_retyped || []) items.push(h('li', {}, 'Column ', h('code', {}, c.column_name), ` changed type from ${c.from_type} to ${c.to_type}`));
  if (t.key_changed) {
    items.push(h('li', {}, 'Primary key changed from ', h('code', {}, (t.from_primary_key || []).join(', ') || 'none'), ' to ', h('code', {}, (t.to_primary_key || []).join(', ') || 'none'), ': every row is listed as removed, then added.'));
  }
  if (!items.length) return null;
  return h('section', { class: 'schema-changes', 'aria-label': 'Schema changes' }, h('h4', {}, 'Schema changes'), h('ul', {}, items));
}

// The rows of one page of a table's diff.
function diffRows(rows, columns, dropped) {
  const all = [...columns, ...dropped.map((name) => ({ name, type: '', dropped: true }))];
  return scroller(
    h(
      'table',
      { class: 'data diff', id: 'diff-rows' },
      h('caption', { class: 'sr-only' }, 'Changed rows'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'kind' }, h('span', { class: 'sr-only' }, 'Change')), all.map((c) => h('th', { scope: 'col', class: (isNumeric(c.type) ? 'num ' : '') + (c.dropped ? 'dropped' : '') }, h('span', { class: 'col-name' }, c.name), h('span', { class: 'col-type' }, c.dropped ? 'dropped' : c.type))))),
      h(
        'tbody',
        {},
        rows.map((r) => {
          const [mark, word] = MARK[r.diff_type] || ['?', r.diff_type];
          const src = r.after || r.before || {};
          const changed = new Set(r.changed_columns || []);
          return h(
            'tr',
            { class: 'row-' + r.diff_type },
            h('td', { class: 'kind', title: word }, h('span', { 'aria-hidden': 'true' }, mark), h('span', { class: 'sr-only' }, word), r.count > 1 ? ` ×${r.count}` : null),
            all.map((c) => {
              if (c.dropped) return setValue(h('td', { class: 'dropped' }), r.before ? r.before[c.name] : null);
              if (r.diff_type === 'modified' && changed.has(c.name)) {
                const oldV = r.before && c.name in r.before ? r.before[c.name] : null;
                return h(
                  'td',
                  { class: 'changed' + (isNumeric(c.type) ? ' num' : '') },
                  setValue(h('del', { class: 'old', title: 'old value' }), oldV, c.type),
                  setValue(h('ins', { class: 'new', title: 'new value' }), r.after[c.name], c.type),
                );
              }
              return setValue(h('td'), src[c.name], c.type);
            }),
          );
        }),
      ),
    ),
    'Changed rows',
  );
}

export default async function render({ main, params, query, signal, user, ready }) {
  const { owner: o, db: d, id } = params;
  const path = `${dbPath(o, d)}/pulls/${encodeURIComponent(id)}`;
  document.title = `Pull request #${id} · ${o}/${d} · tablehub`;
  fill(main, repoHeader(o, d, 'pulls', undefined, false), h('p', { class: 'muted' }, 'Loading…'));
  // The diff's first page and its summary come in one request when no table is named (the rows
  // then start with the first changed table); with a table named, the summary of every table and
  // that table's page are asked for at once (the server counts a diff once and then walks only the
  // rows of the page asked for).
  const wantTable = query.get('table') || '';
  const kind = KINDS.some(([k]) => k === query.get('type')) ? query.get('type') || '' : '';
  const page = query.get('page') || '';
  const rowsQuery = { table: wantTable, type: kind, pageSize: PAGE, pageToken: page };
  const [p, summary, tableRows] = await Promise.all([
    get(path, {}, { signal }),
    get(path + '/diff', wantTable ? { pageSize: 1 } : rowsQuery, { signal }).catch((e) => e),
    wantTable ? get(path + '/diff', rowsQuery, { signal }).catch((e) => e) : null,
  ]);
  // The page offers what the server allows the viewer: their role here (viewer_role, capped by
  // their token's scope) against what each action needs.
  const canWrite = !!user && roleAtLeast(p.viewer_role, 'write');
  const canEdit = !!user && (canWrite || user === p.author);
  const open = p.state === 'Open';

  // --- title, description, editing ---
  const head = h(
    'div',
    { class: 'pull-head' },
    h('h1', { tabindex: '-1', id: 'pull-title' }, h('span', { class: 'muted' }, `#${p.pull_id} `), p.title || '(untitled)'),
    h(
      'p',
      { class: 'pull-sub' },
      badge(p.state),
      ' ',
      h('strong', {}, p.author),
      ' wants to merge ',
      h('a', { href: links.db(o, d, p.from_branch_name), class: 'branch' }, p.from_branch_name),
      ' into ',
      h('a', { href: links.db(o, d, p.to_branch_name), class: 'branch' }, p.to_branch_name),
      ' · opened ',
      time(p.created_at),
    ),
  );
  const desc = h('div', { class: 'description' }, p.description ? h('p', { class: 'pre' }, p.description) : h('p', { class: 'muted' }, 'No description.'));
  if (canEdit) {
    const editBtn = h('button', { type: 'button', 'data-focus': 'edit' }, 'Edit title and description');
    const titleIn = h('input', { id: 'edit-title', value: p.title });
    const descIn = h('textarea', { id: 'edit-desc', rows: 4 });
    descIn.value = p.description;
    const emsg = h('div', { 'aria-live': 'polite' });
    const form = h(
      'form',
      {
        class: 'card',
        hidden: true,
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await patch(path, { title: titleIn.value, description: descIn.value });
            refresh();
          } catch (err) {
            fill(emsg, errorBox(err));
          }
        },
      },
      h('div', { class: 'field' }, h('label', { for: 'edit-title' }, 'Title'), titleIn),
      h('div', { class: 'field' }, h('label', { for: 'edit-desc' }, 'Description'), descIn),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: () => ((form.hidden = true), (editBtn.hidden = false), editBtn.focus()) }, 'Cancel')),
      emsg,
    );
    editBtn.addEventListener('click', () => {
      form.hidden = false;
      editBtn.hidden = true;
      titleIn.focus();
    });
    append(desc, [editBtn, form]);
  }

  // --- merge box ---
  const mergeBox = h('section', { class: 'card merge-box', id: 'merge-box', 'aria-labelledby': 'h-merge' });
  const reviewState = reviewSummary(p.reviews);
  function reviewersPart() {
    const list = p.requested_reviewers || [];
    const rmsg = h('div', { 'aria-live': 'polite', id: 'reviewers-msg' });
    const withdraw = (r) =>
      open && user && (canEdit || user === r.username)
        ? [
            ' ',
            h(
              'button',
              {
                type: 'button',
                class: 'link small',
                'aria-label': `Withdraw the review request to ${r.username}`,
                onclick: async () => {
                  try {
                    await del(`${path}/reviewers/${encodeURIComponent(r.username)}`);
                    refresh();
                  } catch (e) {
                    fill(rmsg, errorBox(e));
                  }
                },
              },
              'withdraw',
            ),
          ]
        : null;
    const nameIn = h('input', { id: 'reviewer-name', autocomplete: 'off', placeholder: 'user name', size: 16 });
    const form =
      open && canEdit
        ? h(
            'form',
            {
              class: 'inline small',
              id: 'reviewer-add',
              onsubmit: async (e) => {
                e.preventDefault();
                const name = nameIn.value.trim();
                if (!name) return;
                try {
                  await post(path + '/reviewers', { reviewers: [name] });
                  refresh();
                } catch (err) {
                  fill(rmsg, errorBox(err));
                }
              },
            },
            h('label', { for: 'reviewer-name' }, 'Ask for a review from '),
            nameIn,
            ' ',
            h('button', { type: 'submit' }, 'Request'),
          )
        : null;
    return h(
      'div',
      { class: 'reviewers-box' },
      h(
        'p',
        { class: 'reviewers small', id: 'reviewers' },
        list.length
          ? ['Reviewers: ', list.map((r, i) => [i ? ', ' : '', h('strong', {}, r.username), ' ', r.review_status ? badge(r.review_status === 'Rejected' ? 'Changes requested' : r.review_status) : h('span', { class: 'muted' }, '(review requested)'), withdraw(r)])]
          : h('span', { class: 'muted' }, 'No reviewers requested.'),
      ),
      form,
      rmsg,
    );
  }

  async function drawMerge() {
    const blockers = [];
    let conflicts = null;
    if (open) {
      try {
        conflicts = await get(path + '/conflicts', {}, { signal });
      } catch (e) {
        if (e.name === 'AbortError') return;
        blockers.push(`cannot check for conflicts: ${e.message}`);
      }
    }
    if (!open) blockers.push(`This pull request is ${p.state}.`);
    else if (!user) blockers.push('Sign in to merge.');
    else if (!roleAtLeast(p.viewer_role, p.merge_role)) blockers.push(`Merging into ${p.to_branch_name} needs the ${p.merge_role} role on ${o}/${d}; you have ${p.viewer_role}. Ask ${o} for it.`);
    // The server's own answer under the branch's protection: the message it would refuse the
    // merge with (409), naming the rule.
    else if (p.mergeable === false && p.merge_blocked_by) blockers.push(h('span', { class: 'rule-block' }, p.merge_blocked_by.message, p.merge_blocked_by.rule ? [' ', h('code', { class: 'rule' }, p.merge_blocked_by.rule)] : null));
    if (conflicts && conflicts.conflicts_total > 0) {
      blockers.push(`${num(conflicts.conflicts_total)} conflicting change${conflicts.conflicts_total === 1 ? '' : 's'} with ${p.to_branch_name}: the same cells were changed differently on both sides (listed below). Update the data so they agree, then merge.`);
    }
    const mergeBtn = h('button', { type: 'button', class: 'primary', id: 'merge', disabled: blockers.length > 0, 'aria-describedby': 'merge-why', 'data-focus': 'merge' }, `Merge into ${p.to_branch_name}`);
    const progress = h('div', { id: 'merge-progress', 'aria-live': 'polite' });
    mergeBtn.addEventListener('click', async () => {
      mergeBtn.disabled = true;
      try {
        const r = await post(path + '/merge', undefined);
        const op = r.operation_name.split('/').pop();
        setQuery({ merge: op }, { replace: true });
        await followMerge(op, progress);
      } catch (e) {
        if (e.name !== 'AbortError') fill(progress, errorBox(e));
        mergeBtn.disabled = false;
      }
    });
    const closeBtn =
      open && canEdit
        ? h('button', {
            type: 'button',
            class: 'danger-link',
            onclick: async () => {
              try {
                await patch(path, { state: 'closed' });
                refresh();
              } catch (e) {
                fill(progress, errorBox(e));
              }
            },
          }, 'Close without merging')
        : null;
    fill(
      mergeBox,
      h('h2', { id: 'h-merge' }, p.state === 'Merged' ? 'Merged' : 'Merge'),
      p.state === 'Merged' ? h('p', {}, badge('Merged'), ' into ', h('strong', {}, p.to_branch_name), p.merge_commit ? [' as ', h('a', { href: links.db(o, d, p.merge_commit), class: 'mono' }, short(p.merge_commit))] : null, ' · ', time(p.updated_at), p.branch_deleted ? [' · ', h('span', { id: 'branch-deleted' }, `branch ${p.from_branch_name} deleted`)] : null) : null,
      h('p', { class: 'review-state' }, reviewState ? ['Reviews: ', badge(reviewState)] : h('span', { class: 'muted' }, 'No review yet.')),
      // The reviewers asked for, each with their latest review; the write role and the author ask
      // for more and withdraw a request, and a reviewer withdraws their own.
      reviewersPart(),
      h(
        'p',
        { class: 'rules small', id: 'merge-rules' },
        p.protected
          ? [
              h('span', { class: 'badge' }, 'Protected'),
              ` ${p.to_branch_name} needs ${p.required_approvals} approving review${p.required_approvals === 1 ? '' : 's'} (this pull has ${p.approvals}); people with the ${p.merge_role} role merge into it.`,
            ]
          : h('span', { class: 'muted' }, `${p.to_branch_name} is not protected: approvals are advice, and anyone with the write role can merge.`),
      ),
      blockers.length ? h('ul', { id: 'merge-why', class: 'blockers' }, blockers.map((b) => h('li', {}, b))) : open ? h('p', { id: 'merge-why', class: 'ok' }, 'No conflicts, and the branch’s rules are met: this pull request can be merged.') : null,
      open ? h('div', { class: 'buttons' }, mergeBtn, closeBtn) : null,
      progress,
      conflicts && conflicts.conflicts_total > 0 ? conflictsTable(conflicts.conflicts, conflicts.conflicts_total) : null,
    );
    const following = query.get('merge');
    if (following && open) await followMerge(following, progress);
  }
  async function followMerge(op, box) {
    const name = `repositoryOwners/${o}/repositories/${d}/jobs/${op}`;
    for (;;) {
      let r;
      try {
        r = await get(path + '/merge', { operationName: name }, { signal });
      } catch (e) {
        if (e.name !== 'AbortError') fill(box, errorBox(e));
        return;
      }
      if (r.job_status === 'Completed') {
        setQuery({ merge: '' }, { replace: true });
        refresh();
        return;
      }
      if (r.job_status === 'Failed') {
        setQuery({ merge: '' }, { replace: true });
        fill(box, errorBox(`The merge failed: ${r.message}`), r.conflicts && r.conflicts.length ? conflictsTable(r.conflicts, r.conflicts_total) : null);
        return;
      }
      fill(box, h('p', { class: 'phase' }, h('progress', { 'aria-label': 'Merging' }), ` Merging: ${r.job_status}…`));
      ready();
      await sleep(250, signal);
      if (signal.aborted) return;
    }
  }

  // --- diff ---
  const diffBox = h('section', { class: 'diff-box', 'aria-labelledby': 'h-diff' });
  async function drawDiff() {
    if (summary instanceof Error) {
      fill(diffBox, h('h2', { id: 'h-diff' }, 'Changes'), errorBox(summary));
      return;
    }
    const tables = summary.tables || [];
    if (!tables.length) {
      fill(diffBox, h('h2', { id: 'h-diff' }, 'Changes'), h('p', { class: 'muted' }, 'No changes.'));
      return;
    }
    const tname = tables.some((t) => t.table_name === wantTable) ? wantTable : tables[0].table_name;
    if (wantTable && tname !== wantTable) {
      navigate(links.pull(o, d, id), { replace: true }); // no such changed table: the first one
      return;
    }
    const t = tables.find((x) => x.table_name === tname);
    const here = (extra) => links.pull(o, d, id, { table: tname === tables[0].table_name ? '' : tname, type: kind, page, ...extra });
    const counts = { '': t.rows_added + t.rows_modified + t.rows_removed, added: t.rows_added, modified: t.rows_modified, removed: t.rows_removed };
    const rowsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading rows…'));
    fill(
      diffBox,
      h('h2', { id: 'h-diff' }, 'Changes'),
      h(
        'nav',
        { class: 'table-tabs', 'aria-label': 'Changed tables' },
        tables.map((x) =>
          h(
            'a',
            { href: links.pull(o, d, id, { table: x === tables[0] ? '' : x.table_name }), class: 'tab', 'aria-current': x.table_name === tname ? 'page' : false },
            x.table_name,
            ' ',
            h('span', { class: 'plus' }, `+${num(x.rows_added)}`),
            ' ',
            h('span', { class: 'mod' }, `~${num(x.rows_modified)}`),
            ' ',
            h('span', { class: 'minus' }, `−${num(x.rows_removed)}`),
            x.diff_type !== 'modified' ? [' ', badge(x.diff_type)] : null,
          ),
        ),
      ),
      schemaChanges(t),
      h(
        'nav',
        { class: 'subtabs', 'aria-label': 'Kind of change' },
        KINDS.map(([k, label]) => h('a', { href: here({ type: k, page: '' }), class: 'tab', 'aria-current': k === kind ? 'page' : false, 'data-focus': 'kind-' + (k || 'all') }, `${label} (${num(counts[k])})`)),
      ),
      rowsBox,
    );
    try {
      let r = wantTable ? tableRows : summary;
      if (r instanceof Error) throw r;
      if (!wantTable && r.rows.some((x) => x.table_name !== tname)) {
        // This table's rows ended within the page: the rest belong to the next tables.
        r = { ...r, rows: r.rows.filter((x) => x.table_name === tname), next_page_token: '' };
      }
      const schema = await get(dbPath(o, d) + '/tables', { ref: t.diff_type === 'dropped' ? summary.from_commit_id : summary.to_commit_id }, { signal }).catch(() => ({ tables: [] }));
      const st = schema.tables.find((x) => x.table_name === tname);
      let columns = st ? st.columns : [];
      if (!columns.length && r.rows.length) columns = Object.keys(r.rows[0].after || r.rows[0].before || {}).map((name) => ({ name, type: '' }));
      const dropped = t.diff_type === 'dropped' ? [] : t.columns_dropped || [];
      const toks = prevTokens(`${o}/${d}/${id}/${tname}/${kind}`);
      if (r.next_page_token) toks.record(page, r.next_page_token);
      const prev = page ? toks.prev(page) : null;
      const bar = () =>
        pager({
          first: page ? here({ page: '' }) : null,
          prev: page && prev !== null ? here({ page: prev }) : null,
          next: r.next_page_token ? here({ page: r.next_page_token }) : null,
          info: `${num(r.rows.length)} of ${num(counts[kind])} rows`,
        });
      fill(rowsBox, r.rows.length ? [bar(), diffRows(r.rows, columns, dropped), bar()] : h('p', { class: 'muted empty-state' }, kind ? `No ${kind} rows.` : 'No row changes: only the schema changed.'));
    } catch (e) {
      if (e.name !== 'AbortError') fill(rowsBox, errorBox(e));
    }
  }

  // --- conversation ---
  const notes = [...(p.comments || []).map((c) => ({ ...c, kind: 'comment' })), ...(p.reviews || []).map((r) => ({ ...r, kind: 'review' }))].sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
  const verdict = { Approved: 'approved', Rejected: 'requested changes', Reviewed: 'reviewed' };
  const timeline = h(
    'ol',
    { class: 'timeline', id: 'timeline' },
    notes.map((n) =>
      h(
        'li',
        { class: 'note note-' + n.kind },
        h('p', { class: 'note-head' }, h('strong', {}, n.author), ' ', n.kind === 'review' ? [verdict[n.review_status] || n.review_status, ' ', badge(n.review_status === 'Rejected' ? 'Changes requested' : n.review_status)] : 'commented', ' · ', time(n.created_at)),
        n.comment ? h('p', { class: 'pre note-body' }, n.comment) : null,
      ),
    ),
  );
  const commentIn = h('textarea', { id: 'comment', rows: 3 });
  const cmsg = h('div', { 'aria-live': 'polite' });
  const act = (fn) => async () => {
    fill(cmsg);
    try {
      await fn();
      refresh();
    } catch (e) {
      fill(cmsg, errorBox(e));
    }
  };
  const talk = h(
    'section',
    { 'aria-labelledby': 'h-talk', class: 'talk' },
    h('h2', { id: 'h-talk' }, 'Conversation'),
    notes.length ? timeline : h('p', { class: 'muted' }, 'No comments or reviews yet.'),
    user
      ? h(
          'form',
          {
            class: 'card',
            onsubmit: (e) => {
              e.preventDefault();
              act(() => {
                if (!commentIn.value.trim()) throw new Error('write a comment first');
                return post(path + '/comments', { comment: commentIn.value });
              })();
            },
          },
          h('label', { for: 'comment' }, 'Comment'),
          commentIn,
          h(
            'div',
            { class: 'buttons' },
            h('button', { type: 'submit', 'data-focus': 'comment' }, 'Comment'),
            canWrite
              ? [
                  h('button', { type: 'button', class: 'approve', 'data-focus': 'approve', onclick: act(() => post(path + '/reviews', { reviewStatus: 'Approved', comment: commentIn.value })) }, 'Approve'),
                  h('button', { type: 'button', class: 'reject', 'data-focus': 'reject', onclick: act(() => post(path + '/reviews', { reviewStatus: 'Rejected', comment: commentIn.value })) }, 'Request changes'),
                ]
              : h('span', { class: 'muted small', id: 'review-needs' }, `Approving or requesting changes needs the write role on ${o}/${d}.`),
          ),
          cmsg,
        )
      : h('p', {}, h('a', { href: links.signin(location.pathname + location.search) }, 'Sign in'), ' to comment or review.'),
  );

  fill(main, repoHeader(o, d, 'pulls', undefined, false), head, desc, mergeBox, diffBox, talk);
  await Promise.all([drawMerge(), drawDiff()]);
}
