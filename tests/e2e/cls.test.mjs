// CLS parity: our agent and web-vitals 6.2.3 on the same page load must
// report the same CLS (count of reports, value, delta, rating,
// navigationType, number of entries), with ids grouping reports the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  hiddenAtLoad, discarded, stubBfcacheRestore, parityReady, waitFor, withoutIds, useBrowserAndSite,
} from './harness.mjs';
import { queueLikeReadme, queued, open, openSlowAgent, frames, pause, hide, show, metricReports, waitForReports, assertParity, assertSilent, expectedCls } from './support-input.mjs';

let browser, site;
useBrowserAndSite((env) => ({ browser, site } = env));

const shift = (page, dy) => page.evaluate((dy) => window.shift(dy), dy);
const shiftAt = (page, plan) => page.evaluate((plan) => window.shiftAt(plan), plan);
const shifts = (page) => page.evaluate(() => window.__shifts);
/** Both libraries start CLS after FCP: let FCP be observed first. */
const started = (page) => frames(page);

test('layout shifts (a moved element, content inserted above) are reported on hide (once, reportAllChanges off)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  await shift(page, 300);
  await shift(page, -300);
  await page.evaluate(() => window.insertAbove());
  await frames(page);
  await assertSilent(page, assert, 'CLS'); // nothing before the page is hidden
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  const all = await shifts(page);
  assert.equal(all.length, 3);
  assert.equal(r.wv[0].value, expectedCls(all).value, 'the scenario shifted as planned');
  assert.equal(r.wv[0].entries, 3);
  assert.equal(r.wv[0].rating, 'poor');
  assert.equal(r.wv[0].navigationType, 'navigate');
  assert.deepEqual(errors, []);
  await context.close();
});

test('CLS 0 is reported on hide when nothing shifted', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.deepEqual([r.wv[0].value, r.wv[0].delta, r.wv[0].entries, r.wv[0].rating], [0, 0, 0, 'good']);
  assert.deepEqual(await shifts(page), [], 'the page itself did not shift');
  assert.deepEqual(errors, []);
  await context.close();
});

test('reportAllChanges: 0 right after FCP, then every change; nothing new on hide', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS&reportAllChanges=1');
  await waitForReports(page, 'CLS', 1);
  await assertParity(page, assert, 'CLS', 1);
  const amounts = [40, 200, -300];
  for (let i = 0; i < amounts.length; i++) {
    await shift(page, amounts[i]);
    await waitForReports(page, 'CLS', i + 2);
  }
  await hide(page);
  await frames(page);
  const r = await assertParity(page, assert, 'CLS', 4);
  assert.deepEqual(r.wv.map((m) => m.entries), [0, 1, 2, 3]);
  assert.deepEqual(r.wv[0].value, 0);
  assert.deepEqual(r.wv.map((m) => m.rating), ['good', 'good', 'needs-improvement', 'poor']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('shifts within 500 ms of input (hadRecentInput) are excluded', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  await page.click('#shift-button'); // the click handler moves #block by 120 px
  await shiftAt(page, [[700, 60]]); // well after the input: counts
  const all = await shifts(page);
  assert.equal(all.length, 2);
  assert.equal(all[0].hadRecentInput, true, 'the shift after the click had recent input');
  assert.equal(all[1].hadRecentInput, false);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.equal(r.wv[0].value, all[1].value, 'only the shift without recent input counts');
  assert.equal(r.wv[0].entries, 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('session windows: a gap of more than 1 s splits them, the largest window wins (not the total)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS&reportAllChanges=1');
  await waitForReports(page, 'CLS', 1);
  // Window 1: two small shifts; window 2: one big shift; window 3: small again.
  await shiftAt(page, [[0, 60], [200, -60], [1500, 300], [2900, -40], [3100, 40]]);
  await frames(page);
  await hide(page);
  await frames(page);
  const all = await shifts(page);
  assert.equal(all.length, 5);
  const expected = expectedCls(all);
  const total = all.reduce((a, s) => a + s.value, 0);
  const { wv } = await metricReports(page, 'CLS');
  const last = wv[wv.length - 1];
  assert.equal(last.value, expected.value, 'web-vitals gives the largest window');
  assert.equal(last.entries, 1, 'the big shift alone is the largest window');
  assert.ok(last.value < total, 'CLS is not the total of all shifts');
  // 0, window 1 (once per observer batch), then window 2; window 3 never
  // beats it. How the browser batches the entries decides the count.
  const r = await assertParity(page, assert, 'CLS', null);
  assert.ok(r.wv.length >= 3);
  assert.deepEqual(errors, []);
  await context.close();
});

test('session windows: a window is capped at 5 s (shifts every 800 ms for 7 s)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  const plan = Array.from({ length: 10 }, (_, i) => [i * 800, i % 2 ? -100 : 100]);
  await shiftAt(page, plan);
  await frames(page);
  const all = await shifts(page);
  assert.equal(all.length, 10);
  for (let i = 1; i < all.length; i++) assert.ok(all[i].startTime - all[i - 1].startTime < 1000, 'no gap of 1 s');
  const expected = expectedCls(all);
  assert.ok(expected.entries < all.length, 'the 5 s cap split the shifts into windows');
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.equal(r.wv[0].value, expected.value);
  assert.equal(r.wv[0].entries, expected.entries);
  assert.deepEqual(errors, []);
  await context.close();
});

test('reported on every hide: a second report carries the delta', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  await shift(page, 100);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  await show(page);
  await shift(page, 200);
  await hide(page);
  await waitForReports(page, 'CLS', 2);
  await hide(page); // hidden again without a change: nothing new
  await frames(page);
  const r = await assertParity(page, assert, 'CLS', 2);
  assert.ok(r.wv[1].value > r.wv[0].value);
  assert.equal(r.wv[1].delta, r.wv[1].value - r.wv[0].value);
  assert.equal(r.wv[0].id, r.wv[1].id);
  assert.deepEqual(errors, []);
  await context.close();
});

