//! Beacon JSON, built through `JSON.stringify` rather than serde so that no
//! float formatting code ends up in the wasm. Field names are those of
//! `beacon.schema.json`; a wasm test parses the output with serde.

use alloc::string::String;

use beacon::{Beacon, MetricReport};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use super::bindings;

fn stringify(v: &JsValue) -> String {
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

pub fn metric(r: &MetricReport) -> String {
    let m = Object::new();
    bindings::set(&m, "name", &JsValue::from_str(r.name.as_str()));
    bindings::set(&m, "value", &JsValue::from_f64(r.value));
    bindings::set(&m, "delta", &JsValue::from_f64(r.delta));
    bindings::set(&m, "id", &JsValue::from_str(&r.id));
    bindings::set(&m, "rating", &JsValue::from_str(r.rating.as_str()));
    bindings::set(&m, "navigationType", &JsValue::from_str(r.navigation_type.as_str()));
    stringify(&m)
}

/// The beacon without metrics, ending in `"metrics":[]}`.
pub fn envelope(b: &Beacon) -> String {
    let o = Object::new();
    bindings::set(&o, "schemaVersion", &JsValue::from(b.schema_version));
    bindings::set(&o, "page", &JsValue::from_str(&b.page));
    let opt_str = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            bindings::set(&o, k, &JsValue::from_str(v));
        }
    };
    opt_str("pageViewId", &b.page_view_id);
    opt_str("sessionId", &b.session_id);
    if let Some(n) = b.navigation_type {
        bindings::set(&o, "navigationType", &JsValue::from_str(n.as_str()));
    }
    if let Some(f) = b.form_factor {
        bindings::set(&o, "formFactor", &JsValue::from_str(f.as_str()));
    }
    opt_str("effectiveType", &b.effective_type);
    if let Some(m) = b.device_memory {
        bindings::set(&o, "deviceMemory", &JsValue::from_f64(m));
    }
    bindings::set(&o, "metrics", &Array::new());
    stringify(&o)
}

/// `envelope` with `metrics` (JSON strings) spliced into its empty array.
pub fn body(envelope: &str, metrics: &[String]) -> String {
    let head = envelope.strip_suffix("]}").unwrap_or(envelope);
    let mut s = String::with_capacity(envelope.len() + metrics.iter().map(|m| m.len() + 1).sum::<usize>());
    s.push_str(head);
    for (i, m) in metrics.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(m);
    }
    s.push_str("]}");
    s
}

/// The whole beacon as JSON.
#[cfg(test)]
pub fn to_json(b: &Beacon) -> String {
    let metrics: alloc::vec::Vec<String> = b.metrics.iter().map(metric).collect();
    body(&envelope(b), &metrics)
}
