//! Browser APIs that web-sys lacks or binds too heavily for our size budget:
//! structural getters on performance entries, `PerformanceObserver` with
//! `type`/`durationThreshold`, prerender and discard flags. Anything that can
//! throw is bound with `catch`, so no exception crosses into the host page.

use alloc::string::String;
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Any `PerformanceEntry`; the getters of the subtypes we read are
    /// structural, so a missing one reads as `undefined`.
    #[derive(Clone)]
    pub type Entry;
    #[wasm_bindgen(method, getter, js_name = startTime)]
    pub fn start_time(this: &Entry) -> f64;
    #[wasm_bindgen(method, getter)]
    pub fn duration(this: &Entry) -> f64;
    #[wasm_bindgen(method, getter)]
    pub fn name(this: &Entry) -> String;
    #[wasm_bindgen(method, getter, js_name = entryType)]
    pub fn entry_type(this: &Entry) -> String;
    /// `LayoutShift.value`.
    #[wasm_bindgen(method, getter)]
    pub fn value(this: &Entry) -> f64;
    #[wasm_bindgen(method, getter, js_name = hadRecentInput)]
    pub fn had_recent_input(this: &Entry) -> Option<bool>;
    #[wasm_bindgen(method, getter, js_name = interactionId)]
    pub fn interaction_id(this: &Entry) -> Option<f64>;
    #[wasm_bindgen(method, getter, js_name = responseStart)]
    pub fn response_start(this: &Entry) -> f64;
    #[wasm_bindgen(method, getter, js_name = activationStart)]
    pub fn activation_start(this: &Entry) -> Option<f64>;
    /// `PerformanceNavigationTiming.type`.
    #[wasm_bindgen(method, getter, js_name = type)]
    pub fn nav_type(this: &Entry) -> Option<String>;

    pub type Observer;
    #[wasm_bindgen(catch, constructor, js_class = PerformanceObserver)]
    pub fn new_observer(callback: &Function) -> Result<Observer, JsValue>;
    #[wasm_bindgen(catch, method, js_class = PerformanceObserver)]
    pub fn observe(this: &Observer, init: &Object) -> Result<(), JsValue>;
    #[wasm_bindgen(method, js_name = takeRecords, js_class = PerformanceObserver)]
    pub fn take_records(this: &Observer) -> Array;
    #[wasm_bindgen(method, js_class = PerformanceObserver)]
    pub fn disconnect(this: &Observer);

    pub type EntryList;
    #[wasm_bindgen(method, js_name = getEntries)]
    pub fn get_entries(this: &EntryList) -> Array;

    pub type Event;
    #[wasm_bindgen(method, getter, js_name = isTrusted)]
    pub fn is_trusted(this: &Event) -> Option<bool>;
    #[wasm_bindgen(method, getter, js_name = type)]
    pub fn event_type(this: &Event) -> String;
    #[wasm_bindgen(method, getter, js_name = timeStamp)]
    pub fn time_stamp(this: &Event) -> f64;
    #[wasm_bindgen(method, getter)]
    pub fn persisted(this: &Event) -> Option<bool>;

    pub type Document;
    #[wasm_bindgen(thread_local_v2, js_name = document)]
    pub static DOCUMENT: Document;
    #[wasm_bindgen(method, getter, js_name = visibilityState)]
    pub fn visibility_state(this: &Document) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn prerendering(this: &Document) -> Option<bool>;
    #[wasm_bindgen(method, getter, js_name = wasDiscarded)]
    pub fn was_discarded(this: &Document) -> Option<bool>;
    #[wasm_bindgen(method, getter, js_name = readyState)]
    pub fn ready_state(this: &Document) -> String;

    pub type Location;
    #[wasm_bindgen(thread_local_v2, js_name = location)]
    pub static LOCATION: Location;
    #[wasm_bindgen(method, getter)]
    pub fn origin(this: &Location) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn pathname(this: &Location) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn search(this: &Location) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn href(this: &Location) -> String;

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn now() -> f64;
    #[wasm_bindgen(catch, js_namespace = performance, js_name = getEntriesByType)]
    pub fn entries_by_type(entry_type: &str) -> Result<Array, JsValue>;

    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(event_type: &str, listener: &Function, capture: bool);
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(event_type: &str, listener: &Function, capture: bool);
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(callback: &JsValue, ms: f64) -> f64;
    #[wasm_bindgen(js_name = requestAnimationFrame)]
    pub fn request_animation_frame(callback: &JsValue) -> f64;
    #[wasm_bindgen(catch, js_name = requestIdleCallback)]
    pub fn request_idle_callback(callback: &JsValue, options: &Object) -> Result<f64, JsValue>;
    #[wasm_bindgen(catch, js_name = cancelIdleCallback)]
    pub fn cancel_idle_callback(handle: f64) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(callback: &JsValue);
    #[wasm_bindgen(catch, js_namespace = navigator, js_name = sendBeacon)]
    pub fn send_beacon(url: &str, data: &str) -> Result<bool, JsValue>;
}

/// `globalThis[name]`, or undefined.
pub fn global(name: &str) -> JsValue {
    get(&js_sys::global(), name)
}

/// `target[key]`, undefined when anything throws.
pub fn get(target: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(key), value);
}

/// `key in target` for an object; false for anything else.
pub fn has(target: &JsValue, key: &str) -> bool {
    target.is_object() && js_sys::Reflect::has(target, &JsValue::from_str(key)).unwrap_or(false)
}

pub fn document_hidden() -> bool {
    DOCUMENT.with(|d| d.visibility_state()) == "hidden"
}

pub fn prerendering() -> bool {
    DOCUMENT.with(|d| d.prerendering()).unwrap_or(false)
}
