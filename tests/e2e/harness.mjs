// Shared pieces of the end-to-end tests: the real collector binary, a small
// real HTTP server for test pages, and headless Chromium via playwright-core.
import { before, after, afterEach } from 'node:test';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');

export const collectorBinary = process.env.VITALSIGN_COLLECTOR || join(root, 'target', 'debug', 'vitalsign-collector');

/** Starts the real collector on a free loopback port with a fresh data dir. */
export async function startCollector({ dataDir = mkdtempSync(join(tmpdir(), 'vitalsign-e2e-')), args = [] } = {}) {
  if (!existsSync(collectorBinary)) throw new Error(`collector binary missing: ${collectorBinary} (run cargo build -p vitalsign-collector)`);
  const proc = spawn(collectorBinary, ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--www-dir', join(root, 'www'), '--agent-dir', join(root, 'npm', 'dist'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${stderr}`)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/vitalsign collector listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`collector exited ${code}: ${stderr}`)); });
  });
  // It listens before its store has loaded: wait until it says ready, as
  // a load balancer would.
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 10))) {
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() - started > 15000) throw new Error(`collector not ready: ${stderr}`);
  }
  return {
    url,
    dataDir,
    proc,
    stderr: () => stderr,
    async summary(query = '') {
      const res = await fetch(`${url}/v1/summary${query}`);
      if (!res.ok) throw new Error(`summary: ${res.status}`);
      return res.json();
    },
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css' };
const mounts = {
  '/agent/': join(root, 'npm', 'dist'),
  '/web-vitals/': join(root, 'tests', 'node_modules', 'web-vitals', 'dist'),
  '/pages/': join(root, 'tests', 'pages'),
};

/**
 * A static server for test pages. `?delay=MS` delays the response (for
 * TTFB); `?csp=POLICY` sends that Content-Security-Policy. Beacons POSTed to
 * `/beacon` are recorded with their raw bodies; `site.answer(beacon)` may
 * return `{status, headers}` to answer them differently (default 204).
 * `mounts` adds URL prefixes served from directories.
 */
export async function startSite({ mounts: extraMounts = {} } = {}) {
  const beacons = [];
  const site = { beacons, answer: () => ({ status: 204 }) };
  const allMounts = { ...mounts, ...extraMounts };
  const server = createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && u.pathname === '/beacon') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        const beacon = { contentType: req.headers['content-type'], body, json: safeJson(body), bytes: Buffer.byteLength(body), at: Date.now() };
        const { status, headers = {} } = site.answer(beacon);
        beacon.status = status;
        beacons.push(beacon);
        res.writeHead(status, headers).end();
      });
      return;
    }
    const mount = Object.keys(allMounts).sort((a, b) => b.length - a.length).find((m) => u.pathname.startsWith(m));
    const file = mount && normalize(join(allMounts[mount], u.pathname.slice(mount.length)));
    if (!file || !file.startsWith(allMounts[mount]) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    const send = () => {
      const headers = { 'content-type': types[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' };
      if (u.searchParams.get('csp')) headers['content-security-policy'] = u.searchParams.get('csp');
      res.writeHead(200, headers);
      res.end(readFileSync(file));
    };
    const delay = Number(u.searchParams.get('delay') || 0);
    delay ? setTimeout(send, delay) : send();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  site.url = `http://127.0.0.1:${server.address().port}`;
  site.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); });
  return site;
}

function safeJson(s) {
  try { return JSON.parse(s); } catch { return undefined; }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * Opens a page that records uncaught errors, so tests can assert none.
 * `initScript` (a function or source) runs before any page script, e.g. to
 * stub `document.visibilityState` or remove an API.
 */
export async function openPage(browser, url, { initScript } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  if (initScript) await page.addInitScript(initScript);
  await page.goto(url);
  return { page, context, errors };
}

/** Waits until both libraries on the parity page have registered. */
export async function parityReady(page) {
  await page.waitForFunction(() => window.__isReady === true);
}

/** Makes the page look hidden from the start (before any script runs). */
export const hiddenAtLoad = () => {
  Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
};

/** Makes the page look like a discarded tab being restored. */
export const discarded = () => {
  Object.defineProperty(document, 'wasDiscarded', { value: true, configurable: true });
};

/** A bfcache restore as the reference's tests simulate it. */
export async function stubBfcacheRestore(page) {
  await page.evaluate(async () => {
    window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.documentElement.hidden = true;
    document.dispatchEvent(new Event('visibilitychange'));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
    document.documentElement.hidden = false;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));
  });
}

/** Reports without ids (ids differ by design between the two libraries). */
export const withoutIds = (list) => list.map(({ id, ...rest }) => rest);

/** Asserts both libraries reported the same (ignoring ids), returns them. */
export async function sameReports(page, assert, { name } = {}) {
  const r = await reports(page);
  const pick = (l) => withoutIds(name ? l.filter((m) => m.name === name) : l);
  assert.deepEqual(pick(r.vs), pick(r.wv));
  return r;
}

/** Hides the page the way the reference's own tests do. */
export async function stubVisibility(page, state) {
  await page.evaluate((state) => {
    Object.defineProperty(document, 'visibilityState', { value: state, configurable: true });
    document.documentElement.hidden = state === 'hidden';
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

/** Waits until `fn()` returns a truthy value (polling), or throws. */
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Reports as both libraries gave them, without ids (which differ by design). */
export async function reports(page) {
  return page.evaluate(() => window.__reports);
}

export const schema = JSON.parse(readFileSync(join(root, 'beacon', 'beacon.schema.json'), 'utf8'));

/**
 * Registers the hooks every test file needs: a browser and the test site
 * (and the real collector with `collector: true`) started before the tests,
 * handed to `started({ browser, site, collector })`, and stopped after them.
 * Returns an array: contexts pushed on it are closed after each test.
 */
export function useBrowserAndSite(started, { collector = false } = {}) {
  const env = {};
  const contexts = [];
  before(async () => {
    [env.browser, env.site, env.collector] = await Promise.all([
      launchBrowser(),
      startSite(),
      collector ? startCollector() : undefined,
    ]);
    started(env);
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await env.browser?.close();
    await env.site?.close();
    await env.collector?.stop();
  });
  return contexts;
}
