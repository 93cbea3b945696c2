// The dashboard (www/index.html, www/dashboard/) against the real collector:
// beacons with known values posted over HTTP (several sites, pages, form
// factors, navigation types), 28 days of history written by the
// collector's own gen_store example, an alert rule that fires. Every
// figure is read from its data-value attribute and compared with the API
// answer for the same choice of site, window and form factor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { launchBrowser, root, startCollector, waitFor } from './harness.mjs';

const METRICS = ['LCP', 'INP', 'CLS', 'FCP', 'TTFB'];
const outDir = join(root, 'tests', '.out');
mkdirSync(outDir, { recursive: true });
const genStore = process.env.VITALSIGN_GEN_STORE || join(root, 'target', 'debug', 'examples', 'gen_store');

const SHOP = 'shop.test';
const EVIL = 'evil.test';
const HIST = 'hist.test';
const QUIET = 'quiet.test';
const EVIL_PAGE = 'https://evil.test/<script>window.__xss=1</script><img src=x onerror=window.__xss=2>';
const CART = `https://${SHOP}/cart`;

let browser, collector;

const config = `
[limits]
rate_per_ip = 0

[alerts]
evaluation_interval = "200ms"

[[alerts.rules]]
name = "cart-lcp"
metric = "LCP"
threshold = 4000
site = "${SHOP}"
min_samples = 5
for = "0"
window = "1h"
severity = "critical"
`;

let beaconSeq = 0;
async function post(url, beacon) {
  const res = await fetch(`${url}/v1/beacon`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(beacon) });
  assert.equal(res.status, 204, await res.text());
}

/** One page view: a beacon with the given metric values. */
function pageView(page, values, { formFactor, navigationType = 'navigate' } = {}) {
  const n = ++beaconSeq;
  const rate = () => 'good'; // the collector rates values itself
  return {
    schemaVersion: 1,
    page,
    pageViewId: `pv-${n}`,
    sessionId: `s-${n % 7}`,
    navigationType,
    ...(formFactor ? { formFactor } : {}),
    metrics: Object.entries(values).map(([name, value]) => ({ name, value, delta: value, id: `m-${n}-${name}`, rating: rate(), navigationType })),
  };
}

/** shop.test: five pages, three form factors, several navigation types; /cart is slow. */
async function seedShop(url) {
  const pages = ['/', '/cart', '/checkout', '/product/:id', '/search'];
  const base = { '/': 1400, '/cart': 4300, '/checkout': 2300, '/product/:id': 1800, '/search': 2600 };
  for (let i = 0; i < 75; i++) {
    const path = pages[i % 5];
    const values = {
      LCP: base[path] + ((i * 37) % 900),
      CLS: ((i * 7) % 30) / 100,
      FCP: 600 + ((i * 53) % 1900),
      TTFB: 150 + ((i * 29) % 1100),
    };
    if (i % 3 !== 2) values.INP = 40 + ((i * 61) % 560);
    const navigationType = ['navigate', 'navigate', 'reload', 'back-forward-cache', 'navigate', 'prerender'][Math.floor(i / 5) % 6];
    await post(url, pageView(`https://${SHOP}${path}`, values, { formFactor: ['phone', 'tablet', 'desktop'][i % 3], navigationType }));
  }
  // Page views without a form factor count under "all" only.
  await post(url, pageView(`https://${SHOP}/`, { TTFB: 300, FCP: 900 }));
}

async function seedEvil(url) {
  for (let i = 0; i < 3; i++) await post(url, pageView(EVIL_PAGE, { LCP: 1000 + i, TTFB: 100 + i }, { formFactor: 'desktop' }));
}

before(async () => {
  assert.ok(existsSync(genStore), `${genStore} missing: cargo build -p vitalsign-collector --example gen_store`);
  const dataDir = mkdtempSync(join(tmpdir(), 'vitalsign-dash-'));
  // 28 days of history (4,000 page views over 120 pages) through the store's own insert path.
  execFileSync(genStore, [dataDir, '20000', '120', '28', HIST], { stdio: 'ignore' });
  // Two page views in the last 7 days, the latest days ago (gen_store's
  // times come from a fixed seed): a site that was sending and went quiet.
  execFileSync(genStore, [dataDir, '10', '2', '7', QUIET], { stdio: 'ignore' });
  const cfg = join(dataDir, 'vitalsign.toml');
  writeFileSync(cfg, config);
  [browser, collector] = await Promise.all([launchBrowser(), startCollector({ dataDir, args: ['--config', cfg] })]);
  await seedShop(collector.url);
  await seedEvil(collector.url);
  await waitFor(async () => (await getJson('/v1/alerts')).alerts.some((a) => a.page === CART && a.state === 'firing'), { what: 'the cart alert firing', timeout: 15000 });
});

after(async () => {
  await browser?.close();
  await collector?.stop();
});

