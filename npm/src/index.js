// vitalsign: the web-vitals API, measured by a Rust/WebAssembly agent.
// The wasm is fetched and compiled (streaming) once the page has loaded and
// the main thread is idle, so it never competes with the page's own work;
// calls made before then are queued. Metrics come from buffered
// PerformanceObservers, so nothing is lost by starting late. Where
// WebAssembly or an API is missing, every call is a silent no-op.
import load, * as agent from './agent.js';

let ready;

const afterPageWork = () =>
  new Promise((resolve) => {
    const idle = () => (self.requestIdleCallback ? requestIdleCallback(resolve, { timeout: 2000 }) : setTimeout(resolve, 0));
    document.readyState === 'complete' ? idle() : addEventListener('load', idle, { once: true });
  });

/**
 * Resolves to true once the agent is running (every call made before it is
 * in effect), or false where it cannot run (no WebAssembly, blocked fetch).
 */
export const loaded = () => (ready ||= afterPageWork().then(() => load()).then(() => true, () => false));

const whenLoaded = (f) => {
  loaded().then((ok) => {
    if (!ok) return;
    try {
      f();
    } catch {
      // The agent never throws into the page.
    }
  });
};

const on = (name) => (callback, opts = {}) => whenLoaded(() => agent[name](callback, opts));

export const onFCP = on('onFCP');
export const onLCP = on('onLCP');
export const onCLS = on('onCLS');
export const onINP = on('onINP');
export const onTTFB = on('onTTFB');

/** Measures all five metrics and beacons them to `endpoint` (default `/v1/beacon`). */
export const init = (opts = {}) => whenLoaded(() => agent.start(opts));
/** With `init({requireConsent: true})`: starts storing and sending. */
export const grantConsent = () => whenLoaded(() => agent.grantConsent());
/** Stops sending and clears what the agent stored. */
export const revokeConsent = () => whenLoaded(() => agent.revokeConsent());

export const FCPThresholds = [1800, 3000];
export const LCPThresholds = [2500, 4000];
export const CLSThresholds = [0.1, 0.25];
export const INPThresholds = [200, 500];
export const TTFBThresholds = [800, 1800];
