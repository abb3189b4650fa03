// lib.mjs: what the resumable-upload test (run.mjs) and the upload benchmark (bench.mjs) share:
// a real `tablehub serve` on a free loopback port with a fresh data directory, a deterministic CSV,
// a proxy that cuts TCP connections after a given number of bytes, and one tus upload through
// the official client (tus-js-client), with each PATCH's Upload-Checksum computed from the
// file (the client does not compute checksums itself).
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const API = '/api/v1alpha1';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Start `bin serve --data dir` (a fresh dir unless given) with extra arguments. Returns
// {url, dir, port, stop({keep}), restart()}.
export async function startServer(bin, { dir, port, args = [] } = {}) {
  dir = dir || mkdtempSync(join(tmpdir(), 'th-tus-'));
  port = port || (await freePort());
  const log = openSync(join(dir, 'serve.log'), 'a');
  const child = spawn(bin, ['serve', '--data', dir, '--listen', `127.0.0.1:${port}`, ...args], {
    stdio: ['ignore', 'ignore', log],
  });
  const url = `http://127.0.0.1:${port}`;
  let exited = null;
  child.on('exit', (code, sig) => (exited = code ?? sig));
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`the server exited (${exited}); see ${dir}/serve.log`);
    try {
      const r = await fetch(url + API + '/user');
      if (r.status === 401) break;
    } catch {
      /* not yet */
    }
    if (i > 300) throw new Error('the server did not answer within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dir,
    port,
    pid: child.pid,
    user(name) {
      return execFileSync(bin, ['user', 'add', '--data', dir, name], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    },
    async stop({ keep = false } = {}) {
      if (exited === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A CSV of `rows` rows (~100 bytes each), the same bytes for the same count.
export function makeCsv(rows) {
  const parts = ['id,name,city,amount,active,note\n'];
  const cities = ['Amsterdam', 'Berlin', 'Cairo', 'Delhi', 'Edinburgh', 'Florence'];
  for (let i = 1; i <= rows; i++) {
    parts.push(
      `${i},"name ${i}, the ${i % 7}th",${cities[i % 6]},${((i * 7919) % 100000) / 100},` +
        `${i % 3 ? 'true' : 'false'},"note ${i}: ""quoted"" and padded text ${'x'.repeat(i % 20)}"\n`,
    );
  }
  return Buffer.from(parts.join(''));
}

export function sha(alg, buf, enc = 'hex') {
  return createHash(alg).update(buf).digest(enc);
}

// A TCP proxy to 127.0.0.1:target that cuts the connection carrying the byte at each of `cuts`
// (offsets in the bytes sent from clients to the server, all connections together). Returns
// {port, cuts: number cut so far, close()}.
export async function startProxy(target, cuts = []) {
  const pending = [...cuts].sort((a, b) => a - b);
  const state = { port: 0, cut: 0, sent: 0, sockets: new Set() };
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    state.sockets.add(client);
    state.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      if (pending.length && state.sent + chunk.length >= pending[0]) {
        const keep = pending[0] - state.sent;
        if (keep > 0) upstream.write(chunk.subarray(0, keep));
        state.sent += Math.max(keep, 0);
        pending.shift();
        state.cut++;
        // Let the bytes before the cut reach the server, then drop both sides at once.
        setTimeout(drop, 20);
        client.pause();
        return;
      }
      state.sent += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', () => {
      upstream.destroy();
      state.sockets.delete(client);
    });
    upstream.on('close', () => {
      client.destroy();
      state.sockets.delete(upstream);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.port = server.address().port;
  state.close = () =>
    new Promise((r) => {
      for (const s of state.sockets) s.destroy();
      server.close(r);
    });
  return state;
}

// Upload `data` with tus-js-client to endpoint in parts of chunkSize. metadata: the upload's
// params. checksum(offset, body) may return an Upload-Checksum value for a PATCH (null: none).
// Resolves {operation, fileId, response} or rejects with the client's error.
export async function tusUpload(tus, { endpoint, token, data, chunkSize, metadata, checksum }) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(data, {
      endpoint,
      chunkSize,
      metadata,
      headers: { authorization: `token ${token}` },
      retryDelays: [0, 100, 300, 1000, 2000, 4000],
      removeFingerprintOnSuccess: true,
      onBeforeRequest(req) {
        if (req.getMethod() !== 'PATCH' || !checksum) return;
        const offset = Number(req.getHeader('Upload-Offset'));
        const end = Math.min(offset + chunkSize, data.length);
        const value = checksum(offset, data.subarray(offset, end));
        if (value) req.setHeader('Upload-Checksum', value);
      },
      onError: reject,
      onSuccess(payload) {
        const res = payload && payload.lastResponse;
        resolve({
          response: res,
          operation: res ? res.getHeader('Tablehub-Operation-Name') : null,
          fileId: res ? res.getHeader('Tablehub-File-Id') : null,
          url: up.url,
        });
      },
    });
    up.start();
  });
}

// Poll an operation of owner/db until it is Completed or Failed.
export async function poll(url, token, db, operation, timeoutMs = 120000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(
      `${url}${API}/${db}/upload?operationName=${encodeURIComponent(operation)}`,
      { headers: { authorization: `token ${token}` } },
    );
    const body = await r.json();
    if (r.status !== 200) throw new Error(`poll: ${r.status} ${JSON.stringify(body)}`);
    if (body.job_status === 'Completed' || body.job_status === 'Failed') return body;
    if (Date.now() > end) throw new Error(`poll: still ${body.job_status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
