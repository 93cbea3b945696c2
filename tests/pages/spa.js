// Registers the same callbacks on web-vitals and on our agent, recording
// the web-vitals 6 navigation fields too.
// Query: metrics=FCP,LCP (default all five), softNavs=1 (reportSoftNavs),
// reportAllChanges=1, twice=1 (a second callback set with reportSoftNavs
// flipped, recorded in window.__reports2), beacon=URL (also starts our
// transport with init()), attribution=1 (web-vitals/attribution and
// vitalsign/attribution, each report's attribution recorded as
// tests/pages/attribution.js records it).
const q = new URLSearchParams(location.search);
const metrics = (q.get('metrics') || 'FCP,LCP,CLS,INP,TTFB').split(',');
const opts = {};
if (q.get('reportAllChanges')) opts.reportAllChanges = true;
if (q.get('softNavs')) opts.reportSoftNavs = true;

const attribution = Boolean(q.get('attribution'));
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
const reports2 = (window.__reports2 = { wv: [], vs: [] });
const record = (list) => (m) =>
  list.push({
    name: m.name,
    value: m.value,
    delta: m.delta,
    rating: m.rating,
    navigationType: m.navigationType,
    id: m.id,
    entries: m.entries.length,
    entryTypes: m.entries.map((e) => e.entryType),
    navigationId: m.navigationId,
    navigationInteractionId: m.navigationInteractionId,
    navigationURL: m.navigationURL,
    navigationStartTime: m.navigationStartTime,
    keys: Object.keys(m).join(),
    ...(attribution ? { attribution: snap(m.attribution) } : {}),
  });

const [wv, vs] = await Promise.all(
  attribution
    ? [import('/web-vitals/web-vitals.attribution.js'), import('/agent/attribution/index.js')]
    : [import('/web-vitals/web-vitals.js'), import('/agent/index.js')],
);
window.__vs = vs;
for (const name of metrics) {
  wv['on' + name](record(reports.wv), opts);
  vs['on' + name](record(reports.vs), opts);
}
if (q.get('twice')) {
  const opts2 = { ...opts, reportSoftNavs: !opts.reportSoftNavs };
  for (const name of metrics) {
    wv['on' + name](record(reports2.wv), opts2);
    vs['on' + name](record(reports2.vs), opts2);
  }
}
window.__loaded = true;
if (q.get('beacon')) vs.init({ endpoint: q.get('beacon'), flushInterval: Number(q.get('flushInterval') || 10000) });
window.__ready = vs.loaded().then(() => new Promise((r) => setTimeout(r, 0))).then(() => (window.__isReady = true));
