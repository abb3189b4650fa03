// run.mjs: resumable uploads end to end with the official tus client (tus-js-client) against a
// real `tablehub serve`:
//   - a ~30 MB CSV in 5 MiB parts, each with its sha1 Upload-Checksum, through a proxy that cuts
//     the TCP connection twice in the middle of a part; the client resumes (HEAD, then PATCH from
//     the offset) and the import completes with every row; the file is listed with its sha256;
//   - a part with a wrong checksum is refused (460) and nothing is imported;
//   - a whole file whose sha256 (metadata) does not match is refused (460) and removed;
//   - an upload half done survives a server restart and completes;
//   - the protocol's refusals: 412 without Tus-Resumable, 415, 409 on a wrong offset (with the
//     right one), 413 over Tus-Max-Size, 400 for bad params, 404 for another user's upload, and
//     DELETE (termination); 507 when the disk cannot hold the upload (--min-free-mb).
// usage: node run.mjs TABLEHUB_BIN. Exit 77 (skipped) when tus-js-client is not installed
// (scripts/setup runs npm ci here), except under CI. Prints "N passed, N failed".
import assert from 'node:assert/strict';
import { API, startServer, startProxy, makeCsv, sha, tusUpload, poll } from './lib.mjs';

const bin = process.argv[2];
if (!bin) {
  console.error('usage: node run.mjs TABLEHUB_BIN');
  process.exit(2);
}
let tus;
try {
  tus = await import('tus-js-client');
} catch {
  console.error('tus-js-client is missing: run scripts/setup (npm ci in tests/tus)');
  process.exit(process.env.CI ? 1 : 77);
}

const PART = 5 * 1024 * 1024;
let srv, alice, bob;
let passed = 0,
  failed = 0;

async function api(method, path, { token = alice, headers = {}, body } = {}) {
  const r = await fetch(srv.url + API + path, {
    method,
    headers: { ...(token ? { authorization: `token ${token}` } : {}), ...headers },
    body,
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, text, json };
}

async function sql(ref, q) {
  const r = await api('GET', `/alice/shop/${ref}?q=${encodeURIComponent(q)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.rows;
}

async function jobs() {
  const r = await api('GET', '/alice/shop/jobs');
  assert.equal(r.status, 200);
  return r.json.jobs;
}

function meta(obj) {
  return obj;
}

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.error(`FAIL ${name}: ${e.stack || e}`);
  }
}

const ROWS = 300000;
const csv = makeCsv(ROWS);
srv = await startServer(bin);
alice = srv.user('alice');
bob = srv.user('bob');
{
  const d = await api('POST', '/database', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ownerName: 'alice', repoName: 'shop' }),
  });
  assert.equal(d.status, 200, d.text);
  // bob may write (so the refusals below are about the upload being alice's, not his role).
  const c = await api('PUT', '/alice/shop/collaborators/bob', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'write' }),
  });
  assert.equal(c.status, 200, c.text);
}

await test('a 30 MB upload cut twice resumes and imports every row', async () => {
  const proxy = await startProxy(srv.port, [Math.floor(csv.length * 0.3), Math.floor(csv.length * 0.7)]);
  try {
    const done = await tusUpload(tus, {
      endpoint: `http://127.0.0.1:${proxy.port}${API}/alice/shop/uploads/tus`,
      token: alice,
      data: csv,
      chunkSize: PART,
      metadata: meta({ tableName: 'big', importOp: 'Create', primaryKeys: 'id', filename: 'big.csv' }),
      checksum: (offset, body) => `sha1 ${sha('sha1', body, 'base64')}`,
    });
    assert.equal(proxy.cut, 2, 'the proxy cut two connections');
    assert.match(done.operation, /^repositoryOwners\/alice\/repositories\/shop\/jobs\//);
    const op = await poll(srv.url, alice, 'alice/shop', done.operation);
    assert.equal(op.job_status, 'Completed', JSON.stringify(op));
    assert.equal(op.result.rows, ROWS);
    const branch = op.result.branch;
    const rows = await sql(branch, 'SELECT count(*) AS n, sum(id) AS s, max(length(note)) AS l FROM big');
    assert.equal(rows[0].n, String(ROWS));
    assert.equal(rows[0].s, String((ROWS * (ROWS + 1)) / 2));
    // The file is a resource: listed with its size, sha256 and the operation that read it.
    const f = await api('GET', `/alice/shop/files/${done.fileId}`);
    assert.equal(f.status, 200, f.text);
    assert.equal(f.json.file.sha256, sha('sha256', csv));
    assert.equal(f.json.file.size, csv.length);
    assert.equal(f.json.file.name, 'big.csv');
    assert.equal(f.json.file.operations[0].operation_name, done.operation);
    // The upload says so too, and takes no more bytes.
    const h = await api('HEAD', done.url.slice(done.url.indexOf(API) + API.length), {
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('upload-offset'), String(csv.length));
    assert.equal(h.headers.get('tablehub-operation-name'), done.operation);
    assert.equal(h.headers.get('cache-control'), 'no-store');
  } finally {
    await proxy.close();
  }
});

