//! Largest Contentful Paint in the page (web-vitals `onLCP`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use beacon::MetricName;
use js_sys::{Array, Function};
use web_sys::Event;

use super::bindings::window;
use super::instance::{Instance, Sink};
use super::observe::{observe, Batch, Group};
use super::page::{
    activation_start, double_raf, event_handler, first_hidden_time, now, on_restore, when_activated,
    when_idle_or_hidden,
};
use crate::report::Changes;

/// The browser stops emitting LCP candidates after input but does not say
/// so: LCP is final on the first trusted keydown, click or hide. Not on
/// scroll: script can scroll, and the reference leaves it out.
const FINAL_ON: [&str; 3] = ["keydown", "click", "visibilitychange"];

pub fn start(sink: Sink, changes: Changes) {
    when_activated(move || {
        first_hidden_time();
        let report_all = changes == Changes::All;
        let m = Instance::new(MetricName::Lcp, -1.0, sink, changes);
        #[cfg(feature = "attribution")]
        let attribution = m.attribution().map(|o| {
            let t = Rc::new(super::attribution::LcpTracker::new(o));
            let at = t.clone();
            m.set_attributor(Box::new(move |s| at.attribute(s)));
            t
        });
        let on_batch = {
            let m = m.clone();
            move |entries: Batch, _: &web_sys::PerformanceObserver| {
                for e in &entries[crate::lcp::entries_to_process(entries.len(), report_all)] {
                    #[cfg(feature = "attribution")]
                    if let Some(t) = &attribution {
                        t.process(e);
                    }
                    if let Some(v) = crate::lcp::value(e.start_time(), activation_start(), first_hidden_time()) {
                        m.set(v, Array::of1(e));
                        m.report(false);
                    }
                }
            }
        };
        let Some(po) = observe(Group::LargestContentfulPaint, None, on_batch) else {
            return;
        };
        let finalized = Rc::new(Cell::new(false));
        let listener: Rc<RefCell<Option<Function>>> = Rc::default();
        let finalize = {
            let (m, finalized, listener) = (m.clone(), finalized.clone(), listener.clone());
            move |id: String| {
                if finalized.get() {
                    return;
                }
                po.disconnect();
                if let Some(f) = listener.borrow_mut().take() {
                    for t in FINAL_ON {
                        let _ = window().remove_event_listener_with_callback_and_bool(t, &f, true);
                    }
                }
                // A bfcache restore in the meantime started a new instance: leave it.
                if m.id() == id {
                    finalized.set(true);
                    m.report(true);
                }
            }
        };
        let stop = {
            let m = m.clone();
            let finalize = Rc::new(finalize);
            move || {
                let (id, finalize) = (m.id(), finalize.clone());
                when_idle_or_hidden(move || finalize(id));
            }
        };
        let stop = Rc::new(stop);
        let on_input = {
            let (stop, finalized) = (stop.clone(), finalized.clone());
            event_handler(Box::new(move |e: Event| {
                if e.is_trusted() && !finalized.get() {
                    stop();
                }
            }))
        };
        for t in FINAL_ON {
            let _ = window().add_event_listener_with_callback_and_bool(t, &on_input, true);
        }
        *listener.borrow_mut() = Some(on_input);
        // The user interacted before the agent ran: LCP is final.
        if super::early_input() {
            stop();
        }
        on_restore(move |at| {
            m.restart(-1.0);
            finalized.set(false);
            let (m, finalized) = (m.clone(), finalized.clone());
            double_raf(move || {
                m.set_value(now() - at);
                finalized.set(true);
                m.report(true);
            });
        });
    });
}
