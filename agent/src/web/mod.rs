//! The browser side: the page's observers and lifecycle, metric instances
//! and the transport, over web-sys and typed bindings for what web-sys
//! lacks. Built for every target so that one code path is compiled and
//! linted everywhere; only wasm32 runs it (the public functions return at
//! once elsewhere).

#[cfg(feature = "attribution")]
pub mod attribution;
mod bindings;
mod cls;
mod fcp;
mod inp;
pub mod instance;
mod lcp;
mod observe;
pub mod page;
pub mod soft_nav;
pub mod transport;
mod ttfb;

use beacon::MetricName;

pub use inp::DEFAULT_DURATION_THRESHOLD;
pub use instance::Sink;
pub use observe::Group;

use crate::report::Changes;

/// Starts measuring `name`, reporting to `sink`; `report_soft_navs`:
/// each route is its own navigation (web-vitals 6 `reportSoftNavs`).
pub fn on_metric(name: MetricName, sink: Sink, changes: Changes, duration_threshold: f64, report_soft_navs: bool) {
    match name {
        MetricName::Fcp => fcp::start(sink, changes, report_soft_navs),
        MetricName::Lcp => lcp::start(sink, changes, report_soft_navs),
        MetricName::Cls => cls::start(sink, changes, report_soft_navs),
        MetricName::Inp => inp::start(sink, changes, duration_threshold, report_soft_navs),
        MetricName::Ttfb => ttfb::start(sink, changes, report_soft_navs),
    }
}

/// What the npm loader recorded for `group` before the wasm ran (a list of
/// batches), while its calls are replayed; `None` otherwise.
fn recorded(group: Group) -> Option<js_sys::Array> {
    #[cfg(feature = "js")]
    return crate::js::recorded(group);
    #[cfg(not(feature = "js"))]
    {
        let _ = group;
        None
    }
}

/// Whether the loader saw trusted input before the wasm ran.
fn early_input() -> bool {
    #[cfg(feature = "js")]
    return crate::js::early_input();
    #[cfg(not(feature = "js"))]
    false
}
