//! Sends the metric reports to the collector.
//!
//! Reports are queued (the latest per metric id) and flushed as JSON
//! beacons: when the page is hidden or unloaded (with `sendBeacon`, which
//! outlives the page, falling back to `fetch` with `keepalive` within the
//! browser's in-flight budget, then plain `fetch`), and while the page is
//! visible on a timer and when the queue grows past a size threshold (with
//! `fetch`, so 429/503/5xx are seen and retried with backoff). Reports that
//! could not leave before the page went away are kept in `sessionStorage`
//! and sent by the next page view. The decisions are in `crate::delivery`,
//! `crate::session` and `crate::page_key`.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use beacon::{Beacon, MetricReport, NavigationType, SCHEMA_VERSION};
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings::{self, LOCATION};
use super::global::Global;
use super::lifecycle::{self, listen, on_bfcache_restore, once};
use super::metric::{Metric, Options, Sink};
use super::storage::{self, Area};
use super::{json, metric};
use crate::delivery::{self, KeepaliveBudget, Outcome};
use crate::queue::Queue;
use crate::report::Report;
use crate::session::{self, Session};

const SESSION_KEY: &str = "vitalsign:session";
const PENDING_KEY: &str = "vitalsign:pending";
/// How long a body handed to `sendBeacon` is assumed to be in flight.
const BEACON_IN_FLIGHT_MS: f64 = 3000.0;

/// What `init()` was given.
struct Config {
    endpoint: String,
    flush_interval_ms: f64,
    max_queue_bytes: usize,
    sample_rate: f64,
    require_consent: bool,
    routes: Vec<String>,
    query_keys: Vec<String>,
    page_key: Option<Function>,
    before_send: Option<Function>,
}

impl Config {
    fn from_js(o: &JsValue) -> Config {
        let num = |k: &str| bindings::get(o, k).as_f64();
        let func = |k: &str| bindings::get(o, k).dyn_into::<Function>().ok();
        Config {
            endpoint: bindings::get(o, "endpoint")
                .as_string()
                .unwrap_or_else(|| String::from("/v1/beacon")),
            flush_interval_ms: num("flushInterval")
                .filter(|v| *v > 0.0)
                .unwrap_or(delivery::DEFAULT_FLUSH_INTERVAL_MS),
            max_queue_bytes: num("maxQueueBytes")
                .filter(|v| *v > 0.0)
                .map_or(delivery::DEFAULT_MAX_QUEUE_BYTES, |v| v as usize),
            sample_rate: num("sampleRate").unwrap_or(1.0),
            require_consent: bindings::get(o, "requireConsent").is_truthy(),
            routes: strings(&bindings::get(o, "routes")),
            query_keys: strings(&bindings::get(o, "queryKeys")),
            page_key: func("pageKey"),
            before_send: func("beforeSend"),
        }
    }
}

fn strings(v: &JsValue) -> Vec<String> {
    v.dyn_ref::<Array>()
        .map(|a| a.iter().filter_map(|s| s.as_string()).collect())
        .unwrap_or_default()
}

struct Transport {
    config: Config,
    consent: bool,
    session: Session,
    sampled: bool,
    page_view_id: String,
    page: String,
    navigation_type: NavigationType,
    queue: Queue,
    queue_bytes: usize,
    /// Bodies waiting to be sent again, and when.
    retry: Vec<String>,
    retry_at: f64,
    failures: u32,
    retry_timer: bool,
    keepalive: KeepaliveBudget,
    requests: u32,
}

static TRANSPORT: Global<RefCell<Option<Transport>>> = Global::new(RefCell::new(None));
static EXIT_FLUSH_SCHEDULED: Global<Cell<bool>> = Global::new(Cell::new(false));

fn with<R>(f: impl FnOnce(&mut Transport) -> R) -> Option<R> {
    TRANSPORT.with(|t| t.borrow_mut().as_mut().map(f))
}

fn new_id() -> String {
    crate::id::metric_id(js_sys::Date::now(), js_sys::Math::random())
}

fn page_key(config: &Config) -> String {
    let (origin, path, query) = LOCATION.with(|l| (l.origin(), l.pathname(), l.search()));
    if let Some(f) = &config.page_key {
        let href = LOCATION.with(|l| l.href());
        if let Some(key) = f
            .call1(&JsValue::UNDEFINED, &JsValue::from_str(&href))
            .ok()
            .and_then(|k| k.as_string())
        {
            return key;
        }
    }
    let query = query.strip_prefix('?').unwrap_or(&query);
    crate::page_key::page_key(&origin, &path, query, &config.routes, &config.query_keys)
}

