//! The wasm entry points: `onFCP`..`onTTFB` with the reference's signature,
//! and `start` for the beacon transport. Everything here only binds the
//! browser; the decisions are in the crate's plain modules.

mod bindings;
mod cls;
mod early;
mod fcp;
mod global;
mod inp;
mod json;
mod lcp;
mod lifecycle;
mod metric;
mod observe;
mod storage;
mod transport;
mod ttfb;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use metric::{js_sink, Options};

#[wasm_bindgen(js_name = onFCP)]
pub fn on_fcp(callback: Function, opts: JsValue) {
    fcp::on_fcp(js_sink(callback), Options::from_js(&opts));
}

#[wasm_bindgen(js_name = onLCP)]
pub fn on_lcp(callback: Function, opts: JsValue) {
    lcp::on_lcp(js_sink(callback), Options::from_js(&opts));
}

#[wasm_bindgen(js_name = onCLS)]
pub fn on_cls(callback: Function, opts: JsValue) {
    cls::on_cls(js_sink(callback), Options::from_js(&opts));
}

#[wasm_bindgen(js_name = onINP)]
pub fn on_inp(callback: Function, opts: JsValue) {
    inp::on_inp(js_sink(callback), Options::from_js(&opts));
}

#[wasm_bindgen(js_name = onTTFB)]
pub fn on_ttfb(callback: Function, opts: JsValue) {
    ttfb::on_ttfb(js_sink(callback), Options::from_js(&opts));
}

/// Measures all five metrics and sends them to `opts.endpoint`.
#[wasm_bindgen]
pub fn start(opts: JsValue) {
    transport::start(&opts);
}

/// Called by the loader around replaying the calls made before the wasm
/// ran: `capture` holds what it recorded meanwhile (see `early`).
#[wasm_bindgen(js_name = beginReplay)]
pub fn begin_replay(capture: JsValue) {
    early::begin(capture);
}

#[wasm_bindgen(js_name = endReplay)]
pub fn end_replay() {
    if early::end() {
        // The page was hidden before the agent ran: report as the reference
        // did then (CLS, INP, LCP final; beacons flushed).
        lifecycle::fire_hidden();
    }
}

#[wasm_bindgen(js_name = grantConsent)]
pub fn grant_consent() {
    transport::grant_consent();
}

#[wasm_bindgen(js_name = revokeConsent)]
pub fn revoke_consent() {
    transport::revoke_consent();
}

#[cfg(test)]
mod tests;
