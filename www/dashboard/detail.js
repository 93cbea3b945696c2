// Page detail (or a whole site, without `page`): what to fix first (from
// attribution); per metric the p75 over time with its p50-p95 band and
// threshold lines, the value histogram and the form-factor split; the
// navigation-type mix; the alert history.
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';
import { bandChart, histogram } from './charts.js';
import * as fixFirst from './fixfirst.js';

export async function load(ctx) {
  const { state } = ctx;
  const site = await ctx.siteOrFirst();
  if (!site) return { site: null };
  const page = state.page || '';
  const common = { site, page, ...ctx.common };
  const [detail, series, alerts, fix] = await Promise.all([
    api(`/v1/page${qs(common)}`).catch((error) => ({ error })),
    Promise.all(f.METRICS.map((metric) => api(`/v1/timeseries${qs({ ...common, metric })}`).catch((error) => ({ error })))),
    api(`/v1/alerts${qs({ site, page: page || '', state: 'all', limit: 1000, history: 50 })}`).catch((error) => ({ error })),
    fixFirst.load(common),
  ]);
  return { site, page, detail, series, alerts, fix };
}

export function render(ctx, data) {
  if (!data.site) return w.emptyState('No sites yet', h('p', null, 'No beacons have arrived yet.'));
  const { state } = ctx;
  const { site, page, detail } = data;
  const crumbs = h('nav', { class: 'crumbs small', 'aria-label': 'Breadcrumb' },
    ctx.link({ view: 'overview', page: '', metric: '', alert: '' }, site), ' › ',
    ctx.link({ view: 'pages', page: '', metric: '', alert: '' }, 'Pages'), ' › ',
    h('span', { 'aria-current': 'page' }, page ? f.pagePath(page, site) : 'All pages'));
  const title = h('h1', { class: 'page-title' },
    h('span', { class: 'muted' }, page ? 'Page · ' : 'Site · '),
    h('span', { class: 'page-key', dataset: { metric: 'page', value: page || '' } }, page ? f.pageText(page) : `All pages of ${site}`));
  const head = h('header', { class: 'view-head' }, crumbs, title,
    h('p', { class: 'muted' }, `${f.FF_TEXT[state.formFactor]}, ${f.WINDOW_TEXT[state.window]}`));
  if (detail.error) {
    const missing = detail.error.status === 404;
    return [head, h('p', { class: missing ? 'banner-warn' : 'error', role: 'alert' },
      missing ? `No reports for this ${page ? 'page' : 'site'} in the ${f.WINDOW_TEXT[state.window]}. Try a longer window or another device type.`
        : `Could not load this page: ${detail.error.message}`),
    alertHistory(ctx, data)];
  }
  const open = page && /^https?:\/\//.test(page)
    ? h('a', { href: page, rel: 'noopener noreferrer', target: '_blank', class: 'small' }, 'Open the page ↗') : null;
  const facts = h('p', { class: 'facts' },
    w.cwvBadge(detail.coreWebVitals), ' · ',
    fig('pageViews', 'pageViews', detail.pageViews, f.int(detail.pageViews)), ' page views · last beacon ', w.lastBeacon(detail.lastBeaconAt),
    open ? [' · ', open] : null);
  const jump = h('nav', { class: 'jump small', 'aria-label': 'Metrics on this page' },
    f.METRICS.map((m) => ctx.link({ metric: m }, m, { class: state.metric === m ? 'current' : null, 'aria-current': state.metric === m ? 'true' : null, dataset: { jump: m } })));
  const sections = f.METRICS.map((m, i) => metricSection(ctx, m, detail.metrics?.[m], data.series[i], detail));
  return [head, facts, jump,
    fixFirst.render(data.fix),
    ...sections, navigationMix(detail), alertHistory(ctx, data)];
}

