// Attribution parity: vitalsign/attribution next to web-vitals/attribution
// 6.2.3 on the same page load (tests/pages/attribution.js) must give every
// report the same attribution: numbers exactly, selectors as equal
// strings, and the very same entry objects (navigation, LCP, resource,
// layout shift and its source, event, long animation frame, script).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { FRAME } from './support-paint.mjs';
import { openPage, parityReady, stubVisibility, stubBfcacheRestore, waitFor, useBrowserAndSite, schema } from './harness.mjs';

let browser, site, collector;
const contexts = useBrowserAndSite((env) => ({ browser, site, collector } = env), { collector: true });
const validate = new Ajv2020({ allErrors: true }).compile(schema);

/** Opens a page (path and query) once both libraries registered. */
async function open2(path) {
  const o = await openPage(browser, `${site.url}${path}`);
  contexts.push(o.context);
  await parityReady(o.page);
  return o;
}

async function open(query = '') {
  const o = await openPage(browser, `${site.url}/pages/attribution.html${query}`);
  contexts.push(o.context);
  await parityReady(o.page);
  return o;
}

const of = (list, name) => list.filter((m) => m.name === name);

/** Waits until both libraries made `count` reports of `name`, then a little more. */
async function both(page, name, count = 1) {
  let r;
  await waitFor(async () => {
    r = await page.evaluate(() => window.__reports);
    return of(r.wv, name).length >= count && of(r.vs, name).length >= count;
  }, { what: `${count} ${name} report(s) from both libraries` }).catch((e) => {
    throw new Error(`${e.message}: web-vitals ${JSON.stringify(of(r.wv, name))}, vitalsign ${JSON.stringify(of(r.vs, name))}`);
  });
  await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
  return page.evaluate(() => window.__reports);
}

/** Every report of `name` equal, attribution included; returns ours. */
function same(r, name) {
  const wv = of(r.wv, name);
  const vs = of(r.vs, name);
  assert.deepEqual(vs, wv, `${name}: our reports and attribution differ from web-vitals/attribution's\nweb-vitals: ${JSON.stringify(wv, null, 1)}\nvitalsign: ${JSON.stringify(vs, null, 1)}`);
  assert.ok(vs.length > 0);
  return vs;
}

const hide = (page) => stubVisibility(page, 'hidden');

/**
 * Waits until the page's own observer saw the slow click's entry and the
 * libraries' idle-time processing of it ran (a hide before the browser
 * delivers the entry would report no interaction at all).
 */
async function settleClick(page) {
  await page.evaluate(async () => {
    await new Promise((resolve) => {
      new PerformanceObserver((list) => list.getEntries().some((e) => e.name === 'click' && e.duration >= 100) && resolve())
        .observe({ type: 'event', buffered: true, durationThreshold: 16 });
    });
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => requestIdleCallback(r, { timeout: 1000 }));
    await new Promise((r) => setTimeout(r, 100));
  });
}

test('LCP with an image: target, url, resource entry and the four subparts', async () => {
  const { page, errors } = await open('?metrics=LCP&image=1');
  await page.evaluate(() => new Promise((resolve) => {
    new PerformanceObserver((list) => list.getEntries().some((e) => e.url.includes('img=attr')) && resolve())
      .observe({ type: 'largest-contentful-paint', buffered: true });
  }));
  await page.click('#out');
  const [lcp] = same(await both(page, 'LCP'), 'LCP');
  const a = lcp.attribution;
  assert.equal(a.target, 'html>body>div.a.hero.z>img', 'the selector walks up to the document, classes sorted');
  assert.match(a.url, /\/pages\/img\/lcp-blocks\.png\?delay=300&img=attr$/);
  assert.equal(a.lcpResourceEntry.type, 'PerformanceResourceTiming');
  assert.equal(a.navigationEntry.type, 'PerformanceNavigationTiming');
  assert.ok(a.resourceLoadDuration >= 250, `the image took its delay to load (${a.resourceLoadDuration})`);
  assert.equal(a.timeToFirstByte + a.resourceLoadDelay + a.resourceLoadDuration + a.elementRenderDelay, lcp.value);
  assert.deepEqual(errors, []);
});

