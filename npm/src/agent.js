// The browser glue around the wasm (agent/src/abi.rs). It subscribes to
// PerformanceObservers and page events, hands the numbers they carry to the
// wasm, and carries out its answers: which value a metric has, whether and
// with what delta it is reported, which entries belong to it, when and how
// beacons are sent. The rules themselves (CLS session windows, INP
// selection, ratings, report deltas, navigation types, page keys, sessions,
// sampling, packing, budgets, retries) are all in Rust.
//
// Structure and timing follow web-vitals 6 (src/onCLS.ts ... src/lib/),
// which is what the agent's numbers are compared with.

let w; // the wasm's exports
let early; // what the loader recorded before the wasm ran (see index.js)

const NAMES = ['FCP', 'LCP', 'CLS', 'INP', 'TTFB'];
const RATINGS = ['good', 'needs-improvement', 'poor'];
const NAV = ['navigate', 'reload', 'back-forward', 'back-forward-cache', 'prerender', 'restore', 'soft-navigation'];
const FORM_FACTORS = ['phone', 'tablet', 'desktop'];
const BFCACHE = 3; // NAV index

// No browser global is touched at import time, so importing the package
// during server-side rendering is harmless.
let enc;
const encode = (s) => (enc ||= new TextEncoder()).encode(s);

// --- strings across the wasm boundary ---------------------------------------
// Arguments pushed with args() are consumed by the next wasm call that takes
// strings: push them right before that call, never across another one.
const args = (...list) => {
  for (const s of list) {
    const b = encode(s);
    const p = w.vs_alloc(b.length); // may grow memory: take the buffer after
    new Uint8Array(w.memory.buffer, p, b.length).set(b);
    w.vs_arg(b.length);
  }
};
const str = (n) => new TextDecoder().decode(new Uint8Array(w.memory.buffer, w.vs_out(), n));
const bytes = (s) => encode(s).length;

// --- page lifecycle (web-vitals src/lib) --------------------------------------
// Nothing the agent runs may throw into the page.
const safe = (f) => (...a) => {
  try {
    return f(...a);
  } catch {}
};
const listen = (type, f, once) => addEventListener(type, safe(f), { capture: true, once });
const later = (f, ms) => setTimeout(safe(f), ms);
const raf2 = (f) => requestAnimationFrame(() => requestAnimationFrame(safe(f)));
const hidden = () => document.visibilityState === 'hidden';
const prerendering = () => !!document.prerendering;
const entriesByType = (t) => {
  try {
    return performance.getEntriesByType(t);
  } catch {
    return [];
  }
};

/** The navigation entry, if its responseStart is valid. */
const navEntry = () => {
  const e = entriesByType('navigation')[0];
  return e && w.vs_ttfb_valid(e.responseStart, performance.now()) ? e : undefined;
};
const activationStart = () => navEntry()?.activationStart || 0;

let restoreTime = -1;
const onRestore = (f) =>
  listen('pageshow', (e) => {
    if (e.persisted === true) {
      restoreTime = e.timeStamp;
      f(e);
    }
  });

let firstHidden = -1;
const hideHooks = [];
const initialHidden = () => (hidden() && !prerendering() ? 0 : Infinity);
const fireHidden = () => hideHooks.slice().forEach((f) => f());
/** When the page was first hidden; starts the watcher on first use. */
const firstHiddenTime = () => {
  if (firstHidden < 0) {
    // A visibility-state entry tells when the page was hidden even before
    // the agent loaded.
    const act = !prerendering() && activationStart();
    const e = act === false ? 0 : entriesByType('visibility-state').find((e) => e.name === 'hidden' && e.startTime >= act);
    firstHidden = e ? e.startTime : initialHidden();
    const update = (ev) => {
      if (!hidden()) return;
      const change = ev.type === 'visibilitychange';
      if (change) fireHidden();
      // After prerenderingchange and still hidden: hidden all along.
      if (firstHidden === Infinity) firstHidden = change ? ev.timeStamp : 0;
    };
    listen('visibilitychange', update);
    listen('prerenderingchange', update);
    onRestore(() => later(() => (firstHidden = initialHidden())));
  }
  return firstHidden;
};
const onHidden = (f) => {
  firstHiddenTime();
  hideHooks.push(f);
};
const whenActivated = (f) => (prerendering() ? listen('prerenderingchange', f, true) : f());
/** Runs f when idle (at most 1 s later), or at once if the page hides first. */
const whenIdleOrHidden = (f) => {
  if (hidden()) return f();
  let done;
  const run = () => done || ((done = 1), f());
  const onHide = safe(run);
  addEventListener('visibilitychange', onHide, { capture: true, once: true });
  const idle = safe(() => {
    removeEventListener('visibilitychange', onHide, true);
    run();
  });
  try {
    requestIdleCallback(idle, { timeout: 1000 });
  } catch {
    setTimeout(idle);
  }
};