/// Starts measuring all five metrics and sending them. Later calls are
/// ignored: one page has one transport.
pub fn start(opts: &JsValue) {
    if TRANSPORT.with(|t| t.borrow().is_some()) {
        return;
    }
    let config = Config::from_js(opts);
    let consent = !config.require_consent;
    let now = js_sys::Date::now();
    // Without consent nothing is read from or written to storage.
    let stored = if consent {
        storage::get(Area::Local, SESSION_KEY).and_then(|s| Session::parse(&s))
    } else {
        None
    };
    let session = Session::resume(stored, now, new_id);
    if consent {
        storage::set(Area::Local, SESSION_KEY, &session.serialize());
    }
    let sampled = session::is_sampled(&session.id, config.sample_rate);
    let t = Transport {
        page: page_key(&config),
        config,
        consent,
        sampled,
        session,
        page_view_id: new_id(),
        navigation_type: metric::current_navigation_type(),
        queue: Queue::default(),
        queue_bytes: 0,
        retry: Vec::new(),
        retry_at: 0.0,
        failures: 0,
        retry_timer: false,
        keepalive: KeepaliveBudget::default(),
        requests: 0,
    };
    let interval = t.config.flush_interval_ms;
    TRANSPORT.with(|cell| *cell.borrow_mut() = Some(t));
    if !sampled {
        // An unsampled session costs nothing more: no observers at all.
        return;
    }

    // Every change is queued (the latest per id), so that timer flushes
    // carry CLS and INP as they grow on long-lived pages.
    let sink: Sink = Rc::new(|m: &Metric, r: Report| enqueue(m.to_report(r)));
    let opts = Options {
        report_all_changes: true,
        duration_threshold: None,
    };
    super::fcp::on_fcp(sink.clone(), opts);
    super::lcp::on_lcp(sink.clone(), opts);
    super::cls::on_cls(sink.clone(), opts);
    super::inp::on_inp(sink.clone(), opts);
    super::ttfb::on_ttfb(sink, opts);

    lifecycle::on_hidden(|| flush(Mode::Exit));
    listen("pagehide", true, |_| flush(Mode::Exit));
    on_bfcache_restore(|_| {
        with(|t| {
            t.page_view_id = new_id();
            t.navigation_type = NavigationType::BackForwardCache;
        });
    });
    schedule_timer(interval);
    if consent {
        resend_pending();
    }
}

fn schedule_timer(interval: f64) {
    bindings::set_timeout(
        &once(move || {
            if !bindings::document_hidden() {
                flush(Mode::Visible);
            }
            schedule_timer(interval);
        }),
        interval,
    );
}

