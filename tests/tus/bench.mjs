// bench.mjs: a resumable upload beside a multipart upload of the same file, first byte to
// Completed (median of `runs`, alternating), and the server's peak RSS.
// usage: node bench.mjs TABLEHUB_BIN FILE [RUNS]. The tus upload goes through tus-js-client in
// 5 MiB parts read from disk (a stream: the client holds one part), without checksums; the
// multipart one is curl's, to a server started with --max-upload-mb 2000. Prints one line each.
import {execFileSync} from 'node:child_process';
import {createReadStream, readFileSync, statSync} from 'node:fs';
import {API, startServer, tusUpload, poll} from './lib.mjs';

const [bin, file, runsArg] = process.argv.slice(2);
if (!bin || !file) {
	console.error('usage: node bench.mjs TABLEHUB_BIN FILE [RUNS]');
	process.exit(2);
}
const tus = await import('tus-js-client');
const runs = Number(runsArg || 3);
const size = statSync(file).size;
const PART = 5 * 1024 * 1024;
const srv = await startServer(bin, { args : [ '--max-upload-mb', '2000', '--workers', '2' ] });
const token = srv.user('bench');
const params = {
	tableName : 't',
	importOp : 'Create',
	primaryKeys : [ 'id' ],
	fileName : 'rows.csv'
};

async function createDb(name)
{
	const r = await fetch(`${srv.url}${API}/database`, {
		method : 'POST',
		headers : { authorization : `token ${token}`, 'content-type' : 'application/json' },
		body : JSON.stringify({ ownerName : 'bench', repoName : name }),
	});
	if (r.status !== 200)
		throw new Error(`create ${name}: ${r.status} ${await r.text()}`);
}

async function viaTus(db)
{
	const start = process.hrtime.bigint();
	const done = await tusUpload(tus, {
		endpoint : `${srv.url}${API}/bench/${db}/uploads/tus`,
		token,
		data : createReadStream(file),
		chunkSize : PART,
		metadata : { params : JSON.stringify(params) },
	});
	const op = await poll(srv.url, token, `bench/${db}`, done.operation, 600000);
	if (op.job_status !== 'Completed')
		throw new Error(JSON.stringify(op));
	return Number(process.hrtime.bigint() - start) / 1e9;
}

async function viaMultipart(db)
{
	const start = process.hrtime.bigint();
	const out = execFileSync('curl',
	                         [
		                         '-s', '-H', `authorization: token ${token}`,
			                 '--form-string', `params=${JSON.stringify(params)}`, '-F',
				         `file=@${file}`, `${srv.url}${API}/bench/${db}/upload`
				 ],
				 { encoding : 'utf8' });
	const op =
	        await poll(srv.url, token, `bench/${db}`, JSON.parse(out).operation_name, 600000);
	if (op.job_status !== 'Completed')
		throw new Error(JSON.stringify(op));
	return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const t = [], m = [];
for (let i = 0; i < runs; i++) {
	await createDb(`tus${i}`);
	await createDb(`mp${i}`);
	t.push(await viaTus(`tus${i}`));
	m.push(await viaMultipart(`mp${i}`));
}
const hwm = readFileSync(`/proc/${srv.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/);
const mt = median(t), mm = median(m);
console.log(
        `tus upload of ${(size / 1e6).toFixed(0)} MB in 5 MiB parts, first byte to Completed: ` +
	`${mt.toFixed(2)} s; multipart upload of the same file: ${mm.toFixed(2)} s; ratio ` +
	`${(mt / mm).toFixed(2)} (target <= 1.15); runs: tus ${
		t.map((x) => x.toFixed(2)).join(' ')}, ` +
	`multipart ${m.map((x) => x.toFixed(2)).join(' ')}`);
if (hwm)
	console.log(`server peak RSS ${Math.round(Number(hwm[1]) / 1024)} MB`);
await srv.stop();
