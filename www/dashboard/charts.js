// Small hand-written SVG charts: a p75 sparkline, p75 over time with its
// p50-p95 band and threshold lines, a value histogram. A few hundred
// points at most, so plain SVG is fast, crisp in both colour schemes (the
// colours are CSS variables), and readable by tests and screen readers.
import { h, s } from './dom.js';
import * as f from './format.js';

const fix = (n) => Math.round(n * 10) / 10;

/** Splits points into runs of consecutive non-null values. */
function runs(points, get) {
  const out = [];
  let cur = [];
  for (const p of points) {
    if (get(p) == null) {
      if (cur.length) out.push(cur);
      cur = [];
    } else cur.push(p);
  }
  if (cur.length) out.push(cur);
  return out;
}

/** A "nice" step (1, 2, 2.5, 5 × 10^k) for about `count` ticks up to max. */
function niceStep(max, count) {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function yDomain(metric, values, thresholds, { includePoor = false } = {}) {
  let max = Math.max(0, ...values.filter((v) => v != null));
  max = Math.max(max, thresholds.good * 1.15);
  if (includePoor) max = Math.max(max, thresholds.poor * 1.1);
  if (max <= 0) max = f.isScore(metric) ? 0.1 : 100;
  const step = niceStep(max, 4);
  return { max: Math.ceil(max / step) * step, step };
}

/** The p75 over time, small: for the overview cards. */
export function sparkline(points, { metric, thresholds = f.THRESHOLDS[metric], width = 240, height = 48 }) {
  const withData = points.filter((p) => p.p75 != null);
  if (!withData.length) return h('p', { class: 'muted small spark-empty' }, 'No p75 over time in this window');
  const { max } = yDomain(metric, points.map((p) => p.p75), thresholds);
  const n = points.length;
  const x = (i) => (n === 1 ? width / 2 : (i / (n - 1)) * (width - 6) + 3);
  const y = (v) => height - 3 - (v / max) * (height - 6);
  const index = new Map(points.map((p, i) => [p, i]));
  const kids = [];
  for (const [name, t] of [['good', thresholds.good], ['poor', thresholds.poor]]) {
    if (t <= max) kids.push(s('line', { class: `threshold ${name}`, x1: 0, x2: width, y1: fix(y(t)), y2: fix(y(t)) }));
  }
  for (const run of runs(points, (p) => p.p75)) {
    const d = run.map((p, j) => `${j ? 'L' : 'M'}${fix(x(index.get(p)))},${fix(y(p.p75))}`).join('');
    kids.push(s('path', { class: 'p75-line', d: run.length === 1 ? `${d}h0.1` : d }));
  }
  // The latest point: a zero-length stroke with round caps stays round when
  // the chart is stretched to its card's width (preserveAspectRatio none).
  const last = withData[withData.length - 1];
  kids.push(s('path', { class: `dot-cap ${f.rate(metric, last.p75)}`, d: `M${fix(x(index.get(last)))},${fix(y(last.p75))}h0` }));
  const first = withData[0];
  return s('svg', {
    class: 'spark',
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `${metric} p75 over time: ${f.value(metric, first.p75)} at the start, ${f.value(metric, last.p75)} at the latest of ${withData.length} points with data`,
    dataset: { chart: 'sparkline', metric, points: withData.length },
  }, kids);
}

/**
 * p75 over time with the p50-p95 band, the good and poor threshold lines,
 * a readout that follows the pointer or the arrow keys, and the data as a
 * table on demand.
 */
export function bandChart(points, { metric, thresholds = f.THRESHOLDS[metric], step = '1d', width = 640, height = 220 }) {
  const withData = points.filter((p) => p.p75 != null);
  const wrap = h('figure', { class: 'chart band-chart', dataset: { chart: 'timeseries', metric, points: withData.length } });
  const caption = h('figcaption', { class: 'muted small' }, `${metric} p75 over time, ${step === '1h' ? 'hourly' : 'daily'}, with the p50–p95 band`);
  if (!withData.length) {
    wrap.append(h('p', { class: 'muted empty-chart' }, 'No reports in this window.'), caption);
    return wrap;
  }
  const m = { left: 54, right: 12, top: 12, bottom: 26 };
  const W = width - m.left - m.right, H = height - m.top - m.bottom;
  const all = points.flatMap((p) => [p.p95, p.p75]);
  const { max, step: yStep } = yDomain(metric, all, thresholds, { includePoor: withData.some((p) => (p.p95 ?? p.p75) > thresholds.good) });
  const n = points.length;
  const x = (i) => m.left + (n === 1 ? W / 2 : (i / (n - 1)) * W);
  const y = (v) => m.top + H - (Math.min(v, max) / max) * H;
  const index = new Map(points.map((p, i) => [p, i]));
  const kids = [];
  // Axes and grid.
  for (let v = 0; v <= max + 1e-9; v += yStep) {
    kids.push(s('line', { class: 'grid', x1: m.left, x2: m.left + W, y1: fix(y(v)), y2: fix(y(v)) }));
    kids.push(s('text', { class: 'axis', x: m.left - 6, y: fix(y(v) + 4), 'text-anchor': 'end' }, f.tick(metric, v)));
  }
  const labels = Math.min(n, Math.max(2, Math.floor(W / 90)));
  for (let k = 0; k < labels; k++) {
    const i = labels === 1 ? 0 : Math.round((k / (labels - 1)) * (n - 1));
    const t = Date.parse(points[i].start);
    const anchor = k === 0 ? 'start' : k === labels - 1 ? 'end' : 'middle';
    kids.push(s('text', { class: 'axis', x: fix(x(i)), y: height - 8, 'text-anchor': anchor }, step === '1h' ? f.dayHour(t) : f.day(t)));
  }
  // The band: p95 forwards, p50 backwards.
  for (const run of runs(points, (p) => (p.p50 != null && p.p95 != null ? 1 : null))) {
    const top = run.map((p) => `${fix(x(index.get(p)))},${fix(y(p.p95))}`);
    const bottom = run.slice().reverse().map((p) => `${fix(x(index.get(p)))},${fix(y(p.p50))}`);
    const d = run.length === 1
      ? `M${fix(x(index.get(run[0])) - 2)},${fix(y(run[0].p95))}h4V${fix(y(run[0].p50))}h-4Z`
      : `M${top.join('L')}L${bottom.join('L')}Z`;
    kids.push(s('path', { class: 'band', d }));
  }
  for (const [name, t] of [['good', thresholds.good], ['poor', thresholds.poor]]) {
    if (t > max) continue;
    kids.push(s('line', { class: `threshold ${name}`, x1: m.left, x2: m.left + W, y1: fix(y(t)), y2: fix(y(t)) }));
    kids.push(s('text', { class: `threshold-label ${name}`, x: m.left + 6, y: fix(y(t) - 4), 'text-anchor': 'start' },
      name === 'good' ? `good ≤ ${f.value(metric, t)}` : `poor > ${f.value(metric, t)}`));
  }
  for (const run of runs(points, (p) => p.p75)) {
    const d = run.map((p, j) => `${j ? 'L' : 'M'}${fix(x(index.get(p)))},${fix(y(p.p75))}`).join('');
    kids.push(s('path', { class: 'p75-line', d: run.length === 1 ? `${d}h0.1` : d }));
  }
  if (withData.length <= 80) {
    for (const p of withData) {
      kids.push(s('circle', { class: `dot ${p.lowSample ? 'low' : ''}`, cx: fix(x(index.get(p))), cy: fix(y(p.p75)), r: 2.5 }));
    }
  }
  const cursor = s('line', { class: 'cursor', x1: 0, x2: 0, y1: m.top, y2: m.top + H, visibility: 'hidden' });
  const marker = s('circle', { class: 'marker', r: 4, cx: 0, cy: 0, visibility: 'hidden' });
  kids.push(cursor, marker);
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    tabindex: 0,
    role: 'img',
    'aria-label': `${f.NAMES[metric]} p75 over time, ${withData.length} points with data; latest ${f.value(metric, withData[withData.length - 1].p75)}. Use the arrow keys to read each point.`,
    dataset: { keep: `chart-${metric}` },
  }, kids);
  const readout = h('p', { class: 'readout small', 'aria-live': 'polite' }, 'Point at the chart (or focus it and use ←/→) to read a point.');
  let at = -1;
  const show = (i) => {
    at = Math.max(0, Math.min(n - 1, i));
    const p = points[at];
    const t = Date.parse(p.start);
    const when = step === '1h' ? f.dayHour(t) : f.day(t);
    cursor.setAttribute('x1', fix(x(at)));
    cursor.setAttribute('x2', fix(x(at)));
    cursor.setAttribute('visibility', 'visible');
    if (p.p75 == null) {
      marker.setAttribute('visibility', 'hidden');
      readout.textContent = `${when}: no reports`;
      return;
    }
    marker.setAttribute('cx', fix(x(at)));
    marker.setAttribute('cy', fix(y(p.p75)));
    marker.setAttribute('visibility', 'visible');
    const ci = p.p75Interval ? `, 95% CI ${f.range(metric, p.p75Interval.low, p.p75Interval.high)}` : '';
    readout.textContent = `${when}: p75 ${f.value(metric, p.p75)}${ci}; p50 ${f.value(metric, p.p50)}, p95 ${f.value(metric, p.p95)}; ${f.int(p.count)} samples${p.lowSample ? ' (low sample)' : ''}`;
  };
  svg.addEventListener('pointermove', (e) => {
    const r = svg.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * width;
    show(n === 1 ? 0 : Math.round(((px - m.left) / W) * (n - 1)));
  });
  svg.addEventListener('keydown', (e) => {
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: n - 1 };
    if (!(e.key in moves)) return;
    e.preventDefault();
    show(at < 0 && e.key.startsWith('Arrow') ? n - 1 : moves[e.key]);
  });
  const legend = h('p', { class: 'legend small' },
    h('span', { class: 'key key-line' }), ' p75 ',
    h('span', { class: 'key key-band' }), ' p50–p95 ',
    h('span', { class: 'key key-good' }), ' good threshold ',
    h('span', { class: 'key key-poor' }), ' poor threshold ',
    withData.length <= 80 ? [h('span', { class: 'key key-low' }), ' low sample'] : null);
  const table = lazyTable('Show the data as a table', `data-${metric}`, () => {
    const rows = points.map((p) => h('tr', null,
      h('td', null, step === '1h' ? f.dayHour(Date.parse(p.start)) : f.day(Date.parse(p.start))),
      h('td', { class: 'num' }, f.int(p.count)),
      h('td', { class: 'num' }, f.value(metric, p.p50)),
      h('td', { class: 'num' }, f.value(metric, p.p75), p.lowSample ? h('span', { class: 'low-mark', title: 'low sample' }, ' *') : null),
      h('td', { class: 'num' }, p.p75Interval ? f.range(metric, p.p75Interval.low, p.p75Interval.high) : '–'),
      h('td', { class: 'num' }, f.value(metric, p.p95))));
    return h('table', { class: 'data' },
      h('thead', null, h('tr', null, ...['time', 'samples', 'p50', 'p75', '95% CI of p75', 'p95'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows));
  });
  wrap.append(svg, readout, legend, caption, table);
  return wrap;
}

/** A <details> whose table is built when first opened. */
export function lazyTable(summary, key, build) {
  const details = h('details', { class: 'table-details', dataset: { keep: key } }, h('summary', null, summary));
  let built = false;
  details.addEventListener('toggle', () => {
    if (!built && details.open) {
      built = true;
      details.append(h('div', { class: 'scroll' }, build()));
    }
  });
  return details;
}

function bucketRating(b, t) {
  if (b.end != null && b.end <= t.good) return 'good';
  if (b.start >= t.poor) return 'poor';
  return 'needs-improvement';
}

/** The value histogram: one bar per fixed bucket, coloured by rating. */
export function histogram(buckets, { metric, thresholds = f.THRESHOLDS[metric], width = 640, height = 170 }) {
  const total = buckets.reduce((n, b) => n + b.count, 0);
  const wrap = h('figure', { class: 'chart histogram', dataset: { chart: 'histogram', metric, total } });
  if (!total) {
    wrap.append(h('p', { class: 'muted empty-chart' }, 'No reports in this window.'));
    return wrap;
  }
  const m = { left: 40, right: 8, top: 10, bottom: 30 };
  const W = width - m.left - m.right, H = height - m.top - m.bottom;
  const maxCount = Math.max(...buckets.map((b) => b.count));
  const yStep = niceStep(maxCount, 3);
  const yMax = Math.max(yStep, Math.ceil(maxCount / yStep) * yStep);
  const bw = W / buckets.length;
  const label = (b) => (b.end == null ? `≥ ${f.value(metric, b.start)}` : `${f.value(metric, b.start)}–${f.value(metric, b.end)}`);
  const kids = [];
  for (let v = 0; v <= yMax; v += yStep) {
    const yy = m.top + H - (v / yMax) * H;
    kids.push(s('line', { class: 'grid', x1: m.left, x2: m.left + W, y1: fix(yy), y2: fix(yy) }));
    kids.push(s('text', { class: 'axis', x: m.left - 5, y: fix(yy + 4), 'text-anchor': 'end' }, f.int(v)));
  }
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(2, Math.floor(W / 70))));
  buckets.forEach((b, i) => {
    const bh = (b.count / yMax) * H;
    const rating = bucketRating(b, thresholds);
    kids.push(s('rect', {
      class: `bar ${rating}`, x: fix(m.left + i * bw + 1), y: fix(m.top + H - bh), width: fix(Math.max(1, bw - 2)), height: fix(bh),
      dataset: { start: b.start, end: b.end ?? '', count: b.count },
    }, s('title', null, `${label(b)}: ${f.int(b.count)} reports (${f.pct(b.count / total)}), ${f.RATING_TEXT[rating].toLowerCase()}`)));
    if (i % every === 0) kids.push(s('text', { class: 'axis', x: fix(m.left + i * bw), y: height - 12, 'text-anchor': 'start' }, f.tick(metric, b.start)));
    for (const [name, t] of [['good', thresholds.good], ['poor', thresholds.poor]]) {
      if (b.start === t && i > 0) kids.push(s('line', { class: `threshold ${name}`, x1: fix(m.left + i * bw), x2: fix(m.left + i * bw), y1: m.top, y2: m.top + H }));
    }
  });
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': `Histogram of ${total} ${metric} values in ${buckets.length} buckets; the largest bucket is ${label(buckets.find((b) => b.count === maxCount))}`,
  }, kids);
  const table = lazyTable('Show the buckets as a table', `hist-${metric}`, () => h('table', { class: 'data' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'values'), h('th', { scope: 'col' }, 'reports'), h('th', { scope: 'col' }, 'share'), h('th', { scope: 'col' }, 'rating'))),
    h('tbody', null, buckets.map((b) => h('tr', null,
      h('td', null, label(b)), h('td', { class: 'num' }, f.int(b.count)), h('td', { class: 'num' }, f.pct(b.count / total)),
      h('td', null, f.RATING_TEXT[bucketRating(b, thresholds)]))))));
  wrap.append(svg, h('figcaption', { class: 'muted small' }, `${metric} values: reports per bucket; the bucket edges at ${f.value(metric, thresholds.good)} and ${f.value(metric, thresholds.poor)} are the good and poor thresholds`), table);
  return wrap;
}