/**
 * A PerformanceObserver of the supported ones of `types` (buffered), or
 * undefined. Several types: each batch sorted by end time. Batches the
 * loader recorded before the wasm ran stand in for the browser's buffer.
 */
const observe = (types, threshold, cb) => {
  const supported = types.filter((t) => self.PerformanceObserver?.supportedEntryTypes?.includes(t));
  if (!supported.length) return;
  const deliver = safe((list, po) => {
    if (supported[1]) list.sort((a, b) => a.startTime + a.duration - b.startTime - b.duration);
    cb(list, po);
  });
  const recorded = early?.batches[types.join()];
  let po;
  try {
    po = new PerformanceObserver((l, o) => deliver(l.getEntries(), o));
    for (const type of supported) po.observe({ type, buffered: !recorded, durationThreshold: threshold });
  } catch {
    return;
  }
  for (const b of recorded || []) {
    // The loader observed `event` at the lowest threshold.
    const batch = b.filter((e) => !(threshold > e.duration) || e.entryType !== 'event');
    if (batch.length) deliver(batch, po);
  }
  return po;
};

// --- metric instances (web-vitals initMetric + bindReporter) ------------------
const navigationType = () => {
  const e = navEntry();
  args(e?.type || '');
  return w.vs_nav(restoreTime >= 0, !!e, prerendering(), e?.activationStart || 0, !!document.wasDiscarded);
};
const newId = () => str(w.vs_id(Date.now(), Math.random()));
const metric = (n, value, sink, opts, nav = navigationType()) => ({
  n, v: value, id: newId(), nav, e: [], o: undefined,
  r: w.vs_reporter(n, opts.rac), sink, opts,
});
/** A new instance (new id, new object) after a bfcache restore. */
const restart = (m, value) => Object.assign(m, metric(m.n, value, m.sink, m.opts, BFCACHE));
const report = (m, force) => {
  const delta = w.vs_report(m.r, m.v, force);
  if (delta === delta) m.sink(m, delta); // NaN: nothing to report
};
const rating = (m) => RATINGS[w.vs_rating(m.n, m.v)];

/** A sink calling the page's callback with one object per instance, updated in place. */
const callbackSink = (cb) => (m, delta) => {
  const o = (m.o ||= { name: NAMES[m.n], value: 0, rating: 0, delta: 0, entries: 0, id: m.id, navigationType: NAV[m.nav] });
  o.value = m.v;
  o.rating = rating(m);
  o.delta = delta;
  o.entries = m.e;
  try {
    cb(o);
  } catch {} // the page's own exception must not unwind through the agent
};

// --- the five metrics (web-vitals src/onFCP.ts ... src/onTTFB.ts) -------------
const fcp = (sink, opts) =>
  whenActivated(() => {
    firstHiddenTime();
    const m = metric(0, -1, sink, opts);
    const po = observe(['paint'], undefined, (entries, po) => {
      for (const e of entries) {
        if (e.name === 'first-contentful-paint') {
          po.disconnect();
          const v = w.vs_fcp(e.startTime, activationStart(), firstHiddenTime());
          if (v >= 0) {
            m.v = v;
            m.e.push(e);
            report(m, 1);
          }
        }
      }
    });
    if (po)
      onRestore((ev) => {
        restart(m, -1);
        raf2(() => {
          m.v = performance.now() - ev.timeStamp;
          report(m, 1);
        });
      });
  });