test('loaded late (after the load event, after the shifts): buffered entries count', async () => {
  // cls-late.html holds back the load event for 2 s; #block moves at
  // 500/700/900 ms; parity.js imports both libraries after load.
  const { page, context, errors } = await open(browser, site, '/pages/cls-late.html?metrics=CLS&lazy=load&early=500,700,900');
  await started(page);
  const all = await shifts(page);
  assert.equal(all.length, 3, 'three shifts before the libraries loaded');
  const loadEnd = await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
  assert.ok(all.every((s) => s.startTime < loadEnd), 'the shifts happened before the load event');
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.equal(r.wv[0].entries, 3);
  assert.equal(r.wv[0].value, expectedCls(all).value);
  assert.deepEqual(errors, []);
  await context.close();
});

test('hidden at load: nothing (CLS waits for FCP, which never comes)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS,FCP&reportAllChanges=1', { initScript: hiddenAtLoad });
  await started(page);
  await shift(page, 200);
  assert.equal((await shifts(page)).length, 1, 'the page did shift');
  await hide(page);
  await pause(page, 200);
  await assertSilent(page, assert, 'FCP');
  await assertSilent(page, assert, 'CLS');
  assert.deepEqual(errors, []);
  await context.close();
});

test('hidden before the first contentful paint: nothing (FCP after a hide is ignored)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-blank.html?metrics=CLS,FCP&reportAllChanges=1');
  await frames(page);
  const fcpEntries = () => page.evaluate(() => performance.getEntriesByName('first-contentful-paint').length);
  assert.equal(await fcpEntries(), 0, 'no contentful paint yet');
  await hide(page);
  await show(page);
  await page.evaluate(() => window.addContent());
  await waitFor(fcpEntries, { what: 'the first contentful paint' });
  await shift(page, 200);
  await hide(page);
  await pause(page, 200);
  assert.ok((await shifts(page)).length >= 1, 'the page did shift');
  await assertSilent(page, assert, 'FCP');
  await assertSilent(page, assert, 'CLS');
  assert.deepEqual(errors, []);
  await context.close();
});