fn enqueue(report: MetricReport) {
    let full = with(|t| {
        // A rough JSON size; exact sizes are measured when packing.
        t.queue_bytes += 120 + report.id.len();
        t.queue.push(report);
        t.queue_bytes >= t.config.max_queue_bytes
    })
    .unwrap_or(false);
    if bindings::document_hidden() {
        // Reports made while hiding (final CLS, INP, LCP) go out right after
        // the handler that made them, before the page can unload.
        if !EXIT_FLUSH_SCHEDULED.with(|f| f.replace(true)) {
            bindings::queue_microtask(&once(|| {
                EXIT_FLUSH_SCHEDULED.with(|f| f.set(false));
                flush(Mode::Exit);
            }));
        }
    } else if full {
        flush(Mode::Visible);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The page is visible: `fetch`, to see the answer and retry.
    Visible,
    /// The page is being hidden or unloaded: `sendBeacon` first.
    Exit,
}

/// Sends everything queued (and due for retry).
fn flush(mode: Mode) {
    if let Some((endpoint, bodies, before_send)) = with(|t| take_bodies(t, mode)).flatten() {
        send_all(&endpoint, bodies, before_send.as_ref(), mode);
    }
    if mode == Mode::Exit {
        persist_retries();
    }
}

fn send_all(endpoint: &str, bodies: Vec<String>, before_send: Option<&Function>, mode: Mode) {
    for body in bodies {
        let body = match before_send {
            Some(f) => match apply_before_send(f, &body) {
                Some(b) => b,
                None => continue,
            },
            None => body,
        };
        if body.len() <= delivery::MAX_BODY_BYTES {
            send(endpoint, body, mode);
        }
    }
}

/// Packs the queue into bodies under the size limit, plus any retries due.
fn take_bodies(t: &mut Transport, mode: Mode) -> Option<(String, Vec<String>, Option<Function>)> {
    if !t.consent || !t.sampled {
        return None;
    }
    let now = js_sys::Date::now();
    let mut bodies = Vec::new();
    if !t.retry.is_empty() && now >= t.retry_at {
        bodies.append(&mut t.retry);
    }
    if !t.queue.is_empty() {
        t.queue_bytes = 0;
        let reports = t.queue.take();
        let envelope = json::envelope(&Beacon {
            schema_version: SCHEMA_VERSION,
            page: t.page.clone(),
            page_view_id: Some(t.page_view_id.clone()),
            session_id: Some(t.session.id.clone()),
            navigation_type: Some(t.navigation_type),
            form_factor: Some(device::form_factor()),
            effective_type: device::effective_type(),
            device_memory: device::device_memory(),
            metrics: Vec::new(),
        });
        let metrics: Vec<String> = reports.iter().map(json::metric).collect();
        let sizes: Vec<usize> = metrics.iter().map(String::len).collect();
        let (runs, _too_large) = delivery::pack(
            envelope.len(),
            &sizes,
            delivery::MAX_BODY_BYTES,
            delivery::MAX_METRICS_PER_BEACON,
        );
        for run in runs {
            bodies.push(json::body(&envelope, &metrics[run]));
        }
    }
    if bodies.is_empty() {
        return None;
    }
    // Keep the session alive while the page reports.
    t.session.last_active_ms = now;
    if mode == Mode::Visible {
        storage::set(Area::Local, SESSION_KEY, &t.session.serialize());
    }
    Some((t.config.endpoint.clone(), bodies, t.config.before_send.clone()))
}

/// Runs the page's `beforeSend(beacon)`: it may edit the beacon, return a
/// new one, or return `null`/`false` to drop it.
fn apply_before_send(f: &Function, body: &str) -> Option<String> {
    let beacon = js_sys::JSON::parse(body).ok()?;
    let out = f.call1(&JsValue::UNDEFINED, &beacon).ok()?;
    let out = if out.is_undefined() { beacon } else { out };
    if out.is_null() || out.is_falsy() {
        return None;
    }
    js_sys::JSON::stringify(&out).ok()?.as_string()
}

fn send(endpoint: &str, body: String, mode: Mode) {
    let allowed = with(|t| {
        let ok = t.requests < delivery::MAX_REQUESTS_PER_PAGE;
        t.requests += u32::from(ok);
        ok
    });
    if allowed != Some(true) {
        return;
    }
    let len = body.len();
    if mode == Mode::Exit && bindings::send_beacon(endpoint, &body).unwrap_or(false) {
        // The browser counts queued beacons against the same in-flight quota
        // as keepalive fetches, but never says when they leave: count them
        // for a few seconds.
        with(|t| t.keepalive.force_reserve(len));
        bindings::set_timeout(
            &once(move || {
                with(|t| t.keepalive.release(len));
            }),
            BEACON_IN_FLIGHT_MS,
        );
        return;
    }
    let keepalive = with(|t| t.keepalive.try_reserve(len)).unwrap_or(false);
    let init = Object::new();
    bindings::set(&init, "method", &JsValue::from_str("POST"));
    bindings::set(&init, "body", &JsValue::from_str(&body));
    bindings::set(&init, "keepalive", &JsValue::from_bool(keepalive));
    bindings::set(&init, "credentials", &JsValue::from_str("omit"));
    let headers = Object::new();
    // A "simple" request: no CORS preflight.
    bindings::set(&headers, "content-type", &JsValue::from_str("text/plain;charset=UTF-8"));
    bindings::set(&init, "headers", &headers);
    let Ok(promise) = fetch(endpoint, &init) else {
        if keepalive {
            with(|t| t.keepalive.release(len));
        }
        return;
    };
    let body = Rc::new(body);
    let b = body.clone();
    let on_response = Closure::once_into_js(move |res: JsValue| {
        let status = bindings::get(&res, "status").as_f64().unwrap_or(0.0) as u16;
        let retry_after = retry_after_header(&res);
        answered(status, retry_after.as_deref(), &b, keepalive);
    });
    let on_error = Closure::once_into_js(move |_: JsValue| answered(0, None, &body, keepalive));
    promise.then(&on_response, &on_error);
}

fn retry_after_header(res: &JsValue) -> Option<String> {
    let headers = bindings::get(res, "headers");
    let get: Function = bindings::get(&headers, "get").dyn_into().ok()?;
    let v = get
        .call1(&headers, &JsValue::from_str("retry-after"))
        .ok()?
        .as_string()?;
    if v.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return Some(v);
    }
    // An HTTP date: pass it on as `@<ms since epoch>`.
    let at = js_sys::Date::parse(&v);
    (at == at).then(|| {
        let mut s = String::from("@");
        crate::id::push_decimal(&mut s, at.max(0.0) as u64);
        s
    })
}

