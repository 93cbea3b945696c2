// The dashboard's shell: the view state lives in the URL (query string,
// history.pushState / popstate), the controls (site, window, device) and
// the views render from the collector's read API, and an auto-refresh
// every 30 s re-renders in place (scroll, focus, filter, sort and page of
// results kept).
import { h } from './dom.js';
import { api, qs, ApiError, allowKeyPrompt } from './api.js';
import * as f from './format.js';
import * as overview from './overview.js';
import * as pages from './pages.js';
import * as detail from './detail.js';
import * as coverage from './coverage.js';
import * as alerts from './alerts.js';

const VIEWS = { overview, pages, page: detail, coverage, alerts };
const VIEW_TEXT = { overview: 'Overview', pages: 'Pages', page: 'Page detail', coverage: 'Coverage', alerts: 'Alerts' };
const KEYS = ['view', 'site', 'page', 'metric', 'window', 'formFactor', 'q', 'sort', 'order', 'offset', 'alert'];
const DEFAULTS = { view: 'overview', site: '', page: '', metric: '', window: '28d', formFactor: 'all', q: '', sort: '', order: '', offset: 0, alert: '' };
const SORTS = ['worst', 'pageViews', 'count', 'page', ...f.METRICS];
const REFRESH_MS = 30000;
const SITE_KEY = 'vitalsign.site';
const BY_KEY = 'vitalsign.by';

const main = document.getElementById('main');
const status = document.getElementById('updated');

export function parseState(search) {
  const p = new URLSearchParams(search);
  const st = { ...DEFAULTS };
  for (const k of KEYS) if (p.has(k)) st[k] = p.get(k);
  if (!VIEWS[st.view]) st.view = 'overview';
  if (!f.WINDOWS.includes(st.window)) st.window = DEFAULTS.window;
  if (!f.FORM_FACTORS.includes(st.formFactor)) st.formFactor = 'all';
  if (!f.METRICS.includes(st.metric)) st.metric = '';
  if (!SORTS.includes(st.sort)) st.sort = '';
  if (!['asc', 'desc'].includes(st.order)) st.order = '';
  st.offset = Math.max(0, Number.parseInt(st.offset, 10) || 0);
  return st;
}

export function stateUrl(st) {
  const p = new URLSearchParams();
  for (const k of KEYS) {
    const v = st[k];
    if (v == null || v === '' || v === DEFAULTS[k]) continue;
    p.set(k, String(v));
  }
  const q = p.toString();
  return q ? `/?${q}` : '/';
}

let state = parseState(location.search);
let seq = 0;
let loading = false;
let lastUpdate = 0;
let last = null; // { state, data } of the view on screen
const sites = new Map(); // site -> its latest summary record

// ---- the context the views get ------------------------------------------

function sorting() {
  const sort = state.sort || (state.view === 'coverage' ? 'pageViews' : 'worst');
  return { sort, order: state.order || (sort === 'page' ? 'asc' : 'desc') };
}

function href(changes) {
  return stateUrl({ ...state, ...(changes || {}) });
}

function link(changes, kids, attrs = {}) {
  return h('a', { href: href(changes), ...attrs, dataset: { nav: '', ...(attrs.dataset || {}) } }, kids);
}

function learnSites(list) {
  // A summary record or a /v1/sites entry: keep what either told.
  for (const r of list || []) sites.set(r.site, { ...sites.get(r.site), ...r });
  fillSitePicker();
}

function pickDefaultSite(list) {
  if (!list.length) return '';
  let saved = null;
  try { saved = localStorage.getItem(SITE_KEY); } catch { /* no storage */ }
  if (saved && list.some((r) => r.site === saved)) return saved;
  // The site that sent most recently: a newcomer's demo visit.
  return list.slice().sort((a, b) => (Date.parse(b.lastBeaconAt || 0) || 0) - (Date.parse(a.lastBeaconAt || 0) || 0))[0].site;
}

function resolveSite(list) {
  if (state.site) return state.site;
  const site = pickDefaultSite(list || [...sites.values()]);
  if (site) {
    state.site = site;
    history.replaceState(history.state, '', stateUrl(state));
    updateControls();
  }
  return site;
}