async function getJson(path, base = collector.url, headers = {}) {
  const res = await fetch(`${base}${path}`, { headers });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

/** A fresh browser context and page that records console errors and uncaught exceptions. */
async function open(path, { viewport = { width: 1280, height: 900 }, colorScheme = 'light', base = collector.url, allow = () => false } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e}`));
  page.on('console', (m) => { if (m.type() === 'error' && !allow(m.text())) errors.push(`console: ${m.text()}`); });
  if (path != null) {
    await page.goto(`${base}${path}`);
    await rendered(page, 0);
  }
  return { page, context, errors };
}

const renderCount = (page) => page.evaluate(() => Number(document.documentElement.dataset.rendered || 0));

/** Waits until the view has rendered again after `prev` renders. */
async function rendered(page, prev) {
  await page.waitForFunction((p) => Number(document.documentElement.dataset.rendered || 0) > p
    && document.getElementById('main').getAttribute('aria-busy') === 'false', prev);
}

/** Loads a dashboard URL (a new document) and waits for its first render. */
async function visit(page, path) {
  await page.goto(`${collector.url}${path}`);
  await rendered(page, 0);
}

/** Runs `action` and waits for the render it causes. */
async function settle(page, action) {
  const prev = await renderCount(page);
  await action();
  await rendered(page, prev);
}

async function shot(page, name) {
  await page.screenshot({ path: join(outDir, `dashboard-${name}.png`), fullPage: true });
}

/** data-value of the one element matching `selector` (a number when numeric). */
async function value(page, selector) {
  const els = await page.$$(selector);
  assert.equal(els.length, 1, `exactly one ${selector} (found ${els.length})`);
  const raw = await els[0].getAttribute('data-value');
  const text = (await els[0].textContent()).trim();
  assert.ok(text.length > 0, `${selector} shows something`);
  return raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
}

/** The overview's figures equal this site record of /v1/summary. */
async function assertOverview(page, record) {
  assert.equal(await value(page, '.facts [data-metric=coreWebVitals]'), record.coreWebVitals);
  assert.equal(await value(page, '.facts [data-metric=pageViews]'), record.pageViews);
  for (const metric of METRICS) {
    const m = record.metrics[metric];
    const card = `[data-card=${metric}]`;
    if (!m) {
      assert.equal((await page.$$(`${card} [data-figure=p75]`)).length, 0, `${metric} has no p75`);
      continue;
    }
    const at = (figure) => value(page, `${card} [data-metric=${metric}][data-figure=${figure}]`);
    assert.equal(await at('p75'), m.p75, `${metric} p75`);
    assert.equal(await at('count'), m.count, `${metric} count`);
    assert.equal(await at('p75Low'), m.p75Interval.low, `${metric} interval low`);
    assert.equal(await at('p75High'), m.p75Interval.high, `${metric} interval high`);
    assert.equal(await at('coverage'), m.coverage, `${metric} coverage`);
    for (const [i, rating] of ['good', 'needs-improvement', 'poor'].entries()) {
      assert.equal(await at(rating), m.histogram[i].density, `${metric} ${rating} share`);
    }
    assert.equal(await page.$eval(`${card} .p75-block .rating`, (e) => e.dataset.rating), m.rating, `${metric} rating`);
    const text = await page.$eval(`${card} [data-figure=p75]`, (e) => e.textContent);
    assert.match(text, metric === 'CLS' ? /^\d+\.\d+$/ : /^[\d,.]+ m?s$/, `${metric} p75 is shown with its unit`);
    assert.equal((await page.$$(`${card} .low-sample`)).length, m.lowSample ? 1 : 0, `${metric} low-sample mark`);
    assert.ok(await page.$(`${card} svg[data-chart=sparkline], ${card} .spark-empty`), `${metric} has its p75-over-time chart`);
  }
}

const siteRecord = (summary, site) => summary.sites.find((s) => s.site === site);

test('overview figures equal /v1/summary, with a chart per metric', async () => {
  const { page, context, errors } = await open(`/?site=${SHOP}`);
  const summary = await getJson(`/v1/summary?window=28d`);
  const record = siteRecord(summary, SHOP);
  assert.ok(record.metrics.LCP.count >= 75);
  await assertOverview(page, record);
  // The assessment and rating are text with an icon, not colour alone.
  assert.match(await page.textContent('.facts .cwv'), /Core Web Vitals assessment: .*(Passed|Failed|Not enough data)/);
  assert.ok(await page.$('[data-card=LCP] .rating svg.icon'));
  // The alert minimum is this config's min_samples; 75 samples are not low.
  assert.equal(summary.lowSampleBelow, 5);
  assert.equal(record.metrics.LCP.lowSample, false);
  assert.equal(await page.$eval('[data-card=LCP] svg[data-chart=sparkline]', (s) => Number(s.dataset.points)), 1, 'all of shop.test is today: one daily point');
  await shot(page, 'overview');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a p75 from fewer samples than the alert minimum is marked low sample, with its interval', async () => {
  const { page, context, errors } = await open(`/?site=${EVIL}`);
  const record = siteRecord(await getJson('/v1/summary?window=28d'), EVIL);
  assert.equal(record.metrics.LCP.count, 3);
  assert.equal(record.metrics.LCP.lowSample, true);
  await assertOverview(page, record);
  assert.match(await page.textContent('[data-card=LCP] .low-sample'), /Low sample/);
  assert.match(await page.getAttribute('[data-card=LCP] .low-sample', 'title'), /Fewer than 5 samples/);
  assert.match(await page.textContent('[data-card=LCP] .ci'), /95% CI/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('switching window and device (mouse and keyboard) shows the API figures for that choice', async () => {
  const { page, context, errors } = await open(`/?site=${HIST}`);
  const all28 = siteRecord(await getJson('/v1/summary?window=28d'), HIST);
  await assertOverview(page, all28);
  const sparkPoints = await page.$eval('[data-card=LCP] svg[data-chart=sparkline]', (s) => Number(s.dataset.points));
  assert.ok(sparkPoints >= 20, `28 days of history draw a line (${sparkPoints} points)`);

  await settle(page, () => page.click('#window-picker [data-window="24h"]'));
  assert.match(page.url(), /window=24h/);
  assert.equal(await page.getAttribute('[data-window="24h"]', 'aria-pressed'), 'true');
  const day = siteRecord(await getJson('/v1/summary?window=24h'), HIST);
  assert.ok(day.metrics.LCP.count < all28.metrics.LCP.count, 'the 24 h window holds fewer samples than 28 days');
  await assertOverview(page, day);

  await settle(page, () => page.click('#ff-picker [data-ff=phone]'));
  assert.match(page.url(), /formFactor=phone/);
  assert.equal(await page.getAttribute('[data-ff=phone]', 'aria-selected'), 'true');
  const phone = siteRecord(await getJson('/v1/summary?window=24h&formFactor=phone'), HIST);
  assert.ok(phone.metrics.LCP.count < day.metrics.LCP.count);
  await assertOverview(page, phone);

  // Arrow keys move between the device tabs.
  await page.focus('#ff-picker [data-ff=phone]');
  await settle(page, () => page.keyboard.press('ArrowRight'));
  assert.match(page.url(), /formFactor=tablet/);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.ff), 'tablet');
  await assertOverview(page, siteRecord(await getJson('/v1/summary?window=24h&formFactor=tablet'), HIST));

  await settle(page, () => page.click('#window-picker [data-window="7d"]'));
  await assertOverview(page, siteRecord(await getJson('/v1/summary?window=7d&formFactor=tablet'), HIST));

  // Back goes to the previous choice.
  await settle(page, () => page.goBack());
  assert.match(page.url(), /window=24h/);
  await assertOverview(page, siteRecord(await getJson('/v1/summary?window=24h&formFactor=tablet'), HIST));
  assert.deepEqual(errors, []);
  await context.close();
});

/** The rows on screen equal a /v1/pages answer (order, p75, counts, page views). */
async function assertPageRows(page, list) {
  const rows = await page.$$eval('table.pages-table tbody tr', (trs) => trs.map((tr) => ({
    page: tr.dataset.page,
    pageViews: Number(tr.querySelector('[data-metric=pageViews]').dataset.value),
    count: Number(tr.querySelector('[data-metric=count][data-figure=count]').dataset.value),
    p75: Object.fromEntries([...tr.querySelectorAll('[data-figure=p75]')].map((e) => [e.dataset.metric, Number(e.dataset.value)])),
    n: Object.fromEntries([...tr.querySelectorAll('[data-metric-cell] [data-figure=count]')].map((e) => [e.dataset.metric, Number(e.dataset.value)])),
  })));
  assert.deepEqual(rows, list.pages.map((p) => ({ page: p.page, pageViews: p.pageViews, count: p.count, p75: p.p75, n: p.metrics })));
}

test('pages: worst first by default, the rule said on the page, sortable, filterable, paginated', async () => {
  const { page, context, errors } = await open(`/?view=pages&site=${SHOP}`);
  await assertPageRows(page, await getJson(`/v1/pages?site=${SHOP}&sort=worst&limit=50`));
  assert.match(await page.textContent('#sort-rule'), /Worst first: .*poor come first, then needs improvement, then good/);
  assert.equal(await page.$eval('table.pages-table tbody tr', (tr) => tr.dataset.page), CART, 'the slow cart comes first');
  await shot(page, 'pages');

  // Sort by LCP p75 (a column header link), then reverse it.
  await settle(page, () => page.click('th [data-sort=LCP]'));
  assert.match(page.url(), /sort=LCP/);
  await assertPageRows(page, await getJson(`/v1/pages?site=${SHOP}&sort=LCP&order=desc&limit=50`));
  assert.equal(await page.evaluate(() => document.activeElement.dataset.sort), 'LCP', 'focus stays on the header');
  await settle(page, () => page.click('th [data-sort=LCP]'));
  await assertPageRows(page, await getJson(`/v1/pages?site=${SHOP}&sort=LCP&order=asc&limit=50`));
  assert.equal(await page.getAttribute('th:has([data-sort=LCP])', 'aria-sort'), 'ascending');

  // Filter by text (case-insensitive, server side).
  await settle(page, () => page.fill('#filter', 'CH'));
  assert.match(page.url(), /q=CH/);
  const filtered = await getJson(`/v1/pages?site=${SHOP}&sort=LCP&order=asc&q=CH&limit=50`);
  assert.deepEqual(filtered.pages.map((p) => p.page).sort(), [`https://${SHOP}/checkout`, `https://${SHOP}/search`]);
  await assertPageRows(page, filtered);

  // 120 pages of hist.test: 50 a page, previous / next.
  await visit(page, `/?view=pages&site=${HIST}&sort=page`);
  await assertPageRows(page, await getJson(`/v1/pages?site=${HIST}&sort=page&order=asc&limit=50`));
  assert.equal(await value(page, '.pager [data-metric=total]'), 120);
  await settle(page, () => page.click('.pager [data-pager=next]'));
  assert.match(page.url(), /offset=50/);
  await assertPageRows(page, await getJson(`/v1/pages?site=${HIST}&sort=page&order=asc&offset=50&limit=50`));
  assert.equal(await value(page, '.pager [data-metric=rangeStart]'), 51);
  assert.equal(await value(page, '.pager [data-metric=rangeEnd]'), 100);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a deep link restores its view, and back returns to it', async () => {
  const q = `view=pages&site=${SHOP}&window=24h&formFactor=desktop&q=%2F&sort=pageViews&order=asc`;
  const { page, context, errors } = await open(`/?${q}`);
  assert.equal(await page.getAttribute('[data-window="24h"]', 'aria-pressed'), 'true');
  assert.equal(await page.getAttribute('[data-ff=desktop]', 'aria-selected'), 'true');
  assert.equal(await page.inputValue('#filter'), '/');
  assert.equal(await page.inputValue('#site-picker'), SHOP);
  assert.equal(await page.getAttribute('th:has([data-sort=pageViews])', 'aria-sort'), 'ascending');
  assert.equal(await page.getAttribute('#nav [data-view=pages]', 'aria-current'), 'page');
  await assertPageRows(page, await getJson(`/v1/pages?site=${SHOP}&window=24h&formFactor=desktop&q=%2F&sort=pageViews&order=asc&limit=50`));

  // Open a page's detail from the list, then come back with the browser.
  await settle(page, () => page.click(`tr[data-page="https://${SHOP}/checkout"] a.page-key`));
  assert.match(page.url(), /view=page&/);
  assert.match(page.url(), /window=24h/);
  assert.match(page.url(), /formFactor=desktop/);
  assert.equal(await value(page, '.page-title [data-metric=page]'), `https://${SHOP}/checkout`);
  await settle(page, () => page.goBack());
  assert.equal(new URL(page.url()).search, `?${q}`);
  assert.equal(await page.inputValue('#filter'), '/');
  await assertPageRows(page, await getJson(`/v1/pages?site=${SHOP}&window=24h&formFactor=desktop&q=%2F&sort=pageViews&order=asc&limit=50`));

  // A deep link to a page detail with a metric opens at that metric.
  await visit(page, `/?view=page&site=${SHOP}&page=${encodeURIComponent(CART)}&metric=CLS`);
  assert.ok(await page.$('#metric-CLS.selected'));
  const top = await page.$eval('#metric-CLS', (e) => e.getBoundingClientRect().top);
  assert.ok(top >= 0 && top < 200, `the CLS section is scrolled into view (top ${top})`);
  assert.deepEqual(errors, []);
  await context.close();
});

