// page_operations.js: /operations. Your recent operations (imports and merges) with their state,
// the progress of the running ones, and links to their database and pull request. Refreshes
// itself while any is still Pending or In Progress.
import { get } from './api.js';
import { h, fill, errorBox, time, badge, num, bytes, sleep, scroller } from './dom.js';
import { links } from './router.js';

export default async function render({ main, signal, user, ready }) {
  document.title = 'Operations · tablehub';
  if (!user) {
    fill(main, h('h1', { tabindex: '-1' }, 'Operations'), h('p', { class: 'card' }, h('a', { href: links.signin('/operations') }, 'Sign in'), ' to see your operations.'));
    return;
  }
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  fill(main, h('h1', { tabindex: '-1' }, 'Operations'), h('p', { class: 'muted' }, 'Your recent imports and merges, newest first.'), list);
  for (;;) {
    let r;
    try {
      r = await get(`/users/${encodeURIComponent(user)}/operations`, {}, { signal });
    } catch (e) {
      if (e.name !== 'AbortError') fill(list, errorBox(e));
      return;
    }
    const ops = r.operations || [];
    const running = ops.filter((x) => x.job_status === 'Pending' || x.job_status === 'In Progress');
    // Progress of running imports comes from their poll.
    const progress = new Map();
    await Promise.all(
      running
        .filter((x) => x.operation_type === 'Import')
        .map(async (x) => {
          const meta = JSON.parse(x.metadata || '{}');
          try {
            const p = await get(`/${encodeURIComponent(x.database_owner)}/${encodeURIComponent(x.database_name)}/upload`, { operationName: meta.job_id }, { signal });
            progress.set(x.operation_name, p.progress);
          } catch {
            /* shown without progress */
          }
        }),
    );
    if (signal.aborted) return;
    fill(
      list,
      ops.length
        ? scroller(
            h(
              'table',
              { class: 'list', id: 'operations' },
              h('caption', { class: 'sr-only' }, 'Operations'),
              h('thead', {}, h('tr', {}, ['Operation', 'Database', 'State', 'Progress', 'Started', 'Result'].map((x) => h('th', { scope: 'col' }, x)))),
              h(
                'tbody',
                {},
                ops.map((x) => {
                  const p = progress.get(x.operation_name);
                  const uuid = x.operation_name.split('/').pop();
                  return h(
                    'tr',
                    {},
                    h('td', {}, x.operation_type === 'Import' ? h('a', { href: links.upload(x.database_owner, x.database_name, { op: uuid }) }, x.description) : x.description),
                    h('td', {}, h('a', { href: links.db(x.database_owner, x.database_name) }, `${x.database_owner}/${x.database_name}`)),
                    h('td', {}, badge(x.job_status)),
                    h('td', {}, p ? [h('progress', { max: 1, value: p.bytes_total ? p.bytes_read / p.bytes_total : 0, 'aria-label': 'Progress' }), ` ${num(p.rows_processed)} rows · ${bytes(p.bytes_read)}`] : x.job_status === 'Completed' ? 'done' : '—'),
                    h('td', {}, time(x.created_at)),
                    h('td', {}, x.error ? h('span', { class: 'error-text' }, x.error) : x.pull_id ? h('a', { href: links.pull(x.database_owner, x.database_name, x.pull_id) }, `Pull request #${x.pull_id}`) : ''),
                  );
                }),
              ),
            ),
            'Operations',
          )
        : h('p', { class: 'muted empty-state' }, 'No operations yet. Uploads and merges show up here.'),
    );
    ready();
    if (!running.length) return;
    await sleep(1000, signal);
    if (signal.aborted) return;
  }
}