const SITE_UNLISTED = 'This API key may read no site the collector knows of: enter the site you want to see.';
let siteList = null;
let siteListForbidden = false; // a site-scoped API key may not read all sites' summary
/** The sites this caller may read (`/v1/sites`: a site key gets its own). */
function loadSiteList() {
  siteList ||= api('/v1/sites').then((s) => { learnSites(s.sites); return s.sites; }, (e) => {
    siteList = null;
    throw e;
  });
  return siteList;
}

/** The window and form factor as the read APIs take them. */
function common() {
  return { window: state.window, formFactor: state.formFactor === 'all' ? '' : state.formFactor };
}

/**
 * Every site's summary in this window and form factor (the picker's list
 * and the figures in one answer), and the site to show; with a key that
 * may read only some sites (403), the chosen site's summary.
 */
async function siteSummary() {
  const answer = await summary(common());
  learnSites(answer.sites);
  return { summary: answer, site: resolveSite(answer.sites) };
}

async function summary(params) {
  // The dashboard shows sites' figures from the summary, never its pages
  // (the pages view pages through /v1/pages): leave them out.
  const ask = { ...params, pages: 'false' };
  if (!siteListForbidden) {
    try {
      return await api(`/v1/summary${qs(ask)}`);
    } catch (e) {
      if (e.status !== 403) throw e;
      siteListForbidden = true;
    }
  }
  // A key for some sites only: the chosen site, else one of its own.
  const site = state.site || resolveSite(await loadSiteList());
  if (!site) throw new ApiError(403, SITE_UNLISTED);
  return api(`/v1/summary${qs({ ...ask, site })}`);
}

async function siteOrFirst() {
  if (state.site) return state.site;
  const list = sites.size ? [...sites.values()] : await loadSiteList();
  const site = resolveSite(list);
  if (!site && siteListForbidden) throw new ApiError(403, SITE_UNLISTED);
  return site;
}

const ctx = {
  get state() { return state; },
  get sorting() { return sorting(); },
  get width() { return main.clientWidth || 960; },
  href,
  link,
  navigate: (changes, opts) => go(href(changes), opts),
  get common() { return common(); },
  siteRecord: (site) => sites.get(site),
  siteSummary,
  siteOrFirst,
  acknowledge,
  silence,
  expireSilence,
};

// ---- controls -------------------------------------------------------------

const picker = document.getElementById('site-picker');
const windowButtons = [...document.querySelectorAll('#window-picker button')];
const ffTabs = [...document.querySelectorAll('#ff-picker [role=tab]')];
const navLinks = [...document.querySelectorAll('#nav a')];

function fillSitePicker() {
  const names = new Set(sites.keys());
  if (state.site) names.add(state.site);
  const sorted = [...names].sort();
  const current = [...picker.options].map((o) => o.value).join('\n');
  if (current !== sorted.join('\n')) {
    picker.replaceChildren(...(sorted.length ? sorted : ['']).map((name) => h('option', { value: name }, name || 'no sites yet')));
  }
  picker.value = state.site;
}