test('page detail: charts with data, histogram, navigation types and device split equal /v1/page', async () => {
  const { page, context, errors } = await open(`/?view=page&site=${SHOP}&page=${encodeURIComponent(CART)}`);
  const detail = await getJson(`/v1/page?site=${SHOP}&page=${encodeURIComponent(CART)}&window=28d`);
  assert.equal(await value(page, '.facts [data-metric=pageViews]'), detail.pageViews);
  assert.equal(await value(page, '.facts [data-metric=coreWebVitals]'), detail.coreWebVitals);
  for (const metric of METRICS) {
    const m = detail.metrics[metric];
    const sec = `#metric-${metric}`;
    assert.equal(await value(page, `${sec} .p75-block [data-figure=p75]`), m.p75, `${metric} p75`);
    assert.equal(await value(page, `${sec} .detail-top [data-figure=count]`), m.count);
    // p75 over time: an SVG with the p75 line, the band and both thresholds.
    const series = await getJson(`/v1/timeseries?site=${SHOP}&page=${encodeURIComponent(CART)}&metric=${metric}&window=28d`);
    const chart = `${sec} figure[data-chart=timeseries]`;
    assert.equal(await page.$eval(chart, (e) => Number(e.dataset.points)), series.points.filter((p) => p.p75 != null).length);
    assert.ok(await page.$(`${chart} svg path.p75-line`), `${metric} p75 line`);
    assert.ok(await page.$(`${chart} svg path.band`), `${metric} p50-p95 band`);
    assert.ok(await page.$(`${chart} svg line.threshold.good`), `${metric} good threshold line`);
    // The histogram: one bar per bucket with the API's counts.
    const bars = await page.$$eval(`${sec} figure[data-chart=histogram] rect.bar`, (rs) => rs.map((r) => Number(r.dataset.count)));
    assert.deepEqual(bars, m.distribution.map((b) => b.count), `${metric} histogram`);
    for (const ff of ['phone', 'tablet', 'desktop']) {
      const x = m.formFactors[ff];
      assert.equal(await value(page, `${sec} tr[data-form-factor=${ff}] [data-figure=count]`), x ? x.count : 0);
      if (x) assert.equal(await value(page, `${sec} tr[data-form-factor=${ff}] [data-figure=p75]`), x.p75);
    }
  }
  for (const [type, n] of Object.entries(detail.navigationTypes)) {
    assert.equal(await value(page, `tr[data-navigation-type="${type}"] [data-metric=navigationType]`), n, type);
  }
  assert.ok(detail.navigationTypes.reload > 0 && detail.navigationTypes['back-forward-cache'] > 0);
  // The readout follows the keyboard.
  await page.focus('#metric-LCP figure[data-chart=timeseries] svg');
  await page.keyboard.press('End');
  assert.match(await page.textContent('#metric-LCP .readout'), /p75 [\d.,]+ m?s/);
  // No agent sent attribution for this page: the panel says how to get it.
  assert.match(await page.textContent('#fix-first [data-fix-first=none]'), /attribution: true/);
  await shot(page, 'page-detail');
  assert.deepEqual(errors, []);
  await context.close();
});