test('LCP with text, reporting all changes: no resource, the text\'s selector', async () => {
  const { page, errors } = await open('?metrics=LCP&reportAllChanges=1');
  const r = await both(page, 'LCP');
  const [lcp] = same(r, 'LCP');
  assert.equal(lcp.attribution.target, '#content>p.intro.lead');
  assert.equal('url' in lcp.attribution, false);
  assert.equal('lcpResourceEntry' in lcp.attribution, false);
  assert.equal(lcp.attribution.resourceLoadDuration, 0);
  assert.deepEqual(errors, []);
});

test('LCP: generateTarget names the element; undefined from it falls back to the selector', async () => {
  const { page, errors } = await open('?metrics=LCP&reportAllChanges=1&image=1&generateTarget=1');
  await both(page, 'LCP', 2);
  await page.click('#out');
  const list = same(await both(page, 'LCP', 2), 'LCP');
  assert.equal(list[0].attribution.target, '#content>p.intro.lead');
  assert.equal(list.at(-1).attribution.target, 'custom:IMG');
  assert.deepEqual(errors, []);
});

test('CLS: the largest shift, its source, target, time, value and load state', async () => {
  const { page, errors } = await open('?metrics=CLS');
  for (const px of [40, 120, 130]) {
    await page.evaluate((px) => window.__shift(px), px);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  }
  await hide(page);
  const [cls] = same(await both(page, 'CLS'), 'CLS');
  const a = cls.attribution;
  assert.equal(a.largestShiftTarget, '#shifting');
  assert.equal(a.largestShiftSource.type, 'LayoutShiftAttribution');
  assert.equal(a.largestShiftEntry.type, 'LayoutShift');
  assert.equal(a.loadState, 'complete');
  assert.ok(a.largestShiftValue > 0 && a.largestShiftValue <= cls.value);
  assert.deepEqual(errors, []);
});

test('CLS without shifts: an empty attribution', async () => {
  const { page, errors } = await open('?metrics=CLS');
  await hide(page);
  const [cls] = same(await both(page, 'CLS'), 'CLS');
  assert.deepEqual(cls.attribution, {});
  assert.deepEqual(errors, []);
});

test('INP with a slow click: subparts, target, long animation frames and the longest script', async () => {
  const { page, errors } = await open('?metrics=INP&busy=180');
  await page.click('button.slow');
  await settleClick(page);
  await hide(page);
  const [inp] = same(await both(page, 'INP'), 'INP');
  const a = inp.attribution;
  assert.equal(a.interactionTarget, 'html>body>button.b.slow');
  assert.equal(a.interactionType, 'pointer');
  assert.deepEqual(a.processedEventEntries, [], 'not asked for');
  assert.ok(a.longAnimationFrameEntries.length >= 1);
  assert.equal(a.longestScript.subpart, 'processing-duration');
  assert.ok(a.longestScript.intersectingDuration >= 170, `the handler's time (${a.longestScript.intersectingDuration})`);
  assert.ok(a.processingDuration >= 170);
  assert.equal(a.inputDelay + a.processingDuration + a.presentationDelay, a.nextPaintTime - a.interactionTime);
  assert.equal(typeof a.totalUnattributedDuration, 'number');
  const script = await page.evaluate(() => {
    const s = window.__raw.vs.at(-1).longestScript.entry;
    return { fn: s.sourceFunctionName, url: s.sourceURL, same: s === window.__raw.wv.at(-1).longestScript.entry };
  });
  assert.deepEqual(script, { fn: 'slowClick', url: `${site.url}/pages/attribution-support.js?v=3`, same: true });
  assert.deepEqual(errors, []);
});

test('INP with includeProcessedEventEntries and a generateTarget naming the button \'\'', async () => {
  const { page, errors } = await open('?metrics=INP&includeProcessedEventEntries=1&generateTarget=1');
  await page.click('button.slow');
  await settleClick(page);
  await hide(page);
  const [inp] = same(await both(page, 'INP'), 'INP');
  assert.ok(inp.attribution.processedEventEntries.length >= 2, 'pointerdown, pointerup, click ...');
  assert.equal(inp.attribution.interactionTarget, '', 'an empty name is a name');
  assert.deepEqual(errors, []);
});

