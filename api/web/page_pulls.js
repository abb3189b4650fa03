// page_pulls.js: /repositories/O/D/pulls?state=. The pull requests of a database by state, each
// with its review status, and a form to open one from a branch, into a branch of this database
// or, in a fork, of the database it was forked from (the change proposed back).
import { get, post, db as dbPath } from './api.js';
import { h, fill, errorBox, time, badge, scroller } from './dom.js';
import { links, navigate } from './router.js';
import { repoHeader, branches as listBranches, roleAtLeast } from './parts.js';

const STATES = [
  ['open', 'Open'],
  ['merged', 'Merged'],
  ['closed', 'Closed'],
  ['all', 'All'],
];

// "Approved", "Changes requested" or "" from a pull's reviews: each reviewer's latest verdict.
export function reviewSummary(reviews) {
  const last = new Map();
  for (const r of reviews || []) if (r.review_status !== 'Reviewed') last.set(r.author, r.review_status);
  const v = [...last.values()];
  if (v.includes('Rejected')) return 'Changes requested';
  if (v.includes('Approved')) return 'Approved';
  return '';
}

export default async function render({ main, params, query, signal, user }) {
  const { owner: o, db: d } = params;
  const state = STATES.some(([s]) => s === query.get('state')) ? query.get('state') : 'open';
  document.title = `Pull requests · ${o}/${d} · tablehub`;
  const path = dbPath(o, d);
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const filters = h(
    'nav',
    { class: 'subtabs', 'aria-label': 'Pull request state' },
    STATES.map(([s, label]) => h('a', { href: links.pulls(o, d, s === 'open' ? '' : s), class: 'tab', 'aria-current': s === state ? 'page' : false }, label)),
  );
  const newForm = h('div');
  fill(main, repoHeader(o, d, 'pulls'), h('div', { class: 'toolbar' }, filters), newForm, list);

  // The list, and for the form this database's branches and where it was forked from, at once.
  const [r, names, forks] = await Promise.all([
    get(path + '/pulls', { filterByState: state === 'all' ? '' : state }, { signal }).catch((e) => e),
    user ? listBranches(o, d, signal).catch(() => []) : [],
    user ? get(path + '/forks', {}, { signal }).catch(() => null) : null,
  ]);
  if (r instanceof Error) {
    if (r.name !== 'AbortError') fill(list, errorBox(r));
    return;
  }
  // Opening a pull request here takes the write role (the server's rule, and the list says the
  // viewer's role); a reader is pointed to a fork of their own, from which they propose.
  if (user && !roleAtLeast(r.viewer_role, 'write')) {
    fill(newForm, h('p', { class: 'card small', id: 'pr-needs' }, `Opening a pull request in ${o}/${d} needs the write role. `, h('a', { href: links.db(o, d) }, 'Fork it'), ' and propose your changes from your fork.'));
  } else if (user) {
    const parent = forks && forks.parent_owner ? { o: forks.parent_owner, d: forks.parent_database_name } : null;
    const from = h('select', { id: 'pr-from' });
    const to = h('select', { id: 'pr-to' });
    // Into this database: from any branch but the target; into the parent: from any branch.
    const target = h(
      'select',
      { id: 'pr-db', onchange: () => pickTarget() },
      h('option', { value: '' }, `${o}/${d}`),
      parent ? h('option', { value: 'parent', selected: true }, `${parent.o}/${parent.d} (forked from)`) : null,
    );
    async function pickTarget() {
      const up = target.value === 'parent';
      const into = up ? await listBranches(parent.o, parent.d, signal).catch(() => ['main']) : names;
      fill(from, (up ? names : names.filter((b) => b !== 'main')).map((b) => h('option', { value: b }, b)));
      fill(to, into.map((b) => h('option', { value: b, selected: b === 'main' }, b)));
    }
    await pickTarget();
    const title = h('input', { id: 'pr-title', autocomplete: 'off' });
    const msg = h('div', { 'aria-live': 'polite' });
    fill(
      newForm,
      h(
        'details',
        { class: 'card create' },
        h('summary', {}, 'New pull request'),
        h(
          'form',
          {
            onsubmit: async (e) => {
              e.preventDefault();
              fill(msg);
              try {
                if (target.value === 'parent') {
                  const r = await post(dbPath(parent.o, parent.d) + '/pulls', { title: title.value, fromBranchOwnerName: o, fromBranchRepoName: d, fromBranchName: from.value, toBranchName: to.value });
                  navigate(links.pull(parent.o, parent.d, r.pull_id));
                  return;
                }
                const r = await post(path + '/pulls', { title: title.value, fromBranchName: from.value, toBranchName: to.value });
                navigate(links.pull(o, d, r.pull_id));
              } catch (err) {
                fill(msg, errorBox(err));
              }
            },
          },
          h(
            'div',
            { class: 'field-row' },
            h('div', { class: 'field' }, h('label', { for: 'pr-from' }, 'From branch'), from),
            parent ? h('div', { class: 'field' }, h('label', { for: 'pr-db' }, 'Into database'), target) : null,
            h('div', { class: 'field' }, h('label', { for: 'pr-to' }, 'Into branch'), to),
          ),
          h('div', { class: 'field' }, h('label', { for: 'pr-title' }, 'Title'), title),
          h('button', { type: 'submit', class: 'primary' }, 'Open pull request'),
          msg,
        ),
      ),
    );
  }

  if (!r.pulls.length) {
    fill(list, h('p', { class: 'muted empty-state' }, `No ${state === 'all' ? '' : state + ' '}pull requests.`));
    return;
  }
  const reviewCells = new Map();
  fill(
    list,
    scroller(
      h(
        'table',
        { class: 'list', id: 'pulls' },
        h('caption', { class: 'sr-only' }, 'Pull requests'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Review'), h('th', { scope: 'col' }, 'Author'), h('th', { scope: 'col' }, 'Opened'))),
        h(
          'tbody',
          {},
          r.pulls.map((p) => {
            const rc = h('td', {}, h('span', { class: 'muted' }, '…'));
            reviewCells.set(p.pull_id, rc);
            return h(
              'tr',
              {},
              h('td', { class: 'num' }, p.pull_id),
              h('td', {}, h('a', { href: links.pull(o, d, p.pull_id) }, p.title || '(untitled)')),
              h('td', {}, badge(p.state)),
              rc,
              h('td', {}, p.creator),
              h('td', {}, time(p.created_at)),
            );
          }),
        ),
      ),
      'Pull requests',
    ),
    r.next_page_token ? h('p', { class: 'muted' }, 'Older pull requests are not shown.') : null,
  );
  // Review status is per pull: fetch them a few at a time.
  const queue = [...reviewCells.keys()];
  const worker = async () => {
    while (queue.length && !signal.aborted) {
      const id = queue.shift();
      try {
        const p = await get(`${path}/pulls/${id}`, {}, { signal });
        const s = reviewSummary(p.reviews);
        fill(reviewCells.get(id), s ? badge(s) : h('span', { class: 'muted' }, 'none yet'));
      } catch {
        fill(reviewCells.get(id), '');
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}