const lcp = (sink, opts) =>
  whenActivated(() => {
    firstHiddenTime();
    const m = metric(1, -1, sink, opts);
    let finalized;
    const po = observe(['largest-contentful-paint'], undefined, (entries) => {
      for (const e of entries.slice(w.vs_lcp_first(entries.length, opts.rac))) {
        const v = w.vs_lcp(e.startTime, activationStart(), firstHiddenTime());
        if (v >= 0) {
          m.v = v;
          m.e = [e];
          report(m, 0);
        }
      }
    });
    if (!po) return;
    // The browser stops emitting LCP after input but does not say so:
    // report it as final on the first trusted keydown, click or hide. Not
    // on scroll: script can scroll, and the reference leaves it out.
    const events = ['keydown', 'click', 'visibilitychange'];
    const finalize = (id) => {
      if (finalized) return;
      po.disconnect();
      for (const t of events) removeEventListener(t, onInput, true);
      // A bfcache restore in the meantime started a new instance: leave it.
      if (m.id === id) {
        finalized = 1;
        report(m, 1);
      }
    };
    const stop = () => {
      const id = m.id;
      whenIdleOrHidden(() => finalize(id));
    };
    const onInput = safe((e) => e.isTrusted && !finalized && stop());
    for (const t of events) addEventListener(t, onInput, true);
    // The user interacted before the agent ran: LCP is final.
    if (early?.input) stop();
    onRestore((ev) => {
      restart(m, -1);
      finalized = 0;
      raf2(() => {
        m.v = performance.now() - ev.timeStamp;
        finalized = 1;
        report(m, 1);
      });
    });
  });

const cls = (sink, opts) => {
  firstHiddenTime();
  // CLS starts after FCP, as in the Chrome UX Report.
  let started;
  fcp(() => started || ((started = 1), startCls(sink, opts)), {});
};
const startCls = (sink, opts) => {
  const m = metric(2, 0, sink, opts);
  let h = w.vs_cls();
  let win = []; // the current session window's entries
  const add = (entries) => {
    for (const e of entries) {
      const shift = w.vs_cls_add(h, e.startTime, e.value, !!e.hadRecentInput);
      if (!shift) continue;
      if (shift === 2) win = [];
      win.push(e);
    }
    const v = w.vs_cls_update(h);
    if (v >= 0) {
      m.v = v;
      m.e = win; // shared with the window, as in the reference
    }
  };
  const po = observe(['layout-shift'], undefined, (entries) => {
    add(entries);
    report(m, 0);
  });
  if (!po) return;
  onHidden(() => {
    add(po.takeRecords());
    report(m, 1);
  });
  onRestore(() => {
    restart(m, 0);
    h = w.vs_cls();
    win = [];
    raf2(() => report(m, 0));
  });
  // Lets CLS 0 be reported right after FCP when reporting all changes.
  later(() => report(m, 0));
};

