//! `PerformanceObserver` with one buffered `observe()` call per supported
//! entry type (`buffered` only works with `type`).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings::{self, Entry, EntryList, Observer};
use super::early;

pub fn entries(list: &Array) -> Vec<Entry> {
    list.iter().map(|e| e.unchecked_into()).collect()
}

/// Whether the browser can observe `entry_type`.
pub fn supports(entry_type: &str) -> bool {
    let types = bindings::get(&bindings::global("PerformanceObserver"), "supportedEntryTypes");
    types
        .dyn_ref::<Array>()
        .is_some_and(|t| t.includes(&JsValue::from_str(entry_type), 0))
}

/// Observes the supported ones of `types`; `None` when none is supported or
/// the browser refuses. With several types, entries of one callback are
/// sorted by end time, since browsers may deliver them out of order.
pub fn observe(
    types: &[&str],
    duration_threshold: Option<f64>,
    callback: impl FnMut(Vec<Entry>, &Observer) + 'static,
) -> Option<Observer> {
    let supported: Vec<&str> = types.iter().copied().filter(|t| supports(t)).collect();
    if supported.is_empty() {
        return None;
    }
    let sort = supported.len() > 1;
    let callback = Rc::new(RefCell::new(callback));
    let deliver = move |mut entries: Vec<Entry>, po: &Observer| {
        if sort {
            crate::sort::sort_by_key_f64(&mut entries, |e| e.start_time() + e.duration());
        }
        (callback.borrow_mut())(entries, po);
    };
    let deliver = Rc::new(deliver);
    let d = deliver.clone();
    let closure = Closure::<dyn FnMut(EntryList, Observer)>::new(move |list: EntryList, po: Observer| {
        d(entries(&list.get_entries()), &po);
    });
    let po = Observer::new_observer(closure.as_ref().unchecked_ref()).ok()?;
    // Batches the loader recorded before the wasm ran stand in for the
    // browser's buffer (see `early`).
    let recorded = early::batches(&types.join(","));
    for t in supported {
        let init = Object::new();
        bindings::set(&init, "type", &JsValue::from_str(t));
        bindings::set(&init, "buffered", &JsValue::from_bool(recorded.is_none()));
        if let Some(d) = duration_threshold {
            bindings::set(&init, "durationThreshold", &JsValue::from_f64(d));
        }
        po.observe(&init).ok()?;
    }
    closure.forget();
    for batch in recorded.iter().flat_map(|b| b.iter()) {
        let mut batch = entries(batch.unchecked_ref());
        if let Some(threshold) = duration_threshold {
            // The loader observed `event` at the lowest threshold.
            batch.retain(|e| e.entry_type() != "event" || e.duration() >= threshold);
        }
        if !batch.is_empty() {
            deliver(batch, &po);
        }
    }
    Some(po)
}
