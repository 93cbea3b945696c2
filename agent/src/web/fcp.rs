use alloc::rc::Rc;
use core::cell::RefCell;

use beacon::MetricName;

use super::bindings::now;
use super::lifecycle::{activation_start, double_raf, first_hidden_time, on_bfcache_restore, when_activated};
use super::metric::{Metric, Options, Sink};
use super::observe::observe;
use crate::fcp;

pub fn on_fcp(sink: Sink, opts: Options) {
    when_activated(move || {
        first_hidden_time();
        let metric = Rc::new(RefCell::new(Metric::new(MetricName::Fcp, -1.0, None, opts, sink)));
        let m = metric.clone();
        let po = observe(&["paint"], None, move |entries, po| {
            for e in entries {
                if e.name() == fcp::ENTRY_NAME {
                    po.disconnect();
                    if let Some(v) = fcp::value(e.start_time(), activation_start(), first_hidden_time()) {
                        let mut m = m.borrow_mut();
                        m.value = v;
                        m.entries.push(&e);
                        // FCP happens once: report at once.
                        m.report(true);
                    }
                }
            }
        });
        if po.is_some() {
            on_bfcache_restore(move |event| {
                metric.borrow_mut().restart(-1.0, opts);
                let m = metric.clone();
                let restored_at = event.time_stamp();
                double_raf(move || {
                    let mut m = m.borrow_mut();
                    m.value = now() - restored_at;
                    m.report(true);
                });
            });
        }
    });
}