test('FCP and TTFB: subparts, load state, entries', async () => {
  const { page, errors } = await open('?metrics=FCP,TTFB');
  const r = await both(page, 'TTFB');
  await both(page, 'FCP');
  const [fcp] = same(r, 'FCP');
  const [ttfb] = same(r, 'TTFB');
  assert.equal(fcp.attribution.timeToFirstByte + fcp.attribution.firstByteToFCP, fcp.value);
  assert.equal(fcp.attribution.fcpEntry.type, 'PerformancePaintTiming');
  const t = ttfb.attribution;
  assert.equal(t.navigationEntry.type, 'PerformanceNavigationTiming');
  assert.ok(Math.abs(t.waitingDuration + t.cacheDuration + t.dnsDuration + t.connectionDuration + t.requestDuration - ttfb.value) < 1e-9);
  assert.deepEqual(errors, []);
});

test('after a bfcache restore: the defaults the reference gives reports without entries', async () => {
  const { page, errors } = await open('?metrics=FCP,LCP,CLS,TTFB,INP&reportAllChanges=1');
  await both(page, 'TTFB');
  await page.click('button.slow');
  await settleClick(page);
  await stubBfcacheRestore(page);
  const r = await both(page, 'LCP', 2);
  await both(page, 'FCP', 2);
  await both(page, 'TTFB', 2);
  await page.click('button.slow');
  await settleClick(page);
  await hide(page);
  const after = await both(page, 'INP', 2);
  // After a restore FCP and LCP are the time to a double rAF, which each
  // library measures with its own rAF calls (the parity tests allow one
  // frame there): all of such a report's value is its render delay
  // (firstByteToFCP, elementRenderDelay), in each library.
  const rest = { FCP: 'firstByteToFCP', LCP: 'elementRenderDelay' };
  for (const [name, field] of Object.entries(rest)) {
    const wv = of(after.wv, name).filter((m) => m.navigationType === 'back-forward-cache');
    const vs = of(after.vs, name).filter((m) => m.navigationType === 'back-forward-cache');
    assert.equal(vs.length, wv.length);
    for (const [i, m] of vs.entries()) {
      const ref = wv[i];
      assert.equal(m.attribution[field], m.value);
      assert.equal(ref.attribution[field], ref.value);
      assert.ok(Math.abs(m.value - ref.value) <= FRAME, `${name} after a restore within a frame: ${m.value} vs ${ref.value}`);
      Object.assign(m, { value: ref.value, delta: ref.delta });
      m.attribution[field] = ref.value;
    }
  }
  for (const name of ['FCP', 'LCP', 'CLS', 'TTFB', 'INP']) same(after, name);
  const restored = (name) => of(after.vs, name).filter((m) => m.navigationType === 'back-forward-cache');
  assert.deepEqual(Object.keys(restored('LCP')[0].attribution), ['timeToFirstByte', 'resourceLoadDelay', 'resourceLoadDuration', 'elementRenderDelay']);
  assert.equal(restored('TTFB')[0].attribution.navigationEntry, '<undefined>');
  assert.deepEqual(Object.keys(restored('FCP')[0].attribution), ['timeToFirstByte', 'firstByteToFCP', 'loadState']);
  assert.equal(restored('INP').at(-1).attribution.interactionTarget, 'html>body>button.b.slow', 'a new interaction after the restore');
  assert.ok(r);
  assert.deepEqual(errors, []);
});

/**
 * An image, a shift and a slow click while the wasm is held back, then the
 * wasm released and the page hidden: once the agent is ready, or (`atStart`)
 * in the very task it starts in, before any idle callback of its own.
 */
