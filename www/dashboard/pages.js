// Pages: every page key of a site with the p75 of each metric, its sample
// count and the page views; sorted and filtered by the server and read 50
// rows at a time, so 10,000 pages cost what 50 do.
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';

export const PAGE_SIZE = 50;
export const WORST_RULE = 'Worst first: pages whose worst Core Web Vital (LCP, INP or CLS at p75) is poor come first, then needs improvement, then good, then pages without those metrics; ties go to the page with more page views, then by page key.';

export async function load(ctx) {
  const { state } = ctx;
  const site = await ctx.siteOrFirst();
  if (!site) return { site: null };
  const { sort, order } = ctx.sorting;
  const list = await api(`/v1/pages${qs({
    site, ...ctx.common, q: f.pageQuery(state.q), sort, order, offset: state.offset, limit: PAGE_SIZE,
  })}`);
  return { site, list };
}

export function render(ctx, data) {
  if (!data.site) return w.emptyState('No sites yet', h('p', null, 'No beacons have arrived. Open the ', h('a', { href: '/demo/' }, 'demo page'), ' to send some.'));
  const { state } = ctx;
  const { list, site } = data;
  const total = list.total ?? list.pages.length;
  const head = h('header', { class: 'view-head' },
    h('h1', null, h('span', { class: 'muted' }, 'Pages · '), h('span', { class: 'site-name' }, site)),
    h('p', { class: 'muted' }, `${f.FF_TEXT[state.formFactor]}, ${f.WINDOW_TEXT[state.window]}. Select a page for its details.`));
  const rule = h('p', { class: 'rule small', id: 'sort-rule' },
    ctx.sorting.sort === 'worst' ? WORST_RULE : ['Sorted by ', sortName(ctx.sorting.sort), ctx.sorting.order === 'asc' ? ', ascending. ' : ', descending. ', ctx.link({ sort: 'worst', order: '', offset: 0 }, 'Back to worst first')]);
  const toolbar = h('div', { class: 'toolbar' }, w.filterBox(ctx),
    h('span', { class: 'muted small', 'aria-live': 'polite' }, fig('total', 'matching', total, f.int(total)), state.q ? ' pages match' : ' pages'));
  if (!list.pages.length) {
    return [head, toolbar, rule, h('p', { class: 'muted empty' }, state.q ? `No page key contains “${state.q}”.` : 'No pages in this window.')];
  }
  const rows = list.pages.map((p) => h('tr', { dataset: { page: p.page } },
    h('th', { scope: 'row', class: 'page-cell' }, w.pageLink(ctx, site, p.page)),
    h('td', { class: 'num' }, fig('pageViews', 'pageViews', p.pageViews, f.int(p.pageViews))),
    h('td', null, w.cwvBadge(p.coreWebVitals, { label: false })),
    ...f.METRICS.map((m) => w.p75Cell(m, p.p75?.[m], p.rating?.[m], { low: p.lowSample?.[m], interval: p.p75Interval?.[m], count: p.metrics?.[m], below: list.lowSampleBelow })),
    h('td', { class: 'num' }, fig('count', 'count', p.count, f.int(p.count)))));
  const table = h('table', { class: 'data pages-table', 'aria-describedby': 'sort-rule' },
    h('caption', { class: 'sr-only' }, `Pages of ${site}, ${f.int(total)} in all`),
    h('thead', null, h('tr', null,
      w.sortHeader('Page', 'page', ctx, { numeric: false }),
      w.sortHeader('Page views', 'pageViews', ctx),
      w.sortHeader('Assessment', 'worst', ctx, { numeric: false, title: 'Sort worst first' }),
      ...f.METRICS.map((m) => w.sortHeader(m, m, ctx, { title: `Sort by ${m} p75` })),
      w.sortHeader('Samples', 'count', ctx, { title: 'Sort by reports of all metrics' }))),
    h('tbody', null, rows));
  return [head, toolbar, rule,
    h('p', { class: 'muted small' }, `Each cell: p75, its rating, and the number of samples (n); ⚑ marks a low sample (fewer than ${f.int(list.lowSampleBelow ?? 200)}, the alert minimum). Hover a cell for its 95% interval.`),
    w.scrollBox('Pages', table, 'pages-scroll'),
    w.pager(ctx, { total, offset: list.offset ?? state.offset, limit: PAGE_SIZE })];
}

function sortName(sort) {
  return { page: 'page key', pageViews: 'page views', count: 'samples' }[sort] || `${sort} p75 (pages without it last)`;
}
