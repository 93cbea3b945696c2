//! First Contentful Paint in the page (web-vitals `onFCP`).

use std::rc::Rc;

use beacon::{MetricName, NavigationType};
use wasm_bindgen::JsCast;

use super::bindings::{NavigatedEntry, SoftNavigationEntry};
use super::instance::{Instance, Sink};
use super::observe::{observe, Group, SoftGroup};
use super::page::{activation_start, double_raf, first_hidden_time, now, on_restore, when_activated};
use super::soft_nav::{navigation_of, on_page_view, routes, Routes};
use crate::report::Changes;

pub fn start(sink: Sink, changes: Changes, report_soft_navs: bool) {
    let routes = routes(report_soft_navs);
    when_activated(move || {
        first_hidden_time();
        let m = Instance::new(MetricName::Fcp, -1.0, sink, changes);
        // Where soft navigations are reported, their entries, for the
        // routes' attribution.
        #[cfg(feature = "attribution")]
        let soft_entries = m.attribution().map(|_| {
            let soft = Rc::new(super::attribution::SoftNavEntries::default());
            let (at, enabled) = (soft.clone(), routes == Routes::Entries);
            m.set_attributor(Box::new(move |s| {
                super::attribution::fcp_attribution(s, enabled.then_some(&*at))
            }));
            soft
        });
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
                        if let Some(id) = e
                            .unchecked_ref::<NavigatedEntry>()
                            .navigation_id()
                            .filter(|id| *id != 0.0)
                        {
                            m.state.borrow_mut().navigation.id = id;
                        }
                        m.report(true);
                    }
                }
            }
        };
        if observe(Group::Paint, None, on_paint).is_some() {
            let m = m.clone();
            on_restore(move |at| restart_after_restore(&m, at));
        }
        match routes {
            // A route's FCP is its soft-navigation entry's paint, reported at once.
            Routes::Entries => {
                observe(Group::SoftNavs(SoftGroup::SoftNavigation), None, move |entries, _| {
                    for e in entries {
                        #[cfg(feature = "attribution")]
                        if let Some(soft) = &soft_entries {
                            soft.store(&e);
                        }
                        let e: SoftNavigationEntry = e.unchecked_into();
                        let v = crate::soft_nav::fcp_value(e.start_time(), e.presentation_time(), e.paint_time());
                        m.renew(v, NavigationType::SoftNavigation, navigation_of(&e));
                        m.report(true);
                    }
                });
            }
            // Without paint timing, a route marked by hand has no FCP.
            Routes::Manual => on_page_view(move |n| m.renew(-1.0, NavigationType::SoftNavigation, n.clone())),
            Routes::No => {}
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
