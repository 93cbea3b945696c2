//! vitalsign agent: the Core Web Vitals (FCP, LCP, CLS, INP, TTFB) measured
//! in the browser exactly as the reference, `web-vitals` 6.2, measures them,
//! and beaconed to a vitalsign collector.
//!
//! For Rust front-ends (Leptos, Yew, Dioxus, Sycamore, plain wasm-bindgen):
//! add the crate as a dependency and call it from Rust; it builds for
//! `wasm32-unknown-unknown` with its default features, and elsewhere (a
//! server-side-rendering build) every function is a no-op.
//!
//! ```no_run
//! use vitalsign_agent::{init, on_cls, on_inp, on_lcp, Metric, Options, ReportOpts};
//!
//! init(Options { endpoint: "/v1/beacon".into(), ..Default::default() });
//! on_lcp(|m: &Metric| web_sys::console::log_1(&m.value.into()), ReportOpts::default());
//! on_cls(|m: &Metric| web_sys::console::log_2(&m.name.as_str().into(), &m.value.into()), ReportOpts::default());
//! on_inp(
//!     |m: &Metric| web_sys::console::log_1(&m.rating.as_str().into()),
//!     ReportOpts { report_all_changes: true, ..Default::default() },
//! );
//! ```
//!
//! Layout: the decisions (CLS session windows, INP selection, report
//! deltas, navigation types, page keys, sessions and sampling, packing,
//! budgets, retries) are plain Rust modules tested natively; `web` is the
//! browser side on web-sys, js-sys, gloo-timers and serde-wasm-bindgen;
//! `js` (feature `js`) is the JavaScript API of the npm package.
#![warn(missing_docs)]
extern crate alloc;

mod api;
#[cfg(feature = "attribution")]
pub mod attribution;
#[cfg(all(test, not(feature = "attribution")))]
#[allow(unused)]
mod attribution;
mod cls;
mod delivery;
mod fcp;
mod form_factor;
mod id;
mod inp;
#[cfg(feature = "js")]
pub mod js;
mod lcp;
mod navigation;
mod page_key;
mod report;
mod session;
mod soft_nav;
mod sort;
mod text;
mod ttfb;
mod web;

pub use api::{BeforeSendFn, Metric, Options, PageKeyFn, ReportOpts};
pub use beacon::{MetricName, MetricReport, NavigationType, Rating};

/// The beacon the agent sends ([`Options::before_send`] edits it): its
/// reports carry [`beacon::Attribution`] in the `attribution` build,
/// nothing otherwise.
pub type Beacon = beacon::Beacon<web::transport::Attr>;

use report::Changes;
use web::Sink;

/// Whether the browser side runs: only in wasm32 builds. Elsewhere (server
/// rendering) every function of the API does nothing.
const IN_BROWSER: bool = cfg!(target_arch = "wasm32");

fn on(name: MetricName, callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    if IN_BROWSER {
        let changes = if opts.report_all_changes {
            Changes::All
        } else {
            Changes::Forced
        };
        let sink = Sink::Rust(Box::new(callback));
        #[cfg(feature = "attribution")]
        let sink = Sink::Attributed(Box::new(sink), opts.attribution());
        web::on_metric(name, sink, changes, opts.duration_threshold, opts.report_soft_navs);
    }
}

/// Calls `callback` with First Contentful Paint, once it is known.
pub fn on_fcp(callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    on(MetricName::Fcp, callback, opts);
}

/// Calls `callback` with Largest Contentful Paint when it is final (the
/// first input or hide), or at every new candidate with
/// `report_all_changes`.
pub fn on_lcp(callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    on(MetricName::Lcp, callback, opts);
}

/// Calls `callback` with Cumulative Layout Shift whenever the page is
/// hidden (or at every change with `report_all_changes`).
pub fn on_cls(callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    on(MetricName::Cls, callback, opts);
}

/// Calls `callback` with Interaction to Next Paint whenever the page is
/// hidden (or at every change with `report_all_changes`); nothing without
/// interactions.
pub fn on_inp(callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    on(MetricName::Inp, callback, opts);
}

/// Calls `callback` with Time to First Byte once the page has loaded.
pub fn on_ttfb(callback: impl FnMut(&Metric) + 'static, opts: ReportOpts) {
    on(MetricName::Ttfb, callback, opts);
}

/// Measures all five metrics and beacons them to `options.endpoint`: when
/// the page is hidden, every `flush_interval` while it is visible, and when
/// the queue is full. Later calls are ignored.
pub fn init(options: Options) {
    if IN_BROWSER {
        web::transport::start(options.into_config());
    }
}

/// Marks a route change of a single-page app by hand, where the browser
/// does not report soft navigations itself: the instances registered with
/// `report_soft_navs` (and those of [`init`]) start anew for the current
/// URL, as after a soft navigation. Call it after the URL changed
/// (`pushState`). Where the browser reports soft navigations, it does
/// nothing.
pub fn start_page_view() {
    if IN_BROWSER {
        web::soft_nav::start_page_view();
    }
}

/// With `require_consent`: starts storing and sending.
pub fn grant_consent() {
    if IN_BROWSER {
        web::transport::grant_consent();
    }
}

/// Stops sending and clears what the agent stored (queue, session, reports
/// kept for the next page view).
pub fn revoke_consent() {
    if IN_BROWSER {
        web::transport::revoke_consent();
    }
}

// The npm package's build: a small allocator (panics are traps there).
#[cfg(all(target_arch = "wasm32", feature = "bundle"))]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
