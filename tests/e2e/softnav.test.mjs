// Soft navigation parity (web-vitals 6 `reportSoftNavs`): our agent and
// web-vitals 6.2.3 on the same load of a single-page app (spa.html) whose
// routes change by real clicks (pushState, replaceState), with and without
// layout shifts and slow interactions, must report the same metrics for
// every route: values, deltas, ratings, navigationType, entries, and the
// navigation fields (navigationId, navigationInteractionId, navigationURL,
// navigationStartTime), with ids grouping reports the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowserAndSite, waitFor, stubBfcacheRestore } from './harness.mjs';
import { open, frames, pause, hide, show, metricReports, assertParity } from './support-input.mjs';
import { assertParity as assertPaintParity } from './support-paint.mjs';

let browser, site, collector;
const contexts = useBrowserAndSite((env) => ({ browser, site, collector } = env), { collector: true });

const METRICS = ['FCP', 'LCP', 'CLS', 'INP', 'TTFB'];

async function openSpa(query, { initScript } = {}) {
  const opened = await open(browser, site, `/pages/spa.html?${query}`, { initScript });
  contexts.push(opened.context);
  // Both libraries observe from the start; let the first paint settle.
  await frames(opened.page);
  return opened;
}

/** A real click on a nav link (a soft navigation), optionally slow. */
async function go(page, link, { busy = 0, count } = {}) {
  if (busy) await page.evaluate((ms) => window.__busy.click.push(ms), busy);
  await page.click(`#${link}`);
  if (count) await page.evaluate((n) => window.__softNavsSeen(n), count);
  await frames(page);
}

async function slowClick(page, busy) {
  await page.evaluate((ms) => window.__busy.click.push(ms), busy);
  await page.click('#slow');
  await pause(page, 100);
  await page.evaluate(() => new Promise((r) => requestIdleCallback(r, { timeout: 1000 })));
}

const shift = (page, dy) => page.evaluate((dy) => window.shift(dy), dy);
const softNavs = (page) => page.evaluate(() => window.__softNavs);

async function assertAllParity(page, { set = 1, restored = false } = {}) {
  const out = {};
  for (const name of METRICS) {
    // After a bfcache restore, FCP and LCP are a double rAF: equal within a frame.
    if (restored && (name === 'FCP' || name === 'LCP')) {
      out[name] = assertPaintParity(assert, await metricReports(page, name, { set }), name);
      continue;
    }
    const r = await metricReports(page, name, { set });
    out[name] = await assertParity(page, assert, name, null, { set }).catch((e) => {
      if (r.wv.length === 0 && r.vs.length === 0) return r;
      throw e;
    });
  }
  return out;
}

/** The journey most tests take: three route changes, shifts and slow clicks. */
async function journey(page) {
  await pause(page, 300);
  await go(page, 'to-products', { count: 1 });
  await shift(page, 80); // a shift on /spa/products/123
  await pause(page, 300);
  await go(page, 'to-about', { busy: 120, count: 2 }); // a slow route change
  await slowClick(page, 250); // a slow interaction on /spa/about
  await pause(page, 300);
  await go(page, 'to-cart', { count: 3 }); // replaceState
  await shift(page, -60);
  await shift(page, 40);
  await page.mouse.click(5, 400); // finalises the last route's LCP (a trusted click)
  await pause(page, 200);
  await hide(page);
  await frames(page);
}

test('reportSoftNavs: every route (pushState, replaceState) reports its own FCP, LCP, CLS, INP and TTFB, as web-vitals does', async () => {
  const { page, errors } = await openSpa('softNavs=1');
  await journey(page);
  const navs = await softNavs(page);
  assert.equal(navs.length, 3, `three soft navigations: ${JSON.stringify(navs)}`);
  assert.deepEqual(navs.map((n) => new URL(n.name).pathname), ['/spa/products/123', '/spa/about', '/spa/cart']);
  const r = await assertAllParity(page);
  for (const name of METRICS) {
    const soft = r[name].vs.filter((m) => m.navigationType === 'soft-navigation');
    if (process.env.PARITY_LOG) console.log(name, JSON.stringify(r[name].vs));
    if (name !== 'INP') assert.ok(soft.length >= 1, `${name}: soft-navigation reports`);
    for (const m of soft) {
      assert.ok(navs.some((n) => n.name === m.navigationURL && n.navigationId === m.navigationId && n.interactionId === m.navigationInteractionId && n.startTime === m.navigationStartTime), `${name} report of a soft navigation: ${JSON.stringify(m)}`);
    }
  }
  const ttfb = r.TTFB.vs;
  assert.deepEqual(ttfb.map((m) => [m.navigationType, m.value]), [['navigate', ttfb[0].value], ['soft-navigation', 0], ['soft-navigation', 0], ['soft-navigation', 0]]);
  assert.deepEqual(r.FCP.vs.map((m) => m.navigationType), ['navigate', 'soft-navigation', 'soft-navigation', 'soft-navigation']);
  // The hard navigation's CLS and INP are final at the first soft navigation.
  assert.equal(r.CLS.vs[0].navigationType, 'navigate');
  assert.equal(r.CLS.vs[0].navigationURL, `${site.url}/pages/spa.html?softNavs=1`);
  assert.deepEqual(errors, []);
});

