// run.mjs: end-to-end tests of the web pages in a real browser (headless Chromium driven by
// playwright-core) against a real `tablehub serve` on a loopback port with a fresh data dir.
//
//   node tests/web/run.mjs path/to/tablehub        (ctest runs it as test_web)
//
// The tests run in order and build on each other, as a person would work: sign in with a token,
// create a database, upload a CSV through the page and watch it complete, review its pull request
// and merge it, page through the table, review a change (comment, approve as a second user, see
// the changed cell and its old value), merge, meet a conflicting pull, see a bad file's rejected
// rows, run SQL. Cells holding markup are uploaded and checked to show as text: window.alert is
// hooked and any dialog fails the test. Each test checks what the page shows.
// Exit 77 (skipped) when Chromium or playwright-core is missing, outside CI; scripts/setup
// installs both.
import test, { before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { loadPlaywright, startServer, CHROMIUM, CHROMIUM_ARGS, api, apiUpload, apiMerge, signIn, signInPassword } from './lib.mjs';

const bin = process.argv[2] || process.env.TH_BIN;
if (!bin) {
  console.error('usage: node run.mjs path/to/tablehub');
  process.exit(2);
}
const pw = await loadPlaywright();
if (pw.why) {
  console.log(`test_web skipped: ${pw.why}`);
  process.exit(process.env.CI ? 1 : 77);
}

const XSS1 = '<img src=x onerror=alert(1)>';
const XSS2 = '"><script>alert(2)</script>';
const TZ = 'Asia/Kolkata';
let srv, browser, ctx, page, alice, bob;
const dialogs = [];

// orders.csv: 60 rows; row 1 and 2 hold markup, row 3 an empty string, row 4 a NULL note.
function ordersCsv() {
  const fruit = ['apple', 'pear', 'fig', 'plum', 'kiwi', 'lime'];
  const lines = ['id,item,qty,note'];
  for (let i = 1; i <= 60; i++) {
    const note = i === 1 ? XSS1 : i === 2 ? '"""><script>alert(2)</script>"' : i === 3 ? '""' : i === 4 ? '' : `n${i}`;
    lines.push(`${i},${fruit[i % fruit.length]},${i * 3 % 17},${note}`);
  }
  return lines.join('\n') + '\n';
}

const text = (sel) => page.locator(sel).first().innerText();
// The app marks <main> aria-busy from a URL change until the page has drawn what it fetched.
const settled = () => page.locator('#main:not([aria-busy])').waitFor();
async function goto(path) {
  await page.goto(srv.url + path);
  await settled();
}
const rowIds = async () => page.locator('#rows tbody tr td:first-child').allInnerTexts();

before(async () => {
  srv = await startServer(bin);
  alice = srv.user('alice');
  bob = srv.user('bob');
  browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: TZ, acceptDownloads: true });
  // Anything that would run from data shows up here.
  await ctx.addInitScript(() => {
    window.__alerts = [];
    window.alert = (m) => window.__alerts.push(String(m));
  });
  page = await ctx.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => dialogs.push('page error: ' + e.message));
  page.setDefaultTimeout(15000);
});

afterEach(async () => {
  assert.deepEqual(dialogs, [], 'no dialog opened and no script error');
  assert.deepEqual(await page.evaluate(() => window.__alerts), [], 'nothing called alert');
});

after(async () => {
  await browser?.close();
  const code = await srv?.stop({ keep: process.exitCode ? true : false });
  assert.equal(code, 0, 'the server exits cleanly');
});

test('sign in with a pasted API token', async () => {
  await goto('/');
  await page.click('#who a:has-text("Sign in")');
  await page.waitForURL(/\/signin\?next=/);
  await settled();
  await page.click('#token-option summary');
  await page.fill('#token', 'not-a-token');
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-form .error').waitFor();
  assert.notEqual((await text('#token-form .error')).trim(), '');
  await page.fill('#token', alice);
  await page.click('#token-form button[type=submit]');
  await page.waitForURL(srv.url + '/');
  await settled();
  assert.equal(await text('#who strong'), 'alice');
  assert.equal(await page.evaluate(() => localStorage.getItem('tablehub.token')), alice);
  await page.locator('text=You have no databases yet').waitFor();
});