function updateControls() {
  fillSitePicker();
  // The alerts view lists every site's alerts in their rules' own windows.
  for (const id of ['site-control', 'window-control', 'ff-control']) document.getElementById(id).hidden = state.view === 'alerts';
  for (const b of windowButtons) b.setAttribute('aria-pressed', String(b.dataset.window === state.window));
  for (const t of ffTabs) {
    const on = t.dataset.ff === state.formFactor;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    t.setAttribute('aria-controls', 'main');
  }
  for (const a of navLinks) {
    const view = a.dataset.view;
    a.href = href({ view, page: '', metric: '', q: '', sort: '', order: '', offset: 0, alert: '' });
    a.dataset.nav = '';
    if (view === state.view || (view === 'pages' && state.view === 'page')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.getElementById('brand').href = href({ view: 'overview', page: '', metric: '', q: '', sort: '', order: '', offset: 0, alert: '' });
  document.title = `${VIEW_TEXT[state.view]}${state.site ? ` · ${state.site}` : ''} · vitalsign`;
}

picker.addEventListener('change', () => {
  try { localStorage.setItem(SITE_KEY, picker.value); } catch { /* no storage */ }
  const view = state.view === 'page' ? 'overview' : state.view;
  ctx.navigate({ site: picker.value, view, page: '', metric: '', q: '', offset: 0, alert: '' });
});
for (const b of windowButtons) b.addEventListener('click', () => ctx.navigate({ window: b.dataset.window, offset: 0 }));
for (const t of ffTabs) t.addEventListener('click', () => ctx.navigate({ formFactor: t.dataset.ff, offset: 0 }));
document.getElementById('ff-picker').addEventListener('keydown', (e) => {
  const i = ffTabs.findIndex((t) => t.dataset.ff === state.formFactor);
  const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: ffTabs.length - 1 }[e.key];
  if (to == null) return;
  e.preventDefault();
  const tab = ffTabs[(to + ffTabs.length) % ffTabs.length];
  tab.focus();
  tab.click();
});
document.getElementById('refresh').addEventListener('click', () => show({ refresh: true }));
// Cancel buttons are type=button: Enter in a dialog's field submits it.
document.addEventListener('click', (e) => {
  const button = e.target.closest && e.target.closest('button[data-close]');
  if (button) button.closest('dialog').close('cancel');
});

// Internal links navigate without a reload (a modified click still opens a tab).
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname !== '/') return;
  e.preventDefault();
  go(url.pathname + url.search);
});

history.scrollRestoration = 'manual';
window.addEventListener('popstate', (e) => {
  state = parseState(location.search);
  show({ scrollTo: e.state && typeof e.state.scrollY === 'number' ? e.state.scrollY : 0 });
});

function go(url, { replace = false } = {}) {
  if (replace) {
    history.replaceState(history.state, '', url);
  } else {
    history.replaceState({ scrollY: window.scrollY }, '', location.href);
    history.pushState({ scrollY: 0 }, '', url);
  }
  const before = state;
  state = parseState(new URL(url, location.href).search);
  const sameView = before.view === state.view && before.site === state.site && before.page === state.page;
  show({ scrollTo: replace || sameView ? null : 'target', focusMain: !replace && !sameView });
}

// ---- rendering --------------------------------------------------------------

/** What the reader has in hand, to put back after a re-render. */
function keyOf(el) {
  if (!el || !main.contains(el)) return null;
  const d = el.dataset || {};
  if (d.keep) return `keep:${d.keep}`;
  if (d.sort) return `sort:${d.sort}`;
  if (d.pager) return `pager:${d.pager}`;
  if (d.jump) return `jump:${d.jump}`;
  return el.getAttribute('href') ? `href:${el.getAttribute('href')}` : null;
}

function find(key) {
  const [kind, ...rest] = key.split(':');
  const v = rest.join(':');
  const attr = { keep: 'data-keep', sort: 'data-sort', pager: 'data-pager', jump: 'data-jump', href: 'href' }[kind];
  return [...main.querySelectorAll(`[${attr}]`)].find((el) => el.getAttribute(attr) === v) || null;
}

function capture() {
  const active = document.activeElement;
  const kept = [...main.querySelectorAll('[data-keep]')].map((el) => ({
    key: `keep:${el.dataset.keep}`, open: el.open, scrollLeft: el.scrollLeft,
  }));
  const focus = keyOf(active);
  const input = active && active.tagName === 'INPUT' && main.contains(active)
    ? { value: active.value, start: active.selectionStart, end: active.selectionEnd } : null;
  return { kept, focus, input };
}

function restore(saved) {
  for (const k of saved.kept) {
    const el = find(k.key);
    if (!el) continue;
    if (k.open && el.tagName === 'DETAILS' && !el.open) el.open = true;
    if (k.scrollLeft) el.scrollLeft = k.scrollLeft;
  }
  if (saved.focus) {
    const el = find(saved.focus);
    if (el) {
      if (saved.input && el.tagName === 'INPUT') {
        el.value = saved.input.value;
        try { el.setSelectionRange(saved.input.start, saved.input.end); } catch { /* not a text input */ }
      }
      el.focus({ preventScroll: true });
    }
  }
}

