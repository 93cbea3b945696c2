//! The JavaScript API of the npm package (feature `js`): the web-vitals
//! functions (`onFCP` ... `onTTFB`), `start` (`init()` in the package),
//! consent, and the replay of what the loader recorded before the wasm ran.
//! Options are JS objects deserialised with serde-wasm-bindgen; an option
//! of the wrong type gets one `console.warn` and its default.

use std::cell::RefCell;

use beacon::MetricName;
use js_sys::{Array, Function, Object};
use serde::{Deserialize, Deserializer};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::report::Changes;
use crate::web::instance::Report;
use crate::web::transport::{BeforeSend, Config, PageKey};
use crate::web::{Group, Sink};
use crate::{delivery, IN_BROWSER};

#[wasm_bindgen]
extern "C" {
    /// The metric object a JS callback receives: one per instance, updated
    /// in place, as web-vitals does.
    #[wasm_bindgen(extends = Object)]
    type MetricObject;
    #[wasm_bindgen(method, setter)]
    fn set_name(this: &MetricObject, v: &str);
    #[wasm_bindgen(method, setter)]
    fn set_value(this: &MetricObject, v: f64);
    #[wasm_bindgen(method, setter)]
    fn set_rating(this: &MetricObject, v: &str);
    #[wasm_bindgen(method, setter)]
    fn set_delta(this: &MetricObject, v: f64);
    #[wasm_bindgen(method, setter)]
    fn set_entries(this: &MetricObject, v: &Array);
    #[wasm_bindgen(method, setter)]
    fn set_id(this: &MetricObject, v: &str);
    #[wasm_bindgen(method, setter = navigationType)]
    fn set_navigation_type(this: &MetricObject, v: &str);
    #[wasm_bindgen(method, setter = navigationId)]
    fn set_navigation_id(this: &MetricObject, v: f64);
    #[wasm_bindgen(method, setter = navigationInteractionId)]
    fn set_navigation_interaction_id(this: &MetricObject, v: Option<f64>);
    #[wasm_bindgen(method, setter = navigationURL)]
    fn set_navigation_url(this: &MetricObject, v: Option<String>);
    #[wasm_bindgen(method, setter = navigationStartTime)]
    fn set_navigation_start_time(this: &MetricObject, v: f64);
    #[cfg(feature = "attribution")]
    #[wasm_bindgen(method, setter)]
    fn set_attribution(this: &MetricObject, v: &JsValue);

    /// What the loader (`npm/src/index.js`) recorded until the wasm ran:
    /// observer batches per entry group, trusted input, a hide.
    type EarlyRecord;
    #[wasm_bindgen(method, getter)]
    fn paint(this: &EarlyRecord) -> Option<Array>;
    #[wasm_bindgen(method, getter)]
    fn lcp(this: &EarlyRecord) -> Option<Array>;
    #[wasm_bindgen(method, getter = layoutShift)]
    fn layout_shift(this: &EarlyRecord) -> Option<Array>;
    #[wasm_bindgen(method, getter)]
    fn event(this: &EarlyRecord) -> Option<Array>;
    #[wasm_bindgen(method, getter)]
    fn input(this: &EarlyRecord) -> bool;
    #[wasm_bindgen(method, getter)]
    fn hidden(this: &EarlyRecord) -> bool;
}

/// The npm package's TypeScript declarations (`dist/index.d.ts`, extracted
/// from wasm-bindgen's output by `npm/build.mjs` between the markers): the
/// API of the loader, which forwards to the exports below.
#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"// <vitalsign-types>
// Type declarations for vitalsign, generated from agent/src/js.rs. The
// metric API matches web-vitals 6.

export type MetricName = 'FCP' | 'LCP' | 'CLS' | 'INP' | 'TTFB';
export type MetricRating = 'good' | 'needs-improvement' | 'poor';
export type NavigationType =
  | 'navigate'
  | 'reload'
  | 'back-forward'
  | 'back-forward-cache'
  | 'prerender'
  | 'restore'
  | 'soft-navigation';

