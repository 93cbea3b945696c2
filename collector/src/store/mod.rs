//! Storage of metric reports and their aggregates, behind [`Store`] so that
//! another engine (ClickHouse) can be added without touching ingestion or
//! the API.
//!
//! The one query everything reads through is [`Store::aggregates`]: for
//! (site, page or whole site, metric, form factor or all, span of time
//! buckets) it gives the count, the exact rating counts, the sketch and the
//! exact nearest-rank p75. Summaries, time series, page lists and the
//! `/metrics` gauges are computed from it, and so can alert rules be.

use std::future::Future;
use std::pin::Pin;

use beacon::{Attribution, FormFactor, MetricName, NavigationType, Rating};

use crate::aggregate::{Cell, Span};

mod attribution_keys;
mod cells;
pub mod clickhouse;
mod ids;
mod rows;
mod sqlite;
mod values;
mod views;
mod wal;

pub use self::clickhouse::{ClickHouse, ClickHouseOptions};
pub use sqlite::{Sqlite, SqliteOptions, DB_FILE_NAME};

/// The page key that stands for every page of a site past the page cap.
pub const OTHER_PAGE: &str = "(other)";

/// One stored metric report, as exported: one `metrics[]` entry of a
/// beacon plus the beacon-level fields it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Host (and port, when the page URL names one) of `page`.
    pub site: String,
    pub page: String,
    pub metric: MetricName,
    /// The agent's metric instance id; a later report with the same
    /// (site, metric, id) replaces this one's value.
    pub report_id: String,
    pub value: f64,
    pub delta: f64,
    pub rating: Rating,
    pub navigation_type: NavigationType,
    pub form_factor: Option<FormFactor>,
    pub page_view_id: Option<String>,
    pub session_id: Option<String>,
    /// When the collector first received this report id, unix milliseconds.
    /// Time buckets and windows are computed from it.
    pub received_at_ms: i64,
    /// What to fix first, when the agent collected it.
    pub attribution: Option<Attribution>,
}

/// One beacon's metric reports, as the store takes them: the fields they
/// share once, then each report. (Stored as one row: see `rows.rs`.)
#[derive(Clone, Debug, PartialEq)]
pub struct NewBeacon {
    /// Host (and port, when the page URL names one) of `page`.
    pub site: String,
    pub page: String,
    pub form_factor: Option<FormFactor>,
    pub page_view_id: Option<String>,
    pub session_id: Option<String>,
    /// When the collector received the beacon, unix milliseconds.
    pub received_at_ms: i64,
    pub reports: Vec<NewReport>,
}

/// One `metrics[]` entry of a [`NewBeacon`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewReport {
    pub metric: MetricName,
    /// The agent's metric instance id; a later report with the same
    /// (site, metric, id) replaces this one's value.
    pub report_id: String,
    pub value: f64,
    pub delta: f64,
    pub navigation_type: NavigationType,
    /// What to fix first, from agents that collect it (URLs already
    /// without query string, fragment and user info).
    pub attribution: Option<Attribution>,
}

impl NewBeacon {
    /// Groups flat reports into beacons: consecutive reports that share
    /// site, page, form factor, page view, session and time. For tools and
    /// tests that have reports rather than beacons (an import, say).
    pub fn group(reports: Vec<Report>) -> Vec<NewBeacon> {
        let mut out: Vec<NewBeacon> = Vec::new();
        for r in reports {
            let report = NewReport {
                metric: r.metric,
                report_id: r.report_id,
                value: r.value,
                delta: r.delta,
                navigation_type: r.navigation_type,
                attribution: r.attribution,
            };
            match out.last_mut() {
                Some(b)
                    if b.site == r.site
                        && b.page == r.page
                        && b.form_factor == r.form_factor
                        && b.page_view_id == r.page_view_id
                        && b.session_id == r.session_id
                        && b.received_at_ms == r.received_at_ms =>
                {
                    b.reports.push(report)
                }
                _ => out.push(NewBeacon {
                    site: r.site,
                    page: r.page,
                    form_factor: r.form_factor,
                    page_view_id: r.page_view_id,
                    session_id: r.session_id,
                    received_at_ms: r.received_at_ms,
                    reports: vec![report],
                }),
            }
        }
        out
    }

    /// The reports as [`Report`]s (as an export gives them back).
    pub fn to_reports(&self) -> Vec<Report> {
        self.reports
            .iter()
            .map(|r| Report {
                site: self.site.clone(),
                page: self.page.clone(),
                metric: r.metric,
                report_id: r.report_id.clone(),
                value: r.value,
                delta: r.delta,
                rating: r.metric.rate(r.value),
                navigation_type: r.navigation_type,
                form_factor: self.form_factor,
                page_view_id: self.page_view_id.clone(),
                session_id: self.session_id.clone(),
                received_at_ms: self.received_at_ms,
                attribution: r.attribution.clone(),
            })
            .collect()
    }
}

