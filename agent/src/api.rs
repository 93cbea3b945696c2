//! The Rust API's data: what a callback receives and what `init()` and the
//! `on_*` functions take.

use beacon::{MetricName, NavigationType, Rating};

use crate::delivery;

/// One report of a metric, as web-vitals' `Metric` object.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// `FCP`, `LCP`, `CLS`, `INP` or `TTFB`.
    pub name: MetricName,
    /// Milliseconds (CLS: unitless), as the reference computes it.
    pub value: f64,
    /// The rating of `value` against the Core Web Vitals thresholds.
    pub rating: Rating,
    /// Change since the previous report of this metric instance (the
    /// first report's delta is its value).
    pub delta: f64,
    /// Unique per metric instance: a later report with the same id
    /// replaces an earlier one.
    pub id: String,
    /// How the page view started (`back-forward-cache` after a restore).
    pub navigation_type: NavigationType,
    /// The browser's performance entries behind the value.
    pub entries: Vec<web_sys::PerformanceEntry>,
    /// The browser's `navigationId` of the navigation measured (hard,
    /// soft or restored; 0 where the browser has none).
    pub navigation_id: u64,
    /// The interaction that caused the soft navigation measured.
    pub navigation_interaction_id: Option<u64>,
    /// The URL of the navigation measured: for a soft navigation (or a
    /// [`start_page_view`](crate::start_page_view)), the route's URL.
    pub navigation_url: Option<String>,
    /// When the navigation measured started (0 for the hard navigation).
    pub navigation_start_time: f64,
    /// What caused the value (feature `attribution`): the fields of
    /// web-vitals/attribution 6.2.3's `attribution`, by metric.
    #[cfg(feature = "attribution")]
    pub attribution: Option<crate::attribution::Attribution>,
}

/// Options of one `on_*` registration, as web-vitals' `ReportOpts`.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "attribution"), derive(PartialEq))]
pub struct ReportOpts {
    /// Report every change of the value, not only when it is final (on
    /// hide, on input for LCP).
    pub report_all_changes: bool,
    /// INP only: the shortest `event` entry observed, in ms (the browser
    /// rounds to 8 ms and observes nothing under 16). Default 40.
    pub duration_threshold: f64,
    /// Report soft navigations (routes of a single-page app) as their own
    /// metric instances, where the browser has the Soft Navigations API
    /// (web-vitals 6 `reportSoftNavs`); elsewhere routes marked with
    /// [`start_page_view`](crate::start_page_view).
    pub report_soft_navs: bool,
    /// Attribution: names targets (LCP element, layout-shift source,
    /// interaction target) instead of the default selector; `None` from
    /// it falls back to the selector (web-vitals' `generateTarget`).
    #[cfg(feature = "attribution")]
    pub generate_target: Option<fn(&web_sys::Node) -> Option<String>>,
    /// Attribution, INP: fill `processed_event_entries` (default false).
    #[cfg(feature = "attribution")]
    pub include_processed_event_entries: bool,
    /// Attribution, LCP: how many recent resource entries are kept to find
    /// the LCP resource (default 50; one buffer per page, the last value
    /// given wins).
    #[cfg(feature = "attribution")]
    pub resource_buffer_size: Option<f64>,
}

impl Default for ReportOpts {
    fn default() -> Self {
        ReportOpts {
            report_all_changes: false,
            duration_threshold: crate::web::DEFAULT_DURATION_THRESHOLD,
            report_soft_navs: false,
            #[cfg(feature = "attribution")]
            generate_target: None,
            #[cfg(feature = "attribution")]
            include_processed_event_entries: false,
            #[cfg(feature = "attribution")]
            resource_buffer_size: None,
        }
    }
}

