//! FCP and TTFB attribution in the page: subparts from the navigation
//! entry at each report.

use wasm_bindgen::JsCast;
use web_sys::{PerformanceEntry, PerformanceNavigationTiming};

use super::{load_state, Attribution, FcpAttribution, TtfbAttribution};
use crate::attribution::timing::{fcp_parts, ttfb_parts, Navigation, NavigationPhases};
use crate::web::instance::State;
use crate::web::page::{navigation_entry, restored_at};

/// FCP's attribution; `soft`: the soft-navigation entries (where soft
/// navigations are reported) a route's FCP names.
pub fn fcp_attribution(s: &State, soft: Option<&super::SoftNavEntries>) -> Attribution {
    let mut a = FcpAttribution {
        time_to_first_byte: 0.0,
        first_byte_to_fcp: s.value,
        load_state: load_state(restored_at().unwrap_or(-1.0)),
        navigation_entry: None,
        fcp_entry: None,
    };
    let n = s.entries.length();
    if s.navigation_type == beacon::NavigationType::SoftNavigation {
        if let Some(entry) = soft.and_then(|m| m.get(s.navigation.id)) {
            a.load_state = beacon::LoadState::Complete;
            a.navigation_entry = Some(entry);
        }
    } else if n > 0 {
        if let Some(nav) = navigation_entry() {
            let (ttfb, rest) = fcp_parts(
                s.value,
                Navigation {
                    response_start: nav.response_start(),
                    activation_start: nav.activation_start().unwrap_or(0.0),
                },
            );
            let first: PerformanceEntry = s.entries.get(0).unchecked_into();
            a = FcpAttribution {
                time_to_first_byte: ttfb,
                first_byte_to_fcp: rest,
                load_state: load_state(first.start_time()),
                navigation_entry: Some(nav.into()),
                fcp_entry: Some(s.entries.get(n - 1).unchecked_into()),
            };
        }
    }
    Attribution::Fcp(a)
}

pub fn ttfb_attribution(s: &State) -> Attribution {
    let entry = s.entries.get(0);
    let mut a = TtfbAttribution {
        waiting_duration: 0.0,
        cache_duration: 0.0,
        dns_duration: 0.0,
        connection_duration: 0.0,
        request_duration: 0.0,
        // The entry as the metric has it (a page may have replaced it).
        navigation_entry: entry.is_object().then(|| entry.clone().unchecked_into()),
    };
    if let Some(nav) = entry.dyn_ref::<PerformanceNavigationTiming>() {
        let nav_entry: &crate::web::bindings::NavigationEntry = nav.unchecked_ref();
        let p = ttfb_parts(
            s.value,
            NavigationPhases {
                activation_start: nav_entry.activation_start().unwrap_or(0.0),
                worker_start: nav.worker_start(),
                fetch_start: nav.fetch_start(),
                domain_lookup_start: nav.domain_lookup_start(),
                connect_start: nav.connect_start(),
                connect_end: nav.connect_end(),
            },
        );
        a.waiting_duration = p.waiting_duration;
        a.cache_duration = p.cache_duration;
        a.dns_duration = p.dns_duration;
        a.connection_duration = p.connection_duration;
        a.request_duration = p.request_duration;
    }
    Attribution::Ttfb(a)
}
