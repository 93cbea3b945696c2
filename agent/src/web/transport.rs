//! `init()`: the beacon queue, flushes and their transport (`sendBeacon`
//! on exit, `fetch` with `keepalive` within the browser's budget, plain
//! `fetch` with retries while visible), the session in `localStorage` and
//! the hand-over of unsent bodies in `sessionStorage`. The rules are the
//! plain-Rust modules `delivery`, `session` and `page_key`.

use std::cell::{Cell, RefCell};

use beacon::{Beacon, FormFactor, MetricName, MetricReport, NavigationType, SCHEMA_VERSION};
use gloo_timers::callback::Interval;
use js_sys::{Array, Date, JsString, JSON};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{RequestCredentials, RequestInit, Response, Storage};

use super::bindings::{fetch, navigator, window, FetchInit};
use super::instance::{new_id, Report, Sink};
use super::page::{hidden, later, listen, navigation_type, on_hidden, on_restore};
use crate::delivery::{
    KeepaliveBudget, Packer, Placement, QueueSize, Retries, MAX_BODY_BYTES, MAX_METRICS_PER_BEACON,
    MAX_REQUESTS_PER_PAGE,
};
use crate::report::Changes;
use crate::session::{self, Session};

/// What a report's attribution is on the wire: [`beacon::Attribution`] in
/// the attribution build, nothing (no serializer code) in the core one.
#[cfg(feature = "attribution")]
pub type Attr = beacon::Attribution;
/// What a report's attribution is on the wire: nothing in the core build.
#[cfg(not(feature = "attribution"))]
pub type Attr = beacon::NoAttribution;

const SESSION_KEY: &str = "vitalsign:session";
const PENDING_KEY: &str = "vitalsign:pending";
/// `sendBeacon` never says when a body left; it is counted against the
/// keepalive budget this long.
const BEACON_IN_FLIGHT_MS: u32 = 3_000;

/// The page key from the page's URL (`location.href`).
pub enum PageKey {
    Default,
    Rust(crate::PageKeyFn),
    #[cfg(feature = "js")]
    Js(js_sys::Function),
}

/// A hook that may edit a beacon before it is sent, or drop it.
pub enum BeforeSend {
    None,
    /// `false` drops the beacon.
    Rust(crate::BeforeSendFn),
    /// Gets the beacon as an object; returns a replacement, nothing (the
    /// edited object is sent) or `null`/`false` (dropped).
    #[cfg(feature = "js")]
    Js(js_sys::Function),
}

/// `init()`'s options, defaults applied.
pub struct Config {
    pub endpoint: String,
    pub sample_rate: f64,
    pub flush_interval_ms: u32,
    pub max_queue_bytes: usize,
    pub require_consent: bool,
    pub routes: Vec<String>,
    pub query_keys: Vec<String>,
    pub page_key: PageKey,
    pub before_send: BeforeSend,
    /// `init({attribution: true})`: reports carry their attribution.
    #[cfg(feature = "attribution")]
    pub attribution: bool,
}

/// How reports get their page key.
struct Keys {
    routes: Vec<String>,
    query_keys: Vec<String>,
    page_key: PageKey,
    /// The hard navigation's URL: an instance measuring another one
    /// measures a route.
    hard_url: Option<String>,
    /// The latest routes' URLs and keys (a `pageKey` callback runs once per
    /// route).
    memo: Vec<(String, String)>,
}

/// The page view a report belongs to: its beacons carry these.
#[derive(Clone, PartialEq)]
struct View {
    page: String,
    navigation_type: Option<NavigationType>,
    page_view_id: Option<String>,
}

struct Queued {
    view: View,
    report: MetricReport<Attr>,
}

struct Transport {
    endpoint: String,
    keys: Keys,
    /// Page view ids of the latest soft navigations, by start time.
    soft_views: Vec<(f64, String)>,
    before_send: BeforeSend,
    consent: bool,
    sampled: bool,
    session: Session,
    /// The beacon without its metrics.
    envelope: Beacon<Attr>,
    /// The latest report per metric instance.
    queue: Vec<Queued>,
    queue_size: QueueSize,
    /// Bodies waiting for a retry.
    retry: Vec<String>,
    retry_timer: bool,
    exit_flush: bool,
    keepalive: KeepaliveBudget,
    requests: u32,
    retries: Retries,
}

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
    static TRANSPORT: RefCell<Option<Transport>> = const { RefCell::new(None) };
}

/// Runs `f` on the transport, if `init()` ran.
fn with<R>(f: impl FnOnce(&mut Transport) -> R) -> Option<R> {
    TRANSPORT.with(|t| t.try_borrow_mut().ok()?.as_mut().map(f))
}