export interface Metric {
  name: MetricName;
  /** Milliseconds, or unitless for CLS. */
  value: number;
  rating: MetricRating;
  /** Change since the last report of this metric instance. */
  delta: number;
  /** Unique per metric instance: later reports with the same id replace earlier ones. */
  id: string;
  entries: PerformanceEntry[];
  navigationType: NavigationType;
  /** The browser's navigationId of the navigation measured (hard, soft or restored). */
  navigationId: number;
  /** The interaction that caused the soft navigation measured. */
  navigationInteractionId?: number;
  /** The URL of the navigation measured (a soft navigation's: the route's URL). */
  navigationURL?: string;
  /** When the navigation measured started (0 for the hard navigation). */
  navigationStartTime: number;
}

export interface FCPMetric extends Metric { name: 'FCP'; entries: PerformancePaintTiming[] }
export interface LCPMetric extends Metric { name: 'LCP'; entries: PerformanceEntry[] }
export interface CLSMetric extends Metric { name: 'CLS'; entries: PerformanceEntry[] }
export interface INPMetric extends Metric { name: 'INP'; entries: PerformanceEventTiming[] }
export interface TTFBMetric extends Metric { name: 'TTFB'; entries: PerformanceNavigationTiming[] }

export interface ReportOpts {
  /** Report every change, not only final values. */
  reportAllChanges?: boolean;
  /** Report each soft navigation (route) as its own navigation, as web-vitals 6. */
  reportSoftNavs?: boolean;
}

export interface INPReportOpts extends ReportOpts {
  /** Minimum event duration observed, in ms (default 40). */
  durationThreshold?: number;
}

export type MetricRatingThresholds = [number, number];

export function onFCP(callback: (metric: FCPMetric) => void, opts?: ReportOpts): void;
export function onLCP(callback: (metric: LCPMetric) => void, opts?: ReportOpts): void;
export function onCLS(callback: (metric: CLSMetric) => void, opts?: ReportOpts): void;
export function onINP(callback: (metric: INPMetric) => void, opts?: INPReportOpts): void;
export function onTTFB(callback: (metric: TTFBMetric) => void, opts?: ReportOpts): void;

export const FCPThresholds: MetricRatingThresholds;
export const LCPThresholds: MetricRatingThresholds;
export const CLSThresholds: MetricRatingThresholds;
export const INPThresholds: MetricRatingThresholds;
export const TTFBThresholds: MetricRatingThresholds;

/** One metric report as sent to the collector. */
export interface BeaconMetric {
  name: MetricName;
  value: number;
  delta: number;
  id: string;
  rating: MetricRating;
  navigationType: NavigationType;
}

/** The JSON body sent to the collector (see beacon.schema.json). */
export interface Beacon {
  schemaVersion: 1;
  /** Page key: URL without query and fragment, identifiers replaced by `:id`. */
  page: string;
  pageViewId?: string;
  sessionId?: string;
  navigationType?: NavigationType;
  formFactor?: 'phone' | 'tablet' | 'desktop';
  effectiveType?: string;
  deviceMemory?: number;
  metrics: BeaconMetric[];
}

export interface InitOpts {
  /** Collector URL (default `/v1/beacon`). */
  endpoint?: string;
  /** Share of sessions measured, 0 to 1 (default 1), decided once per session. */
  sampleRate?: number;
  /** How often a visible page sends what it has, in ms (default 10000). */
  flushInterval?: number;
  /** Queue size that triggers a send, in bytes of JSON (default 16384). */
  maxQueueBytes?: number;
  /** Store and send nothing until `grantConsent()` (default false). */
  requireConsent?: boolean;
  /** Route patterns (`/products/:id`, `/blog/*`): a matching page is keyed by its pattern. */
  routes?: string[];
  /** Query keys kept in the page key (all others are dropped). */
  queryKeys?: string[];
  /** Computes the page key from the page URL; replaces the default. */
  pageKey?: (url: string) => string;
  /** Edits a beacon before it is sent; return null or false to drop it. */
  beforeSend?: (beacon: Beacon) => Beacon | null | false | void;
}