test('what to fix first: the page’s LCP element, shift source, interaction and script behind its poor samples', async () => {
  const FIX = 'fix.test';
  const PRODUCT = `https://${FIX}/product`;
  const send = (metrics) => post(collector.url, { ...pageView(PRODUCT, {}), metrics });
  const report = (name, value, attribution, n) => ({ name, value, delta: value, id: `fix-${name}-${n}`, rating: 'good', navigationType: 'navigate', ...(attribution ? { attribution } : {}) });
  // LCP: img.hero in 6 views (all poor), h1 in 2 (good), 2 poor views sent
  // without attribution; time to first byte 0, 100, ... 700 ms.
  const lcp = [...Array(6).fill(['img.hero', 4500]), ...Array(2).fill(['h1', 1200]), [null, 4200], [null, 4300]];
  for (const [i, [target, v]] of lcp.entries()) {
    const a = target && { target, url: `https://cdn.${FIX}/hero.jpg?w=800`, timeToFirstByte: i * 100, resourceLoadDelay: 50, resourceLoadDuration: 2000, elementRenderDelay: 10, loadState: 'complete' };
    const metrics = [report('LCP', v, a, i)];
    // CLS: #ad-slot shifts 0.3 in 3 views, footer 0.05 in 2.
    if (i < 5) metrics.push(report('CLS', i < 3 ? 0.3 : 0.05, { largestShiftTarget: i < 3 ? '#ad-slot' : 'footer', largestShiftValue: 0.3, largestShiftTime: 900, loadState: 'complete' }, i));
    // INP: button.buy at 640 ms in 2 views, its frame's longest script a tracker's.
    if (i < 2) {
      metrics.push(report('INP', 640, { interactionTarget: 'button.buy', interactionType: 'pointer', inputDelay: 40, processingDuration: 500, presentationDelay: 100,
        longestScript: { url: 'https://tags.tracker.example/t.js?id=1', duration: 380 }, loadState: 'complete' }, i));
    }
    await send(metrics);
  }
  const q = `site=${FIX}&page=${encodeURIComponent(PRODUCT)}&window=28d`;
  const fix = await getJson(`/v1/fix-first?${q}`);
  const { page, context, errors } = await open(`/?view=page&${q.replace('&window=28d', '')}`);
  const panel = '#fix-first';
  await page.waitForSelector(`${panel} table.fix-table`);
  const rows = await page.$$eval(`${panel} tbody tr`, (trs) => trs.map((tr) => ({
    rank: Number(tr.dataset.rank), metric: tr.dataset.metric, kind: tr.dataset.kind, target: tr.dataset.target,
    poor: Number(tr.querySelector('[data-figure=poor]').dataset.value),
    poorShare: Number(tr.querySelector('[data-figure=poorShare]').dataset.value),
    p75: Number(tr.querySelector('[data-figure=p75]').dataset.value),
    count: Number(tr.querySelector('[data-figure=count]').dataset.value),
    text: tr.textContent,
  })));
  // By hand: the most poor samples first, shares of all of a metric's poor samples.
  assert.deepEqual(rows.map(({ text, ...r }) => r), [
    { rank: 1, metric: 'LCP', kind: 'element', target: 'img.hero', poor: 6, poorShare: 6 / 8, p75: 4500, count: 6 },
    { rank: 2, metric: 'CLS', kind: 'shift-source', target: '#ad-slot', poor: 3, poorShare: 1, p75: 0.3, count: 3 },
    { rank: 3, metric: 'INP', kind: 'interaction-target', target: 'button.buy', poor: 2, poorShare: 1, p75: 640, count: 2 },
    { rank: 4, metric: 'INP', kind: 'script', target: 'tags.tracker.example', poor: 2, poorShare: 1, p75: 380, count: 2 },
  ]);
  assert.match(rows[0].text, /LCP element.*img\.hero/);
  assert.match(rows[0].text, /75\s?%/);
  assert.match(rows[3].text, /third-party/);
  // The same as the API's actions with poor samples (good causes, h1 and footer, are not listed).
  assert.deepEqual(rows.map((r) => r.target), fix.actions.filter((a) => a.poor > 0).map((a) => a.target));
  // Where LCP's time goes at p75 (nearest rank: the 6th of 8 times to first byte).
  const lcpNote = `${panel} [data-fix-metric=LCP]`;
  assert.equal(await value(page, `${lcpNote} [data-figure=timeToFirstByte]`), 500);
  assert.equal(await value(page, `${lcpNote} [data-figure=resourceLoadDuration]`), 2000);
  assert.equal(await value(page, `${lcpNote} [data-figure=attributed]`), 8);
  assert.equal(await value(page, `${lcpNote} [data-figure=poorTotal]`), 8);
  assert.equal(await value(page, `${panel} [data-fix-metric=INP] [data-figure=processingDuration]`), 500);
  assert.equal(fix.metrics.LCP.subparts.timeToFirstByte, 500);
  // FCP and TTFB have no reports here: said once, with nothing stray.
  assert.equal((await page.textContent('#metric-FCP')).includes('null'), false);
  await shot(page, 'fix-first');
  assert.deepEqual(errors, []);
  await context.close();
});