function metricSection(ctx, metric, m, series, detail) {
  const selected = ctx.state.metric === metric;
  const section = h('section', { id: `metric-${metric}`, class: `metric-detail card${selected ? ' selected' : ''}`, 'aria-labelledby': `h-${metric}`, dataset: { section: metric } },
    h('h2', { id: `h-${metric}` }, h('abbr', { title: f.NAMES[metric] }, metric), ' ', h('span', { class: 'muted' }, f.NAMES[metric])));
  if (!m || !m.count) {
    // Element.append would print a null as "null".
    section.append(h('p', { class: 'muted' }, 'No reports in this window.'));
    if (m && m.coverage != null) section.append(h('p', { class: 'small' }, 'Reported on ', fig(metric, 'coverage', m.coverage, f.pct(m.coverage)), ' of page views.'));
    return section;
  }
  const thresholds = m.thresholds || series?.thresholds || f.THRESHOLDS[metric];
  const width = Math.max(300, Math.min(900, ctx.width - 40));
  section.append(
    h('div', { class: 'detail-top' },
      w.p75Block(metric, m, detail.lowSampleBelow ?? 200),
      h('div', null,
        w.distBar(metric, m.histogram),
        h('p', { class: 'small' }, fig(metric, 'count', m.count, f.int(m.count)), ' samples',
          m.coverage != null ? [' · on ', fig(metric, 'coverage', m.coverage, f.pct(m.coverage)), ' of page views'] : null,
          ' · p50 ', fig(metric, 'p50', m.p50, f.value(metric, m.p50)), ' · p95 ', fig(metric, 'p95', m.p95, f.value(metric, m.p95))))),
    h('h3', null, 'p75 over time'),
    series && !series.error ? bandChart(series.points || [], { metric, thresholds, step: series.step, width })
      : h('p', { class: 'error' }, 'p75 over time unavailable', series?.error ? `: ${series.error.message}` : ''),
    h('div', { class: 'detail-bottom' },
      h('div', null, h('h3', null, 'Values'),
        m.distribution ? histogram(m.distribution, { metric, thresholds, width: Math.max(280, Math.min(560, width * 0.6)) }) : h('p', { class: 'muted' }, 'No histogram.')),
      h('div', null, h('h3', null, 'By device'), formFactorTable(metric, m.formFactors))));
  return section;
}

