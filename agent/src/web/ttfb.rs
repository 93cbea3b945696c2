//! Time to First Byte in the page (web-vitals `onTTFB`).

use beacon::{MetricName, NavigationType};
use js_sys::Array;
use wasm_bindgen::JsCast;

use super::bindings::SoftNavigationEntry;
use super::instance::{Instance, Sink};
use super::observe::{observe, Group, SoftGroup};
use super::page::{activation_start, navigation_entry, on_restore, when_ready};
use super::soft_nav::{navigation_of, on_page_view, routes, Routes};
use crate::report::Changes;

pub fn start(sink: Sink, changes: Changes, report_soft_navs: bool) {
    let routes = routes(report_soft_navs);
    let m = Instance::new(MetricName::Ttfb, -1.0, sink, changes);
    #[cfg(feature = "attribution")]
    if m.attribution().is_some() {
        m.set_attributor(Box::new(super::attribution::ttfb_attribution));
    }
    when_ready(move || {
        let Some(entry) = navigation_entry() else { return };
        m.set(
            crate::ttfb::value(entry.response_start(), activation_start()),
            Array::of1(&entry),
        );
        m.report(true);
        {
            let m = m.clone();
            on_restore(move |_| {
                m.restart(0.0);
                m.report(true);
            });
        }
        // A route's TTFB is 0: nothing came from the network.
        match routes {
            Routes::Entries => {
                observe(Group::SoftNavs(SoftGroup::SoftNavigation), None, move |entries, _| {
                    for e in entries {
                        let e: SoftNavigationEntry = e.unchecked_into();
                        if e.navigation_id().is_some_and(|id| id != 0.0 && !id.is_nan()) {
                            m.renew(0.0, NavigationType::SoftNavigation, navigation_of(&e));
                            m.set(0.0, Array::of1(&e));
                            m.report(true);
                        }
                    }
                });
            }
            Routes::Manual => on_page_view(move |n| {
                m.renew(0.0, NavigationType::SoftNavigation, n.clone());
                m.report(true);
            }),
            Routes::No => {}
        }
    });
}