#[derive(Clone, Copy)]
enum Area {
    Local,
    Session,
}

// Storage may be missing or throw (disabled, sandboxed): that reads as "not
// stored", and nothing is kept.
fn storage(area: Area) -> Option<Storage> {
    let w = window();
    match area {
        Area::Local => w.local_storage(),
        Area::Session => w.session_storage(),
    }
    .ok()
    .flatten()
}

fn stored(area: Area, key: &str) -> Option<String> {
    storage(area)?.get_item(key).ok().flatten()
}

fn store(area: Area, key: &str, value: Option<&str>) {
    if let Some(s) = storage(area) {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::new())
        .unwrap_or(JsValue::UNDEFINED)
}

fn stringify(value: &JsValue) -> Option<JsString> {
    JSON::stringify(value).ok().filter(|s| s.is_string())
}

/// Bytes of a report's JSON: ASCII only (names, ratings and navigation
/// types are ASCII, ids are ours, numbers are digits).
fn report_bytes(r: &MetricReport<Attr>) -> usize {
    // Attribution's selectors may be any text: UTF-8 bytes.
    #[cfg(feature = "attribution")]
    if r.attribution.is_some() {
        return stringify(&to_js(r)).and_then(|s| s.as_string()).map_or(0, |s| s.len());
    }
    stringify(&to_js(r)).map_or(0, |s| s.length() as usize)
}

/// Bytes of the beacon's JSON without metrics (the page key may be any
/// text).
fn envelope_bytes(b: &Beacon<Attr>) -> usize {
    stringify(&to_js(b)).and_then(|s| s.as_string()).map_or(0, |s| s.len())
}

fn custom_key(page_key: &PageKey, url: Option<String>) -> Option<String> {
    let url = url?;
    match page_key {
        PageKey::Default => None,
        PageKey::Rust(f) => Some(f(&url)),
        #[cfg(feature = "js")]
        PageKey::Js(f) => f
            .call1(&JsValue::UNDEFINED, &url.into())
            .ok()
            .and_then(|k| k.as_string()),
    }
}

/// The page key of a route's URL (a soft navigation's `navigationURL`).
fn route_key(c: &Keys, url: &str) -> Option<String> {
    let key = custom_key(&c.page_key, Some(url.into())).or_else(|| {
        let (origin, path, query) = crate::page_key::split_url(url)?;
        Some(crate::page_key::page_key(origin, path, query, &c.routes, &c.query_keys))
    })?;
    Some(crate::page_key::without_user_info(&key))
}

/// The page key of the page as it is now (`location`).
fn page_key(c: &Keys) -> String {
    let location = window().location();
    let custom = custom_key(&c.page_key, location.href().ok());
    let key = custom.unwrap_or_else(|| {
        let part = |r: Result<String, JsValue>| r.unwrap_or_default();
        let search = part(location.search());
        crate::page_key::page_key(
            &part(location.origin()),
            &part(location.pathname()),
            search.strip_prefix('?').unwrap_or(&search),
            &c.routes,
            &c.query_keys,
        )
    });
    crate::page_key::without_user_info(&key)
}

fn form_factor() -> FormFactor {
    let nav = navigator();
    let mobile = nav.user_agent_data().and_then(|d| d.mobile().as_bool());
    crate::form_factor::form_factor(mobile, &nav.user_agent().unwrap_or_default())
}

