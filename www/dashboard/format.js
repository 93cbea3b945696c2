// Metric names, units, thresholds and number formatting.

export const METRICS = ['LCP', 'INP', 'CLS', 'FCP', 'TTFB'];
export const CORE = ['LCP', 'INP', 'CLS'];

export const NAMES = {
  LCP: 'Largest Contentful Paint',
  INP: 'Interaction to Next Paint',
  CLS: 'Cumulative Layout Shift',
  FCP: 'First Contentful Paint',
  TTFB: 'Time to First Byte',
};

// The reference thresholds (the collector's beacon crate, web-vitals):
// good is [0, good], needs improvement (good, poor], poor above. The
// timeseries and page APIs send them too; these serve the views that
// have no such answer (the summary).
export const THRESHOLDS = {
  LCP: { good: 2500, poor: 4000 },
  INP: { good: 200, poor: 500 },
  CLS: { good: 0.1, poor: 0.25 },
  FCP: { good: 1800, poor: 3000 },
  TTFB: { good: 800, poor: 1800 },
};

export const RATINGS = ['good', 'needs-improvement', 'poor'];
export const RATING_TEXT = { good: 'Good', 'needs-improvement': 'Needs improvement', poor: 'Poor' };
export const CWV_TEXT = { passed: 'Passed', failed: 'Failed', 'insufficient-data': 'Not enough data' };

export const WINDOWS = ['1h', '24h', '7d', '28d'];
export const WINDOW_TEXT = { '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days', '28d': 'last 28 days' };
export const FORM_FACTORS = ['all', 'phone', 'tablet', 'desktop'];
export const FF_TEXT = { all: 'All devices', phone: 'Phone', tablet: 'Tablet', desktop: 'Desktop' };

export const NAV_TYPES = ['navigate', 'reload', 'back-forward', 'back-forward-cache', 'prerender', 'restore', 'soft-navigation'];

export const isScore = (metric) => metric === 'CLS';

export function rate(metric, v) {
  const t = THRESHOLDS[metric];
  return v <= t.good ? 'good' : v <= t.poor ? 'needs-improvement' : 'poor';
}

const nf = new Intl.NumberFormat(undefined);
const nf2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const nf3 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export const int = (n) => (n == null ? '–' : nf.format(n));

/** A metric value with its unit: "850 ms", "2.21 s", "0.12". */
export function value(metric, v) {
  if (v == null || Number.isNaN(v)) return '–';
  // CLS: two decimals as the Chrome UX Report shows it, three below 0.1
  // (where most pages are, and where two would hide the interval).
  if (isScore(metric)) return v > 0 && v < 0.1 ? nf3.format(v) : nf2.format(v);
  return ms(v);
}

/** A duration: "850 ms", "2.21 s". */
export function ms(v) {
  if (v == null || Number.isNaN(v)) return '–';
  if (v >= 1000) return `${nf2.format(v / 1000)} s`;
  return `${nf.format(Math.round(v))} ms`;
}

/** A short axis label: "2.5 s", "800 ms", "0.1". */
export function tick(metric, v) {
  if (isScore(metric)) return nf.format(Math.round(v * 1000) / 1000);
  if (v >= 1000) return `${nf1.format(v / 1000)} s`;
  return `${nf.format(Math.round(v))} ms`;
}

/** "2.10–2.31 s" for a confidence interval. */
export function range(metric, low, high) {
  if (low == null || high == null) return '–';
  const a = value(metric, low), b = value(metric, high);
  const unitA = a.match(/ (m?s)$/), unitB = b.match(/ (m?s)$/);
  if (unitA && unitB && unitA[1] === unitB[1]) return `${a.slice(0, -unitA[0].length)}–${b}`;
  return `${a}–${b}`;
}

/** A share 0..1 as a percentage: "78%", "0.4%". */
export function pct(share) {
  if (share == null || Number.isNaN(share)) return '–';
  const p = share * 100;
  if (p > 0 && p < 1) return `${nf1.format(p)}%`;
  return `${nf.format(Math.round(p))}%`;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const df = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const hf = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dhf = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export const dateTime = (iso) => (iso ? dtf.format(new Date(iso)) : '–');
export const day = (t) => df.format(new Date(t));
export const hour = (t) => hf.format(new Date(t));
export const dayHour = (t) => dhf.format(new Date(t));

/** "3 min ago", "2 h ago", "5 days ago". */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  if (hrs < 48) return `${hrs} h ago`;
  return `${Math.round(hrs / 24)} days ago`;
}

/**
 * A page key for reading: percent-escapes decoded (as the browser's address
 * bar shows a URL), but control, format and space characters kept escaped
 * so nothing invisible or direction-changing is shown. Always inserted as
 * text.
 */
export function pageText(key) {
  if (key == null) return '';
  let text = key;
  try { text = decodeURI(key); } catch { /* keep the raw key */ }
  return text.replace(/[\p{Cc}\p{Cf}\p{Z}]/gu, (c) => encodeURIComponent(c));
}

/** A page key without its origin, when it is on the site. */
export function pagePath(key, site) {
  const text = pageText(key);
  for (const scheme of ['https://', 'http://']) {
    if (site && text.startsWith(scheme + site + '/')) return text.slice(scheme.length + site.length);
  }
  return text;
}

/**
 * A filter as the page keys store it: the collector keeps keys as the URL
 * parser writes them, with spaces, quotes, angle brackets and non-ASCII
 * characters percent-escaped, so "café" is looked for as "caf%C3%A9".
 */
export function pageQuery(q) {
  return q.replace(/[^\x21-\x7e]|[<>"`{}]/gu, (c) => encodeURIComponent(c));
}
