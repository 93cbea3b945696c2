// Registers the same callbacks on web-vitals and on our agent.
// Query: metrics=FCP,LCP (default all five), reportAllChanges=1,
// durationThreshold=N, beacon=URL (also starts our transport).
import * as wv from '/web-vitals/web-vitals.js';
import * as vs from '/agent/index.js';

const q = new URLSearchParams(location.search);
const metrics = (q.get('metrics') || 'FCP,LCP,CLS,INP,TTFB').split(',');
const opts = {};
if (q.get('reportAllChanges')) opts.reportAllChanges = true;
if (q.get('durationThreshold')) opts.durationThreshold = Number(q.get('durationThreshold'));

const reports = (window.__reports = { wv: [], vs: [] });
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

for (const name of metrics) {
  wv['on' + name](record(reports.wv), opts);
  vs['on' + name](record(reports.vs), opts);
}
if (q.get('beacon')) vs.init({ endpoint: q.get('beacon') });
