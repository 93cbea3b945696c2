// Pieces the views share: rating badges (icon and text, never colour
// alone), the p75 with its confidence interval and low-sample mark, the
// good / needs improvement / poor bar, sortable headers, the pager.
import { h, s, fig } from './dom.js';
import * as f from './format.js';

/** The rating's shape: circle good, square needs improvement, triangle poor. */
export function icon(rating) {
  const shape = rating === 'good' ? s('circle', { cx: 5, cy: 5, r: 4.2 })
    : rating === 'needs-improvement' ? s('rect', { x: 1, y: 1, width: 8, height: 8 })
      : rating === 'poor' ? s('path', { d: 'M5 0.6L9.6 9.2H0.4Z' })
        : s('circle', { cx: 5, cy: 5, r: 3.6, class: 'hollow' });
  return s('svg', { class: `icon ${rating || 'none'}`, viewBox: '0 0 10 10', width: 10, height: 10, 'aria-hidden': 'true' }, shape);
}

export function ratingBadge(rating, { short = false } = {}) {
  if (!rating) return h('span', { class: 'rating none' }, icon(null), ' No data');
  const text = short && rating === 'needs-improvement' ? 'Needs impr.' : f.RATING_TEXT[rating];
  return h('span', { class: `rating ${rating}`, dataset: { rating }, title: short ? f.RATING_TEXT[rating] : null }, icon(rating), ' ', text);
}

/** The Core Web Vitals assessment, as CrUX decides it. */
export function cwvBadge(status, { label = true } = {}) {
  const mark = status === 'passed' ? '✓' : status === 'failed' ? '✗' : '?';
  return h('span', { class: `cwv ${status}` },
    label ? 'Core Web Vitals assessment: ' : null,
    h('span', { class: 'cwv-mark', 'aria-hidden': 'true' }, mark), ' ',
    fig('coreWebVitals', 'assessment', status, f.CWV_TEXT[status] || status));
}

export function lowSampleMark(m, below = 200) {
  if (!m || !m.lowSample) return null;
  return h('span', {
    class: 'low-sample',
    title: `Fewer than ${f.int(below)} samples: this p75 can move a lot with a few more reports (see its 95% interval)`,
    dataset: { metric: 'lowSample', value: 'true' },
  }, '⚑ Low sample');
}

/** "95% CI 2.10–2.31 s", each end a figure. */
export function interval(metric, m) {
  const iv = m && m.p75Interval;
  if (!iv) return null;
  return h('span', { class: 'ci', title: `95% confidence interval of the p75, from order statistics over the ${f.int(m.count)} exact values` },
    '95% CI ',
    fig(metric, 'p75Low', iv.low, f.value(metric, iv.low)), '–',
    fig(metric, 'p75High', iv.high, f.value(metric, iv.high)));
}

/** The p75, its rating and its trust marks, for a card or a detail header. */
export function p75Block(metric, m, below) {
  return h('div', { class: 'p75-block' },
    h('div', { class: 'p75-line-1' },
      fig(metric, 'p75', m.p75, f.value(metric, m.p75), { class: 'big' }), ' ',
      ratingBadge(m.rating)),
    h('div', { class: 'p75-line-2 small' }, interval(metric, m), ' ', lowSampleMark(m, below)));
}

/** A compact p75 cell for tables. */
export function p75Cell(metric, p75, rating, { low, interval: iv, count, below = 200 } = {}) {
  if (p75 == null) return h('td', { class: 'num none', dataset: { metricCell: metric } }, h('span', { class: 'muted' }, '–'));
  const title = [`p75 ${f.value(metric, p75)}`];
  if (iv) title.push(`95% CI ${f.range(metric, iv.low, iv.high)}`);
  if (count != null) title.push(`${f.int(count)} samples`);
  if (low) title.push(`low sample (fewer than ${f.int(below)})`);
  return h('td', { class: `num ${rating || ''}`, title: title.join(' · '), dataset: { metricCell: metric } },
    h('span', { class: 'cell-value' }, icon(rating), ' ', fig(metric, 'p75', p75, f.value(metric, p75))),
    low ? h('span', { class: 'low-sample tiny', title: `low sample: fewer than ${f.int(below)} samples` }, ' ⚑') : null,
    count != null ? h('span', { class: 'cell-count tiny muted' }, fig(metric, 'count', count, `n=${f.int(count)}`)) : null);
}

