// page_database.js: /repositories/O/D[/data/REF]. A database at a ref: the ref picker, its
// tables with row counts, the commit log (author, message, time, rows changed), the branches with
// their protection (editable by admins), the collaborators (admins only; teams.js), the database
// it was forked from, and a fork button for a signed-in viewer who is not its owner (a link to
// their fork when they have one).
import { get, post, db as dbPath } from './api.js';
import { h, fill, errorBox, time, num, short, firstLine, scroller } from './dom.js';
import { links, navigate } from './router.js';
import { repoHeader, branches as listBranches, refPicker, dbInfo, csvLink, roleAtLeast } from './parts.js';
import { loadCollaborators, collaboratorsSection, loadProtection, protectionText, protectionForm } from './teams.js';

function tablesSection(o, d, ref, tables, isPrivate) {
  if (!tables.length) {
    return h('p', { class: 'muted' }, 'No tables at this ref yet. ', h('a', { href: links.upload(o, d, ref !== 'main' ? { branch: ref } : {}) }, 'Upload a file'), ' to create one.');
  }
  return scroller(
    h(
      'table',
      { class: 'list' },
      h('caption', { class: 'sr-only' }, 'Tables'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col', class: 'num' }, 'Rows'), h('th', { scope: 'col', class: 'num' }, 'Columns'), h('th', { scope: 'col' }, 'Primary key'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Download')))),
      h(
        'tbody',
        {},
        tables.map((t) =>
          h(
            'tr',
            {},
            h('td', {}, h('a', { href: links.table(o, d, ref, t.table_name) }, t.table_name)),
            h('td', { class: 'num' }, num(t.row_count)),
            h('td', { class: 'num' }, num(t.columns.length)),
            h('td', {}, t.primary_key.length ? t.primary_key.join(', ') : h('span', { class: 'muted' }, 'none (keyless)')),
            h('td', {}, csvLink(o, d, ref, t.table_name, isPrivate, 'CSV', 'csv-link')),
          ),
        ),
      ),
    ),
    'Tables',
  );
}

function changes(c) {
  const parts = [];
  if (c.rows_added) parts.push(h('span', { class: 'plus' }, `+${num(c.rows_added)}`));
  if (c.rows_modified) parts.push(h('span', { class: 'mod' }, `~${num(c.rows_modified)}`));
  if (c.rows_removed) parts.push(h('span', { class: 'minus' }, `−${num(c.rows_removed)}`));
  if (!parts.length) return h('span', { class: 'muted' }, c.tables_changed ? 'schema only' : 'no rows changed');
  return h('span', { class: 'changes', title: `${c.rows_added} added, ${c.rows_modified} modified, ${c.rows_removed} removed` }, parts.flatMap((p, i) => (i ? [' ', p] : [p])));
}

function commitItem(o, d, c) {
  return h(
    'li',
    { class: 'commit' },
    h('div', { class: 'commit-msg' }, firstLine(c.message) || h('span', { class: 'muted' }, '(no message)')),
    h(
      'div',
      { class: 'commit-meta' },
      h('strong', {}, c.author),
      ' · ',
      time(c.committed_at),
      ' · ',
      changes(c),
      ' · ',
      h('a', { href: links.db(o, d, c.commit_id), class: 'mono', title: c.commit_id }, short(c.commit_id)),
    ),
  );
}