fn answered(status: u16, retry_after: Option<&str>, body: &Rc<String>, keepalive: bool) {
    let now = js_sys::Date::now();
    let retry_in = with(|t| {
        if keepalive {
            t.keepalive.release(body.len());
        }
        match delivery::outcome(status, retry_after, now, t.failures) {
            Outcome::Delivered => {
                t.failures = 0;
                None
            }
            Outcome::Rejected => None,
            Outcome::RetryAfter(ms) => {
                t.failures += 1;
                t.retry.push(String::from(body.as_str()));
                t.retry_at = t.retry_at.max(now + ms);
                (!core::mem::replace(&mut t.retry_timer, true)).then_some(ms)
            }
        }
    })
    .flatten();
    if let Some(ms) = retry_in {
        bindings::set_timeout(
            &once(|| {
                with(|t| t.retry_timer = false);
                if !bindings::document_hidden() {
                    flush(Mode::Visible);
                }
            }),
            ms,
        );
    }
}

/// Mirrors the bodies still waiting for a retry into `sessionStorage` when
/// the page is hidden or unloaded, so that the next page view of this site
/// in this tab sends them if this one never gets to.
fn persist_retries() {
    let Some(mut all) = with(|t| t.consent.then(|| t.retry.clone())).flatten() else {
        return;
    };
    if all.is_empty() {
        storage::remove(Area::Session, PENDING_KEY);
        return;
    }
    // Bounded like one request: the oldest go first.
    while all.iter().map(String::len).sum::<usize>() > delivery::MAX_BODY_BYTES && !all.is_empty() {
        all.remove(0);
    }
    let arr: Array = all.iter().map(|s| JsValue::from_str(s)).collect();
    if let Some(json) = js_sys::JSON::stringify(&arr).ok().and_then(|s| s.as_string()) {
        storage::set(Area::Session, PENDING_KEY, &json);
    }
}

fn load_pending() -> Vec<String> {
    let Some(json) = storage::get(Area::Session, PENDING_KEY) else {
        return Vec::new();
    };
    js_sys::JSON::parse(&json).ok().map(|v| strings(&v)).unwrap_or_default()
}

/// Sends what the previous page view could not.
fn resend_pending() {
    let pending = load_pending();
    storage::remove(Area::Session, PENDING_KEY);
    if pending.is_empty() {
        return;
    }
    with(|t| t.retry.extend(pending));
    flush(Mode::Visible);
}

pub fn grant_consent() {
    let granted = with(|t| {
        if t.consent {
            return false;
        }
        t.consent = true;
        storage::set(Area::Local, SESSION_KEY, &t.session.serialize());
        true
    });
    if granted == Some(true) {
        resend_pending();
        flush(Mode::Visible);
    }
}

/// Stops sending and forgets everything queued or stored.
pub fn revoke_consent() {
    with(|t| {
        t.consent = false;
        t.queue.take();
        t.queue_bytes = 0;
        t.retry.clear();
    });
    storage::remove(Area::Local, SESSION_KEY);
    storage::remove(Area::Session, PENDING_KEY);
}

#[wasm_bindgen]
extern "C" {
    type Pending;
    #[wasm_bindgen(method)]
    fn then(this: &Pending, on_fulfilled: &JsValue, on_rejected: &JsValue);
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch(url: &str, init: &Object) -> Result<Pending, JsValue>;
}

/// What the beacon says about the device and network.
mod device {
    use alloc::string::String;

    use beacon::FormFactor;

    use super::super::bindings;

    fn navigator() -> wasm_bindgen::JsValue {
        bindings::global("navigator")
    }

    pub fn form_factor() -> FormFactor {
        let nav = navigator();
        let mobile = bindings::get(&bindings::get(&nav, "userAgentData"), "mobile").as_bool();
        let ua = bindings::get(&nav, "userAgent").as_string().unwrap_or_default();
        crate::form_factor::form_factor(mobile, &ua)
    }

    pub fn effective_type() -> Option<String> {
        bindings::get(&bindings::get(&navigator(), "connection"), "effectiveType").as_string()
    }

    pub fn device_memory() -> Option<f64> {
        bindings::get(&navigator(), "deviceMemory").as_f64()
    }
}