async function heldBack(atStart) {
  const context = await browser.newContext();
  contexts.push(context);
  // The wasm is held back until the interaction is over.
  let release;
  const held = new Promise((r) => { release = r; });
  await context.route('**/agent/attribution/agent_bg.wasm', async (route) => {
    await held;
    await route.continue().catch(() => {});
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${site.url}/pages/attribution.html?metrics=INP,LCP,CLS&image=1`);
  await page.waitForFunction(() => window.__loaded === true);
  await page.evaluate(() => new Promise((resolve) => {
    new PerformanceObserver((list) => list.getEntries().some((e) => e.url.includes('img=attr')) && resolve())
      .observe({ type: 'largest-contentful-paint', buffered: true });
  }));
  await page.evaluate(() => window.__shift(60));
  await page.click('button.slow');
  await settleClick(page);
  assert.equal(await page.evaluate(() => window.__isReady === true), false, 'before our agent ran');
  if (atStart) {
    // A microtask of the agent's start: no task (idle callback) between.
    await page.evaluate(() => {
      import('/agent/attribution/index.js').then((vs) => vs.loaded()).then(() => {
        Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
        document.documentElement.hidden = true;
        document.dispatchEvent(new Event('visibilitychange'));
      });
    });
  }
  release();
  await parityReady(page);
  if (!atStart) await hide(page);
  const r = await both(page, 'INP');
  await both(page, 'CLS');
  for (const name of ['LCP', 'CLS', 'INP']) same(r, name);
  assert.equal(of(r.vs, 'INP')[0].attribution.longestScript.subpart, 'processing-duration');
  assert.deepEqual(errors, []);
}

test('an interaction before the agent ran (the wasm held back) is attributed the same', () => heldBack(false));

test('hidden in the task the agent starts in: the interaction from before it ran is still reported, attributed the same', () => heldBack(true));

test('reportSoftNavs: every route\'s attribution (from its soft-navigation entry) as web-vitals/attribution gives it', async () => {
  const { page, errors } = await open2('/pages/spa.html?softNavs=1&attribution=1');
  const go = async (link, busy = 0) => {
    if (busy) await page.evaluate((ms) => window.__busy.click.push(ms), busy);
    await page.click(`#${link}`);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 300)))));
  };
  await go('to-products');
  await page.evaluate(() => window.shift(80));
  await go('to-about', 150);
  await page.evaluate(() => window.__busy.click.push(200));
  await page.click('#slow');
  await settleClick(page);
  await page.mouse.click(5, 400);
  await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
  await hide(page);
  const r = await both(page, 'INP');
  await both(page, 'CLS', 2);
  for (const name of ['FCP', 'LCP', 'CLS', 'INP', 'TTFB']) {
    const strip = (l) => of(l, name).map(({ id, ...rest }) => rest);
    assert.deepEqual(strip(r.vs), strip(r.wv), `${name} with attribution on every route\nweb-vitals: ${JSON.stringify(strip(r.wv), null, 1)}\nvitalsign: ${JSON.stringify(strip(r.vs), null, 1)}`);
  }
  const soft = (name) => of(r.vs, name).filter((m) => m.navigationType === 'soft-navigation');
  assert.ok(soft('FCP').length >= 2);
  assert.equal(soft('FCP')[0].attribution.navigationEntry.type, 'PerformanceSoftNavigation', 'the route\'s entry');
  assert.equal(soft('FCP')[0].attribution.loadState, 'complete');
  assert.ok(soft('LCP').length >= 1);
  assert.equal(soft('LCP')[0].attribution.timeToFirstByte, 0);
  assert.equal(soft('LCP')[0].attribution.navigationEntry.type, 'PerformanceSoftNavigation', 'subparts from the route\'s start');
  assert.equal(typeof soft('LCP')[0].attribution.target, 'string');
  assert.deepEqual(errors, []);
});

/** One page view with an LCP image, a slow click and a layout shift, then hidden. */
async function visit(endpoint) {
  // The image pushes the shifting box down while loading (#box, the largest
  // shift); the test's own shift moves #shifting sideways.
  const o = await open(`?image=1&busy=250&beacon=${encodeURIComponent(endpoint)}`);
  const { page } = o;
  await page.evaluate(() => new Promise((resolve) => {
    new PerformanceObserver((list) => list.getEntries().some((e) => e.url.includes('img=attr')) && resolve())
      .observe({ type: 'largest-contentful-paint', buffered: true });
  }));
  await page.evaluate(() => window.__shift(60));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.click('button.slow');
  await settleClick(page);
  await hide(page);
  await both(page, 'INP');
  return o;
}