export default async function render({ main, params, signal, user }) {
  const { owner: o, db: d, ref } = params;
  document.title = `${o}/${d}${ref !== 'main' ? ' @ ' + ref : ''} · tablehub`;
  const path = dbPath(o, d);
  fill(main, repoHeader(o, d, 'data', ref), h('p', { class: 'muted' }, 'Loading…'));
  const [info, names, tables, collab, forks] = await Promise.all([
    dbInfo(o, d, signal),
    listBranches(o, d, signal),
    get(path + '/tables', { ref }, { signal }).catch((e) => e),
    user ? loadCollaborators(o, d, signal) : null,
    get(path + '/forks', {}, { signal }).catch(() => null),
  ]);
  const isAdmin = !!collab; // only an admin may list the collaborators
  const protection = await loadProtection(o, d, names, signal);
  const logList = h('ol', { class: 'log' });
  const more = h('div');
  const logSection = h('section', { 'aria-labelledby': 'h-log' }, h('h2', { id: 'h-log' }, 'Commit log'), logList, more);

  async function loadLog(token) {
    fill(more, h('p', { class: 'muted' }, 'Loading commits…'));
    try {
      const r = await get(path + '/commits', { ref, pageToken: token, pageSize: 20 }, { signal });
      r.commits.forEach((c) => logList.append(commitItem(o, d, c)));
      fill(
        more,
        r.next_page_token
          ? h('button', { type: 'button', 'data-focus': 'more-commits', onclick: () => loadLog(r.next_page_token) }, 'Show older commits')
          : null,
      );
    } catch (e) {
      if (e.name !== 'AbortError') fill(more, errorBox(e));
    }
  }

  // The write role makes branches (the server's rule); the tables' reply says the viewer's role.
  const canBranch = !!user && !(tables instanceof Error) && roleAtLeast(tables.viewer_role, 'write');
  const newBranch = h('input', { id: 'new-branch', required: true, autocomplete: 'off', spellcheck: 'false' });
  const branchMsg = h('div', { 'aria-live': 'polite' });
  const branchSection = h(
    'section',
    { 'aria-labelledby': 'h-branches' },
    h('h2', { id: 'h-branches' }, 'Branches'),
    h(
      'ul',
      { class: 'branches' },
      names.map((b) =>
        h(
          'li',
          {},
          h('a', { href: links.db(o, d, b), 'aria-current': b === ref ? 'true' : false }, b),
          b === ref ? h('span', { class: 'muted' }, ' (shown)') : null,
          protectionText(protection[b])
            ? h('div', { class: 'protection small', 'data-branch': b }, h('span', { class: 'badge' }, 'Protected'), ' ', protectionText(protection[b]))
            : null,
        ),
      ),
    ),
    isAdmin && names.includes(ref) ? protectionForm(o, d, ref, protection[ref], () => navigate(location.pathname + location.search, { replace: true })) : null,
    canBranch
      ? h(
          'form',
          {
            class: 'inline',
            onsubmit: async (e) => {
              e.preventDefault();
              fill(branchMsg);
              try {
                await post(path + '/branches', { revisionType: 'ref', revisionName: ref, newBranchName: newBranch.value.trim() });
                navigate(links.db(o, d, newBranch.value.trim()));
              } catch (err) {
                fill(branchMsg, errorBox(err));
              }
            },
          },
          h('label', { for: 'new-branch' }, `New branch from ${ref}`),
          newBranch,
          h('button', { type: 'submit' }, 'Create branch'),
        )
      : null,
    branchMsg,
  );

  // Where this database was forked from, and the viewer's own fork of it (or a button to make
  // one: the fork takes the parent's name in the viewer's account).
  const forkMsg = h('div', { 'aria-live': 'polite' });
  const mine = forks && user && user !== o ? forks.forks.find((f) => f.database_owner === user) : null;
  const forkPart = !forks
    ? null
    : [
        forks.parent_owner ? h('span', { class: 'muted small', id: 'forked-from' }, 'forked from ', h('a', { href: links.db(forks.parent_owner, forks.parent_database_name) }, `${forks.parent_owner}/${forks.parent_database_name}`)) : null,
        mine
          ? h('a', { href: links.db(user, mine.database_name), class: 'small', id: 'your-fork' }, `Your fork: ${user}/${mine.database_name}`)
          : user && user !== o
            ? h(
                'button',
                {
                  type: 'button',
                  id: 'fork',
                  title: `Copy ${o}/${d} into your account, to change it there and propose the changes back`,
                  onclick: async (e) => {
                    e.target.disabled = true;
                    fill(forkMsg);
                    try {
                      const r = await post('/fork', { parentOwnerName: o, parentDatabaseName: d, ownerName: user });
                      navigate(links.db(r.forked_owner, r.forked_database));
                    } catch (err) {
                      fill(forkMsg, errorBox(err));
                      e.target.disabled = false;
                    }
                  },
                },
                `Fork into ${user}/${d}`,
              )
            : null,
      ];
  fill(
    main,
    repoHeader(o, d, 'data', ref),
    info && info.description ? h('p', { class: 'lead' }, info.description) : null,
    h(
      'div',
      { class: 'toolbar' },
      refPicker(ref, names, (r) => navigate(links.db(o, d, r)), 'Branch'),
      info ? h('span', { class: 'muted small' }, info.visibility === 'private' ? 'Private · ' : 'Public · ', 'owner ', h('strong', {}, o)) : null,
      tables instanceof Error ? null : h('span', { class: 'muted small mono', title: tables.commit_id }, 'at ', short(tables.commit_id)),
      forkPart,
    ),
    forkMsg,
    h(
      'div',
      { class: 'cols' },
      h(
        'div',
        { class: 'col-main' },
        h('section', { 'aria-labelledby': 'h-tables' }, h('h2', { id: 'h-tables' }, 'Tables'), tables instanceof Error ? errorBox(tables) : tablesSection(o, d, ref, tables.tables, info && info.visibility === 'private')),
        logSection,
      ),
      h('div', { class: 'col-side' }, branchSection, isAdmin ? collaboratorsSection(o, d, collab, signal) : null),
    ),
  );
  if (!(tables instanceof Error)) await loadLog('');
}