test('coverage: per site and page, the share of page views with each metric, and the last beacon', async () => {
  const { page, context, errors } = await open(`/?view=coverage&site=${SHOP}`);
  const summary = await getJson('/v1/summary?window=28d');
  for (const r of summary.sites) {
    const row = `tr[data-site="${r.site}"]`;
    assert.equal(await value(page, `${row} [data-metric=pageViews]`), r.pageViews);
    assert.equal(await value(page, `${row} [data-metric=quiet]`), String(r.quiet));
    for (const m of METRICS) {
      const want = r.metrics[m]?.coverage ?? 0;
      assert.equal(await value(page, `${row} [data-metric=${m}][data-figure=coverage]`), want, `${r.site} ${m}`);
    }
  }
  const list = await getJson(`/v1/pages?site=${SHOP}&sort=pageViews&limit=50`);
  for (const p of list.pages) {
    const row = `tr[data-page="${p.page}"]`;
    assert.equal(await value(page, `${row} [data-metric=pageViews]`), p.pageViews);
    assert.equal(await value(page, `${row} [data-metric=INP][data-figure=coverage]`), p.coverage.INP ?? 0);
    assert.ok(await page.$(`${row} time[datetime="${p.lastBeaconAt}"]`));
  }
  assert.match(await page.textContent('#quiet-rule'), /more than 1 hour old while it sent beacons within the last 7 days/);
  await shot(page, 'coverage');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a site that was sending and has gone quiet is flagged on the overview and in coverage', async () => {
  const record = siteRecord(await getJson('/v1/summary?window=7d'), QUIET);
  assert.equal(record.quiet, true);
  assert.ok(Date.now() - Date.parse(record.lastBeaconAt) > 3600e3);
  const { page, context, errors } = await open(`/?site=${QUIET}&window=7d`);
  assert.equal(await value(page, '.banner-warn[data-metric=quiet]'), 'true');
  assert.match(await page.textContent('.banner-warn'), /gone quiet: its last beacon arrived \d+ (h|days) ago/);
  await visit(page, `/?view=coverage&site=${QUIET}&window=7d`);
  assert.equal(await value(page, `tr[data-site="${QUIET}"] [data-metric=quiet]`), 'true');
  assert.equal(await value(page, `tr[data-site="${SHOP}"] [data-metric=quiet]`), 'false');
  assert.match(await page.textContent('.banner-warn'), new RegExp(`One site has gone quiet: ${QUIET.replace('.', '\\.')}`));
  await shot(page, 'coverage-quiet');
  assert.deepEqual(errors, []);
  await context.close();
});