test('both kinds of callback at once: reportSoftNavs on one set, off on the other (and the other way round), each as web-vitals', async () => {
  for (const query of ['softNavs=1&twice=1', 'twice=1']) {
    const { page, errors } = await openSpa(query);
    await journey(page);
    const soft = query.startsWith('softNavs') ? 1 : 2;
    for (const set of [1, 2]) {
      const r = await assertAllParity(page, { set });
      const types = new Set(METRICS.flatMap((n) => r[n].vs.map((m) => m.navigationType)));
      assert.equal(types.has('soft-navigation'), set === soft, `set ${set} of ${query}: ${[...types]}`);
    }
    // Without reportSoftNavs, CLS covers the whole page life in one instance.
    const whole = await metricReports(page, 'CLS', { set: soft === 1 ? 2 : 1 });
    assert.deepEqual(new Set(whole.vs.map((m) => m.id)).size, 1);
    assert.deepEqual(errors, []);
  }
});

test('reportSoftNavs with reportAllChanges: every change of every route, as web-vitals', async () => {
  const { page, errors } = await openSpa('softNavs=1&reportAllChanges=1');
  await journey(page);
  const r = await assertAllParity(page);
  assert.ok(r.CLS.vs.filter((m) => m.navigationURL.endsWith('/spa/cart')).length >= 2, 'CLS of /spa/cart grew in steps');
  assert.deepEqual(errors, []);
});

test('reportSoftNavs off: routes change nothing, one instance per metric for the page life, as web-vitals', async () => {
  const { page, errors } = await openSpa('');
  await journey(page);
  const r = await assertAllParity(page);
  for (const name of METRICS) {
    for (const m of r[name].vs) {
      assert.equal(m.navigationType, 'navigate');
      assert.equal(m.navigationURL, `${site.url}/pages/spa.html?`);
    }
  }
  assert.deepEqual(errors, []);
});

/** A browser without the Soft Navigations API (as Firefox and Safari). */
const noSoftNavs = () => {
  delete window.PerformanceSoftNavigation;
};

test('without soft-navigation entries, reportSoftNavs changes nothing (as web-vitals), and startPageView() starts new CLS, INP and TTFB instances for the new URL', async () => {
  const { page, errors } = await openSpa('softNavs=1', { initScript: noSoftNavs });
  await pause(page, 300);
  await shift(page, 50); // on the first page
  await go(page, 'to-about');
  assert.equal(new URL(page.url()).pathname, '/spa/about');
  // Until the app marks the route, both libraries see one page.
  const before = await page.evaluate(() => window.__shifts.length);
  await page.evaluate(() => window.__vs.startPageView());
  await frames(page);
  await shift(page, 70); // on /spa/about
  await slowClick(page, 200);
  await hide(page);
  await frames(page);
  const r = await page.evaluate(() => window.__reports);
  const wvTypes = new Set(r.wv.map((m) => m.navigationType));
  assert.deepEqual([...wvTypes], ['navigate'], 'web-vitals: no soft navigations without the API');
  const route = r.vs.filter((m) => m.navigationType === 'soft-navigation');
  assert.deepEqual(route.map((m) => m.name).sort(), ['CLS', 'INP', 'TTFB']);
  for (const m of route) {
    assert.equal(m.navigationURL, `${site.url}/spa/about`);
    assert.ok(m.navigationStartTime > 0);
    assert.equal(m.navigationInteractionId, undefined);
  }
  const shifts = await page.evaluate(() => window.__shifts);
  const cls = route.find((m) => m.name === 'CLS');
  assert.equal(cls.value, shifts.slice(before).filter((s) => !s.hadRecentInput).reduce((a, s) => a + s.value, 0));
  assert.equal(route.find((m) => m.name === 'TTFB').value, 0);
  assert.ok(route.find((m) => m.name === 'INP').value >= 200);
  // The first page's CLS was reported (final) when the route changed.
  const first = r.vs.filter((m) => m.name === 'CLS' && m.navigationType === 'navigate');
  assert.equal(first.length, 1);
  assert.equal(first[0].value, shifts.slice(0, before).filter((s) => !s.hadRecentInput).reduce((a, s) => a + s.value, 0));
  // FCP, LCP and TTFB of the hard navigation are web-vitals' own.
  for (const name of ['FCP', 'TTFB']) {
    assert.deepEqual(
      r.vs.filter((m) => m.name === name && m.navigationType === 'navigate').map(({ id, ...m }) => m),
      r.wv.filter((m) => m.name === name).map(({ id, ...m }) => m),
    );
  }
  assert.deepEqual(errors, []);
});

