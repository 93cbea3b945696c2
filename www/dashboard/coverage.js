// Coverage: per site and per page, the share of page views (distinct
// pageViewIds) that reported each metric, and when the last beacon came,
// with a warning for a site that has gone quiet.
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';
import { PAGE_SIZE } from './pages.js';

export async function load(ctx) {
  const { state, common } = ctx;
  const { summary, site } = await ctx.siteSummary();
  const { sort, order } = ctx.sorting;
  const list = site
    ? await api(`/v1/pages${qs({ site, ...common, q: f.pageQuery(state.q), sort, order, offset: state.offset, limit: PAGE_SIZE })}`)
    : null;
  return { summary, site, list };
}

function coverageCells(coverage) {
  return f.METRICS.map((m) => {
    const c = coverage(m);
    return h('td', { class: 'num', dataset: { metricCell: m } },
      c == null ? h('span', { class: 'muted' }, '–') : [h('span', { class: 'cov-bar', 'aria-hidden': 'true' }, h('span', { style: `width:${Math.round(c * 100)}%` })), fig(m, 'coverage', c, f.pct(c))]);
  });
}

export function render(ctx, data) {
  const { state } = ctx;
  const { summary, site, list } = data;
  const head = h('header', { class: 'view-head' },
    h('h1', null, 'Coverage'),
    h('p', { class: 'muted' }, `${f.FF_TEXT[state.formFactor]}, ${f.WINDOW_TEXT[state.window]}`));
  const explain = h('p', { class: 'small' },
    'Coverage is the share of page views (distinct page view ids) that reported a metric. ',
    'INP needs an interaction and FCP/LCP a visible paint, so their coverage is lower than TTFB’s; a sudden drop usually means the agent broke. ',
    h('span', { id: 'quiet-rule' }, w.QUIET_RULE));
  const sites = summary.sites;
  if (!sites.length) return [head, explain, w.emptyState('No sites in this window', h('p', null, 'Nothing was received in the ', f.WINDOW_TEXT[state.window], '.'))];
  const siteRows = sites.map((r) => h('tr', { dataset: { site: r.site }, class: r.site === site ? 'current' : null },
    h('th', { scope: 'row' }, ctx.link({ site: r.site, offset: 0, q: '' }, r.site, { 'aria-current': r.site === site ? 'true' : null })),
    h('td', null, r.quiet
      ? h('span', { class: 'quiet warning-text', dataset: { metric: 'quiet', value: 'true' } }, '⚠ Quiet')
      : h('span', { class: 'sending', dataset: { metric: 'quiet', value: 'false' } }, '✓ Sending')),
    h('td', null, w.lastBeacon(r.lastBeaconAt)),
    h('td', { class: 'num' }, fig('pageViews', 'pageViews', r.pageViews, f.int(r.pageViews))),
    ...coverageCells((m) => r.metrics?.[m]?.coverage ?? (r.pageViews ? 0 : null))));
  const quietOnes = sites.filter((r) => r.quiet);
  const warning = quietOnes.length
    ? h('p', { class: 'banner-warn', role: 'alert' }, '⚠ ', quietOnes.length === 1 ? 'One site has gone quiet: ' : `${quietOnes.length} sites have gone quiet: `,
      quietOnes.map((r, i) => [i ? ', ' : '', h('strong', null, r.site), ' (last beacon ', w.lastBeacon(r.lastBeaconAt), ')']), '.')
    : null;
  const siteTable = h('table', { class: 'data coverage-table', 'aria-describedby': 'quiet-rule' },
    h('caption', { class: 'sr-only' }, 'Sites: status, last beacon, page views and coverage of each metric'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Site'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Last beacon'),
      h('th', { scope: 'col', class: 'num' }, 'Page views'), ...f.METRICS.map((m) => h('th', { scope: 'col', class: 'num' }, m)))),
    h('tbody', null, siteRows));
  const out = [head, warning, explain, h('h2', null, 'Sites'), w.scrollBox('Sites', siteTable, 'cov-sites')];
  if (!list) return out;
  const total = list.total ?? list.pages.length;
  out.push(h('h2', null, 'Pages of ', site), h('div', { class: 'toolbar' }, w.filterBox(ctx),
    h('span', { class: 'muted small' }, fig('total', 'matching', total, f.int(total)), ' pages')));
  if (!list.pages.length) {
    out.push(h('p', { class: 'muted' }, state.q ? `No page key contains “${state.q}”.` : 'No pages in this window.'));
    return out;
  }
  const rows = list.pages.map((p) => h('tr', { dataset: { page: p.page } },
    h('th', { scope: 'row', class: 'page-cell' }, w.pageLink(ctx, site, p.page)),
    h('td', null, w.lastBeacon(p.lastBeaconAt)),
    h('td', { class: 'num' }, fig('pageViews', 'pageViews', p.pageViews, f.int(p.pageViews))),
    ...coverageCells((m) => p.coverage?.[m] ?? (p.pageViews ? 0 : null))));
  out.push(w.scrollBox('Pages', h('table', { class: 'data coverage-table' },
    h('caption', { class: 'sr-only' }, `Pages of ${site}: last beacon, page views and coverage of each metric`),
    h('thead', null, h('tr', null, w.sortHeader('Page', 'page', ctx, { numeric: false }), h('th', { scope: 'col' }, 'Last beacon'),
      w.sortHeader('Page views', 'pageViews', ctx), ...f.METRICS.map((m) => h('th', { scope: 'col', class: 'num' }, m)))),
    h('tbody', null, rows)), 'cov-pages'),
  w.pager(ctx, { total, offset: list.offset ?? state.offset, limit: PAGE_SIZE }));
  return out;
}