test('hidden at load, then a bfcache restore: CLS starts with the restored page\'s FCP', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS,FCP', { initScript: hiddenAtLoad });
  await started(page);
  await shift(page, 100);
  await hide(page);
  await stubBfcacheRestore(page);
  await waitForReports(page, 'FCP', 1);
  await frames(page);
  await shift(page, 200);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  // FCP after a restore is a time each library takes in its own double
  // rAF: not bit-equal by nature (the FCP tests' business), only present.
  const fcp = await metricReports(page, 'FCP');
  assert.deepEqual([fcp.wv.length, fcp.vs.length], [1, 1]);
  assert.deepEqual([fcp.wv[0].navigationType, fcp.vs[0].navigationType], ['back-forward-cache', 'back-forward-cache']);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.equal(r.wv[0].navigationType, 'back-forward-cache');
  assert.deepEqual(errors, []);
  await context.close();
});

test('bfcache restore: CLS restarts (back-forward-cache, new id), shifts after the restore count', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS');
  await started(page);
  await shift(page, 100);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  await stubBfcacheRestore(page);
  await frames(page);
  await hide(page); // nothing shifted since the restore: CLS 0
  await waitForReports(page, 'CLS', 2);
  await show(page);
  await shift(page, 200);
  await hide(page);
  await waitForReports(page, 'CLS', 3);
  const r = await assertParity(page, assert, 'CLS', 3);
  assert.deepEqual(r.wv.map((m) => m.navigationType), ['navigate', 'back-forward-cache', 'back-forward-cache']);
  assert.deepEqual(r.wv.map((m) => m.value > 0), [true, false, true]);
  assert.deepEqual([r.wv[1].value, r.wv[1].delta, r.wv[1].entries], [0, 0, 0]);
  const all = await shifts(page);
  assert.equal(r.wv[2].value, all[1].value, 'only the shift after the restore');
  assert.notEqual(r.vs[0].id, r.vs[1].id, 'a new id after the restore');
  assert.deepEqual(errors, []);
  await context.close();
});

test('bfcache restore with reportAllChanges: 0 after the restore, then the new shift', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS&reportAllChanges=1');
  await waitForReports(page, 'CLS', 1);
  await shift(page, 100);
  await waitForReports(page, 'CLS', 2);
  await stubBfcacheRestore(page);
  await waitForReports(page, 'CLS', 3);
  await frames(page);
  await shift(page, 200);
  await waitForReports(page, 'CLS', 4);
  await hide(page);
  await frames(page);
  const r = await assertParity(page, assert, 'CLS', 4);
  assert.deepEqual(r.wv.map((m) => m.navigationType), ['navigate', 'navigate', 'back-forward-cache', 'back-forward-cache']);
  assert.deepEqual([r.wv[2].value, r.wv[2].delta], [0, 0]);
  assert.deepEqual(errors, []);
  await context.close();
});

test('wasDiscarded: navigationType restore', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS', { initScript: discarded });
  await started(page);
  await shift(page, 100);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const r = await assertParity(page, assert, 'CLS', 1);
  assert.equal(r.wv[0].navigationType, 'restore');
  assert.deepEqual(errors, []);
  await context.close();
});

test('onCLS twice with different options (reportAllChanges off, then on)', async () => {
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS&twice=1');
  await waitForReports(page, 'CLS', 1, { set: 2 });
  await shift(page, 100);
  await waitForReports(page, 'CLS', 2, { set: 2 });
  await shift(page, -100);
  await waitForReports(page, 'CLS', 3, { set: 2 });
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const one = await assertParity(page, assert, 'CLS', 1);
  const two = await assertParity(page, assert, 'CLS', 3, { set: 2 });
  assert.equal(one.wv[0].value, two.wv[2].value);
  assert.notEqual(one.vs[0].id, two.vs[0].id, 'each call is its own instance');
  assert.notEqual(one.wv[0].id, two.wv[0].id);
  assert.deepEqual(errors, []);
  await context.close();
});

