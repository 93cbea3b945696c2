//! Entries and events seen before the wasm ran.
//!
//! The loader (`npm/src/index.js`) starts plain `PerformanceObserver`s at
//! the first API call and records their batches, trusted input and hides,
//! until the wasm is instantiated. While the calls made in the meantime are
//! replayed, `observe()` takes those batches instead of the browser's
//! buffer: the agent then sees the same batches a library running from the
//! start saw (CLS promotes session windows per batch; the buffer keeps only
//! `event` entries of 104 ms and more).

use core::cell::RefCell;

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings;
use super::global::Global;

static EARLY: Global<RefCell<Option<JsValue>>> = Global::new(RefCell::new(None));

pub fn begin(capture: JsValue) {
    EARLY.with(|e| *e.borrow_mut() = capture.is_object().then_some(capture));
}

/// Ends the replay; returns whether the page was hidden meanwhile.
pub fn end() -> bool {
    EARLY
        .with(|e| e.borrow_mut().take())
        .is_some_and(|c| bindings::get(&c, "hidden").is_truthy())
}

/// The recorded batches for an observer of exactly `key` (`types` joined by
/// commas), if the loader recorded them.
pub fn batches(key: &str) -> Option<Array> {
    let capture = EARLY.with(|e| e.borrow().clone())?;
    bindings::get(&bindings::get(&capture, "batches"), key)
        .dyn_into::<Array>()
        .ok()
}

/// Whether a trusted keydown or click happened before the wasm ran.
pub fn had_input() -> bool {
    EARLY.with(|e| {
        e.borrow()
            .as_ref()
            .is_some_and(|c| bindings::get(c, "input").is_truthy())
    })
}
