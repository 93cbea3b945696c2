// Soft navigation parity (web-vitals 6 `reportSoftNavs`): our agent and
// web-vitals 6.2.3 on the same load of a single-page app (spa.html) whose
// routes change by real clicks (pushState, replaceState), with and without
// layout shifts and slow interactions, must report the same metrics for
// every route: values, deltas, ratings, navigationType, entries, and the
// navigation fields (navigationId, navigationInteractionId, navigationURL,
// navigationStartTime), with ids grouping reports the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowserAndSite } from './harness.mjs';
import { open, frames, pause, hide, show, metricReports, assertParity } from './support-input.mjs';

let browser, site;
const contexts = useBrowserAndSite((env) => ({ browser, site } = env));

const METRICS = ['FCP', 'LCP', 'CLS', 'INP', 'TTFB'];

async function openSpa(query) {
  const opened = await open(browser, site, `/pages/spa.html?${query}`);
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

async function assertAllParity(page, { set = 1 } = {}) {
  const out = {};
  for (const name of METRICS) {
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
