//! Sends queued metric reports as JSON beacons with `navigator.sendBeacon`.
//! The JSON is built through `JSON.stringify` rather than serde so that no
//! float formatting code ends up in the wasm.

use alloc::string::String;
use core::cell::{Cell, RefCell};
use alloc::rc::Rc;

use beacon::{Beacon, MetricReport, SCHEMA_VERSION};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use super::bindings::{self, LOCATION};
use super::global::Global;
use super::lifecycle::{on_hidden, once};
use super::metric::{Metric, Options, Sink};
use crate::queue::Queue;
use crate::report::Report;

struct Transport {
    endpoint: String,
    queue: Queue,
}

static TRANSPORT: Global<RefCell<Option<Transport>>> = Global::new(RefCell::new(None));
static FLUSH_SCHEDULED: Global<Cell<bool>> = Global::new(Cell::new(false));

pub fn start(opts: &JsValue) {
    let started = TRANSPORT.with(|t| t.borrow().is_some());
    if started {
        return;
    }
    let endpoint = bindings::get(opts, "endpoint").as_string().unwrap_or_else(|| String::from("/v1/beacon"));
    TRANSPORT.with(|t| *t.borrow_mut() = Some(Transport { endpoint, queue: Queue::default() }));

    let sink: Sink = Rc::new(|m: &Metric, r: Report| enqueue(m.to_report(r)));
    let opts = Options::default();
    super::fcp::on_fcp(sink.clone(), opts);
    super::lcp::on_lcp(sink.clone(), opts);
    super::cls::on_cls(sink.clone(), opts);
    super::inp::on_inp(sink.clone(), opts);
    super::ttfb::on_ttfb(sink, opts);
    on_hidden(flush);
}

fn enqueue(report: MetricReport) {
    TRANSPORT.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.queue.push(report);
        }
    });
    // Reports made while the page is hidden (final CLS, INP, LCP) go out
    // right after the handler that made them, before the page can unload.
    if bindings::document_hidden() && !FLUSH_SCHEDULED.with(|f| f.replace(true)) {
        bindings::queue_microtask(&once(|| {
            FLUSH_SCHEDULED.with(|f| f.set(false));
            flush();
        }));
    }
}

pub fn flush() {
    let Some((endpoint, reports)) = TRANSPORT.with(|t| {
        let mut t = t.borrow_mut();
        let t = t.as_mut()?;
        (!t.queue.is_empty()).then(|| (t.endpoint.clone(), t.queue.take()))
    }) else {
        return;
    };
    let page = LOCATION.with(|l| {
        let mut s = l.origin();
        s.push_str(&l.pathname());
        s
    });
    let beacon = Beacon {
        schema_version: SCHEMA_VERSION,
        page,
        page_view_id: None,
        session_id: None,
        navigation_type: reports.first().map(|r| r.navigation_type),
        form_factor: None,
        effective_type: None,
        device_memory: None,
        metrics: reports,
    };
    let body = to_json(&beacon);
    let _ = bindings::send_beacon(&endpoint, &body);
}

/// The beacon as JSON, field names as in `beacon.schema.json`.
pub fn to_json(b: &Beacon) -> String {
    let o = Object::new();
    bindings::set(&o, "schemaVersion", &JsValue::from(b.schema_version));
    bindings::set(&o, "page", &JsValue::from_str(&b.page));
    let opt_str = |o: &Object, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            bindings::set(o, k, &JsValue::from_str(v));
        }
    };
    opt_str(&o, "pageViewId", &b.page_view_id);
    opt_str(&o, "sessionId", &b.session_id);
    if let Some(n) = b.navigation_type {
        bindings::set(&o, "navigationType", &JsValue::from_str(n.as_str()));
    }
    if let Some(f) = b.form_factor {
        bindings::set(&o, "formFactor", &JsValue::from_str(f.as_str()));
    }
    opt_str(&o, "effectiveType", &b.effective_type);
    if let Some(m) = b.device_memory {
        bindings::set(&o, "deviceMemory", &JsValue::from_f64(m));
    }
    let metrics = Array::new();
    for r in &b.metrics {
        let m = Object::new();
        bindings::set(&m, "name", &JsValue::from_str(r.name.as_str()));
        bindings::set(&m, "value", &JsValue::from_f64(r.value));
        bindings::set(&m, "delta", &JsValue::from_f64(r.delta));
        bindings::set(&m, "id", &JsValue::from_str(&r.id));
        bindings::set(&m, "rating", &JsValue::from_str(r.rating.as_str()));
        bindings::set(&m, "navigationType", &JsValue::from_str(r.navigation_type.as_str()));
        metrics.push(&m);
    }
    bindings::set(&o, "metrics", &metrics);
    js_sys::JSON::stringify(&o).ok().and_then(|s| s.as_string()).unwrap_or_default()
}
