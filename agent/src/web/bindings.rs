//! What web-sys lacks, bound with typed `extern` blocks: the entry types and
//! fields of Event Timing, Layout Instability and Navigation Timing 2 that
//! web-sys 0.3 does not know, the Prerendering and Page Lifecycle
//! additions, the `PerformanceObserver.observe()` options of Performance
//! Timeline 2, `RequestInit.keepalive`, and the page globals, each read
//! once (a `thread_local_v2` static is one import call for the page's
//! life, instead of one per use).

use js_sys::{Array, Object, Promise};
use wasm_bindgen::prelude::*;
use web_sys::{Document, Navigator, Performance, PerformanceEntry, RequestInit, Window};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Window;
    #[wasm_bindgen(thread_local_v2, js_name = document)]
    static DOCUMENT: PageDocument;
    #[wasm_bindgen(thread_local_v2, js_name = performance)]
    static PERFORMANCE: PagePerformance;
    #[wasm_bindgen(thread_local_v2, js_name = navigator)]
    static NAVIGATOR: PageNavigator;

    /// `document` with the Prerendering and Page Lifecycle additions.
    #[wasm_bindgen(extends = Document)]
    #[derive(Clone)]
    pub type PageDocument;
    #[wasm_bindgen(method, getter)]
    pub fn prerendering(this: &PageDocument) -> bool;
    #[wasm_bindgen(method, getter = wasDiscarded)]
    pub fn was_discarded(this: &PageDocument) -> bool;

    /// `performance` with Event Timing's `interactionCount`.
    #[wasm_bindgen(extends = Performance)]
    #[derive(Clone)]
    pub type PagePerformance;
    #[wasm_bindgen(method, getter = interactionCount)]
    pub fn interaction_count(this: &PagePerformance) -> Option<f64>;

    /// `navigator` with User-Agent Client Hints, Network Information and
    /// Device Memory.
    #[wasm_bindgen(extends = Navigator)]
    #[derive(Clone)]
    pub type PageNavigator;
    #[wasm_bindgen(method, getter = userAgentData)]
    pub fn user_agent_data(this: &PageNavigator) -> Option<UaData>;
    pub type UaData;
    #[wasm_bindgen(method, getter)]
    pub fn mobile(this: &UaData) -> JsValue;
    #[wasm_bindgen(method, getter)]
    pub fn connection(this: &PageNavigator) -> Option<Connection>;
    pub type Connection;
    #[wasm_bindgen(method, getter = effectiveType)]
    pub fn effective_type(this: &Connection) -> JsValue;
    #[wasm_bindgen(method, getter = deviceMemory)]
    pub fn device_memory(this: &PageNavigator) -> JsValue;

    /// `RequestInit` with `keepalive`.
    #[wasm_bindgen(extends = RequestInit)]
    pub type FetchInit;
    #[wasm_bindgen(method, setter)]
    pub fn set_keepalive(this: &FetchInit, keepalive: bool);

    /// `fetch()` as a global, so that a page without it (or a throwing
    /// polyfill) gives an error instead of an exception through the wasm.
    #[wasm_bindgen(catch, js_name = fetch)]
    pub fn fetch(url: &str, init: &RequestInit) -> Result<Promise, JsValue>;

    /// `PerformanceObserver` with Performance Timeline 2's `observe()`
    /// options and `supportedEntryTypes`.
    #[wasm_bindgen(extends = web_sys::PerformanceObserver, js_name = PerformanceObserver)]
    pub type Observer;
    /// An error where the page has no `PerformanceObserver` at all.
    #[wasm_bindgen(catch, constructor, js_class = "PerformanceObserver")]
    pub fn new(callback: &js_sys::Function) -> Result<Observer, JsValue>;
    /// `PerformanceObserver.supportedEntryTypes`; an error where the page
    /// has no `PerformanceObserver`.
    #[wasm_bindgen(catch, static_method_of = Observer, js_class = "PerformanceObserver", getter = supportedEntryTypes)]
    pub fn supported_entry_types() -> Result<Option<Array>, JsValue>;
    /// `observe({type, buffered, durationThreshold})`: throws for a type the
    /// browser rejects.
    #[wasm_bindgen(catch, method, js_class = "PerformanceObserver", js_name = observe)]
    pub fn observe(this: &Observer, options: &ObserveOptions) -> Result<(), JsValue>;

    /// The options of [`observe`], built on a plain object.
    #[wasm_bindgen(extends = Object)]
    pub type ObserveOptions;
    #[wasm_bindgen(method, setter = type)]
    pub fn set_type(this: &ObserveOptions, entry_type: &str);
    #[wasm_bindgen(method, setter)]
    pub fn set_buffered(this: &ObserveOptions, buffered: bool);
    #[wasm_bindgen(method, setter = durationThreshold)]
    pub fn set_duration_threshold(this: &ObserveOptions, ms: f64);

    /// A `layout-shift` entry (Layout Instability).
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type LayoutShift;
    #[wasm_bindgen(method, getter)]
    pub fn value(this: &LayoutShift) -> f64;
    #[wasm_bindgen(method, getter = hadRecentInput)]
    pub fn had_recent_input(this: &LayoutShift) -> bool;

    /// An `event` or `first-input` entry (Event Timing).
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type EventTiming;
    #[wasm_bindgen(method, getter = interactionId)]
    pub fn interaction_id(this: &EventTiming) -> Option<f64>;

    /// The `navigation` entry (Navigation Timing 2), or a plain object with
    /// the same fields (pages and tests replace it).
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type NavigationEntry;
    #[wasm_bindgen(method, getter = responseStart)]
    pub fn response_start(this: &NavigationEntry) -> f64;
    #[wasm_bindgen(method, getter = activationStart)]
    pub fn activation_start(this: &NavigationEntry) -> Option<f64>;
    #[wasm_bindgen(method, getter = type)]
    pub fn navigation_type(this: &NavigationEntry) -> Option<String>;

    /// The constructor `PerformanceEventTiming`, where the browser has it.
    #[wasm_bindgen(thread_local_v2, js_name = PerformanceEventTiming)]
    pub static EVENT_TIMING_CLASS: Option<EventTimingClass>;
    #[wasm_bindgen(extends = Object)]
    pub type EventTimingClass;
    #[wasm_bindgen(method, getter)]
    pub fn prototype(this: &EventTimingClass) -> Option<Object>;

}

