// bench.mjs: how long the web pages take to show their first page of rows on big data, in
// headless Chromium (scripts/bench web runs it).
//
//   node tests/web/bench.mjs BASE_URL TOKEN PATH SELECTOR [ROUNDS]
//
// Loads BASE_URL+PATH signed in with TOKEN, ROUNDS times (default 3) in a fresh page each, and
// prints the milliseconds from the start of navigation until SELECTOR is visible, one line a
// round ("ms N"). The pages ask the server for one page of rows at a time, so this follows the
// size of a page, not of the table or the diff.
import { loadPlaywright, CHROMIUM, CHROMIUM_ARGS } from './lib.mjs';

const [base, token, path, selector, rounds = '3'] = process.argv.slice(2);
const pw = await loadPlaywright();
if (pw.why) {
  console.error(pw.why);
  process.exit(1);
}
const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await ctx.addInitScript((t) => localStorage.setItem('tablehub.token', t), token);
  for (let i = 0; i < Number(rounds); i++) {
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto(base + path, { waitUntil: 'commit' });
    await page.locator(selector).first().waitFor({ timeout: 120000 });
    console.log(`ms ${Date.now() - t0}`);
    await page.close();
  }
} finally {
  await browser.close();
}
