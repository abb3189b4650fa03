// auth.js: who the pages act as. The one place that knows how a request is authenticated.
//
// Today a person pastes an API token once (the sign-in page); it is kept in this browser's
// localStorage and sent as `authorization: token <T>` with every API call. When sessions land,
// this module alone changes: authHeaders() returns nothing and the session cookie does the work.

const KEY = 'tablehub.token';
let me; // a promise of the signed-in user's name ('' when anonymous), cached per page load

export function hasToken() {
  return !!localStorage.getItem(KEY);
}

// Headers to add to an API request.
export function authHeaders() {
  const t = localStorage.getItem(KEY);
  return t ? { authorization: 'token ' + t } : {};
}

// Check `token` against the server and keep it. Resolves to the user name; rejects with the
// server's message when the token is unknown.
export async function signIn(token) {
  const res = await fetch('/api/v1alpha1/user', { headers: { authorization: 'token ' + token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.username) {
    throw new Error(body.message || `sign-in failed (HTTP ${res.status})`);
  }
  localStorage.setItem(KEY, token);
  me = Promise.resolve(body.username);
  return body.username;
}

export function signOut() {
  localStorage.removeItem(KEY);
  me = Promise.resolve('');
}

// The signed-in user's name, or '' when nobody is signed in (or the token stopped working).
export function currentUser() {
  if (!me) {
    me = hasToken()
      ? fetch('/api/v1alpha1/user', { headers: authHeaders() })
          .then((r) => (r.ok ? r.json() : {}))
          .then((b) => b.username || '')
          .catch(() => '')
      : Promise.resolve('');
  }
  return me;
}
