//! First Contentful Paint in the page (web-vitals `onFCP`).

use std::rc::Rc;

use beacon::MetricName;

use super::instance::{Instance, Sink};
use super::observe::{observe, Group};
use super::page::{activation_start, double_raf, first_hidden_time, now, on_restore, when_activated};
use crate::report::Changes;

pub fn start(sink: Sink, changes: Changes) {
    when_activated(move || {
        first_hidden_time();
        let m = Instance::new(MetricName::Fcp, -1.0, sink, changes);
        #[cfg(feature = "attribution")]
        if m.attribution().is_some() {
            m.set_attributor(Box::new(super::attribution::fcp_attribution));
        }
        let on_paint = {
            let m = m.clone();
            move |entries: super::observe::Batch, po: &web_sys::PerformanceObserver| {
                for e in entries {
                    if e.name() != "first-contentful-paint" {
                        continue;
                    }
                    po.disconnect();
                    if let Some(v) = crate::fcp::value(e.start_time(), activation_start(), first_hidden_time()) {
                        let list = m.state.borrow().entries.clone();
                        list.push(&e);
                        m.set(v, list);
                        m.report(true);
                    }
                }
            }
        };
        if observe(Group::Paint, None, on_paint).is_some() {
            on_restore(move |at| restart_after_restore(&m, at));
        }
    });
}

/// After a bfcache restore, FCP and LCP are the time to the second frame.
pub fn restart_after_restore(m: &Rc<Instance>, at: f64) {
    m.restart(-1.0);
    let m = m.clone();
    double_raf(move || {
        m.set_value(now() - at);
        m.report(true);
    });
}
