//! Interaction to Next Paint in the page (web-vitals `onINP`).

use std::cell::RefCell;
use std::rc::Rc;

use beacon::{MetricName, NavigationType};
use js_sys::{Array, Object};
use wasm_bindgen::JsCast;

use super::bindings::{performance, EventTiming, SoftNavigationEntry, EVENT_TIMING_CLASS};
use super::instance::{Instance, Sink};
use super::observe::{observe, Batch, Group, SoftGroup};
use super::page::{first_hidden_time, on_hidden, on_restore, when_activated, when_idle_or_hidden};
use super::soft_nav::{navigation_of, on_page_view, routes, Routes};
use crate::inp::{InteractionCountEstimate, LongestInteractions, Selected};
use crate::report::Changes;
use crate::soft_nav::Navigation;

/// The reference's default `durationThreshold`, ms.
pub const DEFAULT_DURATION_THRESHOLD: f64 = 40.0;

thread_local! {
    /// Where the browser lacks `performance.interactionCount`: estimated
    /// from interaction ids by one observer shared by all instances.
    static ESTIMATE: RefCell<Option<InteractionCountEstimate>> = const { RefCell::new(None) };
}

fn interaction_id(e: &EventTiming) -> u64 {
    e.interaction_id().unwrap_or(0.0) as u64
}

fn interaction_count() -> f64 {
    ESTIMATE
        .with(|e| e.borrow().map(|e| e.count))
        .unwrap_or_else(|| performance().interaction_count().unwrap_or(0.0))
}

fn supported() -> bool {
    let prototype = EVENT_TIMING_CLASS.with(|c| c.as_ref().and_then(|c| c.prototype()));
    prototype.is_some_and(|p| Object::has_own(&p, &"interactionId".into()))
}

fn start_estimate() {
    let start = ESTIMATE.with(|e| {
        let mut e = e.borrow_mut();
        e.is_none() && performance().interaction_count().is_none() && {
            *e = Some(InteractionCountEstimate::new());
            true
        }
    });
    if start {
        observe(Group::Event, Some(0.0), |entries, _| {
            ESTIMATE.with(|e| {
                if let Some(est) = e.borrow_mut().as_mut() {
                    for entry in &entries {
                        est.add(entry.unchecked_ref::<EventTiming>().interaction_id().unwrap_or(0.0));
                    }
                }
            });
        });
    }
}

/// The interactions one instance keeps, and the interaction count when it
/// started (after a bfcache restore, only later interactions count).
struct Interactions {
    longest: LongestInteractions<EventTiming>,
    count_before: f64,
    #[cfg(feature = "attribution")]
    attribution: Option<super::attribution::InpTracker>,
}

/// INP from the kept interactions; reports a change (if changes are
/// reported). No borrow is held while reporting: a callback may make the
/// page report again.
fn update(kept: &RefCell<Interactions>, m: &Instance) {
    let selected = {
        let k = kept.borrow();
        let count = interaction_count() - k.count_before;
        match k.longest.select(count, m.navigation_type()) {
            Some(Selected::Interaction(i)) => Some((i.latency, i.entries.iter().collect::<Array>())),
            Some(Selected::Floor) => Some((8.0, Array::new())),
            None => None,
        }
    };
    if let Some((latency, entries)) = selected {
        if latency != m.value() {
            m.set(latency, entries);
            m.report(false);
        }
    }
}

/// A new route: the current instance is final, the next one counts only
/// later interactions.
fn new_route(kept: &RefCell<Interactions>, m: &Instance, navigation: Navigation) {
    update(kept, m);
    m.report(true);
    {
        let mut k = kept.borrow_mut();
        k.count_before = interaction_count();
        k.longest.clear();
    }
    m.renew(-1.0, NavigationType::SoftNavigation, navigation);
}

pub fn start(sink: Sink, changes: Changes, duration_threshold: f64, report_soft_navs: bool) {
    if !supported() {
        return;
    }
    first_hidden_time();
    // Long animation frames are observed from the call, as the reference does.
    #[cfg(feature = "attribution")]
    let attribution = sink.attribution().map(super::attribution::InpTracker::new);
    when_activated(move || {
        let routes = routes(report_soft_navs);
        start_estimate();
        let m = Instance::new(MetricName::Inp, -1.0, sink, changes);
        #[cfg(feature = "attribution")]
        if let Some(t) = attribution.clone() {
            m.set_attributor(Box::new(move |s| {
                t.attribute(s.value, &s.entries, s.navigation.start_time)
            }));
        }
        let kept = Rc::new(RefCell::new(Interactions {
            longest: LongestInteractions::default(),
            count_before: 0.0,
            #[cfg(feature = "attribution")]
            attribution,
        }));
        // In an idle task, so that all entries of an interaction have
        // arrived and no work lands on its frame. `route`: a route marked
        // by hand after these entries.
        let handle = {
            let (m, kept) = (m.clone(), kept.clone());
            move |entries: Batch, force: bool, route: Option<Navigation>| {
                let (m, kept) = (m.clone(), kept.clone());
                when_idle_or_hidden(move || {
                    for e in entries {
                        if e.entry_type() == "soft-navigation" {
                            new_route(&kept, &m, navigation_of(e.unchecked_ref::<SoftNavigationEntry>()));
                            continue;
                        }
                        let mut k = kept.borrow_mut();
                        #[cfg(feature = "attribution")]
                        if let Some(t) = &k.attribution {
                            t.before_entry(&e);
                        }
                        let e: EventTiming = e.unchecked_into();
                        let id = interaction_id(&e);
                        k.longest.add(id, e.duration(), e.start_time(), e);
                        #[cfg(feature = "attribution")]
                        if let Some(t) = &k.attribution {
                            t.after_entry(&k.longest, id);
                        }
                    }
                    #[cfg(feature = "attribution")]
                    {
                        let k = kept.borrow();
                        if let Some(t) = &k.attribution {
                            t.processed(&k.longest);
                        }
                    }
                    update(&kept, &m);
                    if let Some(n) = route {
                        new_route(&kept, &m, n);
                    }
                    if force {
                        m.report(true);
                    }
                });
            }
        };
        let handle = Rc::new(handle);
        let group = if routes == Routes::Entries {
            Group::SoftNavs(SoftGroup::Event)
        } else {
            Group::Event
        };
        let po = {
            let handle = handle.clone();
            observe(group, Some(duration_threshold), move |entries, _| {
                handle(entries, false, None)
            })
        };
        let Some(po) = po else { return };
        let po = Rc::new(po);
        {
            let (handle, po) = (handle.clone(), po.clone());
            on_hidden(move || handle(super::observe::entries(&po.take_records()), true, None));
        }
        if routes == Routes::Manual {
            on_page_view(move |n| handle(super::observe::entries(&po.take_records()), false, Some(n.clone())));
        }
        on_restore(move |_| {
            let mut k = kept.borrow_mut();
            k.count_before = interaction_count();
            k.longest.clear();
            drop(k);
            m.restart(-1.0);
        });
    });
}