// performance.interactionCount, estimated from interaction ids where missing.
let estimating;
const interactionCount = () => (estimating ? w.vs_estimate() : performance.interactionCount || 0);
const inp = (sink, opts) => {
  if (!('interactionId' in (self.PerformanceEventTiming?.prototype || {}))) return;
  firstHiddenTime();
  whenActivated(() => {
    if (!('interactionCount' in performance) && !estimating) {
      estimating = 1;
      observe(['event'], 0, (entries) => entries.forEach((e) => w.vs_estimate_add(e.interactionId || 0)));
    }
    const m = metric(3, -1, sink, opts);
    let h = w.vs_inp();
    let slots = new Map(); // slot number -> entry, for the interactions the wasm keeps
    let next = 0;
    let before = 0; // interactions before this instance (bfcache restore)
    // In an idle task, so that all entries of an interaction have arrived
    // and no work lands on its frame.
    const handle = (entries, force) =>
      whenIdleOrHidden(() => {
        for (const e of entries) {
          slots.set(next, e);
          w.vs_inp_add(h, e.interactionId || 0, e.duration, e.startTime, next++);
        }
        const v = w.vs_inp_select(h, interactionCount() - before, m.nav);
        if (v >= 0 && v !== m.v) {
          m.v = v;
          m.e = [];
          for (let i = 0, s; (s = w.vs_inp_entry(h, i)) >= 0; i++) m.e.push(slots.get(s));
          report(m, 0);
        }
        const live = new Map();
        for (let i = 0, s; (s = w.vs_inp_live(h, i)) >= 0; i++) live.set(s, slots.get(s));
        slots = live;
        if (force) report(m, 1);
      });
    const po = observe(['event', 'first-input'], opts.dt ?? 40 /* the reference's default */, (entries) => handle(entries));
    if (!po) return;
    onHidden(() => handle(po.takeRecords(), 1));
    onRestore(() => {
      before = interactionCount();
      h = w.vs_inp();
      slots = new Map();
      restart(m, -1);
    });
  });
};

/** Runs f once the page has loaded (and is activated), in a task after loadEventEnd. */
const whenReady = (f) =>
  prerendering()
    ? whenActivated(() => whenReady(f))
    : document.readyState !== 'complete'
      ? listen('load', () => whenReady(f), true)
      : later(f);
const ttfb = (sink, opts) => {
  const m = metric(4, -1, sink, opts);
  whenReady(() => {
    const e = navEntry();
    if (!e) return;
    m.v = w.vs_ttfb(e.responseStart, activationStart());
    m.e = [e];
    report(m, 1);
    onRestore(() => {
      restart(m, 0);
      report(m, 1);
    });
  });
};

// --- transport ------------------------------------------------------------------
const SESSION_KEY = 'vitalsign:session';
const PENDING_KEY = 'vitalsign:pending';
// Storage may be missing or throw (disabled, sandboxed): that reads as "not stored".
const storage = (area, key, value) => {
  try {
    const s = self[area];
    if (value === undefined) return s.getItem(key);
    value === null ? s.removeItem(key) : s.setItem(key, value);
  } catch {}
};

let t; // the transport, once init() ran
let exitFlush; // a flush is scheduled right after the current hide handler

const enqueue = (m, delta) => {
  // The latest report per metric instance.
  const key = m.n + m.id;
  const full = w.vs_enqueue(m.id.length, t.queue.has(key));
  t.queue.set(key, { name: NAMES[m.n], value: m.v, delta, id: m.id, rating: rating(m), navigationType: NAV[m.nav] });
  if (hidden()) {
    // Reports made while hiding (final CLS, INP, LCP) leave right after the
    // handler that made them, before the page can unload.
    if (!exitFlush) {
      exitFlush = 1;
      queueMicrotask(safe(() => {
        exitFlush = 0;
        flush(1);
      }));
    }
  } else if (full) flush();
};

/** Packs the queue into bodies under the size limit, plus retries due. */
const takeBodies = () => {
  const bodies = [];
  if (!t.consent || !t.sampled) return bodies;
  const now = Date.now();
  if (t.retry.length && w.vs_retry_due(now)) bodies.push(...t.retry.splice(0));
  if (t.queue.size) {
    const env = JSON.stringify({ ...t.envelope, navigationType: NAV[t.nav], pageViewId: t.pageView, metrics: [] });
    const head = env.slice(0, -2); // without "]}"
    w.vs_pack(bytes(env));
    let run = [];
    for (const r of t.queue.values()) {
      const json = JSON.stringify(r);
      const place = w.vs_pack_add(bytes(json)); // 0: join, 1: new body, 2: too large
      if (place && run.length) bodies.push(head + run + ']}'), (run = []);
      if (place < 2) run.push(json);
    }
    if (run.length) bodies.push(head + run + ']}');
    t.queue.clear();
  }
  // Keep the session alive while the page reports.
  if (bodies.length) t.session = str(w.vs_touch(now));
  return bodies;
};