test('alerts: acknowledge and silence from the page; the link opens the alerting page with the alert highlighted', async () => {
  const { alerts } = await getJson('/v1/alerts');
  const alert = alerts.find((a) => a.page === CART && a.state === 'firing');
  const { page, context, errors } = await open('/?view=alerts');
  // The window and device controls do not apply to alerts: hidden there.
  assert.equal(await page.isVisible('#window-control'), false);
  const row = `tr[data-alert-id="${alert.id}"]`;
  assert.equal(await value(page, `${row} [data-figure=alertValue]`), alert.value);
  assert.equal(await value(page, `${row} [data-figure=alertThreshold]`), alert.threshold);
  assert.equal(await value(page, `${row} [data-metric=sampleCount]`), alert.sampleCount);
  assert.match(await page.textContent(`${row} .severity`), /critical/);
  await shot(page, 'alerts');

  const comment = 'on it <img src=x onerror="window.__xss=3">';
  await page.click(`${row} button[data-action=ack]`);
  await page.fill('#action-by', 'dana');
  await page.fill('#action-comment', comment);
  await settle(page, () => page.press('#action-comment', 'Enter')); // Enter submits, as in any form
  const acked = (await getJson('/v1/alerts')).alerts.find((a) => a.id === alert.id);
  assert.equal(acked.acknowledged.by, 'dana');
  assert.equal(acked.acknowledged.comment, comment);
  assert.equal(await value(page, `${row} [data-metric=acknowledgedBy]`), 'dana');
  assert.equal(await page.textContent(`${row} q`), comment, 'the comment is shown as text');

  await page.click(`${row} button[data-action=silence]`);
  await page.selectOption('#action-duration', '1h');
  assert.equal(await page.inputValue('#action-by'), 'dana', 'the name is remembered');
  await settle(page, () => page.click('#action-ok'));
  const { silences } = await getJson('/v1/silences');
  const silence = silences.find((x) => x.matchers.page === CART);
  assert.ok(silence, JSON.stringify(silences));
  assert.deepEqual(silence.matchers, { alertname: 'cart-lcp', site: SHOP, page: CART, form_factor: 'all' });
  assert.equal(silence.createdBy, 'dana');
  assert.ok(await page.$(`li[data-silence-id="${silence.id}"]`));
  assert.deepEqual((await getJson('/v1/alerts')).alerts.find((a) => a.id === alert.id).silencedBy, [silence.id]);

  // The alert's link: the page detail, the alert highlighted in its history.
  await settle(page, () => page.click(`${row} a.alert-link`));
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('view'), 'page');
  assert.equal(url.searchParams.get('page'), CART);
  assert.equal(url.searchParams.get('alert'), String(alert.id));
  assert.ok(await page.$(`#alert-${alert.id}.highlighted`));
  assert.equal(await page.textContent(`#alert-${alert.id} .events`).then((t) => t.includes(comment)), true, 'the history shows the acknowledgement');
  assert.equal(await page.evaluate(() => document.querySelectorAll('main img').length), 0);
  await shot(page, 'alert-detail');

  // The API's own link (as in notifications) opens the same view.
  const dashboard = new URL(alert.dashboard);
  assert.equal(dashboard.pathname, '/');
  await page.goto(dashboard.href);
  await rendered(page, 0);
  assert.ok(await page.$(`#alert-${alert.id}.highlighted`));
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  // Ending the silence from the page.
  await visit(page, `/?view=alerts`);
  await settle(page, () => page.click(`li[data-silence-id="${silence.id}"] button[data-action=expire]`));
  assert.equal((await getJson('/v1/silences')).silences.filter((x) => x.id === silence.id && x.active).length, 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a page key containing <script> is shown as text and nothing runs', async () => {
  const key = (await getJson(`/v1/pages?site=${EVIL}`)).pages[0].page;
  const { page, context, errors } = await open(`/?view=pages&site=${EVIL}`);
  const text = await page.textContent(`tr[data-page="${key}"] a.page-key`);
  assert.ok(text.includes('<script>window.__xss=1</script>'), text);
  assert.ok(text.includes('<img'), text);
  // Filtering by what the reader sees finds the (percent-escaped) key.
  await settle(page, () => page.fill('#filter', '<SCRIPT>window'));
  assert.equal(await value(page, '.toolbar [data-metric=total]'), 1);
  assert.ok(await page.$(`tr[data-page="${key}"]`));
  for (const path of [`/?view=page&site=${EVIL}&page=${encodeURIComponent(key)}`, `/?site=${EVIL}`, `/?view=coverage&site=${EVIL}`]) {
    await visit(page, `${path}`);
    assert.equal(await page.evaluate(() => document.querySelectorAll('main script, main img').length), 0, path);
  }
  assert.ok((await page.textContent('main')).includes('<script>window.__xss=1</script>'));
  await visit(page, `/?view=page&site=${EVIL}&page=${encodeURIComponent(key)}`);
  assert.ok((await page.textContent('.page-title')).includes('<script>window.__xss=1</script>'));
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(errors, []);
  await context.close();
});