// Soft navigations (web-vitals 6 `reportSoftNavs`, Chromium 151+).
#[wasm_bindgen]
extern "C" {
    /// Any entry with the `navigationId` of the navigation it belongs to.
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type NavigatedEntry;
    #[wasm_bindgen(method, getter = navigationId)]
    pub fn navigation_id(this: &NavigatedEntry) -> Option<f64>;

    /// A `soft-navigation` entry (`name` is the route's URL).
    #[wasm_bindgen(extends = NavigatedEntry, extends = PerformanceEntry)]
    pub type SoftNavigationEntry;
    #[wasm_bindgen(method, getter = interactionId)]
    pub fn interaction_id(this: &SoftNavigationEntry) -> Option<f64>;
    #[wasm_bindgen(method, getter = paintTime)]
    pub fn paint_time(this: &SoftNavigationEntry) -> Option<f64>;
    #[wasm_bindgen(method, getter = presentationTime)]
    pub fn presentation_time(this: &SoftNavigationEntry) -> Option<f64>;
    /// The largest paint of the navigation so far (may be null).
    #[wasm_bindgen(catch, method, js_name = getLargestInteractionContentfulPaint)]
    pub fn largest_interaction_contentful_paint(
        this: &SoftNavigationEntry,
    ) -> Result<Option<InteractionContentfulPaint>, JsValue>;

    /// An `interaction-contentful-paint` entry.
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type InteractionContentfulPaint;
    #[wasm_bindgen(method, getter = interactionId)]
    pub fn interaction_id(this: &InteractionContentfulPaint) -> Option<f64>;
    #[wasm_bindgen(method, getter = largestContentfulPaint)]
    pub fn largest_contentful_paint(this: &InteractionContentfulPaint) -> Option<IcpLargestPaint>;

    /// The `largest-contentful-paint` entry inside an
    /// `interaction-contentful-paint` entry.
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type IcpLargestPaint;
    #[wasm_bindgen(method, getter = renderTime)]
    pub fn render_time(this: &IcpLargestPaint) -> Option<f64>;

    /// The constructor `PerformanceSoftNavigation`, where the browser has it.
    #[wasm_bindgen(thread_local_v2, js_name = PerformanceSoftNavigation)]
    pub static SOFT_NAVIGATION_CLASS: Option<SoftNavigationClass>;
    #[wasm_bindgen(extends = Object)]
    pub type SoftNavigationClass;
    #[wasm_bindgen(method, getter)]
    pub fn prototype(this: &SoftNavigationClass) -> Option<SoftNavigationPrototype>;
    pub type SoftNavigationPrototype;
    /// The method itself (not called), to tell the launched API from older
    /// implementations that had an attribute.
    #[wasm_bindgen(method, getter = getLargestInteractionContentfulPaint)]
    pub fn largest_interaction_contentful_paint_member(this: &SoftNavigationPrototype) -> JsValue;
}

/// The window object of the page (read once).
pub fn window() -> Window {
    WINDOW.with(Window::clone)
}

pub fn document() -> PageDocument {
    DOCUMENT.with(PageDocument::clone)
}

pub fn performance() -> PagePerformance {
    PERFORMANCE.with(PagePerformance::clone)
}

pub fn navigator() -> PageNavigator {
    NAVIGATOR.with(PageNavigator::clone)
}