/// What an insert did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Reports stored under a new id.
    pub new: u32,
    /// Reports that replaced the value of an id already stored.
    pub replaced: u32,
    /// Reports stored durably while the store was loading, to be
    /// deduplicated and counted once it has loaded.
    pub deferred: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this collector knows ({known}); upgrade the collector"
    )]
    SchemaTooNew {
        path: std::path::PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store is shut down")]
    Closed,
    /// Not open yet (migrating, loading); retry shortly.
    #[error("the store is starting: {0}")]
    Starting(String),
    /// A write failed for lack of disk space, or the file could only be
    /// opened for reading; nothing of it was stored.
    #[error("disk full: {0}")]
    DiskFull(String),
    #[error("the store's write queue is full")]
    Overloaded,
    /// The database cannot take the write now and it could not be kept
    /// durably elsewhere (ClickHouse down and the spill file failing);
    /// nothing of it was stored. Retry later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("site {site:?} would exceed the limit of {limit} sites")]
    TooManySites { site: String, limit: u32 },
    #[error("internal store error: {0}")]
    Internal(String),
    /// The store stopped for good at start-up; the reason.
    #[error("{0}")]
    Failed(String),
}

/// Whether the file system holding `dir` has less than 1 MiB free for
/// this process (Linux; elsewhere: unknown, `false`). Writes failing while
/// it does are reported as [`StoreError::DiskFull`].
pub fn space_low(dir: &std::path::Path) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const FULL_BELOW_BYTES: u64 = 1 << 20;
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < FULL_BELOW_BYTES)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = dir;
        false
    }
}

impl StoreError {
    /// The same error for each beacon of a group that failed together
    /// (the database driver's errors cannot be cloned): disk full stays
    /// disk full, anything else says the commit failed and why.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::DiskFull(why) => StoreError::DiskFull(why.clone()),
            StoreError::Starting(why) => StoreError::Starting(why.clone()),
            StoreError::Closed => StoreError::Closed,
            StoreError::Overloaded => StoreError::Overloaded,
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            e => StoreError::Internal(format!("commit failed: {e}")),
        }
    }
}

/// Which aggregates of a site a query wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageScope {
    /// The whole site only.
    Site,
    /// The whole site and each page.
    SiteAndPages,
    /// One page key only.
    Page(String),
}

/// Asks [`Store::aggregates`] for aggregates.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateQuery {
    /// One site, or every site.
    pub site: Option<String>,
    pub pages: PageScope,
    /// These metrics; empty means all five.
    pub metrics: Vec<MetricName>,
    /// One form factor, or all together.
    pub form_factor: Option<FormFactor>,
    /// One aggregate per span (and key). Hourly spans are answered for the
    /// last [`HOURLY_DAYS`] days only; nothing is answered before the
    /// retention cut-off.
    pub spans: Vec<Span>,
    /// Compute the exact p75 ([`Aggregate::p75`]), which costs a look at
    /// the exact values of the reports around it.
    pub exact_p75: bool,
    /// Also its 95 % confidence interval ([`Aggregate::p75_interval`]):
    /// two more such looks.
    pub p75_interval: bool,
}

/// Hourly aggregates are kept for this many days before today; daily ones
/// for the whole retention.
pub const HOURLY_DAYS: i64 = 7;

/// Identifies one aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateKey {
    pub site: String,
    /// `None` for the whole site.
    pub page: Option<String>,
    pub metric: MetricName,
    /// `None` for all form factors together.
    pub form_factor: Option<FormFactor>,
}

/// The reports of one key in one span, aggregated.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub key: AggregateKey,
    pub span: Span,
    /// Exact rating counts and the sketch of the values.
    pub cell: Cell,
    /// The exact nearest-rank 75th percentile, when asked for.
    pub p75: Option<f64>,
    /// The exact values at the ranks that bound its 95 % confidence
    /// interval ([`crate::percentile::interval_ranks`]), when asked for.
    pub p75_interval: Option<(f64, f64)>,
}

impl Aggregate {
    pub fn count(&self) -> u64 {
        self.cell.count()
    }

    /// A nearest-rank percentile from the sketch (relative error < 1 %).
    pub fn quantile(&self, p: f64) -> Option<f64> {
        self.cell.sketch.quantile(p)
    }

    /// The rating of the p75, from the exact counts.
    pub fn rating(&self) -> Option<Rating> {
        self.cell.ratings.rating_at(75.0)
    }
}

/// Asks [`Store::page_views`] for the page views of a site (or all) and/or
/// its pages in a span.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewsQuery {
    pub site: Option<String>,
    pub pages: PageScope,
    /// One form factor, or all together.
    pub form_factor: Option<FormFactor>,
    pub span: Span,
}

/// The page views (distinct `pageViewId`s, counted in the bucket of their
/// first beacon) of a site or one of its pages in a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageViews {
    pub site: String,
    /// `None` for the whole site.
    pub page: Option<String>,
    /// By the navigation type of their first report, in
    /// [`NavigationType::ALL`] order.
    pub by_navigation: [u64; 7],
    /// When the last beacon of the page (of any page of the site) arrived,
    /// whatever the span and form factor.
    pub last_received_ms: Option<i64>,
}