/// Measures all five metrics and sends them. Later calls are ignored.
pub fn start(c: Config) {
    if STARTED.with(|s| s.replace(true)) {
        return;
    }
    let consent = !c.require_consent;
    let now = Date::now();
    // Without consent nothing is read from or written to storage.
    let previous = consent.then(|| stored(Area::Local, SESSION_KEY)).flatten();
    let session = Session::resume(previous.as_deref().and_then(Session::parse), now, new_id);
    if consent {
        store(Area::Local, SESSION_KEY, Some(&session.serialize()));
    }
    let nav = navigator();
    let keys = Keys {
        routes: c.routes,
        query_keys: c.query_keys,
        page_key: c.page_key,
        hard_url: super::page::hard_navigation().url,
        memo: Vec::new(),
    };
    let envelope = Beacon {
        schema_version: SCHEMA_VERSION,
        page: page_key(&keys),
        page_view_id: Some(new_id()),
        session_id: Some(session.id.clone()),
        navigation_type: Some(navigation_type()),
        form_factor: Some(form_factor()),
        effective_type: nav.connection().and_then(|c| c.effective_type().as_string()),
        device_memory: nav.device_memory().as_f64(),
        metrics: Vec::new(),
    };
    let sampled = session::is_sampled(&session.id, c.sample_rate);
    TRANSPORT.with(|t| {
        *t.borrow_mut() = Some(Transport {
            endpoint: c.endpoint,
            keys,
            soft_views: Vec::new(),
            before_send: c.before_send,
            consent,
            sampled,
            session,
            envelope,
            queue: Vec::new(),
            queue_size: QueueSize {
                bytes: 0,
                max: c.max_queue_bytes,
            },
            retry: Vec::new(),
            retry_timer: false,
            exit_flush: false,
            keepalive: KeepaliveBudget::default(),
            requests: 0,
            retries: Retries::default(),
        })
    });
    // An unsampled session costs nothing more: no observers at all.
    if !sampled {
        return;
    }
    for name in MetricName::ALL {
        #[cfg(feature = "attribution")]
        let sink = if c.attribution {
            Sink::Attributed(Box::new(Sink::Queue), Default::default())
        } else {
            Sink::Queue
        };
        #[cfg(not(feature = "attribution"))]
        let sink = Sink::Queue;
        super::on_metric(
            name,
            sink,
            Changes::WhileVisible,
            super::DEFAULT_DURATION_THRESHOLD,
            true,
        );
    }
    on_hidden(flush_after_hooks);
    listen("pagehide", |_| flush(true));
    on_restore(|_| {
        with(|t| {
            t.envelope.page_view_id = Some(new_id());
            t.envelope.navigation_type = Some(NavigationType::BackForwardCache);
        });
    });
    Interval::new(c.flush_interval_ms, || {
        if !hidden() {
            flush(false);
        }
    })
    .forget();
    if consent {
        resend_pending();
    }
}

/// Queues a report of the beacon queue's instances (the latest per
/// instance replaces the earlier one).
pub fn enqueue(r: &Report) {
    enum Then {
        Nothing,
        Flush,
        FlushAfterHooks,
    }
    let then = with(|t| {
        let report = MetricReport {
            name: r.name,
            value: r.value,
            delta: r.delta,
            id: r.id.into(),
            rating: r.rating,
            navigation_type: r.navigation_type,
            #[cfg(feature = "attribution")]
            attribution: r.attribution.map(|a| {
                let mut b = a.to_beacon();
                crate::attribution::sanitize(&mut b);
                b
            }),
            #[cfg(not(feature = "attribution"))]
            attribution: None,
        };
        #[cfg(feature = "attribution")]
        let extra = report.attribution.as_ref().map_or(0, crate::attribution::rough_bytes);
        #[cfg(not(feature = "attribution"))]
        let extra = 0;
        let report = Queued {
            view: t.view(r),
            report,
        };
        let earlier = t
            .queue
            .iter()
            .position(|q| q.report.name == r.name && q.report.id == r.id);
        let full = t.queue_size.add(r.id.len() + extra, earlier.is_some());
        match earlier {
            Some(i) => t.queue[i] = report,
            None => t.queue.push(report),
        }
        if hidden() {
            Then::FlushAfterHooks
        } else if full {
            Then::Flush
        } else {
            Then::Nothing
        }
    });
    match then {
        Some(Then::Flush) => flush(false),
        Some(Then::FlushAfterHooks) => flush_after_hooks(),
        _ => {}
    }
}

/// Flushes for the page's exit once the current event's handlers are done
/// (in a microtask): reports made while hiding (final CLS, INP, LCP) leave
/// before the page can unload, and only after every hide hook ran, the
/// page's own callbacks' too, so a beacon never carries a value before the
/// callbacks are given it.
fn flush_after_hooks() {
    let first = with(|t| !std::mem::replace(&mut t.exit_flush, true)).unwrap_or(false);
    if first {
        window().queue_microtask(&super::page::once(Box::new(|| {
            with(|t| t.exit_flush = false);
            flush(true);
        })));
    }
}

enum Body {
    New(Beacon<Attr>),
    Retry(String),
}

