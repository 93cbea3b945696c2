// Overview: one site's Core Web Vitals assessment and the five metrics,
// each with p75 (and its interval), rating, distribution, samples,
// coverage and p75 over time; then the pages to look at first.
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';
import { sparkline } from './charts.js';

export async function load(ctx) {
  const { common, state } = ctx;
  const rest = (site) => Promise.all([
    Promise.all(f.METRICS.map((metric) => api(`/v1/timeseries${qs({ site, metric, ...common })}`).catch((error) => ({ error })))),
    api(`/v1/pages${qs({ site, ...common, sort: 'worst', limit: 5 })}`).catch((error) => ({ error })),
  ]);
  // Every site's summary gives the picker's list, the figures and `quiet`
  // in one answer. With the site in the URL the charts and the worst pages
  // are asked for at the same time.
  const early = state.site ? rest(state.site) : null;
  const { summary, site } = await ctx.siteSummary();
  if (!site) return { summary, site: null };
  const [series, worst] = await (site === state.site && early ? early : rest(site));
  return { summary, site, series, worst };
}

export function render(ctx, data) {
  const { state } = ctx;
  const { summary, site } = data;
  if (!site) return noData(ctx);
  const record = summary.sites.find((r) => r.site === site);
  const below = summary.lowSampleBelow ?? 200;
  const head = h('header', { class: 'view-head' },
    h('h1', null, h('span', { class: 'muted' }, 'Overview · '), h('span', { class: 'site-name', dataset: { metric: 'site', value: site } }, site)),
    h('p', { class: 'muted' }, `${f.FF_TEXT[state.formFactor]}, ${f.WINDOW_TEXT[state.window]} (${f.dateTime(summary.from)} – ${f.dateTime(summary.to)})`));
  if (!record) {
    const known = ctx.siteRecord(site);
    return [head, known && known.quiet ? quietBanner(known) : null,
      w.emptyState(`No reports from ${site} in the ${f.WINDOW_TEXT[state.window]}`,
        h('p', null, 'Pick a longer window or another device type, or another site above.'))];
  }
  const quiet = record.quiet ? quietBanner(record) : null;
  const facts = h('p', { class: 'facts' },
    w.cwvBadge(record.coreWebVitals), ' · ',
    fig('pageViews', 'pageViews', record.pageViews, f.int(record.pageViews)), ' page views · last beacon ', w.lastBeacon(record.lastBeaconAt), ' · ',
    w.pageLink(ctx, site, null, 'Site details →', { page: '' }));
  const cards = f.METRICS.map((metric, i) => card(ctx, site, metric, record.metrics[metric], data.series[i], below));
  return [
    head, quiet, facts,
    h('section', { 'aria-labelledby': 'cwv-h' }, h('h2', { id: 'cwv-h' }, 'Core Web Vitals'),
      h('p', { class: 'muted small' }, 'The assessment passes when the p75 of LCP, INP and CLS are all good, as the Chrome UX Report decides it.'),
      h('div', { class: 'cards' }, cards.slice(0, 3))),
    h('section', { 'aria-labelledby': 'other-h' }, h('h2', { id: 'other-h' }, 'Other metrics'),
      h('div', { class: 'cards' }, cards.slice(3))),
    worstPages(ctx, site, data.worst),
  ];
}

function card(ctx, site, metric, m, series, below) {
  const title = h('h3', null, h('abbr', { title: f.NAMES[metric] }, metric), ' ', h('span', { class: 'muted small' }, f.NAMES[metric]));
  const more = w.pageLink(ctx, site, null, `${metric} details →`, { page: '', metric });
  if (!m || !m.count) {
    return h('article', { class: 'card metric-card', dataset: { card: metric } }, title,
      h('p', { class: 'muted' }, 'No reports in this window.'),
      m && m.coverage != null ? h('p', { class: 'small' }, 'Reported on ', fig(metric, 'coverage', m.coverage, f.pct(m.coverage)), ' of page views') : null);
  }
  const chart = series && !series.error
    ? sparkline(series.points || [], { metric, thresholds: series.thresholds || f.THRESHOLDS[metric] })
    : h('p', { class: 'muted small' }, 'p75 over time unavailable', series && series.error ? `: ${series.error.message}` : '');
  return h('article', { class: `card metric-card ${m.rating}`, dataset: { card: metric } },
    title,
    w.p75Block(metric, m, below),
    w.distBar(metric, m.histogram),
    h('p', { class: 'small' },
      fig(metric, 'count', m.count, f.int(m.count)), ' samples',
      m.coverage != null ? [' · on ', fig(metric, 'coverage', m.coverage, f.pct(m.coverage)), ' of page views'] : null),
    chart,
    h('p', { class: 'small' }, more));
}

function quietBanner(record) {
  return h('p', { class: 'banner-warn', role: 'alert', dataset: { metric: 'quiet', value: 'true' } }, '⚠ ',
    h('strong', null, 'This site has gone quiet: '),
    'its last beacon arrived ', w.lastBeacon(record.lastBeaconAt),
    ', though it was sending within the last 7 days. Is the agent still on the page, and can it reach this collector?');
}

function worstPages(ctx, site, worst) {
  const section = h('section', { 'aria-labelledby': 'worst-h' }, h('h2', { id: 'worst-h' }, 'Where to look first'));
  if (!worst || worst.error) {
    section.append(h('p', { class: 'muted' }, 'The page list is unavailable', worst && worst.error ? `: ${worst.error.message}` : '', '.'));
    return section;
  }
  section.append(h('p', { class: 'muted small' }, 'Pages by their worst Core Web Vital at p75 (poor first, then needs improvement, then good), then by page views.'));
  if (!worst.pages.length) {
    section.append(h('p', { class: 'muted' }, 'No pages in this window.'));
    return section;
  }
  const rows = worst.pages.map((p) => h('tr', { dataset: { page: p.page } },
    h('th', { scope: 'row' }, w.pageLink(ctx, site, p.page)),
    h('td', null, w.cwvBadge(p.coreWebVitals, { label: false })),
    ...f.CORE.map((m) => w.p75Cell(m, p.p75?.[m], p.rating?.[m], { low: p.lowSample?.[m], interval: p.p75Interval?.[m], count: p.metrics?.[m], below: worst.lowSampleBelow })),
    h('td', { class: 'num' }, fig('pageViews', 'pageViews', p.pageViews, f.int(p.pageViews)))));
  section.append(w.scrollBox('Worst pages', h('table', { class: 'data pages-table' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Page'), h('th', { scope: 'col' }, 'Assessment'),
      ...f.CORE.map((m) => h('th', { scope: 'col', class: 'num' }, `${m} p75`)), h('th', { scope: 'col', class: 'num' }, 'Page views'))),
    h('tbody', null, rows)), 'worst'),
  h('p', null, ctx.link({ view: 'pages', sort: 'worst', order: '', offset: 0, q: '' }, `All ${f.int(worst.total ?? worst.pages.length)} pages, worst first →`)));
  return section;
}

function noData(ctx) {
  return w.emptyState('No beacons yet',
    h('p', null, 'This collector has not received any Core Web Vitals in the ', f.WINDOW_TEXT[ctx.state.window], '.'),
    h('p', null, 'Open the ', h('a', { href: '/demo/' }, 'demo page'), ', click around, then come back: leaving the page sends its metrics. ',
      'Or add the agent to your own site (see the README) and point it at ', h('code', null, `${location.origin}/v1/beacon`), '.'));
}