const flush = (exit) => {
  const bodies = takeBodies();
  if (bodies.length && !exit) storage('localStorage', SESSION_KEY, t.session);
  for (let body of bodies) {
    if (t.c.beforeSend) {
      // The page's hook may edit the beacon, return a new one, or drop it.
      try {
        const b = JSON.parse(body);
        const out = t.c.beforeSend(b);
        body = JSON.stringify(out === undefined ? b : out || null);
      } catch {
        continue;
      }
      if (typeof body !== 'string' || body === 'null') continue;
    }
    if (w.vs_body_fits(bytes(body))) send(body, exit);
  }
  if (exit) persistRetries();
};

const send = (body, exit) => {
  if (!w.vs_request()) return;
  const len = bytes(body);
  if (exit) {
    let queued;
    try {
      queued = navigator.sendBeacon(t.c.endpoint, body);
    } catch {}
    if (queued) {
      // The browser counts queued beacons against the keepalive quota but
      // never says when they leave: count them for a few seconds.
      w.vs_beacon_sent(len);
      return later(() => w.vs_release(len), 3000);
    }
  }
  const keepalive = !!w.vs_keepalive(len);
  const done = (status, retryAfter) => answered(status, retryAfter, body, keepalive && len);
  try {
    fetch(t.c.endpoint, {
      method: 'POST',
      body,
      keepalive,
      credentials: 'omit',
      // A "simple" request: no CORS preflight.
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    }).then(
      safe((res) => done(res.status, res.headers.get('retry-after'))),
      safe(() => done(0)),
    );
  } catch {
    done(-1);
  }
};

const answered = (status, retryAfter, body, kept) => {
  if (kept) w.vs_release(kept);
  if (status < 0) return;
  if (retryAfter != null) args(retryAfter);
  const ms = w.vs_answered(status, Date.now(), Date.parse(retryAfter));
  if (ms >= 0) {
    t.retry.push(body);
    if (!t.retryTimer) {
      t.retryTimer = 1;
      later(() => {
        t.retryTimer = 0;
        if (!hidden()) flush();
      }, ms);
    }
  }
};

/**
 * Keeps the bodies still waiting for a retry in sessionStorage when the page
 * hides or unloads, so that the next page view in this tab sends them if this
 * one never gets to. Bounded like one request: the oldest go first.
 */
const persistRetries = () => {
  if (!t.consent) return;
  const all = t.retry.slice();
  while (all.length && !w.vs_body_fits(bytes(all.join('')))) all.shift();
  storage('sessionStorage', PENDING_KEY, all.length ? JSON.stringify(all) : null);
};

/** Sends what the previous page view could not. */
const resendPending = () => {
  let pending;
  try {
    pending = JSON.parse(storage('sessionStorage', PENDING_KEY));
  } catch {}
  storage('sessionStorage', PENDING_KEY, null);
  if (Array.isArray(pending) && pending.length) {
    t.retry.push(...pending.filter((s) => typeof s === 'string'));
    flush();
  }
};

const strings = (v) => (Array.isArray(v) ? v.filter((s) => typeof s === 'string') : []);
const num = (v) => (typeof v === 'number' ? v : undefined);
const func = (v) => (typeof v === 'function' ? v : undefined);

const pageKey = (c) => {
  if (c.pageKey) {
    try {
      const key = c.pageKey(location.href);
      if (typeof key === 'string') return key;
    } catch {}
  }
  args(location.origin, location.pathname, location.search, ...c.routes, ...c.queryKeys);
  return str(w.vs_page_key(c.routes.length, c.queryKeys.length));
};

