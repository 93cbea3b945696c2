// The Rust API in an app: examples/rust-app (a plain wasm-bindgen page
// built by scripts/test.sh into tests/.out/rust-app) calls only
// vitalsign_agent::{init, on_fcp, ...}; its metrics must equal web-vitals'
// on the same page load, and its beacon must carry them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root, startSite, launchBrowser, openPage, stubVisibility, waitFor } from './harness.mjs';
import { assertParity, waitForReports, interact, settle, frames } from './support-input.mjs';

const app = join(root, 'tests', '.out', 'rust-app');
let browser, site;

before(async () => {
  if (!existsSync(join(app, 'vitalsign_example_app.js'))) throw new Error(`${app} is missing: scripts/test.sh builds the example app`);
  [browser, site] = await Promise.all([launchBrowser(), startSite({ mounts: { '/app/': app + '/' } })]);
});

after(async () => {
  await browser?.close();
  await site?.close();
});

test('the Rust app reports all five metrics as web-vitals does, and beacons them', async () => {
  site.beacons.length = 0;
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/rust-app.html?beacon=/beacon`);
  await page.waitForFunction(() => window.__isReady === true);
  await waitForReports(page, 'FCP', 1);
  await waitForReports(page, 'TTFB', 1);
  // A layout shift (a box moved by the page), then a slow click, which also
  // makes LCP final.
  await page.evaluate(() => { document.getElementById('target').style.top = '60px'; });
  await frames(page);
  await interact(page, [['click', 150]]);
  await settle(page);
  await stubVisibility(page, 'hidden');
  for (const name of ['LCP', 'CLS', 'INP']) await waitForReports(page, name, 1);
  for (const name of ['FCP', 'LCP', 'CLS', 'INP', 'TTFB']) await assertParity(page, assert, name, 1);
  const { vs } = await page.evaluate(() => window.__reports);
  const sent = await waitFor(() => {
    const metrics = site.beacons.flatMap((b) => b.json?.metrics ?? []);
    return ['FCP', 'LCP', 'CLS', 'INP', 'TTFB'].every((n) => metrics.some((m) => m.name === n)) && metrics;
  }, { what: 'a beacon with all five metrics' });
  for (const m of vs) {
    const last = sent.filter((s) => s.name === m.name).at(-1);
    assert.equal(last.value, m.value, `${m.name}: the beacon carries the value the app's callback was given`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});
