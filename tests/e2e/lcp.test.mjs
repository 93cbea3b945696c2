// LCP parity: our agent and web-vitals 6.2.3 side by side on the same page
// load (tests/pages/parity.js) must report the same Largest Contentful Paint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openPage, parityReady, reports, stubVisibility, stubBfcacheRestore, hiddenAtLoad, discarded, waitFor, useBrowserAndSite,
} from './harness.mjs';
import {
  initScripts, lcpProbe, beaconReports, beaconedReports, noPerformanceObserver, noSupportedEntryTypes, noWebAssembly, settle,
  waitForBoth, waitForReference, assertParity, assertDistinctIds, waitForCandidates, waitForPaint, rawChromium,
  prerenderAndActivate, cdpEval, cdpClick, cdpWait, cdpSettle, cdpErrors, cdpGoto, cdpInit, cdpReports, cdpHideAndShow,
} from './support-paint.mjs';

let browser, site;
const contexts = useBrowserAndSite((env) => ({ browser, site } = env));

/** Opens a page with the LCP probe (and any other init scripts). */
async function open(path, ...init) {
  const o = await openPage(browser, `${site.url}/pages/${path}`, { initScript: initScripts(lcpProbe, ...init) });
  contexts.push(o.context);
  await parityReady(o.page);
  return o;
}

const lcps = (list) => list.filter((m) => m.name === 'LCP');

/** Neither library has reported LCP (yet). */
async function noneYet(page, why) {
  await settle(page);
  const r = await reports(page);
  assert.deepEqual({ wv: lcps(r.wv), vs: lcps(r.vs) }, { wv: [], vs: [] }, why);
}

/** Both reported LCP once, equal, with `value` and `navigationType`. */
async function finalOnce(page, value, navigationType = 'navigate') {
  await waitForBoth(page, 'LCP');
  await settle(page);
  const { vs, instances } = assertParity(assert, await reports(page), 'LCP');
  assert.equal(vs.length, 1, 'LCP is reported once');
  assert.equal(instances, 1);
  assert.equal(vs[0].value, value, 'the last candidate\'s startTime');
  assert.equal(vs[0].delta, value);
  assert.equal(vs[0].entries, 1);
  assert.equal(vs[0].navigationType, navigationType);
  assert.equal(vs[0].rating, value <= 2500 ? 'good' : value <= 4000 ? 'needs-improvement' : 'poor');
}

test('LCP: image candidates after the text; only the final value, on a trusted click', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 3);
  assert.deepEqual(candidates.map((c) => c.size > 0 && c.url === '' ? 'text' : 'image'), ['text', 'image', 'image']);
  await noneYet(page, 'not reported before the user interacts or hides the page');
  await page.click('#text');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: reportAllChanges reports each candidate', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP&reportAllChanges=1');
  const candidates = await waitForCandidates(page, 3);
  await waitForBoth(page, 'LCP', 3);
  await page.click('#text');
  await settle(page, 300);
  const { vs, instances } = assertParity(assert, await reports(page), 'LCP');
  assert.deepEqual(vs.map((m) => m.value), candidates.map((c) => c.startTime), 'one report per candidate, none more on the click');
  assert.equal(instances, 1);
  assert.deepEqual(vs.map((m) => m.delta), candidates.map((c, i) => c.startTime - (i ? candidates[i - 1].startTime : 0)));
  assert.deepEqual(errors, []);
});

