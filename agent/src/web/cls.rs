//! Cumulative Layout Shift in the page (web-vitals `onCLS`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use beacon::{MetricName, NavigationType};
use js_sys::Array;
use wasm_bindgen::JsCast;

use super::bindings::{LayoutShift, SoftNavigationEntry};
use super::instance::{Instance, Sink};
use super::observe::{observe, Batch, Group, SoftGroup};
use super::page::{double_raf, first_hidden_time, later, on_hidden, on_restore};
use super::soft_nav::{navigation_of, on_page_view, routes, Routes};
use crate::cls::{Cls, Shift};
use crate::report::Changes;
use crate::soft_nav::Navigation;

/// CLS starts after FCP, as in the Chrome UX Report.
pub fn start(sink: Sink, changes: Changes, report_soft_navs: bool) {
    first_hidden_time();
    let sink = Cell::new(Some(sink));
    let start_once = move || {
        if let Some(sink) = sink.take() {
            start_after_fcp(sink, changes, routes(report_soft_navs));
        }
    };
    super::fcp::start(Sink::Hook(Box::new(start_once)), Changes::Forced, false);
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

/// A new route: the current instance reports what it has (forced), the
/// next one measures `navigation` from nothing.
fn new_route(m: &Instance, shifts: &RefCell<Shifts>, navigation: Navigation) {
    m.report(true);
    m.renew(0.0, NavigationType::SoftNavigation, navigation);
    *shifts.borrow_mut() = Shifts::new();
}

/// A batch of `layout-shift` entries, and `soft-navigation` entries among
/// them (with soft navigations), in order.
fn handle(m: &Instance, shifts: &RefCell<Shifts>, entries: Batch) {
    let mut run = Vec::new();
    for e in entries {
        if e.entry_type() == "soft-navigation" {
            shifts.borrow_mut().add(m, &std::mem::take(&mut run));
            new_route(m, shifts, navigation_of(e.unchecked_ref::<SoftNavigationEntry>()));
        } else {
            run.push(e);
        }
    }
    shifts.borrow_mut().add(m, &run);
}

fn start_after_fcp(sink: Sink, changes: Changes, routes: Routes) {
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
            handle(&m, &shifts, entries);
            m.report(false);
        }
    };
    let group = if routes == Routes::Entries {
        Group::SoftNavs(SoftGroup::LayoutShift)
    } else {
        Group::LayoutShift
    };
    let Some(po) = observe(group, None, on_batch) else {
        return;
    };
    let po = Rc::new(po);
    {
        let (m, shifts, po) = (m.clone(), shifts.clone(), po.clone());
        on_hidden(move || {
            handle(&m, &shifts, super::observe::entries(&po.take_records()));
            m.report(true);
        });
    }
    if routes == Routes::Manual {
        let (m, shifts) = (m.clone(), shifts.clone());
        on_page_view(move |n| {
            // The shifts before the route change are the old route's.
            handle(&m, &shifts, super::observe::entries(&po.take_records()));
            new_route(&m, &shifts, n.clone());
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
