// api.js: calls to tablehub's JSON API. The pages call nothing else.
//
// get/post/patch/put/del resolve to the parsed JSON body and reject with an ApiError carrying the HTTP
// status and the server's own message (which the pages show as it is). upload() uses
// XMLHttpRequest because fetch cannot report the progress of a request body.
import { authHeaders } from './auth.js';

export const BASE = '/api/v1alpha1';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

function url(path, query) {
  const u = new URL(BASE + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

async function call(method, path, { query, body, signal } = {}) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the server did not answer: ' + e.message);
  }
  const json = await res.json().catch(() => null);
  if (!res.ok || json === null) {
    const msg =
      (json && (json.message || json.query_execution_message)) || `HTTP ${res.status} from ${path}`;
    throw new ApiError(res.status, msg, json);
  }
  return json;
}

export const get = (path, query, opts) => call('GET', path, { ...opts, query });
export const post = (path, body, opts) => call('POST', path, { ...opts, body });
export const patch = (path, body, opts) => call('PATCH', path, { ...opts, body });
export const put = (path, body, opts) => call('PUT', path, { ...opts, body });
export const del = (path, opts) => call('DELETE', path, { ...opts });

// The path of a database under BASE: /owner/db.
export const db = (owner, name) => `/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;

// A SQL read at `ref`. Resolves to {body, ms} also when the query fails (body then has
// query_execution_status "Error" and the message); rejects only when the server cannot answer
// or the database or ref is unknown.
export async function sql(owner, name, ref, q, opts = {}) {
  const path = db(owner, name) + '/' + ref.split('/').map(encodeURIComponent).join('/');
  const t0 = performance.now();
  try {
    const body = await get(path, { q }, opts);
    return { body, ms: performance.now() - t0 };
  } catch (e) {
    if (e instanceof ApiError && e.status === 400 && e.body.query_execution_status) {
      return { body: e.body, ms: performance.now() - t0 };
    }
    throw e;
  }
}

// POST a multipart form to `path` under BASE, calling onProgress(sent, total) as the body goes
// out. Resolves to the JSON reply; rejects with an ApiError. Returns {promise, abort}.
export function upload(path, form, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', BASE + path);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: reported below */
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new ApiError(xhr.status, (body && body.message) || `HTTP ${xhr.status}`, body));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'the upload was cut off')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'the upload was cancelled')));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
