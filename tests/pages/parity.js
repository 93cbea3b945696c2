// Registers the same callbacks on web-vitals and on our agent.
// Query: metrics=FCP,LCP (default all five), reportAllChanges=1,
// durationThreshold=N, beacon=URL (also starts our transport),
// lazy=load|N (import both libraries after the load event / after N ms),
// twice=1 (register a second callback set with reportAllChanges flipped,
// recorded in window.__reports2).
const q = new URLSearchParams(location.search);
const metrics = (q.get('metrics') || 'FCP,LCP,CLS,INP,TTFB').split(',');
const opts = {};
if (q.get('reportAllChanges')) opts.reportAllChanges = true;
if (q.get('durationThreshold')) opts.durationThreshold = Number(q.get('durationThreshold'));

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
  });

const lazy = q.get('lazy');
if (lazy === 'load' && document.readyState !== 'complete') {
  await new Promise((r) => addEventListener('load', r));
} else if (lazy && lazy !== 'load') {
  await new Promise((r) => setTimeout(r, Number(lazy)));
}
const [wv, vs] = await Promise.all([import('/web-vitals/web-vitals.js'), import('/agent/index.js')]);
window.__loaded = true;

for (const name of metrics) {
  wv['on' + name](record(reports.wv), opts);
  vs['on' + name](record(reports.vs), opts);
}
if (q.get('twice')) {
  const opts2 = { ...opts, reportAllChanges: !opts.reportAllChanges };
  for (const name of metrics) {
    wv['on' + name](record(reports2.wv), opts2);
    vs['on' + name](record(reports2.vs), opts2);
  }
}
if (q.get('beacon')) vs.init({ endpoint: q.get('beacon') });
// Our calls take effect once the wasm is instantiated; tests wait for this
// before interacting so both libraries observe the same events.
window.__ready = vs.loaded().then(() => new Promise((r) => setTimeout(r, 0))).then(() => (window.__isReady = true));