impl PageViews {
    pub fn total(&self) -> u64 {
        self.by_navigation.iter().sum()
    }
}

/// Asks [`Store::attributions`] for the attributed reports of a site (or
/// one of its pages) received in `from_ms..to_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributionQuery {
    pub site: String,
    pub page: Option<String>,
    pub form_factor: Option<FormFactor>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Only these metrics.
    pub metrics: Vec<MetricName>,
}

/// One report with its attribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Attributed {
    pub metric: MetricName,
    pub value: f64,
    pub attribution: Attribution,
}

/// Raw reports wanted by [`Store::export`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportQuery {
    pub site: Option<String>,
    /// `from_ms <= received_at < to_ms`.
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Chunks of exported reports, oldest first; an error ends the stream.
pub type ExportStream = tokio::sync::mpsc::Receiver<Result<Vec<Report>, StoreError>>;

/// Where a store is in its life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StorePhase {
    /// Opening its files and bringing the schema up to date: neither
    /// writes nor reads are answered yet.
    #[default]
    Opening,
    /// Loading its aggregates: writes are taken (durably, counted once
    /// loaded); reads wait.
    Loading,
    /// Serving reads and writes.
    Ready,
    /// Shut down.
    Closed,
    /// Stopped by an error it cannot get past (a newer schema, a corrupt
    /// file); the reason.
    Failed(String),
}

/// The store's own health, for `/metrics` and `/readyz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// Bytes on disk (database and write-ahead log).
    pub size_bytes: u64,
    /// Beacons waiting to be written.
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// False once closing, or if the writer died.
    pub accepting: bool,
    pub phase: StorePhase,
    /// Why writes fail for lack of space, while they do (the last write
    /// failed so, or the file could only be opened for reading).
    pub disk_full: Option<String>,
}

impl StoreStatus {
    /// `Ok` when the store takes and serves everything; else why not.
    pub fn ready(&self) -> Result<(), String> {
        match &self.phase {
            StorePhase::Opening => return Err("starting: opening the store".into()),
            StorePhase::Loading => return Err("starting: loading the store".into()),
            StorePhase::Closed => return Err("store closed".into()),
            StorePhase::Failed(e) => return Err(format!("store failed: {e}")),
            StorePhase::Ready => {}
        }
        if let Some(why) = &self.disk_full {
            return Err(format!("disk full: {why}"));
        }
        if !self.accepting {
            return Err("store closed".into());
        }
        if self.queue_depth >= self.queue_capacity {
            return Err("write queue full".into());
        }
        Ok(())
    }
}

/// What store calls return: boxed so that [`Store`] can be used as
/// `dyn Store` and implemented by engines that await the network.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A storage engine for metric reports.
pub trait Store: Send + Sync + 'static {
    /// Stores the reports of some beacons (usually one), all or none. A
    /// report whose (site, metric, report id) is stored already replaces
    /// that one's value (it keeps its page, form factor and time bucket).
    /// Resolves once committed: a caller may acknowledge the reports then.
    /// Fails fast with [`StoreError::Overloaded`] when the write queue is
    /// full.
    fn insert(&self, beacons: Vec<NewBeacon>) -> StoreFuture<Inserted>;

    /// Aggregates of the deduplicated reports; keys without reports in a
    /// span are left out.
    fn aggregates(&self, query: AggregateQuery) -> StoreFuture<Vec<Aggregate>>;

    /// Exactly how many reports of `key` in `span` have a value `<=
    /// threshold` (for thresholds other than the reference ones).
    fn count_at_or_below(&self, key: AggregateKey, span: Span, threshold: f64) -> StoreFuture<u64>;

    /// [`Store::count_at_or_below`] for each of `thresholds` (a
    /// distribution's bucket edges), in their order.
    fn counts_at_or_below(&self, key: AggregateKey, span: Span, thresholds: Vec<f64>) -> StoreFuture<Vec<u64>> {
        let counts: Vec<StoreFuture<u64>> = thresholds
            .into_iter()
            .map(|t| self.count_at_or_below(key.clone(), span, t))
            .collect();
        Box::pin(async move {
            let mut out = Vec::with_capacity(counts.len());
            for c in counts {
                out.push(c.await?);
            }
            Ok(out)
        })
    }

    /// Page views of a site (or all sites) and/or its pages; keys without
    /// page views or beacons are left out.
    fn page_views(&self, query: ViewsQuery) -> StoreFuture<Vec<PageViews>>;

    /// The reports with attribution (deduplicated: a re-report's value and
    /// attribution) that `query` asks for, in no order.
    fn attributions(&self, query: AttributionQuery) -> StoreFuture<Vec<Attributed>>;

    /// Streams raw reports.
    fn export(&self, query: ExportQuery) -> ExportStream;

    fn status(&self) -> StoreStatus;

    /// The engine's own lines for `/metrics` (Prometheus text), if any.
    fn metrics_text(&self) -> String {
        String::new()
    }

    /// Finishes pending writes, saves the aggregates and stops accepting
    /// writes. Blocks; called once at shutdown, outside the async runtime.
    fn close(&self) -> Result<(), StoreError>;
}
