use alloc::boxed::Box;
use alloc::rc::Rc;
use core::cell::RefCell;

use beacon::MetricName;
use js_sys::Array;

use super::bindings::{self, DOCUMENT};
use super::lifecycle::{activation_start, listen, navigation_entry, on_bfcache_restore, set_timeout, when_activated};
use super::metric::{Metric, Options, Sink};
use crate::ttfb;

/// Runs `f` once the page has loaded (and is activated), in a task after
/// `loadEventEnd`.
fn when_ready(f: Box<dyn FnOnce()>) {
    if bindings::prerendering() {
        when_activated(move || when_ready(f));
    } else if DOCUMENT.with(|d| d.ready_state()) != "complete" {
        let f = core::cell::Cell::new(Some(f));
        listen("load", true, move |_| {
            if let Some(f) = f.take() {
                when_ready(f);
            }
        });
    } else {
        set_timeout(f);
    }
}

pub fn on_ttfb(sink: Sink, opts: Options) {
    let metric = Rc::new(RefCell::new(Metric::new(MetricName::Ttfb, -1.0, None, opts, sink)));
    when_ready(Box::new(move || {
        let Some(entry) = navigation_entry() else {
            return;
        };
        {
            let mut m = metric.borrow_mut();
            m.value = ttfb::value(entry.response_start(), activation_start());
            m.entries = Array::of1(&entry);
            m.report(true);
        }
        on_bfcache_restore(move |_| {
            let mut m = metric.borrow_mut();
            m.restart(0.0, opts);
            m.report(true);
        });
    }));
}