test('create a database', async () => {
  await page.click('summary:has-text("New database")');
  await page.fill('#new-name', 'shop');
  await page.fill('#new-desc', 'Fruit orders');
  await page.click('button:has-text("Create database")');
  await page.waitForURL(srv.url + '/repositories/alice/shop');
  await settled();
  assert.equal(await text('h1'), 'alice/shop');
  assert.equal(await text('.lead'), 'Fruit orders');
  await page.locator('text=No tables at this ref yet').waitFor();
  // It is listed, and found by a search that is kept in the URL.
  await goto('/');
  await page.fill('#db-search', 'SHO');
  await page.waitForURL(/\?q=SHO$/);
  await settled();
  assert.deepEqual(await page.locator('#main .db-name').allInnerTexts(), ['alice/shop']);
  await page.fill('#db-search', 'nothing-like-it');
  await page.locator('text=None of yours match.').waitFor();
});

test('upload a CSV through the page and watch the import complete', async () => {
  await goto('/repositories/alice/shop');
  await page.click('nav.tabs a:has-text("Upload")');
  await page.waitForURL(/\/upload$/);
  await settled();
  await page.setInputFiles('#file', { name: 'orders.csv', mimeType: 'text/csv', buffer: Buffer.from(ordersCsv()) });
  // The header was read in the browser: the key is picked from it.
  await page.locator('.pk-list input[value=id]').waitFor();
  assert.deepEqual(await page.locator('.pk-list .mono').allInnerTexts(), ['id', 'item', 'qty', 'note']);
  assert.ok(await page.isChecked('.pk-list input[value=id]'));
  assert.equal(await page.inputValue('#table'), 'orders');
  assert.ok(await page.isChecked('#op-Create'));
  assert.match(await text('#op-help-Append'), /key that already exists fails/);
  await page.click('form.upload-form button[type=submit]');
  await page.locator('#pull-link').waitFor();
  assert.match(page.url(), /\/upload\?op=[0-9a-f-]{36}&branch=main$/);
  assert.match(await text('.sending p'), /^orders\.csv: all [0-9.]+ (B|KB) sent\.$/);
  assert.match(await text('#import-status .phase'), /Completed\. 60 rows added, 0 modified, 0 removed in table orders\./);
  assert.equal(await text('#pull-link'), 'Review pull request #1');
});