/** Marks a route change by hand where the browser reports no soft navigations. */
export function startPageView(): void;
/** Measures all five metrics and sends them to the collector. */
export function init(opts?: InitOpts): void;
/** With `requireConsent`: starts storing and sending. */
export function grantConsent(): void;
/** Stops sending and clears stored data. */
export function revokeConsent(): void;
/** Resolves to true once the agent runs, false where it cannot (no WebAssembly). */
export function loaded(): Promise<boolean>;
// </vitalsign-types>
"#;

/// A JavaScript callback and the metric object of its current instance.
pub(crate) struct Callback {
    f: Function,
    metric: Option<MetricObject>,
}

impl Callback {
    pub(crate) fn deliver(&mut self, r: &Report) {
        let m = self.metric.get_or_insert_with(|| {
            // The reference's key order.
            let m: MetricObject = Object::new().unchecked_into();
            m.set_name(r.name.as_str());
            m.set_value(0.0);
            m.set_rating(r.rating.as_str());
            m.set_delta(0.0);
            m.set_entries(r.entries);
            m.set_id(r.id);
            m.set_navigation_type(r.navigation_type.as_str());
            m.set_navigation_id(r.navigation.id);
            m.set_navigation_interaction_id(r.navigation.interaction_id);
            m.set_navigation_url(r.navigation.url.clone());
            m.set_navigation_start_time(r.navigation.start_time);
            m
        });
        m.set_value(r.value);
        m.set_rating(r.rating.as_str());
        m.set_delta(r.delta);
        m.set_entries(r.entries);
        #[cfg(feature = "attribution")]
        if let Some(a) = r.attribution {
            m.set_attribution(&crate::web::attribution::js::to_js(a));
        }
        // The page's own exception must not unwind through the agent.
        let _ = self.f.call1(&JsValue::UNDEFINED, m);
    }

    /// A bfcache restore started a new instance: a new object.
    pub(crate) fn new_instance(&mut self) {
        self.metric = None;
    }
}

thread_local! {
    static EARLY: RefCell<Option<EarlyRecord>> = const { RefCell::new(None) };
}

pub(crate) fn recorded(group: Group) -> Option<Array> {
    EARLY.with(|e| {
        let e = e.borrow();
        let r = e.as_ref()?;
        match group {
            Group::Paint => r.paint(),
            Group::LargestContentfulPaint => r.lcp(),
            Group::LayoutShift => r.layout_shift(),
            Group::Event => r.event(),
            Group::SoftNavs(_) => None,
            // Not recorded by the loader: observed buffered.
            #[cfg(feature = "attribution")]
            Group::Resource | Group::LongAnimationFrame => None,
        }
    })
}

pub(crate) fn early_input() -> bool {
    EARLY.with(|e| e.borrow().as_ref().is_some_and(EarlyRecord::input))
}

/// Replays the calls made before the wasm ran against `record`: until
/// [`end_replay`], observers start from its batches instead of the
/// browser's buffer.
#[wasm_bindgen(js_name = beginReplay)]
pub fn begin_replay(record: JsValue) {
    if record.is_object() {
        EARLY.with(|e| *e.borrow_mut() = Some(record.unchecked_into()));
    }
}

/// Ends the replay; a page hidden before the agent ran reports now, as
/// the reference did then.
#[wasm_bindgen(js_name = endReplay)]
pub fn end_replay() {
    let record = EARLY.with(|e| e.borrow_mut().take());
    if record.is_some_and(|r| r.hidden()) {
        crate::web::page::fire_hidden();
    }
}

/// An option value: of the expected type, or not (then the option's
/// default is used and the page is told). serde-wasm-bindgen deserialises
/// each property from its own value, so a failed field leaves the rest of
/// the object readable.
enum Lenient<T> {
    Valid(T),
    WrongType,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(T::deserialize(d).map_or(Lenient::WrongType, Lenient::Valid))
    }
}