impl Transport {
    /// The page view of a report: a route's (a soft navigation, a page view
    /// marked by hand, a restore of one) is keyed by its `navigationURL`
    /// (the route it measured, whatever the URL is when it is sent), with
    /// navigation type `soft-navigation` and a page view id of its own; the
    /// hard navigation's by the page key `init()` found, and sent with the
    /// page view id and navigation type of the page at send time (new after
    /// a bfcache restore: `None` here).
    fn view(&mut self, r: &Report) -> View {
        let soft = r.navigation_type == NavigationType::SoftNavigation;
        let route = r
            .navigation
            .url
            .as_ref()
            .filter(|u| soft || Some(*u) != self.keys.hard_url.as_ref());
        let page = route.and_then(|url| {
            if let Some((_, key)) = self.keys.memo.iter().find(|(u, _)| u == url) {
                return Some(key.clone());
            }
            let key = route_key(&self.keys, url)?;
            if self.keys.memo.len() >= 8 {
                self.keys.memo.remove(0);
            }
            self.keys.memo.push((url.clone(), key.clone()));
            Some(key)
        });
        let page_view_id = if soft {
            let start = r.navigation.start_time;
            Some(match self.soft_views.iter().find(|(s, _)| *s == start) {
                Some((_, id)) => id.clone(),
                None => {
                    if self.soft_views.len() >= 8 {
                        self.soft_views.remove(0);
                    }
                    let id = new_id();
                    self.soft_views.push((start, id.clone()));
                    id
                }
            })
        } else {
            None
        };
        View {
            page: page.unwrap_or_else(|| self.envelope.page.clone()),
            navigation_type: soft.then_some(r.navigation_type),
            page_view_id,
        }
    }

    /// The queue packed into beacons under the size limits (one page view
    /// per beacon), plus the bodies whose retry is due.
    fn take_bodies(&mut self) -> Vec<Body> {
        let mut bodies = Vec::new();
        if !self.consent || !self.sampled {
            return bodies;
        }
        let now = Date::now();
        if !self.retry.is_empty() && self.retries.due(now) {
            bodies.extend(self.retry.drain(..).map(Body::Retry));
        }
        let mut queue = std::mem::take(&mut self.queue);
        while let Some(view) = queue.first().map(|q| q.view.clone()) {
            let (reports, rest): (Vec<Queued>, Vec<Queued>) = queue.into_iter().partition(|q| q.view == view);
            queue = rest;
            let envelope = Beacon {
                page: view.page,
                navigation_type: view.navigation_type.or(self.envelope.navigation_type),
                page_view_id: view.page_view_id.or_else(|| self.envelope.page_view_id.clone()),
                ..self.envelope.clone()
            };
            let mut packer = Packer::new(envelope_bytes(&envelope), MAX_BODY_BYTES, MAX_METRICS_PER_BEACON);
            let mut run = Vec::new();
            for r in reports.into_iter().map(|q| q.report) {
                let placement = packer.add(report_bytes(&r));
                if placement != Placement::Join && !run.is_empty() {
                    bodies.push(Body::New(Self::beacon(&envelope, std::mem::take(&mut run))));
                }
                if placement != Placement::Drop {
                    run.push(r);
                }
            }
            if !run.is_empty() {
                bodies.push(Body::New(Self::beacon(&envelope, run)));
            }
            self.queue_size.bytes = 0;
        }
        // Keep the session alive while the page reports.
        if !bodies.is_empty() {
            self.session.last_active_ms = now;
        }
        bodies
    }

    fn beacon(envelope: &Beacon<Attr>, metrics: Vec<MetricReport<Attr>>) -> Beacon<Attr> {
        Beacon {
            metrics,
            ..envelope.clone()
        }
    }
}

/// The JSON text of a new beacon, after `beforeSend`; `None` when dropped.
fn encode(mut beacon: Beacon<Attr>) -> Option<String> {
    let mut hook = with(|t| std::mem::replace(&mut t.before_send, BeforeSend::None))?;
    let value = match &mut hook {
        BeforeSend::None => Some(to_js(&beacon)),
        BeforeSend::Rust(f) => f(&mut beacon).then(|| to_js(&beacon)),
        #[cfg(feature = "js")]
        BeforeSend::Js(f) => {
            let object = to_js(&beacon);
            f.call1(&JsValue::UNDEFINED, &object).ok().and_then(|out| {
                if out.is_undefined() {
                    Some(object)
                } else {
                    out.is_truthy().then_some(out)
                }
            })
        }
    };
    with(|t| t.before_send = hook);
    stringify(&value?)?.as_string()
}

/// Sends what is queued (and retries that are due); `exit`: the page is
/// being hidden or unloaded.
pub fn flush(exit: bool) {
    let Some((bodies, session)) = with(|t| (t.take_bodies(), t.session.serialize())) else {
        return;
    };
    if !bodies.is_empty() && !exit {
        store(Area::Local, SESSION_KEY, Some(&session));
    }
    for body in bodies {
        let text = match body {
            Body::Retry(text) => Some(text),
            Body::New(beacon) => encode(beacon),
        };
        if let Some(text) = text.filter(|t| t.len() <= MAX_BODY_BYTES) {
            send(text, exit);
        }
    }
    if exit {
        persist_retries();
    }
}

