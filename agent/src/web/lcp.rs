//! Largest Contentful Paint in the page (web-vitals `onLCP`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use beacon::{MetricName, NavigationType};
use js_sys::{Array, Function};
use wasm_bindgen::JsCast;
use web_sys::{Event, PerformanceEntry};

use super::bindings::{window, InteractionContentfulPaint, SoftNavigationEntry};
use super::instance::{Instance, Sink};
use super::observe::{observe, Batch, Group, SoftGroup};
use super::page::{
    activation_start, double_raf, event_handler, first_hidden_time, now, on_restore, reset_first_hidden,
    when_activated, when_idle_or_hidden,
};
use super::soft_nav::{navigation_of, on_page_view, routes, Routes};
use crate::report::Changes;

/// The browser stops emitting LCP candidates after input but does not say
/// so: LCP is final on the first trusted keydown, click or hide. Not on
/// scroll: script can scroll, and the reference leaves it out.
const FINAL_ON: [&str; 3] = ["keydown", "click", "visibilitychange"];

/// One LCP instance and whether it is final.
struct Lcp {
    m: Rc<Instance>,
    finalized: Cell<bool>,
    report_all: bool,
    /// With soft navigations: every entry of a batch counts (a route change
    /// may sit between two candidates), and routes start new instances.
    soft: bool,
    /// The LCP resource's tracker, where the sink asked for attribution.
    #[cfg(feature = "attribution")]
    attribution: Option<Rc<super::attribution::LcpTracker>>,
}

impl Lcp {
    /// A new route: the current instance is final (unless it was already),
    /// the next one measures `navigation`.
    fn new_route(&self, navigation: crate::soft_nav::Navigation) {
        if !self.finalized.get() {
            self.m.report(true);
        }
        self.m.renew(-1.0, NavigationType::SoftNavigation, navigation);
        self.finalized.set(false);
    }

    fn handle(&self, entries: &[PerformanceEntry]) {
        let range = if self.soft {
            0..entries.len()
        } else {
            crate::lcp::entries_to_process(entries.len(), self.report_all)
        };
        let m = &self.m;
        for e in &entries[range] {
            match e.entry_type().as_str() {
                "soft-navigation" => {
                    #[cfg(feature = "attribution")]
                    if let Some(t) = &self.attribution {
                        t.soft.store(e);
                    }
                    let e: &SoftNavigationEntry = e.unchecked_ref();
                    self.new_route(navigation_of(e));
                    reset_first_hidden();
                    // The route's largest paint until now, as if it had just
                    // been observed (it can be null).
                    if let Ok(Some(paint)) = e.largest_interaction_contentful_paint() {
                        self.handle(&[paint.unchecked_into()]);
                    }
                }
                "interaction-contentful-paint" => {
                    let icp: &InteractionContentfulPaint = e.unchecked_ref();
                    // Only the paints of the interaction that made this route.
                    if !crate::soft_nav::icp_counts(&m.state.borrow().navigation, icp.interaction_id()) {
                        continue;
                    }
                    let paint = icp.largest_contentful_paint();
                    // The route's paint is named as an LCP entry is.
                    #[cfg(feature = "attribution")]
                    if let (Some(t), Some(p)) = (&self.attribution, &paint) {
                        t.process(p);
                    }
                    let (render, v) =
                        crate::soft_nav::icp_value(paint.as_ref().and_then(|p| p.render_time()), e.start_time());
                    if render < first_hidden_time() {
                        m.set(v, paint.map_or_else(Array::new, |p| Array::of1(&p)));
                        m.report(false);
                    }
                }
                _ => {
                    #[cfg(feature = "attribution")]
                    if let Some(t) = &self.attribution {
                        t.process(e);
                    }
                    if let Some(v) = crate::lcp::value(e.start_time(), activation_start(), first_hidden_time()) {
                        m.set(v, Array::of1(e));
                        m.report(false);
                    }
                }
            }
        }
    }
}

pub fn start(sink: Sink, changes: Changes, report_soft_navs: bool) {
    let routes = routes(report_soft_navs);
    when_activated(move || {
        first_hidden_time();
        let soft = routes == Routes::Entries;
        let m = Instance::new(MetricName::Lcp, -1.0, sink, changes);
        #[cfg(feature = "attribution")]
        let attribution = m.attribution().map(|o| {
            let t = Rc::new(super::attribution::LcpTracker::new(o));
            let at = t.clone();
            m.set_attributor(Box::new(move |s| at.attribute(s)));
            t
        });
        let lcp = Rc::new(Lcp {
            m,
            finalized: Cell::new(false),
            report_all: changes == Changes::All,
            soft,
            #[cfg(feature = "attribution")]
            attribution,
        });
        let group = if soft {
            Group::SoftNavs(SoftGroup::LargestContentfulPaint)
        } else {
            Group::LargestContentfulPaint
        };
        let on_batch = {
            let lcp = lcp.clone();
            move |entries: Batch, _: &web_sys::PerformanceObserver| lcp.handle(&entries)
        };
        let Some(po) = observe(group, None, on_batch) else {
            return;
        };
        let listener: Rc<RefCell<Option<Function>>> = Rc::default();
        let finalize = {
            let (lcp, listener) = (lcp.clone(), listener.clone());
            move |id: String| {
                if lcp.finalized.get() {
                    return;
                }
                // Soft navigations keep observing: every route has its LCP.
                if !lcp.soft {
                    po.disconnect();
                    if let Some(f) = listener.borrow_mut().take() {
                        for t in FINAL_ON {
                            let _ = window().remove_event_listener_with_callback_and_bool(t, &f, true);
                        }
                    }
                }
                // A bfcache restore or a new route in the meantime started
                // a new instance: leave it.
                if lcp.m.id() == id {
                    lcp.finalized.set(true);
                    lcp.m.report(true);
                }
            }
        };
        let stop = {
            let lcp = lcp.clone();
            let finalize = Rc::new(finalize);
            move || {
                let (id, finalize) = (lcp.m.id(), finalize.clone());
                when_idle_or_hidden(move || finalize(id));
            }
        };
        let stop = Rc::new(stop);
        let on_input = {
            let (stop, lcp) = (stop.clone(), lcp.clone());
            event_handler(Box::new(move |e: Event| {
                if e.is_trusted() && !lcp.finalized.get() {
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
        if routes == Routes::Manual {
            // Without paint timing, a route marked by hand has no LCP.
            let lcp = lcp.clone();
            on_page_view(move |n| lcp.new_route(n.clone()));
        }
        on_restore(move |at| {
            lcp.m.restart(-1.0);
            lcp.finalized.set(false);
            let lcp = lcp.clone();
            double_raf(move || {
                lcp.m.set_value(now() - at);
                lcp.finalized.set(true);
                lcp.m.report(true);
            });
        });
    });
}