function formFactorTable(metric, split) {
  if (!split) return h('p', { class: 'muted' }, 'No split by device.');
  return h('table', { class: 'data ff-table' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col', class: 'num' }, 'p75'), h('th', { scope: 'col', class: 'num' }, 'Samples'))),
    h('tbody', null, ['phone', 'tablet', 'desktop'].map((ff) => {
      const x = split[ff];
      return h('tr', { dataset: { formFactor: ff } }, h('th', { scope: 'row' }, f.FF_TEXT[ff]),
        x && x.count ? w.p75Cell(metric, x.p75, x.rating) : h('td', { class: 'num muted' }, '–'),
        h('td', { class: 'num' }, fig(metric, 'count', x?.count ?? 0, f.int(x?.count ?? 0))));
    })));
}

function navigationMix(detail) {
  const types = detail.navigationTypes || {};
  const total = f.NAV_TYPES.reduce((n, t) => n + (types[t] || 0), 0);
  const section = h('section', { class: 'card', 'aria-labelledby': 'nav-h', dataset: { section: 'navigation' } },
    h('h2', { id: 'nav-h' }, 'How visitors arrived'),
    h('p', { class: 'muted small' }, 'Page views by navigation type. Back/forward-cache restores and prerenders are usually fast; many reloads can mean a problem.'));
  if (!total) {
    section.append(h('p', { class: 'muted' }, 'No page views in this window.'));
    return section;
  }
  section.append(
    h('div', { class: 'stack-bar', 'aria-hidden': 'true' },
      f.NAV_TYPES.filter((t) => types[t]).map((t) => h('span', { class: `seg nav-${t}`, style: `flex-grow:${types[t]}`, title: `${t}: ${types[t]}` }))),
    h('table', { class: 'data nav-table' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Navigation type'), h('th', { scope: 'col', class: 'num' }, 'Page views'), h('th', { scope: 'col', class: 'num' }, 'Share'))),
      h('tbody', null, f.NAV_TYPES.map((t) => h('tr', { dataset: { navigationType: t } },
        h('th', { scope: 'row' }, h('span', { class: `swatch nav-${t}`, 'aria-hidden': 'true' }), ' ', t),
        h('td', { class: 'num' }, fig('navigationType', t, types[t] || 0, f.int(types[t] || 0))),
        h('td', { class: 'num' }, fig('navigationShare', t, (types[t] || 0) / total, f.pct((types[t] || 0) / total))))))));
  return section;
}

export function alertHistory(ctx, data) {
  const section = h('section', { class: 'card', id: 'alert-history', 'aria-labelledby': 'alerts-h' },
    h('h2', { id: 'alerts-h' }, data.page ? 'Alerts on this page' : 'Alerts on this site'));
  const { alerts } = data;
  if (!alerts || alerts.error) {
    section.append(h('p', { class: 'muted' }, 'Alert history unavailable', alerts?.error ? `: ${alerts.error.message}` : '', '.'));
    return section;
  }
  // The API's page filter is a glob: keep exactly this page's alerts.
  const list = alerts.alerts.filter((a) => !data.page || a.page === data.page);
  if (!list.length) {
    section.append(h('p', { class: 'muted' }, 'No alert has fired here (alerts kept for the history retention, 90 days by default).'));
    return section;
  }
  const highlight = ctx.state.alert;
  section.append(h('ol', { class: 'alert-history' }, list.map((a) => {
    const on = String(a.id) === String(highlight);
    return h('li', { class: `alert-item${on ? ' highlighted' : ''}`, id: `alert-${a.id}`, 'aria-current': on ? 'true' : null, dataset: { alertId: a.id, state: a.state } },
      h('p', null, severityBadge(a.severity), ' ', h('strong', null, a.rule), ' · ', a.metric || '', ' · ', f.FF_TEXT[a.formFactor] || a.formFactor, ' · ',
        stateBadge(a.state), ' since ', h('time', { datetime: a.since, title: f.dateTime(a.since) }, f.ago(a.since)),
        a.acknowledged ? [' · acknowledged by ', a.acknowledged.by] : null,
        !data.page ? [' · ', w.pageLink(ctx, a.site, a.page, null, { alert: a.id, metric: a.metric || '' })] : null),
      h('p', { class: 'small' }, valueVsThreshold(a)),
      a.history && a.history.length ? h('ul', { class: 'events small' }, a.history.map((e) => h('li', null,
        h('time', { datetime: e.at }, f.dateTime(e.at)), ' ', e.event,
        e.value != null && a.metric ? [' at ', f.value(a.metric, e.value)] : null,
        e.sampleCount != null ? [' (', f.int(e.sampleCount), ' samples)'] : null,
        e.by ? [' by ', e.by] : null,
        e.comment ? [': “', e.comment, '”'] : null))) : null);
  })));
  return section;
}

export function severityBadge(severity) {
  const mark = { critical: '‼', warning: '!', info: 'i' }[severity] || '·';
  return h('span', { class: `severity ${severity || 'none'}` }, h('span', { 'aria-hidden': 'true', class: 'sev-mark' }, mark), ' ', severity || 'no severity');
}

export function stateBadge(state) {
  return h('span', { class: `state ${state}` }, state.replace('_', ' '));
}

export function valueVsThreshold(a) {
  const m = a.metric;
  const v = (x) => (m && f.THRESHOLDS[m] ? f.value(m, x) : f.int(x));
  if (a.value == null) return h('span', { class: 'muted' }, 'no value', a.sampleCount != null ? ` (${f.int(a.sampleCount)} samples)` : '');
  return h('span', null,
    fig(m || 'value', 'alertValue', a.value, v(a.value)),
    a.threshold != null ? [a.value > a.threshold ? ' > ' : ' ≤ ', fig(m || 'value', 'alertThreshold', a.threshold, v(a.threshold)), ' threshold'] : null,
    a.baseline != null ? [' (baseline ', v(a.baseline), ')'] : null,
    ' · ', fig('sampleCount', 'sampleCount', a.sampleCount, f.int(a.sampleCount)), ' samples');
}
