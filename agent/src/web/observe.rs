//! `PerformanceObserver` with one buffered `observe()` call per supported
//! entry type (`buffered` only works with `type`).

use alloc::vec::Vec;
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings::{self, Entry, EntryList, Observer};

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
    mut callback: impl FnMut(Vec<Entry>, &Observer) + 'static,
) -> Option<Observer> {
    let supported: Vec<&str> = types.iter().copied().filter(|t| supports(t)).collect();
    if supported.is_empty() {
        return None;
    }
    let sort = supported.len() > 1;
    let closure = Closure::<dyn FnMut(EntryList, Observer)>::new(move |list: EntryList, po: Observer| {
        let mut entries = entries(&list.get_entries());
        if sort {
            crate::sort::sort_by_key_f64(&mut entries, |e| e.start_time() + e.duration());
        }
        callback(entries, &po);
    });
    let po = Observer::new_observer(closure.as_ref().unchecked_ref()).ok()?;
    for t in supported {
        let init = Object::new();
        bindings::set(&init, "type", &JsValue::from_str(t));
        bindings::set(&init, "buffered", &JsValue::TRUE);
        if let Some(d) = duration_threshold {
            bindings::set(&init, "durationThreshold", &JsValue::from_f64(d));
        }
        po.observe(&init).ok()?;
    }
    closure.forget();
    Some(po)
}
