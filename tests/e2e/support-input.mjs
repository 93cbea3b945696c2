// Helpers shared by the CLS and INP parity tests (cls.test.mjs,
// inp.test.mjs): opening the pages, hiding/showing, the parity assertion,
// and driving interactions efficiently.
import { openPage, parityReady, stubVisibility, reports, waitFor, withoutIds } from './harness.mjs';

/** Opens `path` on the site, waits until both libraries registered. */
export async function open(browser, site, path, { initScript, ready = true } = {}) {
  const opened = await openPage(browser, `${site.url}${path}`, { initScript });
  if (ready) await parityReady(opened.page);
  return opened;
}

/**
 * Like `open`, but the agent's wasm arrives `delay` ms late (a slow
 * network), so web-vitals runs at least that long before our agent does
 * (the agent also defers its own start until after load + idle). Resolves
 * once web-vitals has registered (not waiting for our agent).
 */
export async function openSlowAgent(browser, site, path, delay) {
  const context = await browser.newContext();
  await context.route('**/agent/agent_bg.wasm', async (route) => {
    await new Promise((r) => setTimeout(r, delay));
    await route.continue().catch(() => {}); // the context may be gone
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${site.url}${path}`);
  await page.waitForFunction(() => window.__loaded === true);
  return { page, context, errors };
}

/** In the page: two animation frames, then a task (lets observer tasks run). */
export async function frames(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0)))));
}

/** In the page: a pause of `ms` (for the few waits that are about time itself). */
export async function pause(page, ms) {
  await page.evaluate((ms) => new Promise((r) => setTimeout(r, ms)), ms);
}

export const hide = (page) => stubVisibility(page, 'hidden');
/**
 * Undoes `hide`. The stub's `<html hidden>` took the whole document out of
 * layout: wait until it has been laid out and painted again, or a change in
 * the same frame would not be a layout shift (there is no old position).
 */
export async function show(page) {
  await stubVisibility(page, 'visible');
  await frames(page);
}

/** Reports of metric `name` by each library (`set` 2 is the `twice=1` set). */
export async function metricReports(page, name, { set = 1 } = {}) {
  const all = set === 1 ? await reports(page) : await page.evaluate((set) => window[`__reports${set}`], set);
  return { wv: all.wv.filter((m) => m.name === name), vs: all.vs.filter((m) => m.name === name) };
}

/** Waits until both libraries gave at least `count` reports of `name`. */
export async function waitForReports(page, name, count, { set = 1, timeout = 10000 } = {}) {
  return waitFor(async () => {
    const r = await metricReports(page, name, { set });
    return r.wv.length >= count && r.vs.length >= count && r;
  }, { what: `${count} ${name} report(s) from both libraries (set ${set})`, timeout });
}

/** For each id, the index of its first occurrence: which reports share an instance. */
const idPattern = (list) => list.map((m) => list.findIndex((o) => o.id === m.id));

/**
 * The parity assertion: both libraries gave `count` reports of `name` (null:
 * as many as web-vitals gave, at least one, where the browser decides how
 * entries are batched), equal
 * in everything but the id (value, delta, rating, navigationType, number of
 * entries), and the ids group the reports into instances the same way.
 * Returns the reports.
 */
export async function assertParity(page, assert, name, count, { set = 1 } = {}) {
  const r = await metricReports(page, name, { set });
  const label = `${name} reports (set ${set})\nweb-vitals: ${JSON.stringify(r.wv)}\nvitalsign: ${JSON.stringify(r.vs)}`;
  if (process.env.PARITY_LOG) console.log(label);
  assert.deepEqual(withoutIds(r.vs), withoutIds(r.wv), `same ${label}`);
  if (count === null) {
    assert.ok(r.wv.length >= 1, `at least one web-vitals ${label}`);
  } else {
    assert.equal(r.wv.length, count, `number of web-vitals ${label}`);
  }
  assert.equal(r.vs.length, r.wv.length, `number of vitalsign ${label}`);
  assert.deepEqual(idPattern(r.vs), idPattern(r.wv), `ids group reports into the same instances: ${label}`);
  for (const m of r.vs) assert.match(m.id, /^vs-\d+-\d{13}$/);
  return r;
}

/** Asserts neither library reported `name`. */
export async function assertSilent(page, assert, name, { set = 1 } = {}) {
  const r = await metricReports(page, name, { set });
  assert.deepEqual(r.wv, [], `no ${name} from web-vitals`);
  assert.deepEqual(r.vs, [], `no ${name} from vitalsign`);
}

/** CLS as the reference computes it, from `layout-shift` entries in order. */
export function expectedCls(shifts) {
  let value = 0;
  let entries = 0;
  let windowValue = 0;
  let window = [];
  for (const s of shifts) {
    if (s.hadRecentInput) continue;
    const first = window[0];
    const last = window[window.length - 1];
    if (windowValue && first && s.startTime - last.startTime < 1000 && s.startTime - first.startTime < 5000) {
      windowValue += s.value;
      window.push(s);
    } else {
      windowValue = s.value;
      window = [s];
    }
    if (windowValue > value) {
      value = windowValue;
      entries = window.length;
    }
  }
  return { value, entries };
}

/**
 * Drives interactions on inp-page.html. `plan` is a list of
 * `[kind, busyMs]`: kind `click` (page.mouse.click on #button, the click
 * handler busy-waits), `key` (a key press, the keydown handler
 * busy-waits), `tap` (pointer down, 50 ms pause, pointer up; the pointerup
 * handler busy-waits), `down` (same, but the pointerdown handler
 * busy-waits). All durations are queued first so no round trip is needed
 * between interactions.
 */
export async function interact(page, plan) {
  // Every click also dispatches pointerdown/pointerup: keep the queues in
  // step by giving them zeros where the plan does not busy-wait them.
  const full = { click: [], keydown: [], pointerup: [], pointerdown: [] };
  for (const [kind, ms] of plan) {
    if (kind === 'key') full.keydown.push(ms);
    else if (['click', 'tap', 'down'].includes(kind)) {
      full.click.push(kind === 'click' ? ms : 0);
      full.pointerup.push(kind === 'tap' ? ms : 0);
      full.pointerdown.push(kind === 'down' ? ms : 0);
    } else {
      throw new Error(`unknown interaction ${kind}`);
    }
  }
  await page.evaluate((full) => {
    for (const [t, list] of Object.entries(full)) window.__busy[t].push(...list);
  }, full);
  const box = await page.locator('#button').boundingBox();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  for (const [kind] of plan) {
    if (kind === 'click') {
      await page.mouse.click(x, y);
    } else if (kind === 'key') {
      await page.keyboard.press('a');
    } else {
      await page.mouse.move(x, y);
      await page.mouse.down();
      await pause(page, 50);
      await page.mouse.up();
    }
  }
}

/**
 * Waits until the page observed the entry of the last event whose handler
 * busy-waited (>= 16 ms), and the libraries' idle-time processing of the
 * entries delivered with it has run.
 */
export async function settle(page) {
  await page.evaluate(() => window.__settle());
}

/** Interaction latencies the page itself observed (>= 16 ms), longest first. */
export const latencies = (page) => page.evaluate(() => window.__latencies());
export const interactionCount = (page) => page.evaluate(() => performance.interactionCount);

/**
 * Registers `on<name>` again on both libraries, the way web-vitals' README
 * batches reports: metric objects added to a Set, read when flushing. Read
 * the Sets with `queued(page)`.
 */
export async function queueLikeReadme(page, name, opts = {}) {
  await page.evaluate(async ([name, opts]) => {
    const [wv, vs] = await Promise.all([import('/web-vitals/web-vitals.js'), import('/agent/index.js')]);
    window.__queue = { wv: new Set(), vs: new Set() };
    wv['on' + name]((m) => window.__queue.wv.add(m), opts);
    vs['on' + name]((m) => window.__queue.vs.add(m), opts);
    await vs.loaded();
  }, [name, opts]);
}

/** The metric objects in the Sets of `queueLikeReadme`, as read at flush time. */
export const queued = (page) =>
  page.evaluate(() => {
    const plain = (m) => ({ name: m.name, value: m.value, delta: m.delta, rating: m.rating, navigationType: m.navigationType, entries: m.entries.length });
    return { wv: [...window.__queue.wv].map(plain), vs: [...window.__queue.vs].map(plain) };
  });
