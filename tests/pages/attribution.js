// Registers the same callbacks on web-vitals/attribution 6.2.3 and on
// vitalsign/attribution, and records each report's attribution as a
// snapshot both can be compared by: numbers and strings as they are,
// objects (entries, sources, scripts) by identity (one number per object,
// shared by both libraries), `undefined` kept apart from absent.
// Query: metrics=LCP,CLS (default all five), reportAllChanges=1,
// generateTarget=1, includeProcessedEventEntries=1, beacon=URL (also
// init({endpoint, attribution: true})).
const q = new URLSearchParams(location.search);
const metrics = (q.get('metrics') || 'FCP,LCP,CLS,INP,TTFB').split(',');
const opts = {};
if (q.get('reportAllChanges')) opts.reportAllChanges = true;
// An image gets its own name, a button an empty one (kept, as the
// reference keeps it), anything else the default selector.
const names = { IMG: 'custom:IMG', BUTTON: '' };
if (q.get('generateTarget')) opts.generateTarget = (node) => names[node.nodeName];
if (q.get('includeProcessedEventEntries')) opts.includeProcessedEventEntries = true;

const ids = new WeakMap();
let next = 0;
const idOf = (o) => {
  if (!ids.has(o)) ids.set(o, ++next);
  return ids.get(o);
};
const snap = (v) => {
  if (v === undefined) return '<undefined>';
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(snap);
  if (v instanceof PerformanceEntry || v.constructor?.name === 'LayoutShiftAttribution') return { object: idOf(v), type: v.constructor.name };
  return Object.fromEntries(Object.keys(v).map((k) => [k, snap(v[k])]));
};

const reports = (window.__reports = { wv: [], vs: [] });
// The attribution objects themselves, for checks in the page.
const raw = (window.__raw = { wv: [], vs: [] });
const record = (lib) => (m) => {
  reports[lib].push({ name: m.name, value: m.value, delta: m.delta, navigationType: m.navigationType, attribution: snap(m.attribution) });
  raw[lib].push(m.attribution);
};

const [wv, vs] = await Promise.all([import('/web-vitals/web-vitals.attribution.js'), import('/agent/attribution/index.js')]);
window.__loaded = true;
for (const name of metrics) {
  wv['on' + name](record('wv'), opts);
  vs['on' + name](record('vs'), opts);
}
if (q.get('beacon')) vs.init({ endpoint: q.get('beacon'), attribution: true });
window.__ready = vs.loaded().then(() => new Promise((r) => setTimeout(r, 0))).then(() => (window.__isReady = true));
