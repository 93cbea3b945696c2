// FCP parity: our agent and web-vitals 6.2.3 side by side on the same page
// load (tests/pages/parity.js) must report the same First Contentful Paint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openPage, parityReady, reports, stubVisibility, stubBfcacheRestore, hiddenAtLoad, discarded, waitFor, useBrowserAndSite,
} from './harness.mjs';
import {
  initScripts, noPerformanceObserver, noSupportedEntryTypes, noWebAssembly, settle, waitForBoth, waitForReference,
  assertParity, assertDistinctIds, timings, waitForPaint, rawChromium, prerenderAndActivate, cdpEval, cdpWait, cdpSettle,
  cdpErrors, cdpGoto, cdpClick, cdpReports, cdpHideAndShow,
} from './support-paint.mjs';

let browser, site;
const contexts = useBrowserAndSite((env) => ({ browser, site } = env));

async function open(path, opts) {
  const o = await openPage(browser, `${site.url}/pages/${path}`, opts);
  contexts.push(o.context);
  await parityReady(o.page);
  return o;
}

/** FCP reported once by both, equal, and equal to the browser's paint entry. */
async function reportedOnce(page, navigationType) {
  const r = await waitForBoth(page, 'FCP');
  await settle(page);
  const { vs, instances } = assertParity(assert, await reports(page), 'FCP');
  assert.equal(vs.length, 1, 'FCP is reported once');
  assert.equal(instances, 1);
  const t = await timings(page);
  assert.equal(vs[0].value, t.fcp, 'the first-contentful-paint entry\'s startTime');
  assert.equal(vs[0].delta, vs[0].value);
  assert.equal(vs[0].entries, 1);
  assert.equal(vs[0].navigationType, navigationType);
  assert.equal(vs[0].rating, vs[0].value <= 1800 ? 'good' : vs[0].value <= 3000 ? 'needs-improvement' : 'poor');
  return r;
}

test('FCP: reported once after the first paint', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP,TTFB');
  await reportedOnce(page, 'navigate');
  await waitForBoth(page, 'TTFB');
  const r = await reports(page);
  assertParity(assert, r, 'TTFB');
  assertDistinctIds(assert, r.vs);
  assert.deepEqual(errors, []);
});

test('FCP: reportAllChanges still reports once', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP&reportAllChanges=1');
  await reportedOnce(page, 'navigate');
  assert.deepEqual(errors, []);
});

test('FCP: library loaded late (after the load event)', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP&lazy=load');
  assert.equal(await page.evaluate(() => document.readyState), 'complete');
  await reportedOnce(page, 'navigate');
  assert.deepEqual(errors, []);
});

test('FCP: hidden at load -> neither library reports', async () => {
  // TTFB is the sentinel: once both reported it, both are running.
  const { page, errors } = await open('parity.html?metrics=FCP,TTFB', { initScript: hiddenAtLoad });
  await waitForPaint(page);
  await waitForBoth(page, 'TTFB');
  await settle(page);
  const r = await reports(page);
  assertParity(assert, r, 'TTFB');
  assertParity(assert, r, 'FCP');
  assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP');
  assert.deepEqual(errors, []);
});

