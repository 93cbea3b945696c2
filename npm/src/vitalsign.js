// Script-tag build: <script async src=".../vitalsign.js" data-endpoint="..."> or
// <script type="module" src=".../vitalsign.js" data-...>. Reads its options
// from data-* attributes and starts the agent. `window.vitalsign` exposes the
// npm API (grantConsent, revokeConsent, onLCP, ...). No static import, so it
// also runs as a classic script.
(() => {
  const script = document.currentScript || document.querySelector('script[src*="vitalsign.js"]');
  if (!script || typeof WebAssembly !== 'object') return;
  const d = script.dataset;
  const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  const opts = { endpoint: d.endpoint };
  if (d.sampleRate) opts.sampleRate = Number(d.sampleRate);
  if (d.flushInterval) opts.flushInterval = Number(d.flushInterval);
  if ('requireConsent' in d) opts.requireConsent = d.requireConsent !== 'false';
  if (d.routes) opts.routes = list(d.routes);
  if (d.queryKeys) opts.queryKeys = list(d.queryKeys);
  /* data-attribution: in the attribution build (npm/build.mjs) */
  const api = import(new URL('index.js', script.src).href);
  // Calls made before the module arrives are replayed in order.
  const later = (name) => (...args) => api.then((m) => m[name](...args), () => {});
  window.vitalsign = {};
  for (const name of ['init', 'grantConsent', 'revokeConsent', 'startPageView', 'onFCP', 'onLCP', 'onCLS', 'onINP', 'onTTFB']) {
    window.vitalsign[name] = later(name);
  }
  window.vitalsign.init(opts);
})();
