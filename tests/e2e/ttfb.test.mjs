// TTFB parity: our agent and web-vitals 6.2.3 side by side on the same page
// load (tests/pages/parity.js) must report the same Time to First Byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openPage, parityReady, reports, stubBfcacheRestore, hiddenAtLoad, discarded, waitFor, useBrowserAndSite,
} from './harness.mjs';
import {
  initScripts, noPerformanceObserver, noNavigationEntry, invalidResponseStart, noWebAssembly, settle, waitForBoth,
  waitForReference, assertParity, assertDistinctIds, timings, rawChromium, prerenderAndActivate, cdpEval, cdpSettle,
} from './support-paint.mjs';

let browser, site;
const contexts = useBrowserAndSite((env) => ({ browser, site } = env));

async function open(path, ...init) {
  const o = await openPage(browser, `${site.url}/pages/${path}`, init.length ? { initScript: initScripts(...init) } : {});
  contexts.push(o.context);
  await parityReady(o.page);
  return o;
}

const ttfbs = (list) => list.filter((m) => m.name === 'TTFB');

/** TTFB reported once by both, equal, and equal to the entry's responseStart. */
async function reportedOnce(page, navigationType = 'navigate') {
  await waitForBoth(page, 'TTFB');
  await settle(page);
  const { vs, instances } = assertParity(assert, await reports(page), 'TTFB');
  assert.equal(vs.length, 1, 'TTFB is reported once');
  assert.equal(instances, 1);
  const t = await timings(page);
  assert.equal(vs[0].value, t.responseStart, 'the navigation entry\'s responseStart');
  assert.equal(vs[0].delta, vs[0].value);
  assert.equal(vs[0].entries, 1);
  assert.equal(vs[0].navigationType, navigationType);
  assert.equal(vs[0].rating, vs[0].value <= 800 ? 'good' : vs[0].value <= 1800 ? 'needs-improvement' : 'poor');
  return vs[0];
}

test('TTFB: reported after load, equal to responseStart', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB');
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

for (const [delay, rating] of [[300, 'good'], [900, 'needs-improvement']]) {
  test(`TTFB: a delayed response (${delay} ms) -> ${rating}`, async () => {
    const { page, errors } = await open(`ttfb-page.html?metrics=TTFB&delay=${delay}`);
    const m = await reportedOnce(page);
    assert.ok(m.value >= delay, `TTFB ${m.value} includes the ${delay} ms delay`);
    assert.equal(m.rating, rating);
    assert.deepEqual(errors, []);
  });
}

test('TTFB: reportAllChanges still reports once', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB&reportAllChanges=1');
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

test('TTFB: library loaded late (after the load event)', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB&lazy=load');
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

test('TTFB: library loaded late (1 s after navigation)', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB&lazy=1000');
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

test('TTFB: hidden at load is still reported', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB', hiddenAtLoad);
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

test('TTFB: discarded tab -> navigationType restore', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB', discarded);
  await reportedOnce(page, 'restore');
  assert.deepEqual(errors, []);
});

test('TTFB: reload -> navigationType reload', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB');
  await waitForBoth(page, 'TTFB');
  const first = await reports(page);
  await page.reload();
  await parityReady(page);
  await reportedOnce(page, 'reload');
  assertDistinctIds(assert, first.vs, (await reports(page)).vs);
  assert.deepEqual(errors, []);
});

test('TTFB: bfcache restore -> 0 with back-forward-cache', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB');
  await waitForBoth(page, 'TTFB');
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'TTFB', 2);
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'TTFB', 3);
  await settle(page);
  const { vs, instances } = assertParity(assert, await reports(page), 'TTFB');
  assert.equal(vs.length, 3);
  assert.equal(instances, 3, 'each restore starts a new metric instance (new id)');
  assertDistinctIds(assert, vs);
  for (const i of [1, 2]) {
    assert.deepEqual(
      { value: vs[i].value, delta: vs[i].delta, rating: vs[i].rating, navigationType: vs[i].navigationType, entries: vs[i].entries },
      { value: 0, delta: 0, rating: 'good', navigationType: 'back-forward-cache', entries: 0 },
    );
  }
  assert.deepEqual(errors, []);
});