test('FCP: hidden before the first paint -> neither library reports', async () => {
  const { page, errors } = await open('fcp-blank.html?metrics=FCP,TTFB');
  await waitForBoth(page, 'TTFB');
  assert.equal(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint').length), 0, 'nothing painted yet');
  // Hidden, then visible again (the harness's stub also hides <html>, which
  // would prevent any paint), and only then the first contentful paint: it
  // comes after firstHiddenTime.
  await stubVisibility(page, 'hidden');
  await stubVisibility(page, 'visible');
  await page.evaluate(() => window.paintText());
  await waitForPaint(page);
  await settle(page);
  const r = await reports(page);
  assertParity(assert, r, 'FCP');
  assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP');
  assert.deepEqual(errors, []);
});

// Real hides: a tab switch in a raw-CDP Chromium (see rawChromium), with
// trusted visibilitychange events and `visibility-state` entries.

test('FCP: really hidden (tab switch) before the first paint -> neither library reports', async () => {
  const cdp = await rawChromium();
  try {
    const s = cdp.page.sessionId;
    const errors = await cdpErrors(cdp, s);
    await cdpGoto(cdp, s, `${site.url}/pages/fcp-blank.html?metrics=FCP,TTFB`);
    await cdpWait(cdp, s, 'window.__isReady && window.__reports.wv.length > 0 && window.__reports.vs.length > 0', 'TTFB from both (the sentinel)');
    await cdpHideAndShow(cdp, cdp.page);
    await cdpEval(cdp, s, 'window.paintText()');
    await cdpWait(cdp, s, 'performance.getEntriesByName("first-contentful-paint").length > 0', 'the first contentful paint');
    await cdpSettle(cdp, s);
    const r = await cdpReports(cdp, s);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'FCP');
    assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP');
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

test('FCP: really hidden before the first paint, library loaded after (visibility-state entries) -> neither reports', async () => {
  const cdp = await rawChromium();
  try {
    const s = cdp.page.sessionId;
    const errors = await cdpErrors(cdp, s);
    await cdpGoto(cdp, s, `${site.url}/pages/fcp-blank.html?metrics=FCP,TTFB&deferred=1`);
    await cdpHideAndShow(cdp, cdp.page);
    await cdpEval(cdp, s, 'window.paintText()');
    await cdpWait(cdp, s, 'performance.getEntriesByName("first-contentful-paint").length > 0', 'the first contentful paint');
    assert.ok(await cdpEval(cdp, s, 'performance.getEntriesByType("visibility-state").some((e) => e.name === "hidden")'), 'the hide is in the timeline');
    await cdpEval(cdp, s, 'window.loadLibraries()');
    await cdpWait(cdp, s, 'window.__isReady && window.__reports.wv.length > 0 && window.__reports.vs.length > 0', 'TTFB from both (the sentinel)');
    await cdpSettle(cdp, s);
    const r = await cdpReports(cdp, s);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'FCP');
    assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP');
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

test('FCP: loaded in a background tab (really hidden at load), then shown -> no FCP or LCP; TTFB as usual', async () => {
  const cdp = await rawChromium();
  try {
    const tab = await cdp.openTab({ background: true });
    const s = tab.sessionId;
    const errors = await cdpErrors(cdp, s);
    await cdpGoto(cdp, s, `${site.url}/pages/parity.html?metrics=FCP,LCP,TTFB`);
    await cdpWait(cdp, s, 'window.__isReady && window.__reports.wv.length > 0 && window.__reports.vs.length > 0', 'TTFB from both (the sentinel)');
    assert.equal(await cdpEval(cdp, s, 'document.visibilityState'), 'hidden');
    await cdp.send('Target.activateTarget', { targetId: tab.targetId });
    await cdpWait(cdp, s, 'document.visibilityState === "visible"');
    await cdpWait(cdp, s, 'performance.getEntriesByName("first-contentful-paint").length > 0', 'the first contentful paint once shown');
    await cdpSettle(cdp, s);
    await cdpClick(cdp, s, 20, 20); // would finalise LCP
    await cdpSettle(cdp, s, 300);
    const r = await cdpReports(cdp, s);
    for (const name of ['FCP', 'LCP', 'TTFB']) assertParity(assert, r, name);
    assert.deepEqual(r.wv.map((m) => m.name), ['TTFB'], 'web-vitals reports only TTFB');
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

test('FCP: a late first paint while visible is reported (control for the hidden case)', async () => {
  const { page, errors } = await open('fcp-blank.html?metrics=FCP,TTFB');
  await waitForBoth(page, 'TTFB');
  await page.evaluate(() => window.paintText());
  await reportedOnce(page, 'navigate');
  assert.deepEqual(errors, []);
});

test('FCP: bfcache restores -> a new FCP each with back-forward-cache, measured by a double rAF', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP');
  await waitForBoth(page, 'FCP');
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'FCP', 2);
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'FCP', 3);
  await settle(page);
  const { wv, vs, instances } = assertParity(assert, await reports(page), 'FCP');
  assert.equal(vs.length, 3);
  assert.equal(instances, 3, 'each restore starts a new metric instance (new id)');
  assertDistinctIds(assert, vs);
  for (const i of [1, 2]) {
    assert.equal(vs[i].navigationType, 'back-forward-cache');
    assert.equal(vs[i].entries, 0);
    assert.ok(vs[i].value >= 0 && Math.abs(vs[i].value - wv[i].value) <= 17, `restore values within a frame: ${wv[i].value} vs ${vs[i].value}`);
  }
  assert.deepEqual(errors, []);
});

test('FCP: bfcache restore after a hidden load -> only the restore value', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP,TTFB', { initScript: hiddenAtLoad });
  await waitForPaint(page);
  await waitForBoth(page, 'TTFB');
  await settle(page);
  assert.equal((await reports(page)).vs.filter((m) => m.name === 'FCP').length, 0, 'no FCP before the restore');
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'FCP');
  await settle(page);
  const { vs } = assertParity(assert, await reports(page), 'FCP');
  assert.equal(vs.length, 1);
  assert.equal(vs[0].navigationType, 'back-forward-cache');
  assert.deepEqual(errors, []);
});

test('FCP: discarded tab -> navigationType restore', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP', { initScript: discarded });
  await reportedOnce(page, 'restore');
  assert.deepEqual(errors, []);
});

test('FCP: reload -> navigationType reload', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP');
  await waitForBoth(page, 'FCP');
  const first = await reports(page);
  await page.reload();
  await parityReady(page);
  assert.equal((await timings(page)).type, 'reload');
  const r = await reportedOnce(page, 'reload');
  assertDistinctIds(assert, first.vs, r.vs);
  assert.deepEqual(errors, []);
});

test('FCP: back navigation to a page not kept in the bfcache -> back-forward', async () => {
  // The harness serves no-store and Playwright runs Chromium without a
  // bfcache, so going back loads the page again as a back_forward navigation.
  const { page, errors } = await open('parity.html?metrics=FCP');
  await waitForBoth(page, 'FCP');
  await page.goto(`${site.url}/pages/ttfb-page.html?metrics=FCP`);
  await parityReady(page);
  await waitForBoth(page, 'FCP');
  await page.goBack();
  await parityReady(page);
  assert.equal((await timings(page)).type, 'back_forward');
  await reportedOnce(page, 'back-forward');
  assert.deepEqual(errors, []);
});

test('FCP: prerendered page (speculation rules, trusted click) -> prerender, from activationStart', async () => {
  const cdp = await rawChromium();
  try {
    const { session, errors } = await prerenderAndActivate(cdp, site.url, '/pages/parity.html?metrics=FCP');
    const r = await waitFor(async () => {
      const r = await cdpEval(cdp, session, 'window.__reports');
      return r.wv.length && r.vs.length && r;
    }, { what: 'FCP from both libraries after activation' });
    await cdpSettle(cdp, session);
    const { vs } = assertParity(assert, await cdpEval(cdp, session, 'window.__reports'), 'FCP');
    assert.ok(r.wv.length);
    assert.equal(vs.length, 1);
    assert.equal(vs[0].navigationType, 'prerender');
    const t = await cdpEval(cdp, session, `(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { activationStart: nav.activationStart, fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime };
    })()`);
    assert.ok(t.activationStart > 0, 'the page was prerendered and then activated');
    assert.equal(vs[0].value, Math.max(t.fcp - t.activationStart, 0));
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

test('FCP: onFCP called twice with different options', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP&twice=1');
  await waitForBoth(page, 'FCP');
  await waitForBoth(page, 'FCP', 1, { key: '__reports2' });
  await settle(page);
  const a = assertParity(assert, await reports(page), 'FCP');
  const b = assertParity(assert, await page.evaluate(() => window.__reports2), 'FCP');
  assert.equal(a.vs.length, 1);
  assert.equal(b.vs.length, 1);
  assert.deepEqual({ ...a.vs[0], id: 0 }, { ...b.vs[0], id: 0 }, 'both registrations see the same FCP');
  assertDistinctIds(assert, a.vs, b.vs);
  assertDistinctIds(assert, a.wv, b.wv);
  assert.deepEqual(errors, []);
});

for (const [what, initScript] of [['no PerformanceObserver', noPerformanceObserver], ['no supported entry types', noSupportedEntryTypes]]) {
  test(`FCP: ${what} -> neither library reports, nothing thrown`, async () => {
    const { page, errors } = await open('parity.html?metrics=FCP,TTFB', { initScript: initScripts(initScript) });
    await waitForPaint(page);
    await waitForBoth(page, 'TTFB');
    await settle(page);
    let r = await reports(page);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'FCP');
    assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP');
    // Without an observer there is no FCP after a bfcache restore either
    // (TTFB, which needs none, is reported again: the sentinel).
    await stubBfcacheRestore(page);
    await waitForBoth(page, 'TTFB', 2);
    await settle(page);
    r = await reports(page);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'FCP');
    assert.equal(r.wv.filter((m) => m.name === 'FCP').length, 0, 'web-vitals reports no FCP after a restore');
    assert.deepEqual(errors, []);
  });
}

test('FCP: no WebAssembly -> our agent reports nothing and throws nothing', async () => {
  const { page, errors } = await open('parity.html?metrics=FCP', { initScript: initScripts(noWebAssembly) });
  assert.equal(await page.evaluate(() => import('/agent/index.js').then((m) => m.loaded())), false, 'loaded() resolves to false');
  await waitForReference(page, 'FCP');
  await settle(page);
  const r = await reports(page);
  assert.equal(r.wv.length, 1, 'web-vitals still reports FCP');
  assert.deepEqual(r.vs, []);
  assert.deepEqual(errors, []);
});
