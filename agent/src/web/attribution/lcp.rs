//! LCP attribution in the page: the element's name when its entry is
//! processed, the resource from the agent's own Resource Timing buffer
//! (or the browser's), the subparts at each report.

use std::cell::{Cell, RefCell};

use js_sys::WeakMap;
use wasm_bindgen::JsCast;
use web_sys::{PerformanceEntry, PerformanceResourceTiming};

use super::bindings::LcpEntry;
use super::{Attribution, LcpAttribution, Options};
use crate::attribution::timing::{is_lcp_resource, lcp_default, lcp_parts, Navigation, Resource, ResourceBuffer};
use crate::web::bindings::performance;
use crate::web::instance::State;
use crate::web::observe::{observe, Group};

thread_local! {
    /// The last `resourceBufferSize` resource entries (one buffer for the
    /// page, as the reference's module has).
    static RESOURCES: RefCell<ResourceBuffer<PerformanceResourceTiming>> = RefCell::new(ResourceBuffer::default());
    static OBSERVING: Cell<bool> = const { Cell::new(false) };
}

fn times(r: &PerformanceResourceTiming) -> Resource {
    Resource {
        start_time: r.start_time(),
        request_start: r.request_start(),
        response_end: r.response_end(),
    }
}

/// One `onLCP` registration's attribution state.
pub struct LcpTracker {
    options: Options,
    /// Entry -> its target, as the reference's WeakMap.
    targets: WeakMap,
    /// Where soft navigations are reported: their entries.
    pub soft: super::SoftNavEntries,
}

impl LcpTracker {
    pub fn new(options: Options) -> LcpTracker {
        if let Some(size) = options.resource_buffer_size {
            RESOURCES.with(|r| r.borrow_mut().limit = size);
        }
        if !OBSERVING.with(|o| o.replace(true)) {
            observe(Group::Resource, None, |entries, _| {
                RESOURCES.with(|r| {
                    let mut r = r.borrow_mut();
                    for e in entries {
                        r.push(e.unchecked_into());
                    }
                })
            });
        }
        LcpTracker {
            options,
            targets: WeakMap::new(),
            soft: Default::default(),
        }
    }

    /// Before an LCP entry is processed: its element's name (or `#id`
    /// when the element left the DOM).
    pub fn process(&self, entry: &PerformanceEntry) {
        let e: &LcpEntry = entry.unchecked_ref();
        let target = match e.element() {
            Some(el) => Some(self.options.target(&el)),
            None => Some(e.id()).filter(|id| !id.is_empty()).map(|id| ["#", &id].concat()),
        };
        if let Some(t) = target {
            self.targets.set(entry.unchecked_ref(), &t.into());
        }
    }

    pub fn attribute(&self, s: &State) -> Attribution {
        let mut a = LcpAttribution {
            time_to_first_byte: 0.0,
            resource_load_delay: 0.0,
            resource_load_duration: 0.0,
            element_render_delay: s.value,
            target: None,
            lcp_entry: None,
            url: None,
            lcp_resource_entry: None,
            navigation_entry: None,
        };
        let n = s.entries.length();
        if n == 0 {
            return Attribution::Lcp(a);
        }
        let entry: PerformanceEntry = s.entries.get(n - 1).unchecked_into();
        let lcp: &LcpEntry = entry.unchecked_ref();
        let url = lcp.url();
        let (start, value) = (entry.start_time(), s.value);
        let matches = |r: &PerformanceResourceTiming| is_lcp_resource(&r.name(), times(r), &url, start);
        let resource = (!url.is_empty())
            .then(|| {
                RESOURCES.with(|b| b.borrow().find_last(matches).cloned()).or_else(|| {
                    let list = performance().get_entries_by_type("resource");
                    (0..list.length())
                        .rev()
                        .map(|i| list.get(i).unchecked_into::<PerformanceResourceTiming>())
                        .find(matches)
                })
            })
            .flatten();
        a.target = Some(self.targets.get(entry.unchecked_ref()).as_string());
        a.lcp_entry = Some(entry.clone());
        if !url.is_empty() {
            a.url = Some(url);
        }
        a.lcp_resource_entry = resource.clone().map(Into::into);
        // A route's subparts are from its soft-navigation entry's start
        // (no first byte), the hard navigation's from the navigation entry.
        let nav = if s.navigation_type == beacon::NavigationType::SoftNavigation {
            self.soft.get(s.navigation.id).map(|e| {
                let nt = Navigation {
                    response_start: 0.0,
                    activation_start: s.navigation.start_time,
                };
                (e, nt)
            })
        } else {
            crate::web::page::navigation_entry().map(|nav| {
                let nt = Navigation {
                    response_start: nav.response_start(),
                    activation_start: nav.activation_start().unwrap_or(0.0),
                };
                (nav.into(), nt)
            })
        };
        if let Some((nav, nt)) = nav {
            let p = match &resource {
                Some(r) => lcp_parts(value, nt, Some(times(r))),
                None => lcp_parts(value, nt, None),
            };
            a.time_to_first_byte = p.time_to_first_byte;
            a.resource_load_delay = p.resource_load_delay;
            a.resource_load_duration = p.resource_load_duration;
            a.element_render_delay = p.element_render_delay;
            a.navigation_entry = Some(nav);
        } else {
            let p = lcp_default(value);
            a.element_render_delay = p.element_render_delay;
        }
        Attribution::Lcp(a)
    }
}
