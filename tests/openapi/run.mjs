// run.mjs: the OpenAPI document (api/openapi.json, as the server serves it) is valid OpenAPI 3.1,
// and a live server answers every documented operation as documented.
//
//   node tests/openapi/run.mjs path/to/tablehub        (ctest runs it as test_openapi)
//
// 1. @apidevtools/swagger-parser validates the document fetched from GET /api/openapi.json.
// 2. A fresh `tablehub serve` gets a database with a table, an import's pull request, a branch,
//    then one request per documented operation, built from the document alone: path parameters
//    from their examples, required query parameters from theirs, the JSON body from the request
//    body's example (multipart and raw uploads get a small CSV). Each answer's status must be one
//    the operation documents, and a JSON body must validate (Ajv, JSON Schema 2020-12) against
//    the schema documented for that status. Mutations run after the reads, sign-outs last.
// Exit 77 (skipped) when the node packages are missing, outside CI; scripts/setup installs them.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = process.argv[2] || process.env.TH_BIN;
if (!bin) {
  console.error('usage: node run.mjs path/to/tablehub');
  process.exit(2);
}
let SwaggerParser, Ajv2020;
try {
  SwaggerParser = (await import('@apidevtools/swagger-parser')).default;
  Ajv2020 = (await import('ajv/dist/2020.js')).default;
} catch (e) {
  console.log(`test_openapi skipped: ${e.message} (scripts/setup installs tests/openapi's packages)`);
  process.exit(process.env.CI ? 1 : 77);
}

let failures = 0;
const fail = (msg) => {
  failures++;
  console.error('FAIL ' + msg);
};

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'th-openapi-'));
  const port = await freePort();
  const log = openSync(join(dir, 'serve.log'), 'a');
  const child = spawn(bin, ['serve', '--data', dir, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', log] });
  const url = `http://127.0.0.1:${port}`;
  let exited = null;
  child.on('exit', (code, sig) => (exited = code ?? sig));
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`the server exited (${exited}); see ${dir}/serve.log`);
    try {
      if ((await fetch(url + '/api/v1alpha1/user')).status === 401) break;
    } catch {
      /* not yet */
    }
    if (i > 200) throw new Error('the server did not answer within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    user: (name) => execFileSync(bin, ['user', 'add', '--data', dir, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    async stop() {
      if (exited === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const srv = await startServer();
try {
  const alice = srv.user('alice');
  const call = async (method, path, body, headers = {}) => {
    const h = { authorization: 'token ' + alice, ...headers };
    if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
      h['content-type'] = 'application/json';
      body = JSON.stringify(body);
    }
    return fetch(srv.url + path, { method, headers: h, body });
  };

  // --- 1. the document is valid OpenAPI 3.1
  const served = await (await fetch(srv.url + '/api/openapi.json')).json();
  try {
    await SwaggerParser.validate(structuredClone(served));
    console.log('ok: the document is valid OpenAPI ' + served.openapi);
  } catch (e) {
    fail('swagger-parser: ' + e.message);
  }

  // --- 2. a database with a table, its import's pull request (#1) and a second branch
  const csv = 'id,name\n1,ann\n2,bob\n';
  await call('POST', '/api/v1alpha1/database', { ownerName: 'alice', repoName: 'shop' });
  const fd = new FormData();
  fd.append('params', JSON.stringify({ tableName: 'people', importOp: 'Create', primaryKeys: ['id'] }));
  fd.append('file', new Blob([csv]), 'people.csv');
  const up = await (await call('POST', '/api/v1alpha1/alice/shop/upload', fd)).json();
  const opName = up.operation_name;
  for (let i = 0; i < 300; i++) {
    const p = await (await call('GET', `/api/v1alpha1/alice/shop/upload?operationName=${encodeURIComponent(opName)}`)).json();
    if (p.job_status === 'Completed' || p.job_status === 'Failed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await call('POST', '/api/v1alpha1/alice/shop/branches', { revisionType: 'branch', revisionName: 'main', newBranchName: 'feature' });

  // --- 3. one request per documented operation
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(served, 'openapi');
  const resolve = (obj) => {
    while (obj && obj.$ref) obj = obj.$ref.slice(2).split('/').reduce((o, k) => o[k], served);
    return obj;
  };
  const order = (m, p) => (p === '/logout' || (m === 'delete' && p.includes('tokens')) ? 3 : m === 'get' ? 0 : m === 'delete' ? 2 : 1);
  const ops = [];
  for (const [path, item] of Object.entries(served.paths))
    for (const [method, op] of Object.entries(item)) ops.push({ path, method, op });
  ops.sort((a, b) => order(a.method, a.path) - order(b.method, b.path));
  let checked = 0;
  const statuses = {};
  for (const { path, method, op } of ops) {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const p0 of op.parameters || []) {
      const p = resolve(p0);
      let v = p.example;
      if (p.name === 'operationName') v = opName;
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      else if (p.in === 'query' && p.required) query.set(p.name, v);
      else if (p.in === 'header' && v !== undefined) headers[p.name] = v;
    }
    if ([...query].length) url += '?' + query;
    let body;
    const content = op.requestBody && op.requestBody.content;
    if (content && content['application/json']) body = content['application/json'].example;
    else if (content && content['multipart/form-data']) {
      body = new FormData();
      body.append('params', JSON.stringify({ tableName: 'more', importOp: 'Create' }));
      body.append('file', new Blob([csv]), 'more.csv');
    } else if (content) body = csv;
    const r = await call(method.toUpperCase(), url, body, headers);
    const text = await r.text();
    const where = `${method.toUpperCase()} ${url}: ${r.status}`;
    statuses[r.status] = (statuses[r.status] || 0) + 1;
    const doc = op.responses[String(r.status)] || op.responses.default;
    if (!doc) {
      fail(`${where} is not a documented status (${Object.keys(op.responses).join(', ')}): ${text.slice(0, 200)}`);
      continue;
    }
    const type = (r.headers.get('content-type') || '').split(';')[0];
    const res = resolve(doc);
    const media = res.content && res.content[type];
    if (!media) {
      fail(`${where}: content type '${type}' is not documented for this status`);
      continue;
    }
    // A reply to HEAD has no body to validate: its status and type are what it says.
    if (type === 'application/json' && media.schema && method !== 'head') {
      // The schema by its JSON pointer in the document, so its $refs resolve against it.
      const esc = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');
      const base = doc.$ref ? doc.$ref.slice(1) : `/paths/${esc(path)}/${method}/responses/${r.status in op.responses ? r.status : 'default'}`;
      const validate = ajv.compile({ $ref: `openapi#${base}/content/application~1json/schema` });
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        fail(`${where}: not JSON: ${text.slice(0, 200)}`);
        continue;
      }
      if (!validate(json)) fail(`${where}: the body does not match its schema: ${ajv.errorsText(validate.errors)}: ${text.slice(0, 300)}`);
    }
    checked++;
  }
  console.log(`ok: ${checked} of ${ops.length} operations answered as documented (statuses: ${JSON.stringify(statuses)})`);
} finally {
  await srv.stop();
}
if (failures) {
  console.error(`${failures} failed`);
  process.exit(1);
}
