// screenshots.mjs: pictures of the web pages for people to look at (scripts/screenshots).
//
//   node tests/web/screenshots.mjs path/to/tablehub OUT_DIR
//
// Starts a real `tablehub serve` on a fresh data dir, fills a database the way a person would
// (an import, a change under review with a comment and a review), and writes PNGs of the
// database, pull request, upload-in-progress and SQL pages at 1440 px and at 375 px wide.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadPlaywright, startServer, CHROMIUM, CHROMIUM_ARGS, api, apiUpload, apiMerge } from './lib.mjs';

const [bin, out] = process.argv.slice(2);
if (!bin || !out) {
  console.error('usage: node screenshots.mjs path/to/tablehub OUT_DIR');
  process.exit(2);
}
const pw = await loadPlaywright();
if (pw.why) {
  console.error(pw.why);
  process.exit(1);
}
mkdirSync(out, { recursive: true });

const cities = ['Lisbon', 'Oslo', 'Quito', 'Nairobi', 'Osaka', 'Lima', 'Perth', 'Tunis', 'Hanoi', 'Bergen'];
const products = ['espresso beans', 'green tea', 'oat milk', 'dark chocolate', 'honey', 'rye bread', 'olive oil', 'jasmine rice'];
function orderRow(i) {
  return [
    i,
    `customer-${(i * 7919) % 997}`,
    cities[i % cities.length],
    products[(i * 3) % products.length],
    (i * 13) % 40 + 1,
    ((i * 37) % 2000 / 100 + 1).toFixed(2),
    `2026-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`,
    i % 5 === 0 ? '' : i % 3 === 0 ? 'false' : 'true',
  ];
}
const HEADER = 'order_id,customer,city,product,quantity,unit_price,shipped_on,paid';
function ordersCsv(n) {
  const lines = [HEADER];
  for (let i = 1; i <= n; i++) lines.push(orderRow(i).join(','));
  return lines.join('\n') + '\n';
}

const srv = await startServer(bin);
const alice = srv.user('alice');
const bob = srv.user('bob');
let browser;
try {
  await api(srv, alice, 'POST', '/database', { ownerName: 'alice', repoName: 'shop', description: 'Orders of the corner shop, one row per order line', visibility: 'public' });
  const first = await apiUpload(srv, alice, 'alice', 'shop', 'orders', ordersCsv(2400), 'Create', ['order_id']);
  await apiMerge(srv, alice, 'alice', 'shop', first.pull_id);
  await apiUpload(srv, alice, 'alice', 'shop', 'customers', 'customer_id,name,city\n' + Array.from({ length: 300 }, (_, i) => `${i + 1},Customer ${i + 1},${cities[i % cities.length]}`).join('\n') + '\n', 'Create', ['customer_id']).then((p) => apiMerge(srv, alice, 'alice', 'shop', p.pull_id));
  // A change under review: quantities corrected, a price fixed, an order cancelled, a new one.
  const fix = [HEADER];
  const r3 = orderRow(3);
  r3[4] = 6; // quantity halved
  const r8 = orderRow(8);
  r8[4] = 7;
  r8[5] = '2.95'; // and a price fixed
  const r15 = orderRow(15);
  r15[7] = 'true'; // paid after all
  fix.push(r3.join(','), r8.join(','), r15.join(','), '2401,customer-12,Lisbon,olive oil,2,9.80,2026-12-01,');
  const pull = await apiUpload(srv, alice, 'alice', 'shop', 'orders', fix.join('\n') + '\n', 'Update', []);
  await api(srv, alice, 'PATCH', `/alice/shop/pulls/${pull.pull_id}`, { title: 'Correct three orders, add a phone order', description: 'Order 3 was counted twice, order 8 had last year\'s price and order 15 is paid. Order 2401 came in by phone.' });
  // Alice asks bob, who has the write role, for a review; main needs one approval, so the pull is
  // mergeable once he approves.
  await api(srv, alice, 'PUT', '/alice/shop/collaborators/bob', { role: 'write' });
  await api(srv, alice, 'PUT', '/alice/shop/branches/main/protection', { requiredApprovals: 1, allowSelfApproval: false, dismissStaleApprovals: true, mergeRole: 'write' });
  await api(srv, alice, 'POST', `/alice/shop/pulls/${pull.pull_id}/reviewers`, { reviewers: ['bob'] });
  await api(srv, bob, 'POST', `/alice/shop/pulls/${pull.pull_id}/comments`, { comment: 'Order 8 was 7 packs, I checked the paper slip.' });
  await api(srv, bob, 'POST', `/alice/shop/pulls/${pull.pull_id}/reviews`, { reviewStatus: 'Approved', comment: 'Looks right.' });

  browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  for (const width of [1440, 375]) {
    const ctx = await browser.newContext({ viewport: { width, height: width > 800 ? 900 : 812 }, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'Europe/Berlin' });
    await ctx.addInitScript((t) => localStorage.setItem('tablehub.token', t), alice);
    const page = await ctx.newPage();
    const shot = async (name, path, waitFor) => {
      await page.goto(srv.url + path);
      await page.locator('#main:not([aria-busy])').waitFor();
      if (waitFor) await page.locator(waitFor).first().waitFor();
      await page.screenshot({ path: join(out, `${name}-${width}.png`), fullPage: true });
    };
    await shot('database', '/repositories/alice/shop', '.log .commit');
    await shot('pull-request', `/repositories/alice/shop/pulls/${pull.pull_id}`, '#diff-rows');
    await shot('sql', '/repositories/alice/shop/query/main?q=' + encodeURIComponent('SELECT city, count(*) AS orders, sum(quantity) AS items, round(sum(quantity * unit_price), 2) AS revenue\nFROM orders GROUP BY city ORDER BY revenue DESC'), '#result table');
    // An upload caught while the import runs: big enough to take a moment.
    await page.goto(srv.url + '/repositories/alice/shop/upload');
    await page.locator('#main:not([aria-busy])').waitFor();
    await page.setInputFiles('#file', { name: 'orders-2027.csv', mimeType: 'text/csv', buffer: Buffer.from(ordersCsv(600000)) });
    await page.locator('.pk-list input[value=order_id]').waitFor();
    await page.click('form.upload-form button[type=submit]');
    await page.locator('#import-status[data-state="In Progress"]').waitFor({ timeout: 60000 });
    await page.waitForFunction(() => /Reading the file: [1-9]/.test(document.querySelector('#import-status .phase')?.textContent || ''), null, { timeout: 60000 }).catch(() => {});
    await page.screenshot({ path: join(out, `upload-in-progress-${width}.png`), fullPage: true });
    await page.locator('#pull-link').waitFor({ timeout: 120000 });
    await ctx.close();
  }
  console.log(`screenshots in ${out}`);
} finally {
  await browser?.close();
  await srv.stop();
}
