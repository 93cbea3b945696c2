// Main-thread cost of the agent against web-vitals, in the same run: a page
// with 1,000 layout shifts and 200 interactions, measured per library with
// Chromium's sampling CPU profiler (self time of each library's scripts,
// wasm included), plus the longest task attributed to each library by Long
// Animation Frame script timings. The libraries take turns for several
// rounds and the medians are compared, since one run on a shared 2-core
// machine varies by tens of percent.
//   node tests/bench/main-thread.mjs [--shifts N] [--interactions N] [--rounds N]
import { startSite, launchBrowser } from '../e2e/harness.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const SHIFTS = arg('--shifts', 1000);
const INTERACTIONS = arg('--interactions', 200);
const ROUNDS = arg('--rounds', 3);

const site = await startSite();
const browser = await launchBrowser();

async function measure(lib) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  await cdp.send('Profiler.start');
  await page.addInitScript(() => {
    window.__loafScripts = [];
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) for (const s of e.scripts || []) window.__loafScripts.push({ url: s.sourceURL, duration: s.duration, invoker: s.invoker, type: s.invokerType, fn: s.sourceFunctionName, at: s.sourceCharPosition, start: Math.round(s.startTime) });
    }).observe({ type: 'long-animation-frame', buffered: true });
  });
  await page.goto(`${site.url}/pages/bench.html?lib=${lib}`);
  await page.waitForFunction(() => window.__ready === true);
  await page.evaluate((n) => window.shift(n), SHIFTS);
  for (let i = 0; i < INTERACTIONS; i++) await page.click('#b', { delay: 5 });
  await page.waitForTimeout(1500);
  // The reports on hide are part of the work.
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.waitForTimeout(300);
  const { profile } = await cdp.send('Profiler.stop');
  const loaf = await page.evaluate(() => window.__loafScripts);
  await context.close();

  const mine = lib === 'webvitals' ? (u) => u.includes('/web-vitals/') : (u) => u.includes('/agent/') || u.startsWith('wasm://');
  // Self time per node from samples.
  const dt = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    dt.set(profile.samples[i], (dt.get(profile.samples[i]) || 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  let self = 0;
  for (const node of profile.nodes) if (mine(node.callFrame.url)) self += dt.get(node.id) || 0;
  const long = loaf.filter((s) => mine(s.url || '') && s.duration > 50);
  for (const s of long) console.log(`  ${lib}: long agent script ${s.duration.toFixed(0)} ms at ${s.start} ms: ${s.type} ${s.invoker} ${s.url.split('/').pop()}:${s.at} ${s.fn}`);
  const longest = Math.max(0, ...loaf.filter((s) => mine(s.url || '')).map((s) => s.duration));
  return { ms: self / 1000, longest };
}

const LIBS = ['webvitals', 'vitalsign', 'vitalsign-init'];
const runs = Object.fromEntries(LIBS.map((lib) => [lib, []]));
for (let round = 0; round < ROUNDS; round++) for (const lib of LIBS) runs[lib].push(await measure(lib));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = Object.fromEntries(
  LIBS.map((lib) => [lib, { ms: median(runs[lib].map((r) => r.ms)), all: runs[lib].map((r) => r.ms), longest: Math.max(...runs[lib].map((r) => r.longest)) }]),
);
await browser.close();
await site.close();

console.log(`main-thread time inside each library (${SHIFTS} layout shifts, ${INTERACTIONS} interactions, CPU profiler self time, median of ${ROUNDS} rounds):`);
for (const [lib, r] of Object.entries(results)) {
  const all = r.all.map((ms) => ms.toFixed(0)).join('/');
  console.log(`  ${lib.padEnd(16)} ${r.ms.toFixed(1).padStart(7)} ms (runs ${all})   longest script in a long animation frame: ${r.longest.toFixed(0)} ms`);
}
console.log(`ratio vitalsign / web-vitals:            ${(results.vitalsign.ms / results.webvitals.ms).toFixed(2)}x`);
console.log(`ratio vitalsign+transport / web-vitals:  ${(results['vitalsign-init'].ms / results.webvitals.ms).toFixed(2)}x`);
const worst = Math.max(results.vitalsign.longest, results['vitalsign-init'].longest);
console.log(worst > 50 ? `LONG TASK: an agent script ran ${worst.toFixed(0)} ms` : 'no agent script over 50 ms');