test('where the browser reports soft navigations, startPageView() does nothing', async () => {
  const { page, errors } = await openSpa('softNavs=1');
  await pause(page, 300);
  await go(page, 'to-about', { count: 1 });
  await page.evaluate(() => window.__vs.startPageView());
  await shift(page, 30);
  await hide(page);
  await frames(page);
  await assertAllParity(page);
  assert.deepEqual(errors, []);
});

test('reportSoftNavs and a bfcache restore after a soft navigation: the restored instances keep the route, timed from the restore, as web-vitals', async () => {
  const { page, errors } = await openSpa('softNavs=1');
  await pause(page, 300);
  await go(page, 'to-about', { count: 1 });
  await shift(page, 50);
  await stubBfcacheRestore(page);
  await frames(page);
  await show(page);
  await shift(page, 30);
  await slowClick(page, 150);
  await hide(page);
  await frames(page);
  const r = await assertAllParity(page, { restored: true });
  const restored = METRICS.flatMap((n) => r[n].vs).filter((m) => m.navigationType === 'back-forward-cache');
  assert.ok(restored.length >= 4, JSON.stringify(restored));
  for (const m of restored) {
    assert.equal(m.navigationURL, `${site.url}/spa/about`);
    assert.ok(m.navigationStartTime > 0);
    assert.ok(m.navigationInteractionId > 0);
  }
  assert.deepEqual(errors, []);
});

test('delivery: init() sends each route under its own page key with navigationType soft-navigation, to the real collector', async () => {
  const endpoint = `${collector.url}/v1/beacon`;
  const { page, errors } = await openSpa(`softNavs=1&beacon=${encodeURIComponent(endpoint)}`);
  await journey(page);
  const want = ['/pages/spa.html', '/spa/products/:id', '/spa/about', '/spa/cart'].map((p) => site.url + p);
  const rows = await waitFor(async () => {
    const res = await fetch(`${collector.url}/v1/export?format=json`);
    const rows = res.ok ? await res.json() : [];
    const pages = new Set(rows.map((r) => r.page));
    return want.every((p) => pages.has(p)) && rows;
  }, { what: `reports of ${want.join(', ')} at the collector`, timeout: 15000 });
  const byPage = (p) => rows.filter((r) => r.page === site.url + p);
  for (const p of ['/spa/products/:id', '/spa/about', '/spa/cart']) {
    const reports = byPage(p);
    assert.ok(reports.length > 0);
    for (const r of reports) assert.equal(r.navigationType, 'soft-navigation', JSON.stringify(r));
    assert.deepEqual(new Set(reports.map((r) => r.metric)).has('TTFB'), true, p);
    assert.equal(new Set(reports.map((r) => r.pageViewId)).size, 1, `one page view id per route: ${p}`);
  }
  const hard = byPage('/pages/spa.html');
  for (const r of hard) assert.equal(r.navigationType, 'navigate');
  assert.deepEqual([...new Set(hard.map((r) => r.metric))].sort(), ['CLS', 'FCP', 'INP', 'LCP', 'TTFB']);
  // Each route's final values are those the callbacks (with reportSoftNavs) got.
  const callbacks = await page.evaluate(() => window.__reports.vs);
  for (const [path, route] of [['/spa/products/:id', '/spa/products/123'], ['/spa/about', '/spa/about'], ['/spa/cart', '/spa/cart']]) {
    for (const name of ['CLS', 'TTFB', 'FCP']) {
      const last = callbacks.filter((m) => m.name === name && m.navigationURL === site.url + route).at(-1);
      const stored = byPage(path).filter((r) => r.metric === name);
      assert.equal(stored.length, 1, `${name} of ${path}`);
      assert.equal(stored[0].value, last.value, `${name} of ${path}`);
    }
  }
  assert.ok(byPage('/spa/cart').find((r) => r.metric === 'CLS').value > 0, 'the shifts on /spa/cart');
  assert.deepEqual(errors, []);
});