function errorView(error) {
  const e = error instanceof ApiError ? error : new ApiError(0, error && error.message ? error.message : String(error));
  const box = h('section', { class: 'error-box', role: 'alert' },
    h('h1', null, e.status === 401 ? 'API key needed' : e.status === 403 ? 'Not allowed' : 'Could not load this view'),
    h('p', null, e.message, e.status ? ` (HTTP ${e.status})` : ''));
  if (e.status === 401) {
    box.append(h('button', { type: 'button', class: 'primary', on: { click: () => { allowKeyPrompt(); show(); } } }, 'Enter an API key'));
  } else if (e.status === 403) {
    const input = h('input', { id: 'site-input', required: true, placeholder: 'shop.example', value: state.site, autocomplete: 'off', spellcheck: 'false' });
    box.append(h('form', { class: 'site-form', on: { submit: (ev) => { ev.preventDefault(); ctx.navigate({ site: input.value.trim(), page: '', offset: 0, q: '' }); } } },
      h('label', null, 'Site (host[:port]) ', input), ' ', h('button', { class: 'primary' }, 'Open')));
  } else {
    box.append(h('button', { type: 'button', on: { click: () => show() } }, 'Try again'));
  }
  return box;
}

function paint(nodes, { refresh, scrollTo, focusMain }) {
  const saved = capture();
  const scrollY = window.scrollY;
  main.replaceChildren(...[nodes].flat(Infinity).filter(Boolean));
  main.dataset.view = state.view;
  main.setAttribute('aria-busy', 'false');
  main.classList.remove('stale');
  restore(saved);
  if (refresh) {
    window.scrollTo(window.scrollX, scrollY);
    return;
  }
  if (scrollTo === 'target') {
    // A deep link to an alert or a metric opens at it.
    const target = state.view === 'page'
      && ((state.alert && document.getElementById(`alert-${state.alert}`)) || (state.metric && document.getElementById(`metric-${state.metric}`)));
    if (target) target.scrollIntoView({ block: 'start' });
    else window.scrollTo(0, 0);
  } else if (typeof scrollTo === 'number') {
    window.scrollTo(0, scrollTo);
  }
  if (focusMain) main.focus({ preventScroll: true });
}

async function show({ refresh = false, scrollTo = null, focusMain = false } = {}) {
  const my = ++seq;
  loading = true;
  updateControls();
  if (!refresh) {
    main.setAttribute('aria-busy', 'true');
    main.classList.add('stale');
  }
  refreshAlertCount();
  const view = VIEWS[state.view];
  let nodes;
  let data = null;
  let failed = null;
  try {
    data = await view.load(ctx);
    if (my !== seq) return;
    nodes = view.render(ctx, data);
  } catch (error) {
    if (my !== seq) return;
    failed = error;
    // A bug or a network failure, not an API answer: say it where tests and developers look.
    if (!(error instanceof ApiError)) console.error(error);
  } finally {
    if (my === seq) loading = false;
  }
  if (failed && refresh && last && last.state === stateUrl(state)) {
    // Keep what is on screen; say the update failed.
    status.textContent = `Update failed at ${f.hour(Date.now())}: ${failed.message}`;
    status.classList.add('failed');
    return;
  }
  if (failed) nodes = errorView(failed);
  else last = { state: stateUrl(state), data };
  updateControls();
  paint(nodes, { refresh, scrollTo, focusMain });
  // The site picker's list (the sites this key may read), once the view
  // is on screen.
  if (!sites.size) loadSiteList().then(() => fillSitePicker(), () => {});
  lastUpdate = Date.now();
  status.classList.remove('failed');
  status.textContent = `Updated ${new Date(lastUpdate).toLocaleTimeString()}`;
  performance.mark('vitalsign:rendered', { detail: { view: state.view, refresh } });
  document.documentElement.dataset.rendered = String(my);
  requestAnimationFrame(() => setTimeout(() => performance.mark('vitalsign:painted', { detail: { view: state.view, refresh } }), 0));
}

/** Re-renders the data on screen (after a resize), without fetching. */
function rerender() {
  if (!last || last.state !== stateUrl(state) || loading) return;
  paint(VIEWS[state.view].render(ctx, last.data), { refresh: true });
}