/// What is wrong with options the page passed.
enum OptionError {
    /// `option` is not of the `expected` type.
    WrongType {
        option: &'static str,
        expected: &'static str,
    },
    /// The options are not an object.
    NotAnObject,
}

impl OptionError {
    fn message(&self) -> String {
        match self {
            OptionError::WrongType { option, expected } => [
                "vitalsign: option ",
                option,
                " is not ",
                expected,
                "; its default is used",
            ]
            .concat(),
            OptionError::NotAnObject => "vitalsign: options are not an object; the defaults are used".into(),
        }
    }

    fn warn(&self) {
        web_sys::console::warn_1(&self.message().into());
    }
}

/// The value of an option, or `None` (its default) when absent or of the
/// wrong type (with a warning).
fn valid<T>(value: Option<Lenient<T>>, option: &'static str, expected: &'static str) -> Option<T> {
    match value? {
        Lenient::Valid(v) => Some(v),
        Lenient::WrongType => {
            OptionError::WrongType { option, expected }.warn();
            None
        }
    }
}

fn function(value: JsValue, option: &'static str) -> Option<Function> {
    if value.is_undefined() || value.is_null() {
        return None;
    }
    let f = value.dyn_into::<Function>().ok();
    if f.is_none() {
        OptionError::WrongType {
            option,
            expected: "a function",
        }
        .warn();
    }
    f
}

/// `options` as `T`; absent options are all defaults.
fn options<T: for<'de> Deserialize<'de> + Default>(options: JsValue) -> T {
    if options.is_undefined() || options.is_null() {
        return T::default();
    }
    serde_wasm_bindgen::from_value(options).unwrap_or_else(|_| {
        OptionError::NotAnObject.warn();
        T::default()
    })
}

/// The options of `onFCP` ... `onTTFB`.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsReportOpts {
    report_all_changes: Option<Lenient<bool>>,
    duration_threshold: Option<Lenient<f64>>,
    report_soft_navs: Option<Lenient<bool>>,
    #[cfg(feature = "attribution")]
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    generate_target: JsValue,
    #[cfg(feature = "attribution")]
    include_processed_event_entries: Option<Lenient<bool>>,
    #[cfg(feature = "attribution")]
    resource_buffer_size: Option<Lenient<f64>>,
}

fn on(name: MetricName, callback: JsValue, opts: JsValue) {
    if !IN_BROWSER {
        return;
    }
    let Some(f) = function(callback, "callback") else {
        return;
    };
    let opts: JsReportOpts = options(opts);
    let all = valid(opts.report_all_changes, "reportAllChanges", "a boolean").unwrap_or(false);
    let threshold = valid(opts.duration_threshold, "durationThreshold", "a number")
        .unwrap_or(crate::web::DEFAULT_DURATION_THRESHOLD);
    let soft = valid(opts.report_soft_navs, "reportSoftNavs", "a boolean").unwrap_or(false);
    let sink = Sink::Js(Callback { f, metric: None });
    // The attribution build's callbacks get attribution, as
    // web-vitals/attribution's do.
    #[cfg(feature = "attribution")]
    let sink = Sink::Attributed(
        Box::new(sink),
        crate::web::attribution::Options {
            generate_target: function(opts.generate_target, "generateTarget")
                .map(crate::web::attribution::GenerateTarget::Js),
            include_processed_event_entries: valid(
                opts.include_processed_event_entries,
                "includeProcessedEventEntries",
                "a boolean",
            )
            .unwrap_or(false),
            resource_buffer_size: valid(opts.resource_buffer_size, "resourceBufferSize", "a number"),
        },
    );
    crate::web::on_metric(
        name,
        sink,
        if all { Changes::All } else { Changes::Forced },
        threshold,
        soft,
    );
}