test('no layout-shift in supportedEntryTypes: CLS silent in both, FCP still works', async () => {
  const noLayoutShift = () => {
    const get = Object.getOwnPropertyDescriptor(PerformanceObserver, 'supportedEntryTypes').get;
    Object.defineProperty(PerformanceObserver, 'supportedEntryTypes', {
      configurable: true,
      get() {
        return Object.freeze(get.call(this).filter((t) => t !== 'layout-shift'));
      },
    });
  };
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS,FCP', { initScript: noLayoutShift });
  await waitForReports(page, 'FCP', 1);
  await shift(page, 200); // the page's own observer does not check supportedEntryTypes
  await hide(page);
  await pause(page, 200);
  await assertSilent(page, assert, 'CLS');
  await assertParity(page, assert, 'FCP', 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('WebAssembly undefined: our agent is silent without exception, web-vitals still works', async () => {
  const noWasm = () => {
    delete globalThis.WebAssembly;
  };
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=CLS', { initScript: noWasm });
  assert.equal(await page.evaluate(() => typeof WebAssembly), 'undefined');
  await started(page);
  await shift(page, 100);
  await hide(page);
  const { wv } = await waitFor(async () => {
    const r = await metricReports(page, 'CLS');
    return r.wv.length && r;
  }, { what: 'CLS from web-vitals' });
  assert.equal(wv.length, 1);
  assert.ok(wv[0].value > 0);
  await pause(page, 200);
  assert.deepEqual((await metricReports(page, 'CLS')).vs, [], 'vitalsign reports nothing');
  assert.deepEqual(errors, []);
  await context.close();
});


test('our agent starting 2.5 s after web-vitals (wasm slow to arrive): shifts before it ran count as in web-vitals', async () => {
  // Web-vitals runs from the start and sees the shifts live, one observer
  // batch per frame: window A (shifts at 500 and 600 ms), then after a gap
  // window B (1800 ms). Our agent starts 2.5 s later, from buffered entries.
  const { page, context, errors } = await openSlowAgent(browser, site, '/pages/cls-page.html?metrics=CLS&early=500,600,1800', 2500);
  await parityReady(page);
  await frames(page);
  const all = await shifts(page);
  assert.equal(all.length, 3);
  const loadedAt = await page.evaluate(() => performance.now());
  assert.ok(all.every((s) => s.startTime < loadedAt));
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  const { wv } = await metricReports(page, 'CLS');
  assert.equal(wv[0].value, expectedCls(all).value, 'web-vitals: the largest window');
  await assertParity(page, assert, 'CLS', 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('onCLS twice with the same options object: each call counts every shift once', async () => {
  // A deliberate difference: web-vitals keys its LayoutShiftManager on the
  // options object (initUnique), so two calls sharing one count each shift
  // twice. Ours report what a single registration reports (web-vitals with
  // its own options object, set 3).
  const { page, context, errors } = await open(browser, site, '/pages/cls-same-opts.html');
  await started(page);
  await shift(page, 100);
  await frames(page);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  await waitForReports(page, 'CLS', 1, { set: 2 });
  const single = (await metricReports(page, 'CLS', { set: 3 })).wv;
  assert.equal(single.length, 1);
  for (const set of [1, 2]) {
    const { vs } = await metricReports(page, 'CLS', { set });
    assert.deepEqual(withoutIds(vs), withoutIds(single), `set ${set}`);
  }
  const shared = (await metricReports(page, 'CLS')).wv[0];
  assert.ok(shared.value > single[0].value, 'web-vitals double counts with a shared options object');
  assert.deepEqual(errors, []);
  await context.close();
});

test('metric objects: one object per instance, updated in place (a Set queue as in the web-vitals README)', async () => {
  // web-vitals passes the same metric object to every report of one
  // instance; the README batches reports in a Set and reads it on hide.
  const { page, context, errors } = await open(browser, site, '/pages/cls-page.html?metrics=FCP');
  await queueLikeReadme(page, 'CLS');
  await started(page);
  await shift(page, 100);
  await hide(page);
  await show(page);
  await shift(page, -100);
  await hide(page);
  const q = await queued(page);
  assert.deepEqual(q.vs, q.wv, `web-vitals: ${JSON.stringify(q.wv)}\nvitalsign: ${JSON.stringify(q.vs)}`);
  assert.equal(q.wv.length, 1);
  assert.deepEqual(errors, []);
  await context.close();
});
