// Helpers shared by the FCP, LCP and TTFB parity tests (fcp/lcp/ttfb.test.mjs).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reports, waitFor, withoutIds } from './harness.mjs';

/** One init-script source running each function (or source) in turn, before page scripts. */
export const initScripts = (...fns) => fns.filter(Boolean).map((f) => (typeof f === 'string' ? f : `(${f})();`)).join('\n');

/** Records every `largest-contentful-paint` entry in `window.__lcpProbe`
 * (with its own observer, created before any API is removed). */
export const lcpProbe = () => {
  window.__lcpProbe = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__lcpProbe.push({ startTime: e.startTime, renderTime: e.renderTime, loadTime: e.loadTime, size: e.size, url: e.url });
    }
  }).observe({ type: 'largest-contentful-paint', buffered: true });
};

/** Sends every report parity.js records as a beacon to `/beacon`, so the
 * reports made while the page unloads (a real, trusted hide) survive it. */
export const beaconReports = () => {
  let seq = 0;
  let value;
  const tap = (lists, tag) => {
    for (const lib of ['wv', 'vs']) {
      const list = lists[lib];
      const push = list.push;
      list.push = function (...items) {
        for (const m of items) navigator.sendBeacon('/beacon', JSON.stringify({ paintReport: true, tag, lib, seq: seq++, m }));
        return push.apply(this, items);
      };
    }
  };
  Object.defineProperty(window, '__reports', {
    configurable: true,
    get: () => value,
    set: (v) => {
      tap(v, 'reports');
      value = v;
    },
  });
};

/** Reports sent by `beaconReports`, as `{wv, vs}` in the order they were made. */
export function beaconedReports(site) {
  const sent = site.beacons.filter((b) => b.json?.paintReport).map((b) => b.json).sort((a, b) => a.seq - b.seq);
  return { wv: sent.filter((s) => s.lib === 'wv').map((s) => s.m), vs: sent.filter((s) => s.lib === 'vs').map((s) => s.m) };
}

/** A browser without `PerformanceObserver`. */
export const noPerformanceObserver = () => {
  delete window.PerformanceObserver;
};

/** A browser whose `PerformanceObserver` supports no entry type. */
export const noSupportedEntryTypes = () => {
  Object.defineProperty(PerformanceObserver, 'supportedEntryTypes', { configurable: true, get: () => Object.freeze([]) });
};

/** A browser without WebAssembly. */
export const noWebAssembly = () => {
  delete globalThis.WebAssembly;
};

/** A browser without Navigation Timing level 2 (no `navigation` entry). */
export const noNavigationEntry = () => {
  const original = performance.getEntriesByType.bind(performance);
  performance.getEntriesByType = (type) => (type === 'navigation' ? [] : original(type));
};

/** The `navigation` entry with `responseStart` replaced: `zero`, or `future`
 * (later than `performance.now()`), as browsers sometimes report. */
export const invalidResponseStart = (mode) => `(() => {
  const mode = ${JSON.stringify(mode)};
  const original = performance.getEntriesByType.bind(performance);
  performance.getEntriesByType = (type) => {
    const list = original(type);
    if (type !== 'navigation' || !list.length) return list;
    const fake = { ...list[0].toJSON() };
    fake.responseStart = mode === 'zero' ? 0 : performance.now() + 1e7;
    return [fake];
  };
})();`;

/** Waits two frames, an idle period (after the idle callbacks the libraries
 * queued, e.g. to finalise LCP) and then `ms` more, so observer callbacks and
 * tasks the page queued have run. Used only after positive evidence (a
 * sentinel metric, the browser's own entry) that what would be reported has
 * happened. */
const settleSource = (ms) => `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() =>
  requestIdleCallback(() => setTimeout(r, ${Number(ms)}), { timeout: 2000 }))))`;
export async function settle(page, ms = 150) {
  await page.evaluate(settleSource(ms));
}

const pick = (list, name) => list.filter((m) => m.name === name);

