//! Cumulative Layout Shift in the page (web-vitals `onCLS`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use beacon::MetricName;
use js_sys::Array;
use wasm_bindgen::JsCast;

use super::bindings::LayoutShift;
use super::instance::{Instance, Sink};
use super::observe::{observe, Batch, Group};
use super::page::{double_raf, first_hidden_time, later, on_hidden, on_restore};
use crate::cls::{Cls, Shift};
use crate::report::Changes;

/// CLS starts after FCP, as in the Chrome UX Report.
pub fn start(sink: Sink, changes: Changes) {
    first_hidden_time();
    let sink = Cell::new(Some(sink));
    let start_once = move || {
        if let Some(sink) = sink.take() {
            start_after_fcp(sink, changes);
        }
    };
    super::fcp::start(Sink::Hook(Box::new(start_once)), Changes::Forced);
}

/// The shifts seen so far and the current session window's entries.
struct Shifts {
    cls: Cls,
    window: Array,
    #[cfg(feature = "attribution")]
    attribution: Option<Rc<super::attribution::ClsTracker>>,
}

impl Shifts {
    fn new() -> Self {
        Shifts {
            cls: Cls::default(),
            window: Array::new(),
            #[cfg(feature = "attribution")]
            attribution: None,
        }
    }

    fn add(&mut self, m: &Instance, entries: &Batch) {
        for e in entries {
            let e: &LayoutShift = e.unchecked_ref();
            match self.cls.add(e.start_time(), e.value(), e.had_recent_input()) {
                Shift::Ignored => continue,
                Shift::NewWindow => self.window = Array::new(),
                Shift::Joined => {}
            }
            self.window.push(e);
            #[cfg(feature = "attribution")]
            if let Some(t) = &self.attribution {
                t.processed(e);
            }
        }
        if self.cls.update() {
            // Shared with the window, as in the reference.
            m.set(self.cls.value, self.window.clone());
        }
    }
}

fn start_after_fcp(sink: Sink, changes: Changes) {
    let m = Instance::new(MetricName::Cls, 0.0, sink, changes);
    let shifts = Rc::new(RefCell::new(Shifts::new()));
    #[cfg(feature = "attribution")]
    if let Some(o) = m.attribution() {
        let t = Rc::new(super::attribution::ClsTracker::new(o));
        shifts.borrow_mut().attribution = Some(t.clone());
        m.set_attributor(Box::new(move |s| t.attribute(s)));
    }
    let on_batch = {
        let (m, shifts) = (m.clone(), shifts.clone());
        move |entries: Batch, _: &web_sys::PerformanceObserver| {
            shifts.borrow_mut().add(&m, &entries);
            m.report(false);
        }
    };
    let Some(po) = observe(Group::LayoutShift, None, on_batch) else {
        return;
    };
    {
        let (m, shifts) = (m.clone(), shifts.clone());
        on_hidden(move || {
            let records = super::observe::entries(&po.take_records());
            shifts.borrow_mut().add(&m, &records);
            m.report(true);
        });
    }
    {
        let m = m.clone();
        on_restore(move |_| {
            m.restart(0.0);
            let mut s = shifts.borrow_mut();
            *s = Shifts {
                #[cfg(feature = "attribution")]
                attribution: s.attribution.take(),
                ..Shifts::new()
            };
            drop(s);
            let m = m.clone();
            double_raf(move || m.report(false));
        });
    }
    // Lets CLS 0 be reported right after FCP when reporting all changes.
    later(0, move || m.report(false));
}