for (const mode of ['zero', 'future']) {
  test(`TTFB: invalid responseStart (${mode}) -> neither library reports`, async () => {
    // FCP is the sentinel: once both reported it (and the page loaded), both run.
    const { page, errors } = await open('ttfb-page.html?metrics=TTFB,FCP', invalidResponseStart(mode));
    await waitForBoth(page, 'FCP');
    await page.waitForFunction(() => document.readyState === 'complete');
    await settle(page, 300);
    let r = await reports(page);
    assertParity(assert, r, 'FCP');
    assertParity(assert, r, 'TTFB');
    assert.equal(ttfbs(r.wv).length, 0, 'web-vitals reports no TTFB');
    // No TTFB after a bfcache restore either (it restarts only if the load's
    // entry was reported); FCP, restarted, is the sentinel.
    await stubBfcacheRestore(page);
    await waitForBoth(page, 'FCP', 2);
    await settle(page);
    r = await reports(page);
    assertParity(assert, r, 'FCP');
    assertParity(assert, r, 'TTFB');
    assert.equal(ttfbs(r.wv).length, 0, 'web-vitals reports no TTFB after a restore');
    assert.deepEqual(errors, []);
  });
}

test('TTFB: onTTFB called twice with different options', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB&twice=1');
  await waitForBoth(page, 'TTFB');
  await waitForBoth(page, 'TTFB', 1, { key: '__reports2' });
  await settle(page);
  const a = assertParity(assert, await reports(page), 'TTFB');
  const b = assertParity(assert, await page.evaluate(() => window.__reports2), 'TTFB');
  assert.equal(a.vs.length, 1);
  assert.equal(b.vs.length, 1);
  assert.deepEqual({ ...a.vs[0], id: 0 }, { ...b.vs[0], id: 0 }, 'both registrations see the same TTFB');
  assertDistinctIds(assert, a.vs, b.vs);
  assert.deepEqual(errors, []);
});

test('TTFB: prerendered page (speculation rules, trusted click) -> prerender, from activationStart', async () => {
  const cdp = await rawChromium();
  try {
    const { session, errors } = await prerenderAndActivate(cdp, site.url, '/pages/ttfb-page.html?metrics=TTFB');
    await waitFor(async () => {
      const r = await cdpEval(cdp, session, 'window.__reports');
      return r.wv.length && r.vs.length;
    }, { what: 'TTFB from both libraries after activation' });
    await cdpSettle(cdp, session);
    const { vs } = assertParity(assert, await cdpEval(cdp, session, 'window.__reports'), 'TTFB');
    assert.equal(vs.length, 1);
    assert.equal(vs[0].navigationType, 'prerender');
    const t = await cdpEval(cdp, session, '(() => { const n = performance.getEntriesByType("navigation")[0]; return { activationStart: n.activationStart, responseStart: n.responseStart }; })()');
    assert.ok(t.activationStart > 0, 'the page was prerendered and then activated');
    assert.equal(vs[0].value, Math.max(t.responseStart - t.activationStart, 0));
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

test('TTFB: no navigation entry (no Navigation Timing 2) -> neither library reports, nothing thrown', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB,FCP', noNavigationEntry);
  await waitForBoth(page, 'FCP');
  await page.waitForFunction(() => document.readyState === 'complete');
  await settle(page, 300);
  const r = await reports(page);
  assertParity(assert, r, 'FCP');
  assertParity(assert, r, 'TTFB');
  assert.equal(ttfbs(r.wv).length, 0, 'web-vitals reports no TTFB');
  assert.deepEqual(errors, []);
});

test('TTFB: no PerformanceObserver -> both still report TTFB (it needs none), nothing thrown', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB', noPerformanceObserver);
  await reportedOnce(page);
  assert.deepEqual(errors, []);
});

test('TTFB: no WebAssembly -> our agent reports nothing and throws nothing', async () => {
  const { page, errors } = await open('ttfb-page.html?metrics=TTFB', noWebAssembly);
  assert.equal(await page.evaluate(() => import('/agent/index.js').then((m) => m.loaded())), false, 'loaded() resolves to false');
  await waitForReference(page, 'TTFB');
  await settle(page);
  const r = await reports(page);
  assert.equal(r.wv.length, 1, 'web-vitals still reports TTFB');
  assert.deepEqual(r.vs, []);
  assert.deepEqual(errors, []);
});