/** Measures all five metrics and sends them. Later calls are ignored. */
export const start = (o) => {
  if (t) return;
  o = Object(o);
  const c = {
    endpoint: typeof o.endpoint === 'string' ? o.endpoint : '/v1/beacon',
    sampleRate: num(o.sampleRate) ?? 1,
    routes: strings(o.routes),
    queryKeys: strings(o.queryKeys),
    pageKey: func(o.pageKey),
    beforeSend: func(o.beforeSend),
  };
  const consent = !o.requireConsent;
  // Without consent nothing is read from or written to storage.
  const stored = consent && storage('localStorage', SESSION_KEY);
  if (stored) args(stored);
  const session = str(w.vs_session(Date.now(), Math.random()));
  if (consent) storage('localStorage', SESSION_KEY, session);
  const nav = navigator;
  const mobile = nav.userAgentData?.mobile;
  const formFactor = () => {
    args(nav.userAgent || '');
    return FORM_FACTORS[w.vs_form_factor(typeof mobile === 'boolean' ? +mobile : -1)];
  };
  t = {
    c,
    consent,
    session,
    sampled: w.vs_sampled(c.sampleRate),
    pageView: newId(),
    nav: navigationType(),
    envelope: {
      schemaVersion: w.vs_schema_version(),
      page: pageKey(c),
      pageViewId: 0,
      sessionId: str(w.vs_session_id()),
      navigationType: 0,
      formFactor: formFactor(),
      effectiveType: typeof nav.connection?.effectiveType === 'string' ? nav.connection.effectiveType : undefined,
      deviceMemory: num(nav.deviceMemory),
    },
    queue: new Map(),
    retry: [],
  };
  w.vs_transport(num(o.maxQueueBytes) || 0);
  // An unsampled session costs nothing more: no observers at all.
  if (!t.sampled) return;
  // Every change is queued (the latest per id), so that timer flushes
  // carry CLS and INP as they grow on long-lived pages.
  const all = { rac: 1 };
  for (const f of [fcp, lcp, cls, inp, ttfb]) f(enqueue, all);
  onHidden(() => flush(1));
  listen('pagehide', () => flush(1));
  onRestore(() => {
    t.pageView = newId();
    t.nav = BFCACHE;
  });
  const interval = num(o.flushInterval) > 0 ? o.flushInterval : 10000;
  const timer = () =>
    later(() => {
      if (!hidden()) flush();
      timer();
    }, interval);
  timer();
  if (consent) resendPending();
};

export const grantConsent = () => {
  if (!t || t.consent) return;
  t.consent = 1;
  storage('localStorage', SESSION_KEY, t.session);
  resendPending();
  flush();
};

/** Stops sending and forgets everything queued or stored. */
export const revokeConsent = () => {
  if (t) {
    t.consent = 0;
    t.queue.clear();
    t.retry = [];
  }
  storage('localStorage', SESSION_KEY, null);
  storage('sessionStorage', PENDING_KEY, null);
};

// --- the web-vitals API -----------------------------------------------------------
const options = (o) => ({ rac: !!o?.reportAllChanges, dt: num(o?.durationThreshold) });
export const onFCP = (cb, o) => fcp(callbackSink(cb), options(o));
export const onLCP = (cb, o) => lcp(callbackSink(cb), options(o));
export const onCLS = (cb, o) => cls(callbackSink(cb), options(o));
export const onINP = (cb, o) => inp(callbackSink(cb), options(o));
export const onTTFB = (cb, o) => ttfb(callbackSink(cb), options(o));

/** Around replaying the calls made before the wasm ran (see index.js). */
export const beginReplay = (capture) => {
  early = capture;
};
export const endReplay = () => {
  const wasHidden = early?.hidden;
  early = undefined;
  // Hidden before the agent ran: report as the reference did then.
  if (wasHidden) fireHidden();
};

/** Fetches and compiles the wasm (streaming where the server sends application/wasm). */
export default async () => {
  const res = fetch(new URL('agent_bg.wasm', import.meta.url));
  let r;
  try {
    r = await WebAssembly.instantiateStreaming(res, {});
  } catch {
    r = await WebAssembly.instantiate(await (await res).arrayBuffer(), {});
  }
  w = r.instance.exports;
};
