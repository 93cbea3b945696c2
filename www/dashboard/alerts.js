// Alerts: the active ones (pending, firing) and those that changed state in
// the last 7 days, of every site this key may read; acknowledge and
// silence them from here.
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';
import { severityBadge, stateBadge, valueVsThreshold } from './detail.js';

export async function load() {
  const [alerts, silences] = await Promise.all([
    api(`/v1/alerts${qs({ since: '7d', limit: 1000, history: 0 })}`),
    api('/v1/silences').catch((error) => ({ error })),
  ]);
  return { alerts, silences };
}

/** The dashboard link of an alert, on this origin (public_url may differ). */
export function alertHref(a) {
  let params;
  try { params = new URL(a.dashboard, location.href).searchParams; } catch { params = new URLSearchParams(); }
  const q = new URLSearchParams();
  q.set('view', 'page');
  q.set('site', params.get('site') || a.site);
  q.set('page', params.get('page') || a.page);
  q.set('metric', params.get('metric') || a.metric || '');
  for (const k of ['window', 'formFactor']) if (params.get(k)) q.set(k, params.get(k));
  if (!q.get('formFactor') && a.formFactor && a.formFactor !== 'all') q.set('formFactor', a.formFactor);
  q.set('alert', String(a.id));
  return `/?${q}`;
}

function table(ctx, list, { actions }) {
  return h('table', { class: 'data alerts-table' },
    h('thead', null, h('tr', null, ...['Severity', 'Alert', 'Page', 'Device', 'State', 'Since', 'Value vs threshold', 'Acknowledged', actions ? 'Actions' : null]
      .filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, list.map((a) => h('tr', { dataset: { alertId: a.id, state: a.state } },
      h('td', null, severityBadge(a.severity)),
      h('td', null, h('strong', null, a.rule), h('br'), h('span', { class: 'muted small' }, a.metric || '')),
      h('td', { class: 'page-cell' }, h('span', { class: 'muted small' }, a.site), h('br'),
        ctx.link(null, f.pagePath(a.page, a.site), { href: alertHref(a), class: 'page-key alert-link', title: a.page, dataset: { keep: `alert-link-${a.id}` } })),
      h('td', null, f.FF_TEXT[a.formFactor] || a.formFactor),
      h('td', null, stateBadge(a.state), a.silencedBy && a.silencedBy.length ? [' ', h('span', { class: 'silenced' }, '🔕 silenced')] : null),
      h('td', null, h('time', { datetime: a.since, title: f.dateTime(a.since) }, f.ago(a.since))),
      h('td', { class: 'small' }, valueVsThreshold(a)),
      h('td', { class: 'small' }, a.acknowledged
        ? [h('span', { dataset: { metric: 'acknowledgedBy', value: a.acknowledged.by } }, a.acknowledged.by), ' ', h('time', { datetime: a.acknowledged.at, title: f.dateTime(a.acknowledged.at) }, f.ago(a.acknowledged.at)),
          a.acknowledged.comment ? [h('br'), h('q', null, a.acknowledged.comment)] : null]
        : h('span', { class: 'muted' }, 'no')),
      actions ? h('td', { class: 'actions' },
        a.state === 'firing' && !a.acknowledged
          ? h('button', { type: 'button', dataset: { action: 'ack', id: a.id, keep: `ack-${a.id}` }, on: { click: () => ctx.acknowledge(a) } }, 'Acknowledge') : null,
        h('button', { type: 'button', dataset: { action: 'silence', id: a.id, keep: `silence-${a.id}` }, on: { click: () => ctx.silence(a) } }, 'Silence')) : null))));
}

const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const STATE_RANK = { firing: 0, pending: 1, insufficient_data: 2, resolved: 3, ok: 4 };

/** Most urgent first: severity, then state, then the latest change. */
function byUrgency(a, b) {
  return (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3)
    || (STATE_RANK[a.state] ?? 5) - (STATE_RANK[b.state] ?? 5)
    || Date.parse(b.since) - Date.parse(a.since)
    || b.id - a.id;
}

export function render(ctx, data) {
  const all = data.alerts.alerts.slice().sort(byUrgency);
  const active = all.filter((a) => a.state === 'firing' || a.state === 'pending');
  const recent = all.filter((a) => !(a.state === 'firing' || a.state === 'pending'));
  const firing = active.filter((a) => a.state === 'firing').length;
  const out = [
    h('header', { class: 'view-head' }, h('h1', null, 'Alerts'),
      h('p', { class: 'muted' }, 'Every site this collector watches. ', fig('firing', 'firing', firing, f.int(firing)), ' firing, ',
        fig('pending', 'pending', active.length - firing, f.int(active.length - firing)), ' pending. Rules: ', h('a', { href: '/v1/alerts/rules' }, '/v1/alerts/rules'), '.')),
    h('h2', null, 'Active'),
    active.length ? w.scrollBox('Active alerts', table(ctx, active, { actions: true }), 'alerts-active')
      : h('p', { class: 'ok-text' }, '✓ No alert is pending or firing.'),
    h('h2', null, 'Recent (last 7 days)'),
    recent.length ? w.scrollBox('Recent alerts', table(ctx, recent, { actions: true }), 'alerts-recent')
      : h('p', { class: 'muted' }, 'No other alert changed state in the last 7 days.'),
  ];
  out.push(h('h2', null, 'Silences'));
  const sil = data.silences;
  if (sil.error) out.push(h('p', { class: 'muted' }, 'Silences unavailable: ', sil.error.message));
  else if (!sil.silences || !sil.silences.length) out.push(h('p', { class: 'muted' }, 'No active or planned silence.'));
  else {
    out.push(h('ul', { class: 'silences' }, sil.silences.map((x) => h('li', { dataset: { silenceId: x.id } },
      x.active ? '🔕 active' : 'planned', ' until ', h('time', { datetime: x.endsAt }, f.dateTime(x.endsAt)), ': ',
      Object.entries(x.matchers).map(([k, v], i) => [i ? ', ' : '', h('code', null, k), ' = ', h('code', null, v)]),
      ' · by ', x.createdBy, x.comment ? [' · “', x.comment, '”'] : null, ' ',
      h('button', { type: 'button', dataset: { action: 'expire', id: x.id, keep: `expire-${x.id}` }, on: { click: () => ctx.expireSilence(x) } }, 'End now')))));
  }
  return out;
}