test('open the pull request, page its diff and merge it', async () => {
  await page.click('#pull-link');
  await page.waitForURL(/\/pulls\/1$/);
  await settled();
  assert.match(await text('h1'), /#1 Import orders\.csv into orders/);
  await page.locator('#diff-rows').waitFor();
  assert.equal(await page.locator('#diff-rows tbody tr.row-added').count(), 50);
  assert.match(await text('.pager'), /50 of 60 rows/);
  // Markup in cells is text: shown as typed, no element made from it.
  assert.equal(await page.locator('#diff-rows td', { hasText: XSS1 }).count(), 1);
  assert.equal(await page.locator('#diff-rows td', { hasText: XSS2 }).count(), 1);
  assert.equal(await page.locator('#main img, #main script').count(), 0);
  await page.locator('.pager a:has-text("Next")').first().click();
  await page.waitForURL(/page=/);
  await settled();
  await page.locator('#diff-rows').waitFor();
  assert.equal(await page.locator('#diff-rows tbody tr').count(), 10);
  await page.locator('.pager a:has-text("Previous")').first().click();
  await page.waitForURL(/\/pulls\/1$/);
  await settled();
  await page.locator('#diff-rows').waitFor();
  assert.equal(await page.locator('#diff-rows tbody tr').count(), 50);
  // The owner may merge: no conflicts.
  assert.match(await text('#merge-why'), /No conflicts/);
  await page.click('#merge');
  await page.locator('.pull-sub .badge-merged').waitFor();
  assert.equal(await text('.pull-sub .badge'), 'Merged');
  assert.equal(await page.locator('#merge').count(), 0);
});

test('a table at a ref: typed columns, NULL apart from empty, pages by key, sort, filter', async () => {
  await goto('/repositories/alice/shop');
  await page.locator('table.list a:has-text("orders")').click();
  await page.waitForURL(/\/data\/main\/orders$/);
  await settled();
  await page.locator('#rows').waitFor();
  assert.match(await text('.table-title'), /60 rows · 4 columns · key id/);
  assert.deepEqual(await page.locator('#rows thead .col-type').allInnerTexts(), ['integer · not null', 'text', 'integer', 'text']);
  // Numbers right-aligned; NULL and the empty string drawn apart; markup as text.
  const row = (id) => page.locator('#rows tbody tr', { has: page.locator(`td:first-child:text-is("${id}")`) });
  assert.match(await row(1).locator('td').nth(2).getAttribute('class'), /\bnum\b/);
  assert.equal(await row(1).locator('td').nth(3).innerText(), XSS1);
  assert.equal(await row(2).locator('td').nth(3).innerText(), XSS2);
  assert.match(await row(3).locator('td').nth(3).getAttribute('class'), /\bempty\b/);
  assert.match(await row(4).locator('td').nth(3).getAttribute('class'), /\bnull\b/);
  assert.equal(await page.locator('#main img, #main script').count(), 0);
  // 25 a page: next, next (the last 10), back, previous.
  await page.selectOption('#size', '25');
  await page.waitForURL(/size=25$/);
  await settled();
  await page.locator('#rows').waitFor();
  assert.equal((await rowIds()).length, 25);
  await page.locator('.pager a:has-text("Next")').first().click();
  await page.waitForURL(/after=/);
  await settled();
  await page.waitForFunction(() => document.querySelector('#rows tbody td')?.textContent === '26');
  await page.locator('.pager a:has-text("Next")').first().click();
  await page.waitForFunction(() => document.querySelector('#rows tbody td')?.textContent === '51');
  assert.equal((await rowIds()).length, 10);
  assert.ok(await page.locator('.pager button:has-text("Next")').first().isDisabled());
  await page.goBack();
  await settled();
  await page.waitForFunction(() => document.querySelector('#rows tbody td')?.textContent === '26');
  await page.locator('.pager a:has-text("Previous")').first().click();
  await page.waitForFunction(() => document.querySelector('#rows tbody td')?.textContent === '1');
  // Jump to a key.
  await page.fill('#jump-0', '40');
  await page.click('button[data-focus=jump]');
  await page.waitForFunction(() => document.querySelector('#rows tbody td')?.textContent === '40');
  // Sort by qty, descending (a second click), then filter.
  await page.click('a.sort:has-text("qty")');
  await page.waitForURL(/sort=qty/);
  await settled();
  await page.click('a.sort:has-text("qty")');
  await page.waitForURL(/desc=1/);
  await settled();
  await page.locator('#rows th[aria-sort=descending]').waitFor();
  const qtys = (await page.locator('#rows tbody tr td:nth-child(3)').allInnerTexts()).map(Number);
  assert.deepEqual(qtys, [...qtys].sort((a, b) => b - a));
  await page.selectOption('#fcol', 'item');
  await page.selectOption('#fop', 'contains');
  await page.fill('#fval', 'KIWI');
  await page.click('button[data-focus=filter-apply]');
  await page.waitForURL(/fval=KIWI/);
  await settled();
  await page.locator('text=rows match the filter').waitFor();
  const items = await page.locator('#rows tbody tr td:nth-child(2)').allInnerTexts();
  assert.equal(items.length, 10);
  assert.ok(items.every((x) => x === 'kiwi'));
  assert.match(await text('#main p[aria-live]'), /10 rows match the filter/);
  // The CSV download.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Download CSV")')]);
  const chunks = [];
  for await (const c of await dl.createReadStream()) chunks.push(c);
  const csv = Buffer.concat(chunks).toString();
  assert.equal(csv.split('\n')[0], 'id,item,qty,note');
  assert.equal(csv.trim().split('\n').length, 61);
});

test('the database page: collaborators for admins, branch protection', async () => {
  srv.user('carol');
  await goto('/repositories/alice/shop');
  await page.locator('#collaborators').waitFor();
  const people = () => page.locator('#collaborators li').allInnerTexts();
  assert.match((await people()).join('|'), /alice\s+owner \(admin\)/);
  // Add bob (write) and carol (read), change carol's role, remove her.
  await page.fill('#collab-name', 'bob');
  await page.selectOption('#collab-role', 'write');
  await page.click('#collab-add button[type=submit]');
  await page.locator('#collaborators li[data-user=bob]').waitFor();
  assert.equal(await page.inputValue('#role-bob'), 'write');
  await page.fill('#collab-name', 'carol');
  await page.selectOption('#collab-role', 'read');
  await page.click('#collab-add button[type=submit]');
  await page.locator('#collaborators li[data-user=carol]').waitFor();
  assert.equal(await page.inputValue('#role-carol'), 'read');
  await page.selectOption('#role-carol', 'admin');
  await page.locator('#collaborators >> text=carol is now admin.').waitFor();
  assert.equal((await api(srv, alice, 'GET', '/alice/shop/collaborators/carol')).role, 'admin');
  await page.click('#collaborators li[data-user=carol] button:has-text("Remove")');
  await page.locator('#collaborators >> text=carol was removed.').waitFor();
  assert.equal(await page.locator('#collaborators li[data-user=carol]').count(), 0);
  await page.fill('#collab-name', 'nobody-here');
  await page.click('#collab-add button[type=submit]');
  await page.locator('#collaborators .error').waitFor();
  // Protect main: one approval, not the author's own.
  assert.equal(await page.locator('.branches .protection').count(), 0);
  await page.click('#protection-edit summary');
  await page.fill('#prot-approvals', '1');
  await page.click('#protection-edit button[type=submit]');
  await page.locator('.branches .protection[data-branch=main]').waitFor();
  assert.match(await text('.branches .protection[data-branch=main]'), /Protected 1 approval needed · not the author’s own · new commits dismiss approvals · merged by write/);
  const rules = await api(srv, alice, 'GET', '/alice/shop/branches/main/protection');
  assert.equal(rules.requiredApprovals, 1);
  assert.equal(rules.allowSelfApproval, false);
  // Bob (write, no admin) sees the protection but neither the collaborators nor the form.
  await signIn(page, srv, bob);
  await goto('/repositories/alice/shop');
  await page.locator('.branches .protection[data-branch=main]').waitFor();
  assert.equal(await page.locator('#collaborators').count(), 0);
  assert.equal(await page.locator('#protection-edit').count(), 0);
  await signIn(page, srv, alice);
});

test('review a change: the changed cell and its old value, comment, alice approves bob\'s pull, merge', async () => {
  // Bob (write) proposes a change to alice's protected main.
  const up = await apiUpload(srv, bob, 'alice', 'shop', 'orders', 'id,qty\n1,99\n', 'Update');
  assert.equal(up.pull_id, '2');
  // He asks alice to review it on the pull's page (a name that is no user is refused, saying
  // so; a request withdrawn goes), and the page lists her, waiting for her review.
  await signIn(page, srv, bob);
  await goto('/repositories/alice/shop/pulls/2');
  await page.locator('#reviewer-add').waitFor();
  assert.match(await text('#reviewers'), /No reviewers requested/);
  await page.fill('#reviewer-name', 'nobody-here');
  await page.click('#reviewer-add button[type=submit]');
  await page.locator('#reviewers-msg .error').waitFor();
  assert.match(await text('#reviewers-msg .error'), /nobody-here/);
  await page.fill('#reviewer-name', 'alice');
  await page.click('#reviewer-add button[type=submit]');
  await page.locator('#reviewers >> text=alice').waitFor();
  await page.click('button[aria-label="Withdraw the review request to alice"]');
  await page.locator('#reviewers >> text=No reviewers requested').waitFor();
  assert.equal((await api(srv, bob, 'GET', '/alice/shop/pulls/2')).requested_reviewers.length, 0);
  await page.fill('#reviewer-name', 'alice');
  await page.click('#reviewer-add button[type=submit]');
  await page.locator('#reviewers >> text=alice').waitFor();
  assert.deepEqual((await api(srv, bob, 'GET', '/alice/shop/pulls/2')).requested_reviewers.map((r) => r.username), ['alice']);
  await signIn(page, srv, alice);
  await goto('/repositories/alice/shop/pulls/2');
  await page.locator('#diff-rows').waitFor();
  assert.match(await text('#reviewers'), /Reviewers: alice \(review requested\)/);
  const changed = page.locator('#diff-rows td.changed');
  assert.equal(await changed.count(), 1);
  assert.equal(await changed.locator('del.old').innerText(), '3');
  assert.equal(await changed.locator('ins.new').innerText(), '99');
  assert.match(await text('#diff-rows tbody tr'), /pear/);
  // Times are in the viewer's time zone.
  const t = page.locator('.pull-sub time');
  const iso = await t.getAttribute('datetime');
  const want = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short', timeZone: TZ }).format(new Date(iso));
  assert.equal(await t.innerText(), want);
  // A comment.
  await page.fill('#comment', 'The new quantity is right.');
  await page.click('button[data-focus=comment]');
  await page.locator('#timeline >> text=The new quantity is right.').waitFor();
  assert.match(await text('#timeline .note'), /alice commented/);
  // Not mergeable under main's rules: the page says which rule, as the server would.
  await page.locator('#merge-why').waitFor();
  assert.match(await text('#merge-why'), /branch 'main' is protected: it needs 1 approving review .*; it has 0/);
  assert.match(await text('#merge-why .rule'), /requiredApprovals/);
  assert.match(await text('#merge-rules'), /main needs 1 approving review \(this pull has 0\)/);
  assert.ok(await page.locator('#merge').isDisabled());
  // Bob cannot approve his own pull.
  await signIn(page, srv, bob);
  await goto('/repositories/alice/shop/pulls/2');
  await page.click('button[data-focus=approve]');
  await page.locator('.talk .error').waitFor();
  assert.match(await text('.talk .error'), /allowSelfApproval|own/);
  assert.ok(await page.locator('#merge').isDisabled());
  // Alice approves with the button; the rules are met and she merges.
  await signIn(page, srv, alice);
  await goto('/repositories/alice/shop/pulls/2');
  await page.fill('#comment', 'Looks right to me.');
  await page.click('button[data-focus=approve]');
  await page.locator('#timeline .note-review').waitFor();
  assert.match(await text('#timeline .note-review'), /alice approved/);
  assert.match(await text('#timeline .note-review'), /Looks right to me\./);
  await page.locator('#merge-box .review-state .badge').waitFor();
  assert.equal(await text('#merge-box .review-state .badge'), 'Approved');
  assert.match(await text('#reviewers'), /Reviewers: alice Approved/);
  assert.match(await text('#merge-why'), /can be merged/);
  await page.click('#merge');
  await page.locator('.pull-sub .badge-merged').waitFor();
  assert.equal(await text('.pull-sub .badge'), 'Merged');
  // The table shows the merged value.
  await goto('/repositories/alice/shop/data/main/orders');
  await page.locator('#rows').waitFor();
  assert.equal(await page.locator('#rows tbody tr').first().locator('td').nth(2).innerText(), '99');
  // Alice lifts the protection again on the database page.
  await goto('/repositories/alice/shop');
  await page.click('#protection-edit summary');
  await page.click('#protection-edit button:has-text("Remove protection")');
  await page.locator('.branches li:has-text("main")').waitFor();
  await page.waitForFunction(() => !document.querySelector('.branches .protection'));
  assert.equal((await api(srv, alice, 'GET', '/alice/shop/branches/main/protection')).protected, false);
});

test('a conflicting pull lists its conflicts and the merge button says why it is blocked', async () => {
  const a = await apiUpload(srv, alice, 'alice', 'shop', 'orders', 'id,qty\n2,7\n', 'Update');
  const b = await apiUpload(srv, alice, 'alice', 'shop', 'orders', 'id,qty\n2,9\n', 'Update');
  assert.equal((await apiMerge(srv, alice, 'alice', 'shop', a.pull_id)).job_status, 'Completed');
  await goto(`/repositories/alice/shop/pulls/${b.pull_id}`);
  await page.locator('#conflicts').waitFor();
  const cells = await page.locator('#conflicts tbody tr').first().locator('td').allInnerTexts();
  assert.deepEqual(cells.slice(0, 6), ['orders', '2', 'qty', '6', '7', '9']);
  assert.ok(await page.locator('#merge').isDisabled());
  assert.match(await text('#merge-why'), /1 conflicting change with main/);
  assert.equal(await text('.pull-sub .badge'), 'Open');
});

test('who sees what: a reader comments only; a writer who is neither owner nor author asks for reviews, branches and uploads', async () => {
  const dave = srv.user('dave');
  const erin = srv.user('erin');
  await api(srv, alice, 'PUT', '/alice/shop/collaborators/dave', { role: 'read' });
  await api(srv, alice, 'PUT', '/alice/shop/collaborators/erin', { role: 'write' });
  const up = await apiUpload(srv, bob, 'alice', 'shop', 'orders', 'id,qty\n6,66\n', 'Update');
  // Dave (read) may comment; the page offers him no review, no reviewer form, and says why he
  // cannot merge, as the server would refuse him.
  await signIn(page, srv, dave);
  await goto(`/repositories/alice/shop/pulls/${up.pull_id}`);
  assert.equal((await api(srv, dave, 'GET', `/alice/shop/pulls/${up.pull_id}`)).viewer_role, 'read');
  await page.locator('#merge-why').waitFor();
  assert.ok(await page.locator('#merge').isDisabled());
  assert.match(await text('#merge-why'), /Merging into main needs the write role on alice\/shop; you have read/);
  assert.equal(await page.locator('button[data-focus=approve]').count(), 0);
  assert.equal(await page.locator('#reviewer-add').count(), 0);
  assert.match(await text('#review-needs'), /needs the write role on alice\/shop/);
  const refused = await fetch(`${srv.url}/api/v1alpha1/alice/shop/pulls/${up.pull_id}/merge`, { method: 'POST', headers: { authorization: 'token ' + dave } });
  assert.equal(refused.status, 403);
  await page.fill('#comment', 'Is 66 right?');
  await page.click('button[data-focus=comment]');
  await page.locator('#timeline >> text=Is 66 right?').waitFor();
  // Nor does the page offer him an upload or a new branch.
  await goto('/repositories/alice/shop/upload');
  await page.locator('#upload-needs').waitFor();
  assert.match(await text('#upload-needs'), /Uploading into alice\/shop needs the write role; you have read/);
  assert.equal(await page.locator('#file').count(), 0);
  await goto('/repositories/alice/shop');
  await page.locator('.branches').waitFor();
  assert.equal(await page.locator('#new-branch').count(), 0);
  // Erin (write) is neither the owner nor bob, the author: she asks dave for a review, and may
  // merge.
  await signIn(page, srv, erin);
  await goto(`/repositories/alice/shop/pulls/${up.pull_id}`);
  assert.equal((await api(srv, erin, 'GET', `/alice/shop/pulls/${up.pull_id}`)).viewer_role, 'write');
  await page.locator('#reviewer-add').waitFor();
  await page.fill('#reviewer-name', 'dave');
  await page.click('#reviewer-add button[type=submit]');
  await page.locator('#reviewers >> text=dave').waitFor();
  assert.deepEqual((await api(srv, alice, 'GET', `/alice/shop/pulls/${up.pull_id}`)).requested_reviewers.map((r) => r.username), ['dave']);
  assert.equal(await page.locator('button[data-focus=approve]').count(), 1);
  await page.locator('#merge-why.ok').waitFor();
  assert.ok(!(await page.locator('#merge').isDisabled()));
  // She uploads through the page and makes branches, as the owner does.
  await goto('/repositories/alice/shop');
  await page.fill('#new-branch', 'erin-work');
  await page.click('button:has-text("Create branch")');
  await page.locator('.branches a:has-text("erin-work")').waitFor();
  await goto('/repositories/alice/shop/upload');
  await page.setInputFiles('#file', { name: 'orders.csv', mimeType: 'text/csv', buffer: Buffer.from('id,qty\n7,77\n') });
  await page.fill('#table', 'orders');
  await page.check('#op-Update');
  await page.click('form.upload-form button[type=submit]');
  await page.locator('#pull-link').waitFor();
  // Back as they were: the pulls closed, erin's branch gone, dave and erin without a role, alice
  // signed in.
  for (const pl of (await api(srv, alice, 'GET', '/alice/shop/pulls')).pulls.filter((x) => x.state === 'Open')) {
    await api(srv, alice, 'PATCH', `/alice/shop/pulls/${pl.pull_id}`, { state: 'closed' });
  }
  await api(srv, alice, 'DELETE', '/alice/shop/branches/erin-work');
  await api(srv, alice, 'DELETE', '/alice/shop/collaborators/dave');
  await api(srv, alice, 'DELETE', '/alice/shop/collaborators/erin');
  await signIn(page, srv, alice);
});

test('fork and propose back: a reader forks, changes the fork, and opens a pull into the parent', async () => {
  const frank = srv.user('frank');
  await signIn(page, srv, frank);
  // A reader is not offered a pull request of alice's branches, but told to fork.
  await goto('/repositories/alice/shop/pulls');
  await page.locator('#pr-needs').waitFor();
  assert.match(await text('#pr-needs'), /needs the write role\. Fork it and propose your changes from your fork\./);
  assert.equal(await page.locator('#pr-from').count(), 0);
  await goto('/repositories/alice/shop');
  assert.equal(await page.locator('#your-fork').count(), 0);
  await page.click('#fork');
  await page.waitForURL(srv.url + '/repositories/frank/shop');
  await page.locator('#forked-from').waitFor();
  assert.equal(await text('#forked-from'), 'forked from alice/shop');
  assert.equal(await page.locator('#fork').count(), 0);
  // His change lands on his fork's main.
  const up = await apiUpload(srv, frank, 'frank', 'shop', 'orders', 'id,qty\n8,88\n', 'Update');
  assert.equal((await apiMerge(srv, frank, 'frank', 'shop', up.pull_id)).job_status, 'Completed');
  // He proposes it to alice: the new pull request goes into the parent by default.
  await goto('/repositories/frank/shop/pulls');
  await page.click('summary:has-text("New pull request")');
  assert.equal(await page.inputValue('#pr-db'), 'parent');
  await page.selectOption('#pr-from', 'main');
  assert.equal(await page.inputValue('#pr-to'), 'main');
  await page.fill('#pr-title', 'Order 8, counted again');
  await page.click('button:has-text("Open pull request")');
  await page.waitForURL(new RegExp(`/repositories/alice/shop/pulls/\\d+$`));
  await page.locator('#diff-rows').waitFor();
  assert.match(await text('#diff-rows tbody'), /88/);
  const id = page.url().split('/').pop();
  const pull = await api(srv, alice, 'GET', `/alice/shop/pulls/${id}`);
  assert.equal(pull.title, 'Order 8, counted again');
  assert.equal(pull.author, 'frank');
  // On the parent, his page links his fork instead of offering another.
  await goto('/repositories/alice/shop');
  await page.locator('#your-fork').waitFor();
  assert.equal(await text('#your-fork'), 'Your fork: frank/shop');
  await api(srv, alice, 'PATCH', `/alice/shop/pulls/${id}`, { state: 'closed' });
  await signIn(page, srv, alice);
});

test('a session: sign in with a password, comment, sign out', async () => {
  srv.password('alice', 'correct horse battery');
  const up = await apiUpload(srv, alice, 'alice', 'shop', 'orders', 'id,qty\n5,55\n', 'Update');
  await page.evaluate(() => localStorage.clear());
  await goto('/signin');
  await page.fill('#username', 'alice');
  await page.fill('#password', 'wrong password');
  await page.click('#password-form button[type=submit]');
  await page.locator('#password-form .error').waitFor();
  assert.match(await text('#password-form .error'), /password/i);
  await signInPassword(page, srv, 'alice', 'correct horse battery');
  await settled();
  assert.equal(await text('#who strong'), 'alice');
  // The session is the HttpOnly cookie: no token is kept, no script sees the cookie.
  assert.equal(await page.evaluate(() => localStorage.getItem('tablehub.token')), null);
  assert.equal(await page.evaluate(() => document.cookie), '');
  const cookie = (await ctx.cookies()).find((c) => c.name === 'th_session');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict');
  // A write with the cookie carries the CSRF token.
  await goto(`/repositories/alice/shop/pulls/${up.pull_id}`);
  await page.fill('#comment', 'Signed in with a password.');
  await page.click('button[data-focus=comment]');
  await page.locator('#timeline >> text=Signed in with a password.').waitFor();
  assert.match(await text('#timeline .note'), /alice commented/);
  // Sign out ends the session on the server too.
  await page.click('#who button:has-text("Sign out")');
  await page.locator('#who a:has-text("Sign in")').waitFor();
  const r = await fetch(srv.url + '/api/v1alpha1/user', { headers: { cookie: `th_session=${cookie.value}` } });
  assert.equal(r.status, 401);
  await signIn(page, srv, alice);
});

test('a bad file shows its rejected rows', async () => {
  await goto('/repositories/alice/shop/upload');
  await page.setInputFiles('#file', { name: 'orders.csv', mimeType: 'text/csv', buffer: Buffer.from('id,item,qty,note\n70,kiwi,1,x\n71,plum\n72,fig,2,y\n') });
  await page.locator('.pk-list input[value=id]').waitFor();
  assert.ok(await page.isChecked('#op-Update'), 'an existing table suggests Update');
  await page.check('#op-Append');
  assert.ok(await page.locator('#pk-field').evaluate((f) => f.disabled), 'the table keeps its key');
  await page.click('form.upload-form button[type=submit]');
  await page.locator('#rejected').waitFor();
  assert.match(await text('#import-status .phase'), /Failed\. Nothing was committed\./);
  const cells = await page.locator('#rejected tbody tr').first().locator('td').allInnerTexts();
  assert.equal(cells[0], '3');
  assert.match(cells[3], /expected 4 fields/);
  assert.match(await text('#import-status .error'), /line 3/);
});

test('SQL at a ref: the result, its time, the sandbox refusal, the query in the URL', async () => {
  await goto('/repositories/alice/shop/query/main');
  await page.fill('#sql', 'SELECT id, item, note FROM orders WHERE id <= 4 ORDER BY id');
  await page.click('button:has-text("Run query")');
  await page.waitForURL(/\?q=SELECT/);
  await settled();
  await page.locator('#result table').waitFor();
  assert.match(await text('.result-meta'), /^4 rows in [\d.]+ ms/);
  const notes = page.locator('#result tbody tr td:nth-child(3)');
  assert.equal(await notes.nth(0).innerText(), XSS1);
  assert.equal(await notes.nth(1).innerText(), XSS2);
  assert.match(await notes.nth(3).getAttribute('class'), /\bnull\b/);
  assert.equal(await page.locator('#main img, #main script').count(), 0);
  await page.fill('#sql', "ATTACH DATABASE 'x' AS y");
  await page.keyboard.press('Control+Enter');
  await page.locator('.refusal').waitFor();
  assert.match(await text('.refusal'), /The query was refused: ATTACH is not allowed/);
  await page.goBack();
  await settled();
  await page.locator('#result table').waitFor();
  assert.match(await page.inputValue('#sql'), /^SELECT id, item, note/);
});

test('operations: recent imports and merges with their states and links', async () => {
  await goto('/operations');
  await page.locator('#operations').waitFor();
  const rows = page.locator('#operations tbody tr');
  assert.equal(await rows.count(), 8, (await rows.allInnerTexts()).join('\n'));
  assert.match(await rows.first().innerText(), /Import orders\.csv into orders/);
  assert.match(await rows.first().innerText(), /Failed/);
  assert.ok(await page.locator('#operations a:has-text("Pull request #1")').count() >= 1);
  assert.ok(await page.locator('#operations td:has-text("Merge pull request #2")').count() === 1);
});

test('labels for every control, and no sideways scrolling at 375 px', async () => {
  for (const path of ['/repositories/alice/shop/upload', '/repositories/alice/shop/data/main/orders', '/repositories/alice/shop/pulls/2', '/repositories/alice/shop/query/main']) {
    await page.setViewportSize({ width: 375, height: 800 });
    await goto(path);
    await page.locator('h1').waitFor();
    await page.waitForLoadState('networkidle');
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabeled, [], `every control of ${path} has a label`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${path} fits 375 px (scroll width ${width})`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
});
