// auth.js: who the pages act as. The one place that knows how a request is authenticated.
//
// Two ways in, both offered by the sign-in page:
// - a session (POST /login with a user name and password): the server sets an HttpOnly,
//   SameSite=Strict cookie that no script here can read, and answers the session's CSRF token,
//   which every API call then sends as `X-CSRF-Token` (the server wants it on unsafe methods; on
//   the others it is ignored). The token is kept in this browser's localStorage so that a new tab
//   or a reload can call at once; it is worthless without the cookie, and GET /user refreshes it.
//   Sign-out is POST /logout, which ends the session on the server.
// - an API token pasted once: kept in localStorage and sent as `authorization: token <T>`.
// A pasted token wins over a session while it is kept.

const KEY = 'tablehub.token';
const CSRF = 'tablehub.csrf';
let me; // a promise of the signed-in user's name ('' when anonymous), cached per page load

export function hasToken() {
  return !!localStorage.getItem(KEY);
}

// Headers to add to an API request.
export function authHeaders() {
  const t = localStorage.getItem(KEY);
  if (t) return { authorization: 'token ' + t };
  const c = localStorage.getItem(CSRF);
  return c ? { 'x-csrf-token': c } : {};
}

async function failure(res, what) {
  const body = await res.json().catch(() => ({}));
  const wait = res.headers.get('retry-after');
  let msg = body.message || `${what} failed (HTTP ${res.status})`;
  if (res.status === 429 && wait && !/try again/i.test(msg)) msg += ` (try again in ${wait} s)`;
  return new Error(msg);
}

// Check `token` against the server and keep it. Resolves to the user name; rejects with the
// server's message when the token is unknown.
export async function signIn(token) {
  const res = await fetch('/api/v1alpha1/user', { headers: { authorization: 'token ' + token } });
  const body = await res.clone().json().catch(() => ({}));
  if (!res.ok || !body.username) throw await failure(res, 'sign-in');
  localStorage.setItem(KEY, token);
  me = Promise.resolve(body.username);
  return body.username;
}

// Sign in with a user name and password: the server sets the session cookie. Resolves to the
// user name; rejects with the server's message (wrong password, too many attempts).
export async function signInPassword(username, password) {
  const res = await fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await res.clone().json().catch(() => ({}));
  if (!res.ok || !body.csrf_token) throw await failure(res, 'sign-in');
  localStorage.removeItem(KEY);
  localStorage.setItem(CSRF, body.csrf_token);
  me = Promise.resolve(body.username);
  return body.username;
}

// Forget the pasted token, and end the session (if any) on the server.
export async function signOut() {
  const hadToken = hasToken();
  localStorage.removeItem(KEY);
  me = Promise.resolve('');
  if (!hadToken && localStorage.getItem(CSRF)) {
    await fetch('/logout', { method: 'POST', headers: authHeaders() }).catch(() => {});
  }
  localStorage.removeItem(CSRF);
}

// The signed-in user's name, or '' when nobody is signed in (or the token or session stopped
// working). With a session cookie the answer also brings its CSRF token.
export function currentUser() {
  if (!me) {
    me = fetch('/api/v1alpha1/user', { headers: authHeaders() })
      .then((r) => (r.ok ? r.json() : {}))
      .then((b) => {
        if (b.csrf_token) localStorage.setItem(CSRF, b.csrf_token);
        else if (!hasToken()) localStorage.removeItem(CSRF);
        return b.username || '';
      })
      .catch(() => '');
  }
  return me;
}

// How the signed-in user got in: 'token', 'session' or '' (nobody).
export function signInKind() {
  return hasToken() ? 'token' : localStorage.getItem(CSRF) ? 'session' : '';
}
