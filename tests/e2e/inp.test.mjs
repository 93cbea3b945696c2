// INP parity: our agent and web-vitals 6.2.3 on the same page load must
// report the same INP (count of reports, value, delta, rating,
// navigationType, number of entries), with ids grouping reports the same.
// Interactions are driven by the test; handlers busy-wait known durations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  hiddenAtLoad, discarded, stubBfcacheRestore, parityReady, waitFor, withoutIds, useBrowserAndSite,
} from './harness.mjs';
import {
  queueLikeReadme, queued, open, openSlowAgent, show, frames, pause, hide, metricReports, waitForReports, assertParity, assertSilent,
  interact, settle, latencies, interactionCount,
} from './support-input.mjs';

let browser, site;
useBrowserAndSite((env) => ({ browser, site } = env));

const page0 = '/pages/inp-page.html?metrics=INP';

/** Many fast key presses with the given slow clicks placed among them (the last interaction is slow). */
function manyInteractions(total, slow) {
  const plan = Array.from({ length: total - slow.length }, () => ['key', 0]);
  slow.forEach((ms, i) => {
    const at = i === slow.length - 1 ? plan.length : Math.floor(((i + 1) * plan.length) / slow.length);
    plan.splice(at, 0, ['click', ms]);
  });
  return plan;
}

/** The rating web-vitals' thresholds give (200, 500). */
const ratingOf = (v) => (v <= 200 ? 'good' : v <= 500 ? 'needs-improvement' : 'poor');