fn send(body: String, exit: bool) {
    let Some(endpoint) = with(|t| {
        let allowed = t.requests < MAX_REQUESTS_PER_PAGE;
        t.requests += u32::from(allowed);
        allowed.then(|| t.endpoint.clone())
    })
    .flatten() else {
        return;
    };
    let len = body.len();
    if exit && navigator().send_beacon_with_opt_str(&endpoint, Some(&body)) == Ok(true) {
        with(|t| t.keepalive.force_reserve(len));
        later(BEACON_IN_FLIGHT_MS, move || {
            with(|t| t.keepalive.release(len));
        });
        return;
    }
    let keepalive = with(|t| t.keepalive.try_reserve(len)).unwrap_or(false);
    let kept = if keepalive { len } else { 0 };
    let init: FetchInit = RequestInit::new().unchecked_into();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    init.set_keepalive(keepalive);
    init.set_credentials(RequestCredentials::Omit);
    // A string body is sent as text/plain;charset=UTF-8: no CORS preflight.
    match fetch(&endpoint, &init) {
        Ok(promise) => {
            let retry_body = body.clone();
            let done = Closure::once(move |res: JsValue| {
                let res: Response = res.unchecked_into();
                let retry_after = res.headers().get("retry-after").ok().flatten();
                answered(i32::from(res.status()), retry_after, body, kept);
            });
            let failed = Closure::once(move |_: JsValue| answered(0, None, retry_body, kept));
            let _ = promise.then2(&done, &failed);
            // Whichever runs, the pair lives as long as the request.
            done.forget();
            failed.forget();
        }
        Err(_) => answered(-1, None, body, kept),
    }
}

/// After the collector answered `status` (0: the request failed; negative:
/// it could not be made).
fn answered(status: i32, retry_after: Option<String>, body: String, kept: usize) {
    let delay = with(|t| {
        if kept > 0 {
            t.keepalive.release(kept);
        }
        let status = u16::try_from(status).ok()?;
        let now = Date::now();
        let retry_after = retry_after.and_then(|h| crate::delivery::parse_retry_after(&h, Date::parse(&h), now));
        let ms = t.retries.answered(status, retry_after, now)?;
        t.retry.push(body);
        (!std::mem::replace(&mut t.retry_timer, true)).then_some(ms)
    })
    .flatten();
    if let Some(ms) = delay {
        later(ms as u32, || {
            with(|t| t.retry_timer = false);
            if !hidden() {
                flush(false);
            }
        });
    }
}

/// Keeps the bodies still waiting for a retry in sessionStorage when the
/// page hides or unloads, so that the next page view in this tab sends them
/// if this one never gets to. Bounded like one request: the oldest go first.
fn persist_retries() {
    let Some(mut bodies) = with(|t| t.consent.then(|| t.retry.clone())).flatten() else {
        return;
    };
    while !bodies.is_empty() && bodies.iter().map(String::len).sum::<usize>() > MAX_BODY_BYTES {
        bodies.remove(0);
    }
    let json = (!bodies.is_empty())
        .then(|| stringify(&bodies.iter().map(|b| JsValue::from_str(b)).collect::<Array>()))
        .flatten()
        .and_then(|s| s.as_string());
    store(Area::Session, PENDING_KEY, json.as_deref());
}

/// Sends what the previous page view could not.
fn resend_pending() {
    let pending = stored(Area::Session, PENDING_KEY);
    store(Area::Session, PENDING_KEY, None);
    let Some(list) = pending.and_then(|p| JSON::parse(&p).ok()).filter(Array::is_array) else {
        return;
    };
    let list = Array::from(&list);
    let bodies: Vec<String> = (0..list.length()).filter_map(|i| list.get(i).as_string()).collect();
    if !bodies.is_empty() {
        with(|t| t.retry.extend(bodies));
        flush(false);
    }
}

pub fn grant_consent() {
    let Some(session) = with(|t| (!std::mem::replace(&mut t.consent, true)).then(|| t.session.serialize())).flatten()
    else {
        return;
    };
    store(Area::Local, SESSION_KEY, Some(&session));
    resend_pending();
    flush(false);
}

/// Stops sending and forgets everything queued or stored.
pub fn revoke_consent() {
    with(|t| {
        t.consent = false;
        t.queue.clear();
        t.queue_size.bytes = 0;
        t.retry.clear();
    });
    store(Area::Local, SESSION_KEY, None);
    store(Area::Session, PENDING_KEY, None);
}
