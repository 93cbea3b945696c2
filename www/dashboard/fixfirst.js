// "What to fix first" on the page detail: the elements, layout-shift
// sources, interaction targets and scripts behind a page's poor LCP, CLS
// and INP samples (from /v1/fix-first, fed by agents that send
// attribution), the most poor samples first, and each metric's subparts
// at p75 (where the time goes).
import { h, fig } from './dom.js';
import { api, qs } from './api.js';
import * as f from './format.js';
import * as w from './widgets.js';

/** Actions listed (the API gives up to 10 per metric and kind). */
const SHOWN = 8;

const KIND_TEXT = {
  element: 'LCP element',
  'shift-source': 'Largest layout shift',
  'interaction-target': 'Interaction target',
  script: 'Script (longest in the frame)',
};

const SUBPART_TEXT = {
  timeToFirstByte: 'time to first byte',
  resourceLoadDelay: 'resource load delay',
  resourceLoadDuration: 'resource load duration',
  elementRenderDelay: 'element render delay',
  inputDelay: 'input delay',
  processingDuration: 'processing',
  presentationDelay: 'presentation delay',
};

/** In the order the time passes. */
const SUBPARTS = {
  LCP: ['timeToFirstByte', 'resourceLoadDelay', 'resourceLoadDuration', 'elementRenderDelay'],
  INP: ['inputDelay', 'processingDuration', 'presentationDelay'],
};

/** The panel's data: a failure leaves the rest of the page standing. */
export function load(params) {
  return api(`/v1/fix-first${qs(params)}`).catch((error) => ({ error }));
}

export function render(fix) {
  const section = h('section', { id: 'fix-first', class: 'fix-first card', 'aria-labelledby': 'fix-first-h' },
    h('h2', { id: 'fix-first-h' }, 'What to fix first'));
  if (fix.error) {
    // 404: no reports in this window (the metric sections say so).
    if (fix.error.status === 404) return null;
    section.append(h('p', { class: 'error' }, `Unavailable: ${fix.error.message}`));
    return section;
  }
  const metrics = fix.metrics || {};
  const attributed = f.CORE.reduce((n, m) => n + (metrics[m]?.attributed || 0), 0);
  if (!attributed) {
    section.append(h('p', { class: 'muted', dataset: { fixFirst: 'none' } },
      'No attribution in this window. Start the agent with ', h('code', null, 'init({attribution: true})'),
      ' to see which element, layout shift, interaction or script makes LCP, CLS and INP poor.'));
    return section;
  }
  section.append(
    h('p', { class: 'muted small' }, 'From the reports that carry attribution, the causes with the most poor samples first. ',
      'The share is of all the metric’s poor samples on this ', fix.page ? 'page' : 'site', '.'),
    actionsTable(fix.actions || []),
    h('div', { class: 'fix-metrics' }, f.CORE.map((m) => metricNote(m, metrics[m]))));
  return section;
}

function actionsTable(actions) {
  const shown = actions.filter((a) => a.poor > 0).slice(0, SHOWN);
  if (!shown.length) return h('p', { class: 'good-note', dataset: { fixFirst: 'nothing-poor' } }, 'No poor LCP, CLS or INP sample among the attributed reports.');
  return h('table', { class: 'data fix-table' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'num' }, '#'),
      h('th', { scope: 'col' }, 'Metric'),
      h('th', { scope: 'col' }, 'Cause'),
      h('th', { scope: 'col', class: 'num', title: 'Poor samples naming it, and their share of all the metric’s poor samples' }, 'Poor samples'),
      h('th', { scope: 'col', class: 'num', title: 'The p75 of the reports naming it (scripts: of the script’s duration)' }, 'p75'),
      h('th', { scope: 'col', class: 'num' }, 'Samples'))),
    h('tbody', null, shown.map((a, i) => {
      return h('tr', { dataset: { rank: i + 1, metric: a.metric, kind: a.kind, target: a.target } },
        h('td', { class: 'num' }, String(i + 1)),
        h('td', null, h('abbr', { title: f.NAMES[a.metric] }, a.metric)),
        h('td', null, h('span', { class: 'small muted' }, KIND_TEXT[a.kind] || a.kind, a.firstParty === false ? ', third-party' : a.firstParty ? ', first-party' : '', ' '),
          h('code', { class: 'target' }, a.target)),
        h('td', { class: 'num' }, fig(a.metric, 'poor', a.poor, f.int(a.poor)), ' ',
          h('span', { class: 'small muted' }, '(', fig(a.metric, 'poorShare', a.poorShare, f.pct(a.poorShare)), ')')),
        // A script's p75 is its duration, not a value of the metric.
        a.kind === 'script' ? h('td', { class: 'num' }, fig(a.metric, 'p75', a.p75, f.ms(a.p75)))
          : w.p75Cell(a.metric, a.p75, f.rate(a.metric, a.p75)),
        h('td', { class: 'num' }, fig(a.metric, 'count', a.count, f.int(a.count))));
    })));
}

function metricNote(metric, m) {
  if (!m) return null;
  const parts = SUBPARTS[metric] && m.subparts
    ? SUBPARTS[metric].filter((k) => m.subparts[k] != null)
    : [];
  return h('div', { class: 'fix-metric', dataset: { fixMetric: metric } },
    h('h3', null, h('abbr', { title: f.NAMES[metric] }, metric)),
    h('p', { class: 'small' }, fig(metric, 'attributed', m.attributed, f.int(m.attributed)), ' of ', f.int(m.count),
      ' samples carry attribution; ', fig(metric, 'poorTotal', m.poor, f.int(m.poor)), ' poor in all.'),
    parts.length ? h('p', { class: 'small' }, 'At p75: ', parts.map((k, i) => [i ? ' · ' : '',
      SUBPART_TEXT[k], ' ', fig(metric, k, m.subparts[k], f.ms(m.subparts[k]))])) : null);
}