// Busy times chosen to land in each rating band with a wide margin (a
// loaded machine only stretches latencies).
for (const [busy, rating] of [[60, 'good'], [300, 'needs-improvement'], [600, 'poor']]) {
  test(`one interaction busy for ${busy} ms is reported on hide (${rating})`, async () => {
    const { page, context, errors } = await open(browser, site, page0);
    await interact(page, [['click', busy]]);
    await settle(page);
    await assertSilent(page, assert, 'INP'); // nothing before the page is hidden
    await hide(page);
    await waitForReports(page, 'INP', 1);
    const r = await assertParity(page, assert, 'INP', 1);
    const [longest] = await latencies(page);
    assert.equal(r.wv[0].value, longest, 'INP is the interaction latency');
    assert.ok(r.wv[0].value >= busy);
    assert.equal(r.wv[0].rating, ratingOf(r.wv[0].value));
    assert.equal(r.wv[0].navigationType, 'navigate');
    assert.ok(r.wv[0].entries >= 1);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('not reported without interactions', async () => {
  const { page, context, errors } = await open(browser, site, `${page0}&reportAllChanges=1`);
  await frames(page);
  await hide(page);
  await pause(page, 200);
  await assertSilent(page, assert, 'INP');
  assert.equal(await interactionCount(page), 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test('reportAllChanges: each new worst interaction is reported, nothing new on hide', async () => {
  const { page, context, errors } = await open(browser, site, `${page0}&reportAllChanges=1`);
  await interact(page, [['key', 120]]);
  await settle(page);
  await waitForReports(page, 'INP', 1);
  await interact(page, [['click', 350]]);
  await settle(page);
  await interact(page, [['click', 50]]); // shorter: INP unchanged
  await settle(page);
  const before = (await metricReports(page, 'INP')).wv.length;
  await hide(page);
  await frames(page);
  // The count depends on the latencies the browser measured (a loaded
  // machine may stretch the short ones): parity covers it.
  const r = await assertParity(page, assert, 'INP', null);
  assert.equal(r.wv.length, before, 'nothing new on hide');
  assert.ok(r.wv.length >= 2);
  const seen = await latencies(page);
  assert.equal(r.wv.at(-1).value, seen[0], 'the last report is the worst interaction');
  for (let i = 1; i < r.wv.length; i++) {
    assert.ok(r.wv[i].value > r.wv[i - 1].value);
    assert.equal(r.wv[i].delta, r.wv[i].value - r.wv[i - 1].value);
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('several interactions: the worst one', async () => {
  const { page, context, errors } = await open(browser, site, page0);
  await interact(page, [['click', 80], ['click', 260], ['key', 60], ['click', 130]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const r = await assertParity(page, assert, 'INP', 1);
  assert.equal(r.wv[0].value, (await latencies(page))[0]);
  assert.ok(r.wv[0].value >= 260);
  assert.deepEqual(errors, []);
  await context.close();
});

for (const [total, slow, skipped] of [
  [55, [400, 250, 120], 1],
  [105, [400, 300, 200, 150, 130, 110, 100, 90, 80, 70, 60, 50], 2],
]) {
  test(`p98 approximation: ${total} interactions, the worst ${skipped} skipped`, async () => {
    const { page, context, errors } = await open(browser, site, page0);
    await interact(page, manyInteractions(total, slow));
    await settle(page);
    await hide(page);
    await waitForReports(page, 'INP', 1);
    const count = await interactionCount(page);
    assert.equal(count, total);
    const r = await assertParity(page, assert, 'INP', 1);
    const seen = await latencies(page);
    // (An interaction queued behind a slow one may share its latency, so
    // the skipped ones can equal the reported one.)
    assert.equal(r.wv[0].value, seen[skipped], `web-vitals skipped the ${skipped} worst of ${JSON.stringify(seen)}`);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('keyboard interactions (key presses in an input)', async () => {
  const { page, context, errors } = await open(browser, site, page0);
  await page.focus('#input');
  await interact(page, [['key', 90], ['key', 0], ['key', 220], ['key', 70]]);
  await settle(page);
  assert.equal(await page.inputValue('#input'), 'aaaa');
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const r = await assertParity(page, assert, 'INP', 1);
  assert.equal(r.wv[0].value, (await latencies(page))[0]);
  assert.ok(r.wv[0].value >= 220);
  assert.deepEqual(errors, []);
  await context.close();
});

test('pointer interactions: pointer down / 50 ms / pointer up, and page.click', async () => {
  const { page, context, errors } = await open(browser, site, `${page0}&reportAllChanges=1`);
  await interact(page, [['down', 110]]); // the pointerdown handler is slow
  await settle(page);
  await page.evaluate(() => window.__busy.click.push(220));
  await page.click('#button');
  await settle(page);
  await interact(page, [['tap', 400]]); // the pointerup handler is slow
  await settle(page);
  await hide(page);
  await frames(page);
  const r = await assertParity(page, assert, 'INP', null);
  const seen = await latencies(page);
  assert.equal(r.wv.at(-1).value, seen[0]);
  assert.ok(r.wv.at(-1).value >= 400);
  assert.deepEqual(errors, []);
  await context.close();
});

for (const threshold of [16, undefined]) {
  test(`durationThreshold ${threshold ?? 'default (40)'} with interactions of about 20-30 ms`, async () => {
    const { page, context, errors } = await open(browser, site, `${page0}${threshold ? `&durationThreshold=${threshold}` : ''}`);
    await interact(page, [['key', 20], ['click', 10], ['click', 28], ['key', 0], ['click', 18]]);
    await settle(page);
    await hide(page);
    await waitForReports(page, 'INP', 1);
    const r = await assertParity(page, assert, 'INP', 1);
    const seen = await latencies(page);
    if (threshold) assert.equal(r.wv[0].value, seen[0], 'with threshold 16: the worst interaction');
    else if (seen[0] < 40) assert.ok(r.wv[0].value < 40, 'with the default threshold, only first-input is seen');
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('loaded late (after the interactions): buffered entries (>= 104 ms) and first-input', async () => {
  // parity.js imports both libraries 3 s after it runs; interact before.
  const { page, context, errors } = await open(browser, site, `${page0}&lazy=3000`, { ready: false });
  await interact(page, [['click', 150], ['click', 60], ['key', 0], ['click', 130]]);
  await settle(page);
  assert.equal(await page.evaluate(() => window.__loaded), undefined, 'the interactions happened before the libraries loaded');
  await parityReady(page);
  await pause(page, 1100); // buffered entries are processed in an idle callback (<= 1 s)
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const r = await assertParity(page, assert, 'INP', 1);
  assert.ok(r.wv[0].value >= 150);
  assert.deepEqual(errors, []);
  await context.close();
});

test('hidden at load: INP still measured (it does not depend on visibility)', async () => {
  const { page, context, errors } = await open(browser, site, page0, { initScript: hiddenAtLoad });
  await interact(page, [['click', 150], ['click', 80]]);
  await settle(page);
  await hide(page);
  await pause(page, 200);
  const n = (await metricReports(page, 'INP')).wv.length;
  await assertParity(page, assert, 'INP', n);
  assert.deepEqual(errors, []);
  await context.close();
});

test('bfcache restore: INP restarts (back-forward-cache, new id), interactions after the restore', async () => {
  const { page, context, errors } = await open(browser, site, page0);
  await interact(page, [['click', 300]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  await stubBfcacheRestore(page);
  await frames(page);
  await interact(page, [['click', 150]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 2);
  const r = await assertParity(page, assert, 'INP', 2);
  assert.deepEqual(r.wv.map((m) => m.navigationType), ['navigate', 'back-forward-cache']);
  const last = await page.evaluate(() => [...window.__interactions.values()].at(-1));
  assert.equal(r.wv[1].value, last, 'only the interaction after the restore');
  assert.notEqual(r.vs[0].id, r.vs[1].id);
  assert.deepEqual(errors, []);
  await context.close();
});

test('bfcache restore then only a fast interaction: the 8 ms floor', async () => {
  const { page, context, errors } = await open(browser, site, page0);
  await interact(page, [['click', 200]]);
  await settle(page);
  await stubBfcacheRestore(page);
  await frames(page);
  await interact(page, [['key', 0]]);
  await frames(page);
  await hide(page);
  await waitForReports(page, 'INP', 2);
  const r = await assertParity(page, assert, 'INP', 2);
  assert.deepEqual(r.wv.map((m) => m.navigationType), ['navigate', 'back-forward-cache']);
  const fast = (await latencies(page)).filter((d) => d < 200);
  if (fast.every((d) => d < 40)) assert.deepEqual([r.wv[1].value, r.wv[1].entries], [8, 0], 'the floor');
  assert.deepEqual(errors, []);
  await context.close();
});

test('wasDiscarded: navigationType restore', async () => {
  const { page, context, errors } = await open(browser, site, page0, { initScript: discarded });
  await interact(page, [['click', 150]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const r = await assertParity(page, assert, 'INP', 1);
  assert.equal(r.wv[0].navigationType, 'restore');
  assert.deepEqual(errors, []);
  await context.close();
});

test('onINP twice with different options (reportAllChanges off, then on)', async () => {
  const { page, context, errors } = await open(browser, site, `${page0}&twice=1`);
  await interact(page, [['key', 120]]);
  await settle(page);
  await waitForReports(page, 'INP', 1, { set: 2 });
  await interact(page, [['click', 350]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const one = await assertParity(page, assert, 'INP', 1);
  const two = await assertParity(page, assert, 'INP', null, { set: 2 });
  assert.ok(two.wv.length >= 2, 'reportAllChanges: one report per change');
  assert.equal(one.wv[0].value, two.wv.at(-1).value);
  assert.notEqual(one.vs[0].id, two.vs[0].id, 'each call is its own instance');
  assert.deepEqual(errors, []);
  await context.close();
});

test('no PerformanceEventTiming: INP silent in both, CLS still works', async () => {
  const noEventTiming = () => {
    delete window.PerformanceEventTiming;
  };
  const { page, context, errors } = await open(browser, site, '/pages/inp-page.html?metrics=INP,CLS', { initScript: noEventTiming });
  assert.equal(await page.evaluate(() => typeof PerformanceEventTiming), 'undefined');
  await frames(page);
  await interact(page, [['click', 150]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'CLS', 1);
  await assertSilent(page, assert, 'INP');
  await assertParity(page, assert, 'CLS', 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('no performance.interactionCount: both estimate it from interaction ids (55 interactions)', async () => {
  const noInteractionCount = () => {
    delete Performance.prototype.interactionCount;
  };
  const { page, context, errors } = await open(browser, site, page0, { initScript: noInteractionCount });
  assert.equal(await page.evaluate(() => 'interactionCount' in performance), false);
  const slow = [300, 210, 120];
  await interact(page, manyInteractions(55, slow));
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  await assertParity(page, assert, 'INP', 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('WebAssembly undefined: our agent is silent without exception, web-vitals still works', async () => {
  const noWasm = () => {
    delete globalThis.WebAssembly;
  };
  const { page, context, errors } = await open(browser, site, page0, { initScript: noWasm });
  await interact(page, [['click', 150]]);
  await settle(page);
  await hide(page);
  const { wv } = await waitFor(async () => {
    const r = await metricReports(page, 'INP');
    return r.wv.length && r;
  }, { what: 'INP from web-vitals' });
  assert.equal(wv.length, 1);
  assert.ok(wv[0].value >= 150);
  await pause(page, 200);
  assert.deepEqual((await metricReports(page, 'INP')).vs, [], 'vitalsign reports nothing');
  assert.deepEqual(errors, []);
  await context.close();
});

test('our agent starting 2.5 s after web-vitals (wasm slow to arrive): an interaction before it ran counts as in web-vitals', async () => {
  // Web-vitals runs from the start and sees the ~50-70 ms interaction live
  // (durationThreshold 40); the browser buffers only event entries of
  // >= 104 ms for observers registered later (plus first-input).
  const { page, context, errors } = await openSlowAgent(browser, site, page0, 2500);
  await interact(page, [['key', 0], ['click', 45]]);
  await settle(page);
  assert.notEqual(await page.evaluate(() => window.__isReady), true, 'our agent was not running yet');
  await parityReady(page);
  await pause(page, 1100); // buffered entries are processed in an idle callback (<= 1 s)
  await hide(page);
  await waitForReports(page, 'INP', 1);
  const { wv } = await metricReports(page, 'INP');
  assert.equal(wv[0].value, (await latencies(page))[0], 'web-vitals: the slow click');
  await assertParity(page, assert, 'INP', 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('onINP twice with the same options object: each call counts every entry once', async () => {
  // A deliberate difference: web-vitals keys its InteractionManager on the
  // options object (initUnique), so two calls sharing one add each entry
  // twice (same latency, doubled entries). Ours report what a single
  // registration reports (web-vitals with its own options object, set 3).
  const { page, context, errors } = await open(browser, site, '/pages/inp-same-opts.html');
  await interact(page, [['click', 150]]);
  await settle(page);
  await hide(page);
  await waitForReports(page, 'INP', 1);
  await waitForReports(page, 'INP', 1, { set: 2 });
  const single = (await metricReports(page, 'INP', { set: 3 })).wv;
  assert.equal(single.length, 1);
  for (const set of [1, 2]) {
    const { vs } = await metricReports(page, 'INP', { set });
    assert.deepEqual(withoutIds(vs), withoutIds(single), `set ${set}`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('metric objects: one object per instance, updated in place (a Set queue as in the web-vitals README)', async () => {
  // web-vitals passes the same metric object to every report of one
  // instance; the README batches reports in a Set and reads it on hide.
  const { page, context, errors } = await open(browser, site, '/pages/inp-page.html?metrics=FCP');
  await queueLikeReadme(page, 'INP');
  await interact(page, [['click', 100]]);
  await settle(page);
  await hide(page);
  await show(page);
  await interact(page, [['click', 250]]);
  await settle(page);
  await hide(page);
  const q = await queued(page);
  assert.deepEqual(q.vs, q.wv, `web-vitals: ${JSON.stringify(q.wv)}\nvitalsign: ${JSON.stringify(q.vs)}`);
  assert.equal(q.wv.length, 1);
  assert.deepEqual(errors, []);
  await context.close();
});