let countRequest = null;
function refreshAlertCount() {
  if (countRequest) return;
  const badge = document.getElementById('alert-count');
  countRequest = api('/v1/alerts?state=firing&limit=1000&history=0').then((r) => {
    const n = r.alerts.length;
    badge.hidden = n === 0;
    badge.textContent = String(n);
    badge.title = `${n} firing`;
    badge.setAttribute('aria-label', `${n} firing`);
  }, () => { badge.hidden = true; }).finally(() => { countRequest = null; });
}

// ---- alert actions ------------------------------------------------------

function openAction({ title, what, ok, withDuration, submit }) {
  const dialog = document.getElementById('action-dialog');
  const form = document.getElementById('action-form');
  const by = document.getElementById('action-by');
  const comment = document.getElementById('action-comment');
  const duration = document.getElementById('action-duration');
  const error = document.getElementById('action-error');
  const okButton = document.getElementById('action-ok');
  document.getElementById('action-title').textContent = title;
  document.getElementById('action-what').textContent = what;
  document.getElementById('action-duration-label').hidden = !withDuration;
  okButton.textContent = ok;
  error.hidden = true;
  comment.value = '';
  try { by.value = localStorage.getItem(BY_KEY) || ''; } catch { by.value = ''; }
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const name = by.value.trim();
      if (!name) {
        by.focus();
        return;
      }
      okButton.disabled = true;
      try {
        const result = await submit({ by: name, comment: comment.value.trim(), duration: duration.value });
        try { localStorage.setItem(BY_KEY, name); } catch { /* no storage */ }
        dialog.close();
        resolve(result);
      } catch (err) {
        error.textContent = `${err.message}${err.status ? ` (HTTP ${err.status})` : ''}`;
        error.hidden = false;
      } finally {
        okButton.disabled = false;
      }
    };
    dialog.addEventListener('close', () => resolve(null), { once: true });
    dialog.showModal();
    (by.value ? comment : by).focus();
  });
}

function describe(a) {
  return `${a.rule} (${a.metric || 'metric'}) on ${f.pageText(a.page)}, ${f.FF_TEXT[a.formFactor] || a.formFactor}`;
}

async function acknowledge(a) {
  const done = await openAction({
    title: 'Acknowledge alert', what: describe(a), ok: 'Acknowledge',
    submit: ({ by, comment }) => api(`/v1/alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: { by, comment } }),
  });
  if (done) {
    await show({ refresh: true });
    status.textContent = `Acknowledged ${a.rule}`;
  }
}

async function silence(a) {
  const labels = a.labels || {};
  const matchers = {
    alertname: labels.alertname || a.rule,
    site: labels.site || a.site,
    page: labels.page || a.page,
    form_factor: labels.form_factor || a.formFactor,
  };
  const done = await openAction({
    title: 'Silence alert', what: `${describe(a)}: no notifications while silenced (the alert still changes state).`, ok: 'Silence', withDuration: true,
    submit: ({ by, comment, duration }) => api('/v1/silences', { method: 'POST', body: { matchers, duration, createdBy: by, comment } }),
  });
  if (done) {
    await show({ refresh: true });
    status.textContent = `Silenced ${a.rule}`;
  }
}

async function expireSilence(x) {
  try {
    await api(`/v1/silences/${encodeURIComponent(x.id)}`, { method: 'DELETE' });
    await show({ refresh: true });
    status.textContent = 'Silence ended';
  } catch (err) {
    status.textContent = `Could not end the silence: ${err.message}`;
  }
}

// ---- refresh ----------------------------------------------------------------

function dialogOpen() {
  return Boolean(document.querySelector('dialog[open]'));
}

setInterval(() => {
  if (document.visibilityState !== 'visible' || dialogOpen() || loading) return;
  if (Date.now() - lastUpdate >= REFRESH_MS - 1000) show({ refresh: true });
}, 5000);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !dialogOpen() && !loading && Date.now() - lastUpdate >= REFRESH_MS) show({ refresh: true });
});

let lastWidth = window.innerWidth;
let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (Math.abs(window.innerWidth - lastWidth) < 40) return;
    lastWidth = window.innerWidth;
    rerender();
  }, 200);
});

// Tests can shorten the refresh; nothing else reads this.
window.vitalsignDashboard = { refresh: () => show({ refresh: true }), get state() { return { ...state }; } };

show({ scrollTo: 'target' });