test('auto-refresh every 30 s brings new data and keeps the reader\'s place', async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 420 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.clock.install();
  const path = `/?view=pages&site=${SHOP}&q=%2F&sort=page&order=desc`;
  await page.goto(`${collector.url}${path}`);
  await rendered(page, 0);
  await page.evaluate(() => window.scrollTo(0, 250));
  await page.focus('#filter');
  const y = await page.evaluate(() => window.scrollY);
  assert.ok(y > 100, `scrolled (${y})`);
  const before = await getJson(`/v1/pages?site=${SHOP}&q=%2F&sort=page&order=desc&limit=50`);
  await post(collector.url, pageView(`https://${SHOP}/checkout`, { LCP: 9000, TTFB: 100 }, { formFactor: 'phone' }));
  const after = await getJson(`/v1/pages?site=${SHOP}&q=%2F&sort=page&order=desc&limit=50`);
  const views = (l) => l.pages.find((p) => p.page === `https://${SHOP}/checkout`).pageViews;
  assert.equal(views(after), views(before) + 1);
  await assertPageRows(page, before);
  const prev = await renderCount(page);
  await page.clock.fastForward(31000);
  await rendered(page, prev);
  await assertPageRows(page, after);
  assert.equal(new URL(page.url()).search, path.slice(1), 'the view is unchanged');
  assert.equal(await page.evaluate(() => window.scrollY), y, 'no scroll jump');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'filter', 'focus kept');
  assert.equal(await page.inputValue('#filter'), '/');
  assert.deepEqual(errors, []);
  await context.close();
});

test('phone-sized screen and dark mode: no page-wide horizontal scroll, every view renders', async () => {
  const { page, context, errors } = await open(`/?site=${SHOP}`, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
  for (const [name, path] of [['overview', `/?site=${SHOP}`], ['pages', `/?view=pages&site=${SHOP}`], ['page-detail', `/?view=page&site=${SHOP}&page=${encodeURIComponent(CART)}`], ['coverage', `/?view=coverage&site=${SHOP}`], ['alerts', '/?view=alerts']]) {
    await visit(page, `${path}`);
    const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(sw <= iw + 1, `${name}: page width ${sw} fits the ${iw} px screen`);
    await shot(page, `phone-dark-${name}`);
  }
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(255, 255, 255)', 'dark mode has a dark background');
  assert.deepEqual(errors, []);
  await context.close();
});

test('labelled controls and keyboard navigation', async () => {
  const { page, context, errors } = await open(`/?site=${SHOP}`);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('select, input, button, [role=tab]')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
    .map((el) => el.outerHTML));
  assert.deepEqual(unlabelled, []);
  // Tab from the top reaches the nav links and the site picker.
  const seen = [];
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => document.activeElement.id || document.activeElement.dataset.view || document.activeElement.textContent.trim()));
  }
  assert.ok(seen.includes('pages') && seen.includes('site-picker'), seen.join(', '));
  // Enter on a focused nav link opens that view.
  await page.focus('#nav [data-view=coverage]');
  await settle(page, () => page.keyboard.press('Enter'));
  assert.match(page.url(), /view=coverage/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a newcomer\'s demo visit shows on the dashboard within one refresh', async () => {
  const { page, context, errors } = await open(null);
  await page.goto(`${collector.url}/demo/`);
  await page.waitForSelector('#metrics tr'); // the agent runs and shows FCP/TTFB
  await page.click('#slow');
  await page.click('#shift');
  await page.waitForTimeout(1300);
  const site = new URL(collector.url).host;
  await page.click('#dashboard'); // leaving sends the metrics
  await page.waitForURL(`${collector.url}/?site=${encodeURIComponent(site)}`);
  await rendered(page, 0);
  if (!(await page.$('[data-card=FCP] [data-figure=p75]'))) await settle(page, () => page.click('#refresh'));
  const record = siteRecord(await getJson('/v1/summary?window=28d'), site);
  assert.ok(record && record.metrics.FCP.count >= 1, 'the visit reached the collector');
  assert.equal(await value(page, '[data-card=FCP] [data-figure=count]'), record.metrics.FCP.count);
  assert.equal(await value(page, '[data-card=TTFB] [data-figure=p75]'), record.metrics.TTFB.p75);
  assert.deepEqual(errors, []);
  await context.close();
});