await test('a part with a wrong checksum is refused (460) and nothing is imported', async () => {
  const before = (await jobs()).length;
  const data = makeCsv(80000); // ~8 MB: two parts
  let err = null;
  try {
    await tusUpload(tus, {
      endpoint: `${srv.url}${API}/alice/shop/uploads/tus`,
      token: alice,
      data,
      chunkSize: PART,
      metadata: { tableName: 'bad', importOp: 'Create', primaryKeys: 'id', filename: 'bad.csv' },
      // The second part's checksum is of other bytes.
      checksum: (offset, body) =>
        `sha1 ${sha('sha1', offset === 0 ? body : Buffer.from('other bytes'), 'base64')}`,
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the upload failed');
  assert.equal(err.originalResponse.getStatus(), 460);
  assert.match(err.originalResponse.getBody(), /checksum mismatch/);
  assert.equal((await jobs()).length, before, 'no operation was queued');
  const tables = await api('GET', '/alice/shop/tables?ref=main');
  assert.ok(!tables.text.includes('"bad"'), tables.text);
  // The first part stayed: the upload is at 5 MiB, and can be terminated.
  const url = err.originalRequest.getURL();
  const path = url.slice(url.indexOf(API) + API.length);
  const h = await api('HEAD', path, { headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(h.headers.get('upload-offset'), String(PART));
  const d = await api('DELETE', path, { headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(d.status, 204);
  assert.equal((await api('HEAD', path, { headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
});

await test('a file whose sha256 does not match the metadata is refused and removed', async () => {
  const before = (await jobs()).length;
  const data = makeCsv(1000);
  let err = null;
  try {
    await tusUpload(tus, {
      endpoint: `${srv.url}${API}/alice/shop/uploads/tus`,
      token: alice,
      data,
      chunkSize: PART,
      metadata: { tableName: 'whole', importOp: 'Create', filename: 'w.csv', sha256: sha('sha256', 'not it') },
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err);
  assert.equal(err.originalResponse.getStatus(), 460);
  assert.equal((await jobs()).length, before);
  const url = err.originalRequest.getURL();
  const h = await api('HEAD', url.slice(url.indexOf(API) + API.length), { headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(h.status, 404);
});

await test('an upload half done survives a restart', async () => {
  const data = makeCsv(20000);
  const md = (o) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
      .join(',');
  const c = await api('POST', '/alice/shop/uploads/tus', {
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Length': String(data.length),
      'Upload-Metadata': md({ params: JSON.stringify({ tableName: 'restart', importOp: 'Create', primaryKeys: ['id'] }) }),
    },
  });
  assert.equal(c.status, 201, c.text);
  const loc = c.headers.get('location');
  const path = loc.slice(loc.indexOf(API) + API.length);
  const half = Math.floor(data.length / 2);
  const p1 = await api('PATCH', path, {
    headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
    body: data.subarray(0, half),
  });
  assert.equal(p1.status, 204);
  assert.equal(p1.headers.get('upload-offset'), String(half));
  const { dir, port } = srv;
  await srv.stop({ keep: true });
  srv = await startServer(bin, { dir, port });
  const h = await api('HEAD', path, { headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(h.status, 200);
  assert.equal(h.headers.get('upload-offset'), String(half));
  assert.equal(h.headers.get('upload-length'), String(data.length));
  const p2 = await api('PATCH', path, {
    headers: {
      'Tus-Resumable': '1.0.0',
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Offset': String(half),
      'Upload-Checksum': `sha256 ${sha('sha256', data.subarray(half), 'base64')}`,
    },
    body: data.subarray(half),
  });
  assert.equal(p2.status, 204, p2.text);
  const op = await poll(srv.url, alice, 'alice/shop', p2.headers.get('tablehub-operation-name'));
  assert.equal(op.job_status, 'Completed', JSON.stringify(op));
  assert.equal(op.result.rows, 20000);
  const f = await api('GET', `/alice/shop/files/${p2.headers.get('tablehub-file-id')}`);
  assert.equal(f.json.file.sha256, sha('sha256', data));
});

await test("the protocol's refusals", async () => {
  const o = await api('OPTIONS', '/alice/shop/uploads/tus', { token: null });
  assert.equal(o.status, 204);
  assert.equal(o.headers.get('tus-version'), '1.0.0');
  assert.equal(o.headers.get('tus-extension'), 'creation,termination,checksum');
  assert.equal(o.headers.get('tus-checksum-algorithm'), 'sha1,sha256');
  assert.equal(o.headers.get('tus-max-size'), String(10 * 1024 * 1024 * 1024));
  const create = (headers, token = alice) =>
    api('POST', '/alice/shop/uploads/tus', {
      token,
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Metadata': `tableName ${Buffer.from('t1').toString('base64')},importOp ${Buffer.from('Create').toString('base64')}`,
        ...headers,
      },
    });
  assert.equal((await create({ 'Upload-Length': '10', 'Tus-Resumable': '0.2.2' })).status, 412);
  assert.equal((await create({ 'Upload-Length': String(11 * 1024 ** 3) })).status, 413);
  assert.equal((await create({})).status, 400);
  const bad = await create({ 'Upload-Length': '10', 'Upload-Metadata': `importOp ${Buffer.from('Explode').toString('base64')}` });
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /importOp/);
  const nobranch = await create({
    'Upload-Length': '10',
    'Upload-Metadata': `tableName dDE=,importOp ${Buffer.from('Create').toString('base64')},branchName ${Buffer.from('nope').toString('base64')}`,
  });
  assert.equal(nobranch.status, 400);
  assert.match(nobranch.json.message, /no branch 'nope'/);
  assert.equal((await create({ 'Upload-Length': '10' }, null)).status, 401);
  const c = await create({ 'Upload-Length': '10' });
  assert.equal(c.status, 201);
  const loc = c.headers.get('location');
  const path = loc.slice(loc.indexOf(API) + API.length);
  const patch = (headers, body, token = alice) =>
    api('PATCH', path, {
      token,
      headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', ...headers },
      body,
    });
  assert.equal((await patch({ 'Upload-Offset': '0', 'Content-Type': 'text/csv' }, 'a,b\n')).status, 415);
  const wrong = await patch({ 'Upload-Offset': '3' }, 'a,b\n');
  assert.equal(wrong.status, 409);
  assert.equal(wrong.headers.get('upload-offset'), '0');
  assert.equal((await patch({ 'Upload-Offset': '0' }, 'a,b\n1,2\n3,4\n')).status, 400); // past the length
  assert.equal((await patch({ 'Upload-Offset': '0', 'Upload-Checksum': 'md5 AAAA' }, 'a')).status, 400);
  assert.equal((await patch({ 'Upload-Offset': '0' }, 'a,b\n', bob)).status, 404);
  const ok = await patch({ 'Upload-Offset': '0' }, 'a,b\n');
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('upload-offset'), '4');
  assert.equal((await api('HEAD', path, { token: bob, headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
  assert.equal((await api('DELETE', path, { headers: { 'Tus-Resumable': '1.0.0' } })).status, 204);
  assert.equal((await patch({ 'Upload-Offset': '4' }, '1,2\n')).status, 404);
});

await test('an upload the disk cannot hold is refused (507) before any byte', async () => {
  const full = await startServer(bin, { args: ['--min-free-mb', '100000000'] });
  try {
    const t = full.user('carol');
    const d = await fetch(`${full.url}${API}/database`, {
      method: 'POST',
      headers: { authorization: `token ${t}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ownerName: 'carol', repoName: 'db' }),
    });
    assert.equal(d.status, 200);
    const r = await fetch(`${full.url}${API}/carol/db/uploads/tus`, {
      method: 'POST',
      headers: {
        authorization: `token ${t}`,
        'Tus-Resumable': '1.0.0',
        'Upload-Length': '1000',
        'Upload-Metadata': `tableName dDE=,importOp ${Buffer.from('Create').toString('base64')}`,
      },
    });
    assert.equal(r.status, 507);
    assert.match((await r.json()).message, /not enough disk space/);
  } finally {
    await full.stop();
  }
});

// A failure keeps the data directory and its serve.log.
await srv.stop({ keep: failed > 0 });
if (failed) console.error(`the server's data directory and log: ${srv.dir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