/** Waits until both libraries reported `name` at least `count` times. */
export async function waitForBoth(page, name, count = 1, { key = '__reports', timeout = 10000 } = {}) {
  return waitFor(async () => {
    const r = await page.evaluate((key) => window[key], key);
    return r && pick(r.wv, name).length >= count && pick(r.vs, name).length >= count && r;
  }, { what: `${count} ${name} report(s) from both libraries`, timeout });
}

/** Waits until web-vitals reported `name` `count` times (our agent may not). */
export async function waitForReference(page, name, count = 1) {
  return waitFor(async () => {
    const r = await reports(page);
    return r && pick(r.wv, name).length >= count && r;
  }, { what: `${count} ${name} report(s) from web-vitals` });
}

/** One frame at 60 Hz: how far two double-rAF measurements may differ. */
export const FRAME = 17;

const fmt = (l) => JSON.stringify(l, null, 1);

/**
 * Asserts our agent reported `name` exactly as web-vitals did: same number of
 * reports, same value, delta, rating, navigationType and entries count. Only
 * values measured by a double rAF after a bfcache restore (FCP, LCP) may
 * differ, by at most one frame. Also asserts the ids of both follow the same
 * pattern (equal within one metric instance, distinct across instances) and
 * that ours are well-formed. Returns `{wv, vs, instances}` for `name`.
 */
export function assertParity(assert, r, name) {
  const wv = pick(r.wv, name);
  const vs = pick(r.vs, name);
  const expected = withoutIds(wv);
  const actual = withoutIds(vs).map((m, i) => {
    const ref = expected[i];
    const doubleRaf = ref && (name === 'FCP' || name === 'LCP') && ref.navigationType === 'back-forward-cache' && m.navigationType === ref.navigationType;
    if (doubleRaf && Math.abs(m.value - ref.value) <= FRAME && Math.abs(m.delta - ref.delta) <= FRAME) {
      return { ...m, value: ref.value, delta: ref.delta };
    }
    return m;
  });
  assert.deepEqual(actual, expected, `${name}: our reports differ from web-vitals'\nweb-vitals: ${fmt(wv)}\nvitalsign: ${fmt(vs)}`);
  for (const m of vs) assert.match(m.id, /^vs-\d+-\d{13}$/, `our id ${m.id} is well-formed`);
  for (let i = 0; i < wv.length; i++) {
    for (let j = i + 1; j < wv.length; j++) {
      assert.equal(vs[i].id === vs[j].id, wv[i].id === wv[j].id, `${name} reports ${i} and ${j}: ids equal in one library only\nweb-vitals: ${fmt(wv)}\nvitalsign: ${fmt(vs)}`);
    }
  }
  return { wv, vs, instances: new Set(vs.map((m) => m.id)).size };
}

/** Asserts that all ids in the given report lists are pairwise distinct. */
export function assertDistinctIds(assert, ...lists) {
  const ids = lists.flat().map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `ids are distinct across metric instances: ${ids.join(', ')}`);
}

/** The `navigation` entry and first-contentful-paint time, as the page sees them. */
export async function timings(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { responseStart: nav?.responseStart, activationStart: nav?.activationStart, type: nav?.type, fcp: fcp?.startTime };
  });
}

/** Waits until the browser recorded its first-contentful-paint entry. */
export async function waitForPaint(page) {
  await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0, null, { timeout: 10000 });
}

/** Waits until the probe saw `n` LCP candidates. */
export async function waitForCandidates(page, n) {
  await page.waitForFunction((n) => window.__lcpProbe.length >= n, n, { timeout: 10000 });
  return page.evaluate(() => window.__lcpProbe);
}

// ---------------------------------------------------------------------------
// A second way to drive Chromium, for what Playwright cannot do here.
//
// - Prerendering: Chromium refuses to prerender for a page that a DevTools
//   client attached to directly (PrerenderFinalStatus
//   PrerenderingDisabledByDevTools, "HasSessionsWithoutTabTargetSupport"),
//   which is how Playwright attaches.
// - Real hiding: Playwright's headless pages never become hidden, but tabs of
//   one window do when another tab comes to the front, with trusted
//   visibilitychange events and `visibility-state` entries.
//
// So these scenarios run their own headless Chromium over a raw CDP pipe,
// attached through tab targets as tab-aware clients are.