test('init({attribution: true}): each beaconed report carries its attribution, compactly and privately', async () => {
  site.beacons.length = 0;
  const { page, errors } = await visit('/beacon');
  const metrics = await waitFor(() => {
    const all = site.beacons.flatMap((b) => b.json?.metrics ?? []);
    const last = new Map(all.map((m) => [m.name, m]));
    return ['FCP', 'LCP', 'CLS', 'INP', 'TTFB'].every((n) => last.has(n)) && last;
  }, { what: 'beacons with all five metrics' });
  for (const b of site.beacons) assert.ok(validate(b.json), JSON.stringify(validate.errors));
  const r = await page.evaluate(() => window.__reports);
  for (const name of ['FCP', 'LCP', 'CLS', 'INP', 'TTFB']) same(r, name);
  const ours = (name) => of(r.vs, name).at(-1).attribution;
  // What the collector refuses is left out of the beacon, field by field
  // (a paint total can come out slightly negative: -0.4 ms).
  const kept = (v) => (v >= 0 && v <= 120000 ? v : undefined);
  const lcp = metrics.get('LCP').attribution;
  assert.equal(lcp.target, 'html>body>div.a.hero.z>img');
  assert.equal(lcp.url, `${site.url}/pages/img/lcp-blocks.png`, 'the resource URL without its query string');
  for (const k of ['timeToFirstByte', 'resourceLoadDelay', 'resourceLoadDuration', 'elementRenderDelay']) assert.equal(lcp[k], kept(ours('LCP')[k]), k);
  assert.deepEqual(Object.keys(lcp).sort(), ['elementRenderDelay', 'resourceLoadDelay', 'resourceLoadDuration', 'target', 'timeToFirstByte', 'url'], 'no entries');
  const cls = metrics.get('CLS').attribution;
  const { largestShiftTarget, largestShiftTime, largestShiftValue, loadState } = ours('CLS');
  assert.deepEqual(cls, { largestShiftTarget, largestShiftTime, largestShiftValue, loadState });
  const inp = metrics.get('INP').attribution;
  assert.equal(inp.interactionTarget, 'html>body>button.b.slow');
  assert.equal(inp.interactionType, 'pointer');
  assert.equal(inp.loadState, 'complete');
  for (const k of ['inputDelay', 'processingDuration', 'presentationDelay', 'totalScriptDuration', 'totalStyleAndLayoutDuration', 'totalPaintDuration', 'totalUnattributedDuration']) assert.equal(inp[k], kept(ours('INP')[k]), k);
  assert.deepEqual(inp.longestScript, {
    url: `${site.url}/pages/attribution-support.js`,
    function: 'slowClick',
    duration: ours('INP').longestScript.intersectingDuration,
  }, 'the script URL without query string and fragment');
  const fcp = metrics.get('FCP').attribution;
  assert.deepEqual(fcp, { timeToFirstByte: ours('FCP').timeToFirstByte, firstByteToFCP: ours('FCP').firstByteToFCP, loadState: ours('FCP').loadState });
  const ttfb = metrics.get('TTFB').attribution;
  for (const k of ['waitingDuration', 'cacheDuration', 'dnsDuration', 'connectionDuration', 'requestDuration']) assert.equal(ttfb[k], kept(ours('TTFB')[k]), k);
  assert.deepEqual(errors, []);
});

test('the real collector stores the attribution and /v1/fix-first shows it', async () => {
  const { page, errors } = await visit(`${collector.url}/v1/beacon`);
  const r = await page.evaluate(() => window.__reports);
  const clsTarget = of(r.vs, 'CLS').at(-1).attribution.largestShiftTarget;
  const host = new URL(site.url).host;
  const pageKey = `${site.url}/pages/attribution.html`;
  const f = await waitFor(async () => {
    const res = await fetch(`${collector.url}/v1/fix-first?site=${encodeURIComponent(host)}&page=${encodeURIComponent(pageKey)}`);
    if (!res.ok) return false;
    const f = await res.json();
    return ['LCP', 'CLS', 'INP'].every((m) => f.metrics?.[m]?.attributed >= 1) && f;
  }, { what: 'attributed LCP, CLS and INP in /v1/fix-first', timeout: 15000 });
  assert.deepEqual(f.metrics.LCP.items.map((i) => i.target), ['html>body>div.a.hero.z>img']);
  assert.deepEqual(f.metrics.CLS.items.map((i) => i.target), [clsTarget]);
  assert.deepEqual(f.metrics.INP.items.map((i) => i.target), ['html>body>button.b.slow']);
  assert.deepEqual(f.metrics.INP.scripts.map((s) => [s.target, s.firstParty]), [[host.split(':')[0], true]]);
  assert.ok(f.metrics.INP.subparts.processingDuration >= 240, JSON.stringify(f.metrics.INP.subparts));
  assert.ok(f.metrics.LCP.subparts.resourceLoadDuration >= 250, JSON.stringify(f.metrics.LCP.subparts));
  assert.deepEqual(errors, []);
});