test('with API keys the page asks for one once, keeps it for the tab and sends it as a Bearer token', async () => {
  const keyed = await startCollector({ args: ['--api-key', 'k-dash-1'] });
  try {
    await post(keyed.url, pageView(`https://${SHOP}/`, { LCP: 1234, TTFB: 200 }, { formFactor: 'phone' }));
    const unauthorized = (t) => /401/.test(t);
    const { page, context, errors } = await open(null, { base: keyed.url, allow: unauthorized });
    await page.goto(`${keyed.url}/?site=${SHOP}`);
    await page.waitForSelector('#key-dialog[open]');
    // Cancel: the view says a key is needed, and offers to enter one.
    await page.click('#key-dialog button[data-close]');
    await page.waitForSelector('.error-box');
    assert.match(await page.textContent('.error-box h1'), /API key needed/);
    await page.click('.error-box button');
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', 'wrong');
    await page.click('#key-dialog button[value=ok]');
    await page.waitForFunction(() => /refused/.test(document.getElementById('key-message').textContent) && document.getElementById('key-dialog').open);
    await page.fill('#key-input', 'k-dash-1');
    await page.press('#key-input', 'Enter');
    await rendered(page, 0);
    assert.equal(await value(page, '[data-card=LCP] [data-figure=p75]'), 1234);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('vitalsign.apiKey')), 'k-dash-1');
    // A reload in the same tab asks no more.
    let withoutKey = 0;
    page.on('request', (r) => { if (r.url().includes('/v1/') && r.headers().authorization !== 'Bearer k-dash-1') withoutKey++; });
    await page.reload();
    await rendered(page, 0);
    assert.equal(await page.evaluate(() => document.getElementById('key-dialog').open), false);
    assert.equal(withoutKey, 0, 'every API request carries the key');
    assert.equal(await value(page, '[data-card=LCP] [data-figure=p75]'), 1234);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await keyed.stop();
  }
});

test('a key that may read one site only: its site, from the collector’s list, or asked for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vitalsign-dash-keys-'));
  const cfg = join(dir, 'vitalsign.toml');
  writeFileSync(cfg, `api_keys = ["admin-k"]\n\n[[sites]]\nhost = "${SHOP}"\napi_keys = ["shop-k"]\n\n[limits]\nrate_per_ip = 0\n`);
  const keyed = await startCollector({ dataDir: join(dir, 'data'), args: ['--config', cfg] });
  try {
    for (const lcp of [1500, 2600, 3100]) await post(keyed.url, pageView(`https://${SHOP}/`, { LCP: lcp }, { formFactor: 'desktop' }));
    const asAdmin = { authorization: 'Bearer admin-k' };
    const record = siteRecord(await getJson(`/v1/summary?site=${SHOP}`, keyed.url, asAdmin), SHOP);
    const { page, context, errors } = await open(null, { base: keyed.url, allow: (t) => /40[13]/.test(t) });
    await page.goto(`${keyed.url}/`);
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', 'shop-k');
    await page.click('#key-dialog button[value=ok]');
    // All sites' summary is forbidden to this key, but /v1/sites names
    // the key's own site: the page opens it without asking.
    await rendered(page, 0);
    assert.match(page.url(), /site=shop\.test/);
    await assertOverview(page, record);
    assert.equal(await page.inputValue('#site-picker'), SHOP);
    assert.deepEqual(await page.$$eval('#site-picker option', (os) => os.map((o) => o.value)), [SHOP]);
    // A link to a site the key may not read says so, and asks which site.
    await page.goto(`${keyed.url}/?site=other.test`);
    await page.waitForSelector('#site-input');
    assert.match(await page.textContent('.error-box h1'), /Not allowed/);
    await page.fill('#site-input', SHOP);
    await settle(page, () => page.press('#site-input', 'Enter'));
    assert.match(page.url(), /site=shop\.test/);
    await assertOverview(page, record);
    // Other views work with the site key too.
    await settle(page, () => page.click('#nav [data-view=pages]'));
    assert.equal(await page.$eval('table.pages-table tbody tr', (tr) => tr.dataset.page), `https://${SHOP}/`);
    await settle(page, () => page.click('#nav [data-view=coverage]'));
    assert.equal(await value(page, `tr[data-site="${SHOP}"] [data-metric=pageViews]`), 3);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await keyed.stop();
  }
});

test('first load is at most 100 KB brotli (HTML, JS, CSS)', async () => {
  const { page, context, errors } = await open(null);
  const files = new Map();
  page.on('response', async (res) => {
    const u = new URL(res.url());
    if (u.origin !== collector.url || u.pathname.startsWith('/v1/')) return;
    files.set(u.pathname, res.body());
  });
  await page.goto(`${collector.url}/?site=${SHOP}`);
  await rendered(page, 0);
  await page.waitForLoadState('networkidle');
  const sizes = [];
  for (const [path, body] of files) {
    const raw = await body;
    sizes.push([path, raw.length, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length]);
  }
  sizes.sort((a, b) => b[2] - a[2]);
  const total = sizes.reduce((n, [, , b]) => n + b, 0);
  const report = [...sizes.map(([p, raw, br]) => `${p.padEnd(28)} ${String(raw).padStart(7)} B  ${String(br).padStart(6)} B brotli`), `${'total'.padEnd(28)} ${String(sizes.reduce((n, [, r]) => n + r, 0)).padStart(7)} B  ${String(total).padStart(6)} B brotli (budget 102400)`].join('\n');
  writeFileSync(join(outDir, 'dashboard-size.txt'), `${report}\n`);
  console.log(report);
  assert.ok(sizes.some(([p]) => p === '/dashboard/app.js') && sizes.some(([p]) => p === '/dashboard/style.css'), report);
  assert.ok(total <= 100 * 1024, report);
  assert.deepEqual(errors, []);
  await context.close();
});