/** A headless Chromium driven over `--remote-debugging-pipe`. `page` is its
 * first tab's page (`{targetId, sessionId}`). */
export async function rawChromium() {
  const dir = mkdtempSync(join(tmpdir(), 'vitalsign-raw-'));
  const proc = spawn(process.env.CHROMIUM || '/usr/bin/chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--remote-debugging-pipe',
    `--user-data-dir=${dir}`, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const toBrowser = proc.stdio[3];
  const fromBrowser = proc.stdio[4];
  let lastId = 0;
  let buffer = '';
  const pending = new Map();
  const listeners = new Set();
  fromBrowser.on('data', (data) => {
    buffer += data;
    let end;
    while ((end = buffer.indexOf('\0')) >= 0) {
      const message = JSON.parse(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      if (message.id && pending.has(message.id)) {
        const { resolve, reject, method } = pending.get(message.id);
        pending.delete(message.id);
        message.error ? reject(new Error(`${method}: ${message.error.message}`)) : resolve(message.result);
      } else if (message.method) {
        for (const l of listeners) l(message);
      }
    }
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = ++lastId;
    pending.set(id, { resolve, reject, method });
    toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + '\0');
  });
  const waitEvent = (pred, what, timeout = 10000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { listeners.delete(l); reject(new Error(`timed out waiting for ${what}`)); }, timeout);
    const l = (m) => { if (pred(m)) { clearTimeout(timer); listeners.delete(l); resolve(m); } };
    listeners.add(l);
  });

  // Every page of an attached tab (the shown one and prerendered ones) is
  // attached through the tab; `pages` maps their target ids to their info
  // and session.
  const pages = new Map();
  listeners.add((m) => {
    if (m.method === 'Target.attachedToTarget' && m.params.targetInfo.type === 'page') pages.set(m.params.targetInfo.targetId, { ...m.params.targetInfo, sessionId: m.params.sessionId });
  });
  const tabIds = async () => (await send('Target.getTargets', { filter: [{ type: 'tab' }] })).targetInfos.map((t) => t.targetId);
  const attachTab = async (tabId) => {
    const { sessionId: tabSession } = await send('Target.attachToTarget', { targetId: tabId, flatten: true });
    const attached = waitEvent((m) => m.method === 'Target.attachedToTarget' && m.sessionId === tabSession && m.params.targetInfo.type === 'page', 'the tab\'s page');
    await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, tabSession);
    const { targetInfo, sessionId } = (await attached).params;
    return { targetId: targetInfo.targetId, sessionId };
  };
  const page = await attachTab((await tabIds())[0]);

  return {
    send,
    waitEvent,
    listeners,
    pages,
    page,
    pageSession: page.sessionId,
    /** Opens and attaches another tab of the window (`background`: without
     * bringing it to the front, so its page is hidden from the start). */
    async openTab({ background = false } = {}) {
      const before = new Set(await tabIds());
      await send('Target.createTarget', { url: 'about:blank', newWindow: false, background });
      const tab = (await tabIds()).find((id) => !before.has(id));
      return attachTab(tab);
    },
    /** Brings a new blank tab to the front (hiding the current one, for
     * real); returns a function that brings `page` back and closes it. */
    async switchAway(page) {
      const { targetId } = await send('Target.createTarget', { url: 'about:blank', newWindow: false, background: false });
      return async () => {
        await send('Target.activateTarget', { targetId: page.targetId });
        await send('Target.closeTarget', { targetId });
      };
    },
    async close() {
      const exited = new Promise((r) => proc.once('exit', r));
      await send('Browser.close').catch(() => {});
      const timer = setTimeout(() => proc.kill(), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Evaluates `expression` (awaiting promises) in a CDP session, by value. */
export async function cdpEval(cdp, sessionId, expression) {
  const { result, exceptionDetails } = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
  if (exceptionDetails) throw new Error(`evaluate ${expression}: ${exceptionDetails.exception?.description || exceptionDetails.text}`);
  return result.value;
}

/** Waits until `expression` is truthy in the session's page. */
export async function cdpWait(cdp, sessionId, expression, what = expression) {
  return waitFor(() => cdpEval(cdp, sessionId, expression), { what });
}

/** The CDP counterpart of `settle`. */
export async function cdpSettle(cdp, sessionId, ms = 150) {
  await cdpEval(cdp, sessionId, settleSource(ms));
}

/** Records the page's uncaught exceptions and console errors (as the
 * harness's `openPage` does); returns the live list. */
export async function cdpErrors(cdp, sessionId) {
  const errors = [];
  cdp.listeners.add((m) => {
    if (m.sessionId !== sessionId) return;
    if (m.method === 'Runtime.exceptionThrown') errors.push(m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text);
    if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') errors.push(m.params.args.map((a) => a.value ?? a.description).join(' '));
  });
  await cdp.send('Runtime.enable', {}, sessionId);
  return errors;
}

/** Runs `source` (a function or source) in the page before its scripts, from the next navigation on. */
export async function cdpInit(cdp, sessionId, ...fns) {
  await cdp.send('Page.addScriptToEvaluateOnNewDocument', { source: initScripts(...fns) }, sessionId);
}

/** `window.__reports` of a CDP page. */
export const cdpReports = (cdp, sessionId, key = '__reports') => cdpEval(cdp, sessionId, `window.${key}`);

/** Switches to another tab and back (a real hide and show of `page`). */
export async function cdpHideAndShow(cdp, page) {
  const back = await cdp.switchAway(page);
  await cdpWait(cdp, page.sessionId, 'document.visibilityState === "hidden"', 'the page to be hidden');
  await back();
  await cdpWait(cdp, page.sessionId, 'document.visibilityState === "visible"', 'the page to be visible again');
}

/** Navigates a CDP page and waits for its load event. */
export async function cdpGoto(cdp, sessionId, url) {
  await cdp.send('Page.enable', {}, sessionId);
  const loaded = cdp.waitEvent((m) => m.method === 'Page.loadEventFired' && m.sessionId === sessionId, `load of ${url}`);
  await cdp.send('Page.navigate', { url }, sessionId);
  await loaded;
}

/** A real (trusted) left click at a viewport point, through CDP input. */
export async function cdpClick(cdp, sessionId, x, y) {
  for (const type of ['mouseMoved', 'mousePressed', 'mouseReleased']) {
    await cdp.send('Input.dispatchMouseEvent', { type, x, y, button: type === 'mouseMoved' ? 'none' : 'left', clickCount: type === 'mouseMoved' ? 0 : 1 }, sessionId);
  }
}

/**
 * Loads `fcp-prerender.html`, which prerenders `targetPath` through a real
 * `<script type="speculationrules">`, waits for the prerender to be ready and
 * clicks (trusted) the link to it. Returns the activated page's session and
 * the errors it threw or logged.
 */
export async function prerenderAndActivate(cdp, siteUrl, targetPath) {
  const launcher = cdp.pageSession;
  await cdp.send('Page.enable', {}, launcher);
  await cdp.send('Preload.enable', {}, launcher);
  const ready = cdp.waitEvent((m) => m.method === 'Preload.prerenderStatusUpdated' && ['Ready', 'Failure'].includes(m.params.status), 'the prerender to be ready');
  await cdp.send('Page.navigate', { url: `${siteUrl}/pages/fcp-prerender.html?target=${encodeURIComponent(targetPath)}` }, launcher);
  const status = (await ready).params;
  if (status.status !== 'Ready') throw new Error(`prerender failed: ${JSON.stringify(status)}`);

  const target = [...cdp.pages.values()].find((p) => p.subtype === 'prerender');
  if (!target) throw new Error(`no prerendered target among ${JSON.stringify([...cdp.pages.values()])}`);
  const session = target.sessionId;
  const errors = await cdpErrors(cdp, session);
  // The libraries register while the page is still prerendering.
  await cdpWait(cdp, session, 'window.__isReady === true && document.prerendering === true', 'the prerendered page to be ready');

  const link = await cdpEval(cdp, launcher, '(() => { const r = document.getElementById("go").getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()');
  await cdpClick(cdp, launcher, link.x, link.y);
  await cdpWait(cdp, session, 'document.prerendering === false', 'the prerendered page to be activated');
  return { session, errors };
}
