// router.js: the app's URLs. Each page has a stable path that can be bookmarked and shared; the
// server answers every one of them with the app shell (api/web.c), and this router shows the page
// the path names. Links inside the app change the URL with the History API, so the back and
// forward buttons move between pages, pages of rows and filters as a person expects.
//
//   /                                          databases (yours and public), ?q= filter
//   /signin                                    paste an API token
//   /operations                                your recent operations
//   /repositories/O/D[/data/REF]               a database at a ref (default main)
//   /repositories/O/D/data/REF/TABLE           a table at a ref: ?sort= &desc= &fcol= &fop= &fval=
//                                              &after= &before= (a page of rows by key)
//   /repositories/O/D/upload                   upload a file; ?op= follows an upload's operation
//   /repositories/O/D/pulls[?state=]           pull requests
//   /repositories/O/D/pulls/ID                 one pull request: ?table= &type= &page=
//   /repositories/O/D/query/REF?q=             SQL at a ref
//
// A ref may hold slashes ("alice/import-1a2b"): it is one path segment, percent-encoded.

const enc = encodeURIComponent;
const repo = (o, d) => `/repositories/${enc(o)}/${enc(d)}`;
const qs = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
};

export const links = {
  home: (q) => '/' + qs({ q }),
  signin: (next) => '/signin' + qs({ next }),
  operations: () => '/operations',
  db: (o, d, ref) => (ref && ref !== 'main' ? `${repo(o, d)}/data/${enc(ref)}` : repo(o, d)),
  table: (o, d, ref, t, params) => `${repo(o, d)}/data/${enc(ref)}/${enc(t)}` + qs(params),
  upload: (o, d, params) => `${repo(o, d)}/upload` + qs(params),
  pulls: (o, d, state) => `${repo(o, d)}/pulls` + qs({ state }),
  pull: (o, d, id, params) => `${repo(o, d)}/pulls/${enc(id)}` + qs(params),
  sql: (o, d, ref, q) => `${repo(o, d)}/query/${enc(ref || 'main')}` + qs({ q }),
  csv: (o, d, ref, t) =>
    `/csv/${enc(o)}/${enc(d)}/${String(ref).split('/').map(enc).join('/')}/${enc(t)}`,
};

const routes = [
  [[], 'page_databases.js', {}],
  [['signin'], 'page_signin.js', {}],
  [['operations'], 'page_operations.js', {}],
  [['repositories', ':owner', ':db'], 'page_database.js', { ref: 'main' }],
  [['repositories', ':owner', ':db', 'data', ':ref'], 'page_database.js', {}],
  [['repositories', ':owner', ':db', 'data', ':ref', ':table'], 'page_table.js', {}],
  [['repositories', ':owner', ':db', 'upload'], 'page_upload.js', {}],
  [['repositories', ':owner', ':db', 'pulls'], 'page_pulls.js', {}],
  [['repositories', ':owner', ':db', 'pulls', ':id'], 'page_pull.js', {}],
  [['repositories', ':owner', ':db', 'query', ':ref'], 'page_sql.js', {}],
];

// The page module and parameters of a path, or null.
export function match(pathname) {
  const segs = pathname.split('/').filter((s) => s !== '');
  let decoded;
  try {
    decoded = segs.map(decodeURIComponent);
  } catch {
    return null;
  }
  for (const [pattern, module, defaults] of routes) {
    if (pattern.length !== decoded.length) continue;
    const params = { ...defaults };
    let ok = true;
    pattern.forEach((p, i) => {
      if (p.startsWith(':')) params[p.slice(1)] = decoded[i];
      else if (p !== decoded[i]) ok = false;
    });
    if (ok) return { module, params };
  }
  return null;
}

let onChange = () => {};
export function start(render) {
  onChange = render;
  addEventListener('popstate', () => onChange());
  // Same-origin links to app pages navigate in place; downloads, API and CSV links, new tabs
  // and modified clicks keep the browser's own behaviour.
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0) return;
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const u = new URL(a.href, location.href);
    if (u.origin !== location.origin) return;
    if (u.pathname.startsWith('/api/') || u.pathname.startsWith('/csv/')) return;
    if (u.pathname === location.pathname && u.search === location.search && u.hash) return;
    e.preventDefault();
    navigate(u.pathname + u.search);
  });
  onChange();
}

// Go to `url` (a path and query), adding a history entry unless `replace`.
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  onChange();
}

// Change the query of the current URL without showing a new page (e.g. a search box), so a
// reload or a bookmark comes back to the same state.
export function setQuery(updates, { replace = true } = {}) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined || v === null || v === '') u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  const url = u.pathname + u.search;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}
