// vitalsign: the web-vitals API, measured by a Rust/WebAssembly agent.
//
// This loader is the only hand-written JavaScript of the package. The wasm
// (with wasm-bindgen's generated glue, ./agent.js) is fetched and compiled
// (streaming) once the page has loaded, so it never competes with the
// page's own work. Until it runs, calls are queued, and plain
// PerformanceObservers record what happens (entry batches, trusted input,
// hides); when the wasm starts, the queued calls are replayed against that
// record (agent/src/js.rs), so the agent reports what a library running
// from the start would have. Where WebAssembly is missing, every call is a
// silent no-op.
import * as agent from './agent.js';

// The entry groups the agent observes, by the record's property names.
const GROUPS = { paint: ['paint'], lcp: ['largest-contentful-paint'], layoutShift: ['layout-shift'], event: ['event', 'first-input'] };

let state; // undefined, 'loading', 'running' or 'failed'
const queue = [];
let early;
let ready;

const record = () => {
  early = { input: false, hidden: false };
  const observers = [];
  try {
    const supported = PerformanceObserver.supportedEntryTypes;
    for (const [group, all] of Object.entries(GROUPS)) {
      const types = all.filter((t) => supported.includes(t));
      if (!types.length) continue;
      const batches = (early[group] = []);
      const po = new PerformanceObserver((list) => batches.push(list.getEntries()));
      // 16 ms is the lowest durationThreshold; the agent filters per option.
      for (const type of types) po.observe({ type, buffered: true, durationThreshold: 16 });
      observers.push([po, batches]);
    }
  } catch {
    // No PerformanceObserver: the agent will find none either.
  }
  const input = (e) => { if (e.isTrusted) early.input = true; };
  const hide = () => { if (document.visibilityState === 'hidden') early.hidden = true; };
  addEventListener('keydown', input, true);
  addEventListener('click', input, true);
  addEventListener('visibilitychange', hide, true);
  return () => {
    removeEventListener('keydown', input, true);
    removeEventListener('click', input, true);
    removeEventListener('visibilitychange', hide, true);
    for (const [po, batches] of observers) {
      const rest = po.takeRecords();
      if (rest.length) batches.push(rest);
      po.disconnect();
    }
  };
};

const afterLoad = () =>
  new Promise((resolve) => {
    document.readyState === 'complete' ? setTimeout(resolve, 0) : addEventListener('load', () => setTimeout(resolve, 0), { once: true });
  });

/** Fetches and compiles the wasm (streaming where the server sends application/wasm). */
const load = async () => {
  const res = fetch(new URL('agent_bg.wasm', import.meta.url));
  const imports = { './agent_bg.js': agent };
  let r;
  try {
    r = await WebAssembly.instantiateStreaming(res, imports);
  } catch {
    r = await WebAssembly.instantiate(await (await res).arrayBuffer(), imports);
  }
  agent.__wbg_set_wasm(r.instance.exports);
  r.instance.exports.__wbindgen_start();
};

const start = () => {
  state = 'loading';
  let stop = () => {};
  try {
    stop = record();
  } catch {}
  ready = afterLoad()
    .then(load)
    .then(
      () => {
        // All in one task: no entry can slip between the recorders stopping
        // and the agent's observers starting.
        stop();
        try {
          agent.beginReplay(early);
          for (const f of queue.splice(0)) f();
        } finally {
          agent.endReplay();
          early = undefined;
          state = 'running';
        }
        return true;
      },
      () => {
        try {
          stop();
        } catch {}
        early = undefined;
        queue.length = 0;
        state = 'failed';
        return false;
      },
    );
};

const run = (f) => {
  try {
    f();
  } catch {
    // The agent never throws into the page.
  }
};

const whenLoaded = (f) => {
  if (state === 'running') return run(f);
  if (state === 'failed') return;
  if (!state) start();
  queue.push(() => run(f));
};

/**
 * Resolves to true once the agent is running (every call made before it is
 * in effect), or false where it cannot run (no WebAssembly, blocked fetch).
 */
export const loaded = () => {
  if (!state) start();
  return ready;
};

const on = (name) => (callback, opts) => whenLoaded(() => agent[name](callback, opts));

export const onFCP = on('onFCP');
export const onLCP = on('onLCP');
export const onCLS = on('onCLS');
export const onINP = on('onINP');
export const onTTFB = on('onTTFB');

/** Measures all five metrics and beacons them to `endpoint` (default `/v1/beacon`). */
export const init = (opts) => whenLoaded(() => agent.start(opts));
/** Marks a route change by hand, where the browser reports no soft navigations. */
export const startPageView = () => whenLoaded(() => agent.startPageView());
/** With `init({requireConsent: true})`: starts storing and sending. */
export const grantConsent = () => whenLoaded(() => agent.grantConsent());
/** Stops sending and clears what the agent stored. */
export const revokeConsent = () => whenLoaded(() => agent.revokeConsent());

// The reference's thresholds, for the API; a native test (agent/tests/
// npm_thresholds.rs) checks them against the Rust constants.
export const FCPThresholds = [1800, 3000];
export const LCPThresholds = [2500, 4000];
export const CLSThresholds = [0.1, 0.25];
export const INPThresholds = [200, 500];
export const TTFBThresholds = [800, 1800];
