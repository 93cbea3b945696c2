// Dashboard render time: a collector data dir seeded by the collector's
// gen_store example (default 1,000,000 reports over 1,000 pages and 28
// days), the release collector started on it and ready (/readyz 200), then
// the overview opened in Chromium in a fresh context each round (empty
// cache; a first warm-up round is not counted). The figure is the time from
// navigation start to the frame after the last figure was rendered (the
// dashboard's `vitalsign:painted` mark, set in the next animation frame
// after the view's DOM is complete).
// Also prints what the first load downloads, brotli -q 11 per file.
//   node tests/bench/dashboard.mjs [--reports N] [--pages N] [--days N] [--rounds N]
// Binaries: VITALSIGN_COLLECTOR, VITALSIGN_GEN_STORE (default target/release/...).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
process.env.VITALSIGN_COLLECTOR ||= join(root, 'target', 'release', 'vitalsign-collector');
const genStore = process.env.VITALSIGN_GEN_STORE || join(root, 'target', 'release', 'examples', 'gen_store');
const { startCollector, launchBrowser } = await import('../e2e/harness.mjs');

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const REPORTS = arg('--reports', 1000000);
const PAGES = arg('--pages', 1000);
const DAYS = arg('--days', 28);
const ROUNDS = arg('--rounds', 7);
const BUDGET_MS = 1000;
const SITE = 'bench.example';

const dataDir = mkdtempSync(join(tmpdir(), 'vitalsign-dash-bench-'));
let collector, browser;
try {
  const seeded = Date.now();
  execFileSync(genStore, [dataDir, String(REPORTS), String(PAGES), String(DAYS), SITE], { stdio: 'inherit' });
  const startedAt = Date.now();
  collector = await startCollector({ dataDir });
  console.log(`seeded in ${((startedAt - seeded) / 1000).toFixed(1)} s; collector ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  browser = await launchBrowser();
  const url = `${collector.url}/?site=${SITE}`;

  // Round 0 is a warm-up (the browser's first renderer process, the
  // collector's first reads); it is printed but not counted.
  const rounds = [];
  let warmup = null;
  let firstLoad = null;
  for (let r = 0; r <= ROUNDS; r++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    const bodies = new Map();
    if (r === 0) {
      page.on('response', (res) => {
        const u = new URL(res.url());
        if (u.origin === collector.url && !u.pathname.startsWith('/v1/')) bodies.set(u.pathname, res.body());
      });
    }
    await page.goto(url);
    await page.waitForFunction(() => performance.getEntriesByName('vitalsign:painted').length > 0, null, { timeout: 30000 });
    const t = await page.evaluate(() => {
      const mark = (name) => performance.getEntriesByName(name)[0].startTime;
      const rendered = mark('vitalsign:rendered');
      // The API answers the overview waited for (the site list comes after).
      const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/') && e.responseEnd <= rendered);
      return {
        painted: mark('vitalsign:painted'),
        rendered,
        figures: document.querySelectorAll('main [data-value]').length,
        charts: document.querySelectorAll('main svg[data-chart]').length,
        apiStart: Math.min(...api.map((e) => e.startTime)),
        apiEnd: Math.max(...api.map((e) => e.responseEnd)),
        api: api.map((e) => [new URL(e.name).pathname, e.responseEnd - e.startTime, e.decodedBodySize]),
      };
    });
    if (errors.length) throw new Error(`errors on the overview: ${errors.join('; ')}`);
    if (t.charts < 5) throw new Error(`the overview drew ${t.charts} charts, expected 5`);
    if (r === 0) warmup = t;
    else rounds.push(t);
    if (r === 0) {
      await page.waitForLoadState('networkidle');
      firstLoad = [];
      for (const [path, body] of bodies) {
        const raw = await body;
        firstLoad.push([path, raw.length, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length]);
      }
    }
    await context.close();
  }

  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const painted = rounds.map((t) => t.painted);
  const m = median(painted);
  console.log(`\noverview of ${SITE}: ${PAGES} pages, ${REPORTS} reports over ${DAYS} days, window 28d, ${rounds[0].figures} figures, ${rounds[0].charts} charts`);
  const calls = rounds[0].api.map(([path, , bytes]) => `${path} ${(bytes / 1024).toFixed(1)} KB`);
  console.log(`  API answers waited for: ${calls.join(', ')}`);
  console.log(`  medians: first API request at ${median(rounds.map((t) => t.apiStart)).toFixed(0)} ms, last answer at ${median(rounds.map((t) => t.apiEnd)).toFixed(0)} ms, DOM complete at ${median(rounds.map((t) => t.rendered)).toFixed(0)} ms`);
  console.log(`  warm-up load (not counted): ${warmup.painted.toFixed(0)} ms`);
  console.log(`  navigation -> last figure painted, ${ROUNDS} loads, each in a new context (empty cache): ${painted.map((x) => x.toFixed(0)).join(', ')} ms`);
  console.log(`  median ${m.toFixed(0)} ms, max ${Math.max(...painted).toFixed(0)} ms: ${(m / BUDGET_MS).toFixed(2)}x the ${BUDGET_MS} ms budget (${m <= BUDGET_MS ? 'within' : 'OVER'})`);

  firstLoad.sort((a, b) => b[2] - a[2]);
  const total = firstLoad.reduce((n, [, , b]) => n + b, 0);
  console.log('\ndashboard first load, brotli -q 11:');
  for (const [path, raw, br] of firstLoad) console.log(`  ${path.padEnd(26)} ${String(raw).padStart(7)} B  ${String(br).padStart(6)} B`);
  console.log(`  ${'total'.padEnd(26)} ${String(firstLoad.reduce((n, [, r]) => n + r, 0)).padStart(7)} B  ${String(total).padStart(6)} B  (${(total / 1024).toFixed(1)} KB, budget 100 KB: ${total <= 100 * 1024 ? 'within' : 'OVER'})`);
} finally {
  await browser?.close();
  await collector?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
