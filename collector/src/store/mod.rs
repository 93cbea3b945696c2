//! Storage of metric reports, behind [`Store`] so that another engine
//! (ClickHouse) can be added without touching ingestion or the API.

use std::future::Future;
use std::pin::Pin;

use beacon::{FormFactor, MetricName, NavigationType, Rating};

use crate::summary::{Summary, SummaryQuery};

mod sqlite;

pub use sqlite::{Sqlite, SqliteOptions, DB_FILE_NAME};

/// One stored metric report: one `metrics[]` entry of a beacon plus the
/// beacon-level fields it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Host (and port, when the page URL names one) of `page`.
    pub site: String,
    pub page: String,
    pub metric: MetricName,
    /// The agent's metric instance id; a later report with the same
    /// (site, metric, id) replaces this one.
    pub report_id: String,
    pub value: f64,
    pub delta: f64,
    pub rating: Rating,
    pub navigation_type: NavigationType,
    pub form_factor: Option<FormFactor>,
    pub page_view_id: Option<String>,
    pub session_id: Option<String>,
    /// When the collector received it, unix milliseconds.
    pub received_at_ms: i64,
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
    #[error("database {path} has schema version {found}, newer than this collector knows ({known}); upgrade the collector")]
    SchemaTooNew {
        path: std::path::PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store is shut down")]
    Closed,
    #[error("internal store error: {0}")]
    Internal(String),
}

/// What store calls return: boxed so that [`Store`] can be used as
/// `dyn Store` and implemented by engines that await the network.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A storage engine for metric reports.
pub trait Store: Send + Sync + 'static {
    /// Stores the reports of one beacon, all or none, replacing any earlier
    /// report with the same (site, metric, report id). Resolves only once
    /// they are durably committed: a caller may acknowledge them then.
    fn insert(&self, reports: Vec<Report>) -> StoreFuture<()>;

    /// The per-page summary of what is stored.
    fn summary(&self, query: SummaryQuery) -> StoreFuture<Summary>;

    /// Finishes pending writes and stops accepting new ones. Blocks; called
    /// once at shutdown, outside the async runtime.
    fn close(&self) -> Result<(), StoreError>;
}