test('LCP: scrolling alone does not report it', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 3);
  await page.mouse.move(200, 200);
  await page.mouse.wheel(0, 400);
  await page.waitForFunction(() => scrollY > 0);
  await noneYet(page, 'a (trusted) scroll does not finalise LCP');
  await page.click('#spacer');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: a synthetic (untrusted) visibilitychange does not report it', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 3);
  await stubVisibility(page, 'hidden');
  await noneYet(page, 'an untrusted visibilitychange to hidden does not finalise LCP');
  await stubVisibility(page, 'visible');
  await noneYet(page, 'nor does an untrusted one back to visible');
  // Still pending: the next trusted input reports it, all candidates having
  // rendered before the (stubbed) hide.
  await page.click('#text');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: a trusted keydown while (stub-)hidden reports at once', async () => {
  // whenIdleOrHidden runs at once when the page is hidden; every candidate
  // rendered before the stubbed hide.
  const { page, errors } = await open('lcp-images.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 3);
  await stubVisibility(page, 'hidden');
  await noneYet(page, 'an untrusted visibilitychange does not finalise LCP');
  await page.keyboard.press('a');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: reported on a trusted keydown', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 3);
  await noneYet(page, 'not reported before the keydown');
  await page.keyboard.press('a');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: reported on a real hide (the page unloads: trusted visibilitychange)', async () => {
  // Headless Chromium never hides a tab, but leaving the page fires a real,
  // trusted visibilitychange to hidden; the reports made then are beaconed.
  site.beacons.length = 0;
  const { page, errors } = await open('lcp-images.html?metrics=LCP', beaconReports);
  const candidates = await waitForCandidates(page, 3);
  await noneYet(page, 'not reported before the hide');
  await page.goto('about:blank');
  const r = await waitFor(() => {
    const r = beaconedReports(site);
    return r.wv.length && r.vs.length && r;
  }, { what: 'LCP beaconed by both libraries while the page unloads' });
  await new Promise((resolve) => setTimeout(resolve, 200)); // any straggling beacon
  const { vs } = assertParity(assert, beaconedReports(site), 'LCP');
  assert.ok(r.wv.length);
  assert.equal(vs.length, 1);
  assert.equal(vs[0].value, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

// Real hides: a tab switch in a raw-CDP Chromium (see rawChromium), with
// trusted visibilitychange events and `visibility-state` entries.

test('LCP: reported on a real tab switch (trusted visibilitychange), nothing more once back', async () => {
  const cdp = await rawChromium();
  try {
    const s = cdp.page.sessionId;
    const errors = await cdpErrors(cdp, s);
    await cdpInit(cdp, s, lcpProbe);
    await cdpGoto(cdp, s, `${site.url}/pages/lcp-images.html?metrics=LCP`);
    await cdpWait(cdp, s, 'window.__isReady && window.__lcpProbe.length >= 3', 'three LCP candidates');
    await cdpSettle(cdp, s);
    assert.deepEqual(await cdpReports(cdp, s), { wv: [], vs: [] }, 'nothing before the hide');
    const candidates = await cdpEval(cdp, s, 'window.__lcpProbe');
    const back = await cdp.switchAway(cdp.page);
    await cdpWait(cdp, s, 'document.visibilityState === "hidden"');
    await cdpWait(cdp, s, 'window.__reports.wv.length > 0 && window.__reports.vs.length > 0', 'LCP from both while hidden');
    await back();
    await cdpWait(cdp, s, 'document.visibilityState === "visible"');
    await cdpClick(cdp, s, 20, 20);
    await cdpSettle(cdp, s, 300);
    const { vs } = assertParity(assert, await cdpReports(cdp, s), 'LCP');
    assert.equal(vs.length, 1);
    assert.equal(vs[0].value, candidates[2].startTime);
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

for (const rac of [false, true]) {
  test(`LCP: really hidden before the image renders, library loaded after (visibility-state entries)${rac ? ' (reportAllChanges)' : ''}`, async () => {
    const cdp = await rawChromium();
    try {
      const s = cdp.page.sessionId;
      const errors = await cdpErrors(cdp, s);
      await cdpInit(cdp, s, lcpProbe);
      await cdpGoto(cdp, s, `${site.url}/pages/lcp-late-image.html?metrics=LCP,FCP&deferred=1${rac ? '&reportAllChanges=1' : ''}`);
      await cdpWait(cdp, s, 'window.__lcpProbe.length >= 1', 'the text candidate');
      await cdpHideAndShow(cdp, cdp.page);
      await cdpEval(cdp, s, 'window.addImage()');
      await cdpWait(cdp, s, 'window.__lcpProbe.length >= 2', 'the image candidate');
      const [text] = await cdpEval(cdp, s, 'window.__lcpProbe');
      await cdpEval(cdp, s, 'window.loadLibraries()');
      await cdpWait(cdp, s, 'window.__isReady && window.__reports.wv.length > 0 && window.__reports.vs.length > 0', 'FCP from both (the sentinel)');
      await cdpSettle(cdp, s);
      await cdpClick(cdp, s, 20, 20);
      await cdpSettle(cdp, s, 300);
      const r = await cdpReports(cdp, s);
      assertParity(assert, r, 'FCP');
      const { wv } = assertParity(assert, r, 'LCP');
      if (rac) {
        // Each buffered entry counts: the text (before the hide), not the image.
        assert.deepEqual(wv.map((m) => m.value), [text.startTime]);
      } else {
        // Only the last entry of the buffered batch counts, and the image
        // rendered after the hide: web-vitals reports no LCP at all.
        assert.deepEqual(wv, []);
      }
      assert.deepEqual(errors, []);
    } finally {
      await cdp.close();
    }
  });
}

test('LCP: library loaded late (after load) reports the final value', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP&lazy=load');
  const candidates = await waitForCandidates(page, 3);
  await noneYet(page, 'not reported before the user interacts');
  await page.click('#text');
  await finalOnce(page, candidates[2].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: library loaded late with reportAllChanges reports every candidate', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP&lazy=load&reportAllChanges=1');
  const candidates = await waitForCandidates(page, 3);
  await waitForBoth(page, 'LCP', 1);
  await settle(page, 300);
  const { vs } = assertParity(assert, await reports(page), 'LCP');
  assert.deepEqual(vs.map((m) => m.value), candidates.map((c) => c.startTime));
  assert.deepEqual(errors, []);
});

test('LCP: hidden at load -> neither library reports, even on input', async () => {
  const { page, errors } = await open('lcp-images.html?metrics=LCP,TTFB', hiddenAtLoad);
  await waitForCandidates(page, 3);
  await waitForBoth(page, 'TTFB');
  await page.click('#text');
  await page.keyboard.press('a');
  await settle(page, 300);
  const r = await reports(page);
  assertParity(assert, r, 'TTFB');
  assertParity(assert, r, 'LCP');
  assert.equal(lcps(r.wv).length, 0, 'web-vitals reports no LCP');
  assert.deepEqual(errors, []);
});

for (const rac of [false, true]) {
  test(`LCP: hidden before the image renders -> the image is not counted${rac ? ' (reportAllChanges)' : ''}`, async () => {
    const { page, errors } = await open(`lcp-late-image.html?metrics=LCP${rac ? '&reportAllChanges=1' : ''}`);
    const [text] = await waitForCandidates(page, 1);
    await settle(page); // both libraries have seen the text candidate
    // Hidden, then visible again (the stub also hides <html>, which would
    // stop the image from painting): the image renders after firstHiddenTime.
    await stubVisibility(page, 'hidden');
    await stubVisibility(page, 'visible');
    await page.evaluate(() => window.addImage());
    const candidates = await waitForCandidates(page, 2);
    assert.ok(candidates[1].startTime > text.startTime && candidates[1].url, 'the image became a candidate');
    await page.click('#text');
    await finalOnce(page, text.startTime);
    assert.deepEqual(errors, []);
  });
}

test('LCP: bfcache restore -> a new LCP with back-forward-cache, measured by a double rAF', async () => {
  const { page, errors } = await open('parity.html?metrics=LCP');
  const [candidate] = await waitForCandidates(page, 1);
  await page.click('#button');
  await waitForBoth(page, 'LCP');
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'LCP', 2);
  await stubBfcacheRestore(page);
  await waitForBoth(page, 'LCP', 3);
  await settle(page);
  const { wv, vs, instances } = assertParity(assert, await reports(page), 'LCP');
  assert.equal(vs.length, 3);
  assert.equal(vs[0].value, candidate.startTime);
  assert.equal(instances, 3, 'each restore starts a new metric instance (new id)');
  assertDistinctIds(assert, vs);
  for (const i of [1, 2]) {
    assert.equal(vs[i].navigationType, 'back-forward-cache');
    assert.equal(vs[i].entries, 0);
    assert.ok(vs[i].value >= 0 && Math.abs(vs[i].value - wv[i].value) <= 17, `restore values within a frame: ${wv[i].value} vs ${vs[i].value}`);
  }
  // The restored instance is final: more input reports nothing more.
  await page.click('#button');
  await settle(page, 300);
  assertParity(assert, await reports(page), 'LCP');
  assert.equal(lcps((await reports(page)).vs).length, 3);
  assert.deepEqual(errors, []);
});

test('LCP: bfcache restore before any input -> only the restore value', async () => {
  const { page, errors } = await open('parity.html?metrics=LCP');
  await waitForCandidates(page, 1);
  await settle(page);
  await stubBfcacheRestore(page);
  await waitForReference(page, 'LCP');
  await page.click('#button');
  await settle(page, 300);
  const { vs } = assertParity(assert, await reports(page), 'LCP');
  assert.equal(vs.length, 1);
  assert.equal(vs[0].navigationType, 'back-forward-cache');
  assert.deepEqual(errors, []);
});

test('LCP: discarded tab -> navigationType restore', async () => {
  const { page, errors } = await open('parity.html?metrics=LCP', discarded);
  const [candidate] = await waitForCandidates(page, 1);
  await page.click('#button');
  await finalOnce(page, candidate.startTime, 'restore');
  assert.deepEqual(errors, []);
});

test('LCP: onLCP called twice with different options', async () => {
  // First registration without reportAllChanges, the second with it.
  const { page, errors } = await open('lcp-images.html?metrics=LCP&twice=1');
  const candidates = await waitForCandidates(page, 3);
  await waitForBoth(page, 'LCP', 3, { key: '__reports2' });
  await page.click('#text');
  await waitForBoth(page, 'LCP');
  await settle(page, 300);
  const a = assertParity(assert, await reports(page), 'LCP');
  const b = assertParity(assert, await page.evaluate(() => window.__reports2), 'LCP');
  assert.deepEqual(a.vs.map((m) => m.value), [candidates[2].startTime]);
  assert.deepEqual(b.vs.map((m) => m.value), candidates.map((c) => c.startTime));
  assertDistinctIds(assert, [a.vs[0], b.vs[0]]);
  assertDistinctIds(assert, [a.wv[0], b.wv[0]]);
  assert.deepEqual(errors, []);
});

test('LCP: cross-origin image without Timing-Allow-Origin', async () => {
  const { page, errors } = await open('lcp-cross-origin.html?metrics=LCP');
  const candidates = await waitForCandidates(page, 2);
  assert.match(candidates[1].url, /^http:\/\/localhost:/, 'the image from the other origin is the LCP');
  await page.click('#text');
  await finalOnce(page, candidates[1].startTime);
  assert.deepEqual(errors, []);
});

test('LCP: prerendered page (speculation rules, trusted click) -> prerender, from activationStart', async () => {
  const cdp = await rawChromium();
  try {
    const { session, errors } = await prerenderAndActivate(cdp, site.url, '/pages/parity.html?metrics=LCP,TTFB');
    // TTFB (reported after activation by both) as the sentinel, then a
    // trusted click in the activated page finalises LCP.
    await waitFor(async () => {
      const r = await cdpEval(cdp, session, 'window.__reports');
      return r.wv.some((m) => m.name === 'TTFB') && r.vs.some((m) => m.name === 'TTFB');
    }, { what: 'TTFB after activation' });
    await cdpSettle(cdp, session);
    await cdpClick(cdp, session, 20, 20);
    await waitFor(async () => {
      const r = await cdpEval(cdp, session, 'window.__reports');
      return lcps(r.wv).length && lcps(r.vs).length;
    }, { what: 'LCP from both libraries' });
    await cdpSettle(cdp, session, 300);
    const { vs } = assertParity(assert, await cdpEval(cdp, session, 'window.__reports'), 'LCP');
    assert.equal(vs.length, 1);
    assert.equal(vs[0].navigationType, 'prerender');
    const activationStart = await cdpEval(cdp, session, 'performance.getEntriesByType("navigation")[0].activationStart');
    assert.ok(activationStart > 0, 'the page was prerendered and then activated');
    assert.deepEqual(errors, []);
  } finally {
    await cdp.close();
  }
});

for (const [what, init] of [['no PerformanceObserver', noPerformanceObserver], ['no supported entry types', noSupportedEntryTypes]]) {
  test(`LCP: ${what} -> neither library reports, nothing thrown`, async () => {
    const { page, errors } = await open('parity.html?metrics=LCP,TTFB', init);
    await waitForPaint(page);
    await waitForCandidates(page, 1);
    await waitForBoth(page, 'TTFB');
    await page.click('#button');
    await page.keyboard.press('a');
    await settle(page, 300);
    let r = await reports(page);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'LCP');
    assert.equal(lcps(r.wv).length, 0, 'web-vitals reports no LCP');
    // Nor after a bfcache restore (TTFB, which needs no observer, is the sentinel).
    await stubBfcacheRestore(page);
    await waitForBoth(page, 'TTFB', 2);
    await settle(page);
    r = await reports(page);
    assertParity(assert, r, 'TTFB');
    assertParity(assert, r, 'LCP');
    assert.equal(lcps(r.wv).length, 0, 'web-vitals reports no LCP after a restore');
    assert.deepEqual(errors, []);
  });
}

test('LCP: no WebAssembly -> our agent reports nothing and throws nothing', async () => {
  const { page, errors } = await open('parity.html?metrics=LCP', noWebAssembly);
  assert.equal(await page.evaluate(() => import('/agent/index.js').then((m) => m.loaded())), false, 'loaded() resolves to false');
  await waitForCandidates(page, 1);
  await page.click('#button');
  await waitForReference(page, 'LCP');
  await settle(page);
  const r = await reports(page);
  assert.equal(r.wv.length, 1, 'web-vitals still reports LCP');
  assert.deepEqual(r.vs, []);
  assert.deepEqual(errors, []);
});
