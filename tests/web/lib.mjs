// lib.mjs: what the browser tests and scripts/screenshots share: a real `tablehub serve` on a
// free loopback port with a fresh data directory, users and their tokens, API calls for set-up
// steps that are not under test, and headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core, which downloads no browser of its own.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Chromium's flags: headless, nothing that reaches the network on its own. Playwright gives
// every launch a fresh profile directory (its own --user-data-dir), removed at close.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// playwright-core, or null with the reason when it or Chromium is not installed.
export async function loadPlaywright() {
  if (!existsSync(CHROMIUM)) return { why: `${CHROMIUM} is missing (scripts/setup installs it)` };
  try {
    const pw = await import('playwright-core');
    return { chromium: pw.chromium };
  } catch {
    return { why: 'playwright-core is missing: run scripts/setup (npm ci in tests/web)' };
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Start `bin serve` on a fresh data dir. Returns {url, dir, bin, stop(), user(name)}.
export async function startServer(bin, { workers } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'th-web-'));
  const port = await freePort();
  const log = openSync(join(dir, 'serve.log'), 'a');
  const args = ['serve', '--data', dir, '--listen', `127.0.0.1:${port}`];
  if (workers) args.push('--workers', String(workers));
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', log] });
  const url = `http://127.0.0.1:${port}`;
  let exited = null;
  child.on('exit', (code, sig) => (exited = code ?? sig));
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`the server exited (${exited}); see ${dir}/serve.log`);
    try {
      const r = await fetch(url + '/api/v1alpha1/user');
      if (r.status === 401) break;
    } catch {
      /* not yet */
    }
    if (i > 200) throw new Error('the server did not answer within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dir,
    user(name) {
      return execFileSync(bin, ['user', 'add', '--data', dir, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    },
    // Give user `name` a password (tablehub user passwd reads it from stdin).
    password(name, pw) {
      execFileSync(bin, ['user', 'passwd', '--data', dir, name], { input: pw + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
    },
    async stop({ keep = false } = {}) {
      if (exited === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
      return exited;
    },
  };
}

// A JSON API call as `token`.
export async function api(srv, token, method, path, body) {
  const headers = { authorization: 'token ' + token };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(srv.url + '/api/v1alpha1' + path, { method, headers, body: payload });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${json.message}`);
  return json;
}

// Upload `csv` to owner/db with the API and wait for its operation; returns the poll reply.
export async function apiUpload(srv, token, owner, db, table, csv, importOp, primaryKeys = ['id']) {
  const fd = new FormData();
  fd.append('params', JSON.stringify({ tableName: table, fileName: `${table}.csv`, branchName: 'main', fileType: 'Csv', importOp, primaryKeys }));
  fd.append('file', new Blob([csv]), `${table}.csv`);
  const up = await api(srv, token, 'POST', `/${owner}/${db}/upload`, fd);
  for (let i = 0; i < 300; i++) {
    const p = await api(srv, token, 'GET', `/${owner}/${db}/upload?operationName=${encodeURIComponent(up.operation_name)}`);
    if (p.job_status === 'Completed' || p.job_status === 'Failed') return p;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the import did not finish');
}

// Merge pull `id` with the API and wait for it.
export async function apiMerge(srv, token, owner, db, id) {
  const m = await api(srv, token, 'POST', `/${owner}/${db}/pulls/${id}/merge`);
  for (let i = 0; i < 300; i++) {
    const p = await api(srv, token, 'GET', `/${owner}/${db}/pulls/${id}/merge?operationName=${encodeURIComponent(m.operation_name)}`);
    if (p.job_status === 'Completed' || p.job_status === 'Failed') return p;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the merge did not finish');
}

// Sign `page` in with `token` through the sign-in page (its second option: paste a token).
export async function signIn(page, srv, token) {
  await page.goto(srv.url + '/signin');
  await page.click('#token-option summary');
  await page.fill('#token', token);
  await page.click('#token-form button[type=submit]');
  await page.waitForURL(srv.url + '/');
}

// Sign `page` in with a user name and password (a session cookie) through the sign-in page.
export async function signInPassword(page, srv, name, password) {
  await page.goto(srv.url + '/signin');
  await page.fill('#username', name);
  await page.fill('#password', password);
  await page.click('#password-form button[type=submit]');
  await page.waitForURL(srv.url + '/');
}
