// page_databases.js: /. Your databases and the public ones, a search by name (kept in ?q=), and
// a form to create a database.
import { get, post } from './api.js';
import { h, fill, errorBox, time, badge } from './dom.js';
import { links, navigate, setQuery } from './router.js';

function dbList(items, empty) {
  if (!items.length) return h('p', { class: 'muted' }, empty);
  return h(
    'ul',
    { class: 'db-list' },
    items.map((d) =>
      h(
        'li',
        {},
        h(
          'div',
          { class: 'db-line' },
          h('a', { href: links.db(d.database_owner, d.database_name), class: 'db-name' }, `${d.database_owner}/${d.database_name}`),
          d.visibility === 'private' ? badge('Private', 'private') : null,
        ),
        d.description ? h('p', { class: 'db-desc' }, d.description) : null,
        h('p', { class: 'muted small' }, 'Created ', time(d.created_at)),
      ),
    ),
  );
}

function createForm(user) {
  const msg = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 'new-name', name: 'name', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', autocomplete: 'off', 'aria-describedby': 'new-name-help' });
  const desc = h('input', { id: 'new-desc', name: 'description', autocomplete: 'off' });
  const pub = h('input', { type: 'radio', name: 'visibility', value: 'public', id: 'vis-public', checked: true });
  const priv = h('input', { type: 'radio', name: 'visibility', value: 'private', id: 'vis-private' });
  return h(
    'details',
    { class: 'card create' },
    h('summary', {}, 'New database'),
    h(
      'form',
      {
        onsubmit: async (e) => {
          e.preventDefault();
          fill(msg);
          try {
            await post('/database', {
              ownerName: user,
              repoName: name.value.trim(),
              description: desc.value,
              visibility: priv.checked ? 'private' : 'public',
            });
            navigate(links.db(user, name.value.trim()));
          } catch (err) {
            fill(msg, errorBox(err));
          }
        },
      },
      h('div', { class: 'field' }, h('label', { for: 'new-name' }, 'Name'), h('div', { class: 'prefixed' }, h('span', { class: 'muted' }, `${user} /`), name)),
      h('p', { id: 'new-name-help', class: 'help' }, 'Letters, digits, - and _.'),
      h('div', { class: 'field' }, h('label', { for: 'new-desc' }, 'Description (optional)'), desc),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Visibility'),
        h('label', { class: 'choice' }, pub, ' Public: anyone can read it'),
        h('label', { class: 'choice' }, priv, ' Private: only you'),
      ),
      h('button', { type: 'submit', class: 'primary' }, 'Create database'),
      msg,
    ),
  );
}

export default async function render({ main, query, signal, user }) {
  document.title = 'Databases · tablehub';
  const q = query.get('q') || '';
  const search = h('input', { id: 'db-search', type: 'search', value: q, placeholder: 'owner or name', autocomplete: 'off', 'data-focus': 'db-search' });
  const mine = h('section', { 'aria-labelledby': 'h-mine' });
  const pub = h('section', { 'aria-labelledby': 'h-public' });
  let timer, ctl;

  async function load(text) {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    signal.addEventListener('abort', () => ctl.abort());
    const opts = { signal: ctl.signal };
    try {
      const [m, p] = await Promise.all([
        user ? get('/databases', { owner: user, q: text, pageSize: 200 }, opts) : null,
        get('/databases', { visibility: 'public', q: text, pageSize: 200 }, opts),
      ]);
      if (user) {
        fill(mine, h('h2', { id: 'h-mine' }, 'Your databases'), dbList(m.databases, text ? 'None of yours match.' : 'You have no databases yet: create one above.'));
      }
      const others = p.databases.filter((d) => d.database_owner !== user);
      fill(pub, h('h2', { id: 'h-public' }, user ? 'Public databases of others' : 'Public databases'), dbList(others, text ? 'No public database matches.' : 'No public databases yet.'));
    } catch (e) {
      if (e.name !== 'AbortError') fill(pub, errorBox(e));
    }
  }

  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      setQuery({ q: search.value.trim() });
      load(search.value.trim());
    }, 200);
  });

  fill(
    main,
    h('h1', { tabindex: '-1' }, 'Databases'),
    user
      ? createForm(user)
      : h('p', { class: 'card' }, h('a', { href: links.signin('/') }, 'Sign in'), ' with your API token to see your own databases and create new ones.'),
    h(
      'form',
      { class: 'search', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('label', { for: 'db-search' }, 'Search by name'),
      search,
    ),
    mine,
    pub,
  );
  await load(q);
}

