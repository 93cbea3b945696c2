//! One metric instance as the reference's `initMetric` + `bindReporter`
//! build it, and the sinks its reports go to.

use alloc::rc::Rc;
use alloc::string::String;
use core::cell::OnceCell;

use beacon::{MetricName, MetricReport, NavigationType};
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

use super::bindings::{self, DOCUMENT};
use super::lifecycle;
use crate::navigation::{navigation_type, PageState};
use crate::report::{Report, Reporter};

/// Where reports go: a user callback, or the agent's own beacon queue.
pub type Sink = Rc<dyn Fn(&Metric, Report)>;

/// Options common to `onX` calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub report_all_changes: bool,
    pub duration_threshold: Option<f64>,
}

impl Options {
    pub fn from_js(opts: &JsValue) -> Options {
        Options {
            report_all_changes: bindings::get(opts, "reportAllChanges").is_truthy(),
            duration_threshold: bindings::get(opts, "durationThreshold").as_f64(),
        }
    }
}

pub struct Metric {
    pub name: MetricName,
    /// Negative until known.
    pub value: f64,
    pub id: String,
    pub navigation_type: NavigationType,
    pub entries: Array,
    /// The object handed to the page's callback: one per instance, updated
    /// in place on each report, as the reference does (pages keep metrics
    /// in a `Set` and rely on that).
    js: OnceCell<Object>,
    reporter: Reporter,
    sink: Sink,
}

impl Metric {
    pub fn new(name: MetricName, value: f64, nav: Option<NavigationType>, opts: Options, sink: Sink) -> Metric {
        Metric {
            name,
            value,
            id: crate::id::metric_id(js_sys::Date::now(), js_sys::Math::random()),
            navigation_type: nav.unwrap_or_else(current_navigation_type),
            entries: Array::new(),
            js: OnceCell::new(),
            reporter: Reporter::new(name, opts.report_all_changes),
            sink,
        }
    }

    /// Starts a new instance (new id) after a bfcache restore.
    pub fn restart(&mut self, value: f64, opts: Options) {
        *self = Metric::new(
            self.name,
            value,
            Some(NavigationType::BackForwardCache),
            opts,
            self.sink.clone(),
        );
    }

    pub fn report(&mut self, force: bool) {
        if let Some(r) = self.reporter.report(self.value, force) {
            let sink = self.sink.clone();
            sink(self, r);
        }
    }

    pub fn to_report(&self, r: Report) -> MetricReport {
        MetricReport {
            name: self.name,
            value: self.value,
            delta: r.delta,
            id: self.id.clone(),
            rating: r.rating,
            navigation_type: self.navigation_type,
        }
    }
}

pub fn current_navigation_type() -> NavigationType {
    let entry = lifecycle::navigation_entry();
    let entry_type = entry.as_ref().and_then(|e| e.nav_type());
    navigation_type(&PageState {
        restored_from_bfcache: lifecycle::bfcache_restore_time() >= 0.0,
        has_navigation_entry: entry.is_some(),
        prerendering: bindings::prerendering(),
        activation_start: entry.as_ref().and_then(|e| e.activation_start()).unwrap_or(0.0),
        was_discarded: DOCUMENT.with(|d| d.was_discarded()).unwrap_or(false),
        entry_type: entry_type.as_deref(),
    })
}

/// A sink calling a page's callback with the reference's Metric object.
pub fn js_sink(callback: Function) -> Sink {
    Rc::new(move |m: &Metric, r: Report| {
        let o = m.js.get_or_init(|| {
            // Keys in the reference's order, for pages that serialize it.
            let o = Object::new();
            bindings::set(&o, "name", &JsValue::from_str(m.name.as_str()));
            for key in ["value", "rating", "delta", "entries"] {
                bindings::set(&o, key, &JsValue::UNDEFINED);
            }
            bindings::set(&o, "id", &JsValue::from_str(&m.id));
            bindings::set(&o, "navigationType", &JsValue::from_str(m.navigation_type.as_str()));
            o
        });
        bindings::set(o, "value", &JsValue::from_f64(m.value));
        bindings::set(o, "rating", &JsValue::from_str(r.rating.as_str()));
        bindings::set(o, "delta", &JsValue::from_f64(r.delta));
        bindings::set(o, "entries", &m.entries);
        // The page's own exception is the page's business, but it must not
        // unwind through the agent.
        let _ = callback.call1(&JsValue::UNDEFINED, o);
    })
}