/// web-vitals' `onFCP(callback, opts)`.
#[wasm_bindgen(js_name = onFCP)]
pub fn on_fcp(callback: JsValue, opts: JsValue) {
    on(MetricName::Fcp, callback, opts);
}

/// web-vitals' `onLCP(callback, opts)`.
#[wasm_bindgen(js_name = onLCP)]
pub fn on_lcp(callback: JsValue, opts: JsValue) {
    on(MetricName::Lcp, callback, opts);
}

/// web-vitals' `onCLS(callback, opts)`.
#[wasm_bindgen(js_name = onCLS)]
pub fn on_cls(callback: JsValue, opts: JsValue) {
    on(MetricName::Cls, callback, opts);
}

/// web-vitals' `onINP(callback, opts)`.
#[wasm_bindgen(js_name = onINP)]
pub fn on_inp(callback: JsValue, opts: JsValue) {
    on(MetricName::Inp, callback, opts);
}

/// web-vitals' `onTTFB(callback, opts)`.
#[wasm_bindgen(js_name = onTTFB)]
pub fn on_ttfb(callback: JsValue, opts: JsValue) {
    on(MetricName::Ttfb, callback, opts);
}

/// The options of `init()`.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsInitOptions {
    endpoint: Option<Lenient<String>>,
    sample_rate: Option<Lenient<f64>>,
    flush_interval: Option<Lenient<f64>>,
    max_queue_bytes: Option<Lenient<f64>>,
    require_consent: Option<Lenient<bool>>,
    routes: Option<Lenient<Vec<String>>>,
    query_keys: Option<Lenient<Vec<String>>>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    page_key: JsValue,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    before_send: JsValue,
    #[cfg(feature = "attribution")]
    attribution: Option<Lenient<bool>>,
}

/// `init(options)`: measures all five metrics and sends them.
#[wasm_bindgen]
pub fn start(opts: JsValue) {
    if !IN_BROWSER {
        return;
    }
    let o: JsInitOptions = options(opts);
    let positive = |v: f64| (v > 0.0).then_some(v);
    let strings = "a list of strings";
    crate::web::transport::start(Config {
        endpoint: valid(o.endpoint, "endpoint", "a string").unwrap_or_else(|| delivery::DEFAULT_ENDPOINT.into()),
        sample_rate: valid(o.sample_rate, "sampleRate", "a number").unwrap_or(delivery::DEFAULT_SAMPLE_RATE),
        flush_interval_ms: valid(o.flush_interval, "flushInterval", "a number")
            .and_then(positive)
            .map_or(delivery::DEFAULT_FLUSH_INTERVAL_MS, |ms| ms as u32),
        max_queue_bytes: valid(o.max_queue_bytes, "maxQueueBytes", "a number")
            .and_then(positive)
            .map_or(delivery::DEFAULT_MAX_QUEUE_BYTES, |b| b as usize),
        require_consent: valid(o.require_consent, "requireConsent", "a boolean").unwrap_or(false),
        routes: valid(o.routes, "routes", strings).unwrap_or_default(),
        query_keys: valid(o.query_keys, "queryKeys", strings).unwrap_or_default(),
        page_key: function(o.page_key, "pageKey").map_or(PageKey::Default, PageKey::Js),
        before_send: function(o.before_send, "beforeSend").map_or(BeforeSend::None, BeforeSend::Js),
        #[cfg(feature = "attribution")]
        attribution: valid(o.attribution, "attribution", "a boolean").unwrap_or(false),
    });
}

/// `startPageView()`: a route change marked by hand.
#[wasm_bindgen(js_name = startPageView)]
pub fn start_page_view() {
    crate::start_page_view();
}

/// With `init({requireConsent: true})`: starts storing and sending.
#[wasm_bindgen(js_name = grantConsent)]
pub fn grant_consent() {
    crate::grant_consent();
}

/// Stops sending and clears what the agent stored.
#[wasm_bindgen(js_name = revokeConsent)]
pub fn revoke_consent() {
    crate::revoke_consent();
}