#[cfg(feature = "attribution")]
impl ReportOpts {
    pub(crate) fn attribution(&self) -> crate::web::attribution::Options {
        crate::web::attribution::Options {
            generate_target: self.generate_target.map(crate::web::attribution::GenerateTarget::Rust),
            include_processed_event_entries: self.include_processed_event_entries,
            resource_buffer_size: self.resource_buffer_size,
        }
    }
}

/// Computes a page key from the page's URL ([`Options::page_key`]).
pub type PageKeyFn = Box<dyn Fn(&str) -> String>;

/// Edits a beacon before it is sent, `false` drops it ([`Options::before_send`]).
pub type BeforeSendFn = Box<dyn FnMut(&mut crate::Beacon) -> bool>;

/// The options of [`init`](crate::init): where and how beacons are sent.
pub struct Options {
    /// Collector URL. Default `/v1/beacon`.
    pub endpoint: String,
    /// Share of sessions measured, 0 to 1, decided once per session from its
    /// id. Default 1. An unsampled session runs no observers at all.
    pub sample_rate: f64,
    /// Milliseconds between sends while the page is visible; 0 means the
    /// default, 10,000.
    pub flush_interval: u32,
    /// A queue of this many bytes of JSON is sent at once; 0 means the
    /// default, 16,384.
    pub max_queue_bytes: usize,
    /// Store and send nothing until [`grant_consent`](crate::grant_consent).
    pub require_consent: bool,
    /// Route patterns (`/products/:id`, `/blog/*`): a page whose path
    /// matches is keyed by its pattern.
    pub routes: Vec<String>,
    /// Query parameters kept in the page key (all others are dropped).
    pub query_keys: Vec<String>,
    /// Computes the page key from the page's URL instead of the default.
    /// User info (`user:password@`) is removed from what it returns.
    pub page_key: Option<PageKeyFn>,
    /// Edits each beacon before it is sent; `false` drops it.
    pub before_send: Option<BeforeSendFn>,
    /// Feature `attribution`: each report carries its attribution
    /// (selectors, subparts, load state, the longest script).
    #[cfg(feature = "attribution")]
    pub attribution: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            endpoint: delivery::DEFAULT_ENDPOINT.into(),
            sample_rate: delivery::DEFAULT_SAMPLE_RATE,
            flush_interval: delivery::DEFAULT_FLUSH_INTERVAL_MS,
            max_queue_bytes: delivery::DEFAULT_MAX_QUEUE_BYTES,
            require_consent: false,
            routes: Vec::new(),
            query_keys: Vec::new(),
            page_key: None,
            before_send: None,
            #[cfg(feature = "attribution")]
            attribution: false,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("endpoint", &self.endpoint)
            .field("sample_rate", &self.sample_rate)
            .field("flush_interval", &self.flush_interval)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("require_consent", &self.require_consent)
            .field("routes", &self.routes)
            .field("query_keys", &self.query_keys)
            .field("page_key", &self.page_key.is_some())
            .field("before_send", &self.before_send.is_some())
            .finish()
    }
}

impl Options {
    /// The transport's configuration, zeros replaced by the defaults.
    pub(crate) fn into_config(self) -> crate::web::transport::Config {
        use crate::web::transport::{BeforeSend, Config, PageKey};
        Config {
            endpoint: self.endpoint,
            sample_rate: self.sample_rate,
            flush_interval_ms: if self.flush_interval > 0 {
                self.flush_interval
            } else {
                delivery::DEFAULT_FLUSH_INTERVAL_MS
            },
            max_queue_bytes: if self.max_queue_bytes > 0 {
                self.max_queue_bytes
            } else {
                delivery::DEFAULT_MAX_QUEUE_BYTES
            },
            require_consent: self.require_consent,
            routes: self.routes,
            query_keys: self.query_keys,
            page_key: self.page_key.map_or(PageKey::Default, PageKey::Rust),
            before_send: self.before_send.map_or(BeforeSend::None, BeforeSend::Rust),
            #[cfg(feature = "attribution")]
            attribution: self.attribution,
        }
    }
}
