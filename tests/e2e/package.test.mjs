// Distribution: the npm tarball installed into a scratch project, and the
// script-tag build configured by data-* attributes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, startSite, launchBrowser, openPage, stubVisibility, waitFor } from './harness.mjs';

let browser, site, scratch;

before(async () => {
  // Exactly what a user gets: npm pack, then npm install of the tarball.
  const packs = mkdtempSync(join(tmpdir(), 'vitalsign-pack-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', packs], { cwd: join(root, 'npm'), stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = join(packs, readdirSync(packs).find((f) => f.endsWith('.tgz')));
  scratch = mkdtempSync(join(tmpdir(), 'vitalsign-scratch-'));
  execFileSync('npm', ['init', '-y'], { cwd: scratch, stdio: 'ignore' });
  execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: scratch, stdio: ['ignore', 'ignore', 'inherit'] });
  [browser, site] = await Promise.all([
    launchBrowser(),
    startSite({ mounts: { '/pkg/': join(scratch, 'node_modules', 'vitalsign') + '/' } }),
  ]);
});

after(async () => {
  await browser?.close();
  await site?.close();
});

test('importing the installed package in Node (server-side rendering) is harmless', () => {
  // Frameworks import client modules on the server too: no browser global may
  // be touched at import time, and calls there must be silent no-ops.
  const script = `
    const m = await import('vitalsign');
    m.onLCP(() => { throw new Error('called'); });
    m.init({ endpoint: '/v1/beacon' });
    console.log(JSON.stringify({ loaded: await m.loaded(), thresholds: m.LCPThresholds }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: scratch, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { loaded: false, thresholds: [2500, 4000] });
});

test('the packed package has its entry points, types and README', () => {
  const dir = join(scratch, 'node_modules', 'vitalsign');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const target of [pkg.exports['.'].import, pkg.exports['.'].types, pkg.exports['./vitalsign.js']]) {
    assert.ok(existsSync(join(dir, target)), target);
  }
  assert.ok(existsSync(join(dir, 'dist', 'agent_bg.wasm')));
  assert.ok(existsSync(join(dir, 'README.md')));
  const types = readFileSync(join(dir, pkg.types), 'utf8');
  for (const name of ['onFCP', 'onLCP', 'onCLS', 'onINP', 'onTTFB', 'init', 'grantConsent', 'revokeConsent', 'InitOpts', 'LCPThresholds']) {
    assert.match(types, new RegExp(`\\b${name}\\b`));
  }
});

test('the attribution entry point is packed with its own wasm and types, and imports harmlessly in Node', () => {
  const dir = join(scratch, 'node_modules', 'vitalsign');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const entry = pkg.exports['./attribution'];
  for (const target of [entry.import, entry.types, pkg.exports['./attribution/vitalsign.js']]) {
    assert.ok(existsSync(join(dir, target)), target);
  }
  assert.ok(existsSync(join(dir, 'dist', 'attribution', 'agent_bg.wasm')));
  const types = readFileSync(join(dir, entry.types), 'utf8');
  for (const name of ['LCPAttribution', 'INPAttribution', 'generateTarget', 'includeProcessedEventEntries', 'resourceBufferSize', 'attribution?: boolean']) {
    assert.ok(types.includes(name), name);
  }
  assert.ok(!readFileSync(join(dir, pkg.types), 'utf8').includes('LCPAttribution'), 'the core types have none of it');
  const script = `
    const m = await import('vitalsign/attribution');
    m.onINP(() => { throw new Error('called'); }, { includeProcessedEventEntries: true });
    m.init({ endpoint: '/v1/beacon', attribution: true });
    console.log(JSON.stringify({ loaded: await m.loaded() }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: scratch, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { loaded: false });
});

test('the installed package, imported in a browser, measures and sends', async () => {
  site.beacons.length = 0;
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/delivery.html?src=${encodeURIComponent('/pkg/dist/index.js')}&opts=${encodeURIComponent('{"endpoint":"/beacon"}')}`);
  await page.waitForFunction(() => window.__isReady === true);
  const lcp = await page.evaluate(() => new Promise((r) => window.__vs.onFCP(r)));
  assert.equal(lcp.name, 'FCP');
  await page.waitForTimeout(300);
  await stubVisibility(page, 'hidden');
  const b = await waitFor(() => site.beacons.find((b) => b.json?.metrics.some((m) => m.name === 'FCP')), { what: 'beacon' });
  assert.equal(b.json.metrics.find((m) => m.name === 'FCP').value, lcp.value);
  assert.deepEqual(errors, []);
  await context.close();
});

test('script tag, type=module, configured by data-* attributes', async () => {
  site.beacons.length = 0;
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/script-module.html`);
  await page.waitForFunction(() => typeof window.vitalsign?.grantConsent === 'function');
  await page.waitForTimeout(1500);
  await stubVisibility(page, 'hidden');
  const b = await waitFor(() => site.beacons.find((b) => b.json?.metrics.some((m) => m.name === 'FCP')), { what: 'beacon' });
  assert.equal(b.json.page, `${site.url}/pages/script-module.html`);
  assert.deepEqual(errors, []);
  await context.close();
});

test('script tag, classic async, with data-require-consent', async () => {
  site.beacons.length = 0;
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/script-async.html`);
  await page.waitForFunction(() => typeof window.vitalsign?.grantConsent === 'function');
  await page.waitForTimeout(1500);
  await stubVisibility(page, 'hidden');
  await page.waitForTimeout(300);
  assert.equal(site.beacons.length, 0, 'nothing before consent');
  await stubVisibility(page, 'visible');
  await page.evaluate(() => window.vitalsign.grantConsent());
  const b = await waitFor(() => site.beacons.find((b) => b.json?.metrics.some((m) => m.name === 'FCP')), { what: 'beacon after consent' });
  assert.equal(b.json.page, `${site.url}/pages/script-async.html`);
  assert.deepEqual(errors, []);
  await context.close();
});