/** Good / needs improvement / poor as a bar with the percentages in text. */
export function distBar(metric, histogram) {
  const names = f.RATINGS;
  const d = (histogram || []).map((b) => b.density);
  const bar = h('div', { class: 'dist-bar', 'aria-hidden': 'true' },
    names.map((r, i) => h('span', { class: `seg ${r}`, style: `flex-grow:${d[i] || 0}` })));
  const legend = h('ul', { class: 'dist-legend small', 'aria-label': `${metric} distribution` },
    names.map((r, i) => h('li', { class: r }, icon(r), ' ', f.RATING_TEXT[r], ' ', fig(metric, r, d[i], f.pct(d[i])))));
  return h('div', { class: 'dist' }, bar, legend);
}

/** A table header that sorts by `key` (a link, so it can be shared). */
export function sortHeader(label, key, ctx, { numeric = true, title } = {}) {
  const { sort, order } = ctx.sorting;
  const active = sort === key;
  const nextOrder = active ? (order === 'asc' ? 'desc' : 'asc') : key === 'page' ? 'asc' : 'desc';
  const mark = active ? (order === 'asc' ? ' ▲' : ' ▼') : '';
  return h('th', { scope: 'col', class: numeric ? 'num' : null, 'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : null },
    ctx.link({ sort: key, order: nextOrder, offset: 0 }, [label, h('span', { 'aria-hidden': 'true' }, mark)],
      { title: title || `Sort by ${label.toLowerCase()}`, dataset: { sort: key } }));
}

/** "1–50 of 1,234" with previous / next links. */
export function pager(ctx, { total, offset, limit }) {
  const from = total ? offset + 1 : 0;
  const to = Math.min(total, offset + limit);
  const prev = offset > 0 ? Math.max(0, offset - limit) : null;
  const next = offset + limit < total ? offset + limit : null;
  return h('nav', { class: 'pager', 'aria-label': 'Pages of results' },
    prev == null ? h('span', { class: 'disabled', 'aria-disabled': 'true' }, '← Previous')
      : ctx.link({ offset: prev }, '← Previous', { rel: 'prev', dataset: { pager: 'prev' } }),
    h('span', { class: 'pager-status' }, fig('rangeStart', 'from', from, f.int(from)), '–', fig('rangeEnd', 'to', to, f.int(to)), ' of ',
      fig('total', 'total', total, f.int(total))),
    next == null ? h('span', { class: 'disabled', 'aria-disabled': 'true' }, 'Next →')
      : ctx.link({ offset: next }, 'Next →', { rel: 'next', dataset: { pager: 'next' } }));
}

/** The text filter; typing updates the URL (replaceState) after a pause. */
export function filterBox(ctx, { label = 'Filter pages', placeholder = 'part of a URL, e.g. /checkout' } = {}) {
  let timer;
  const input = h('input', {
    type: 'search', value: ctx.state.q, placeholder, id: 'filter', autocomplete: 'off', spellcheck: 'false',
    dataset: { keep: 'filter' },
  });
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctx.navigate({ q: input.value.trim(), offset: 0 }, { replace: true }), 250);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      clearTimeout(timer);
      ctx.navigate({ q: input.value.trim(), offset: 0 }, { replace: true });
    }
  });
  return h('label', { class: 'filter' }, label, ' ', input);
}

export function pageLink(ctx, site, page, text, extra = {}) {
  return ctx.link({ view: 'page', site, page, metric: '', offset: 0, q: '', sort: '', order: '', alert: '', ...extra },
    text ?? f.pagePath(page, site), { class: 'page-key', title: page || null });
}

export function emptyState(title, ...body) {
  return h('section', { class: 'empty' }, h('h2', null, title), ...body);
}

/** A scrollable table wrapper that keyboard users can scroll too. */
export function scrollBox(label, table, key) {
  return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': label, dataset: { keep: key } }, table);
}

// The collector's rule for a site record's `quiet`, said on the page.
export const QUIET_RULE = 'A site is quiet when its last beacon is more than 1 hour old while it sent beacons within the last 7 days.';

export function lastBeacon(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: f.dateTime(iso) }, f.ago(iso));
}
