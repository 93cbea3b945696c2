//! [`Store`] on ClickHouse, for several collectors behind a load balancer
//! sharing one truth. Through the official `clickhouse` crate over HTTP.
//!
//! - [`schema`]: tables, the materialized view, migrations, the cluster DDL;
//! - [`writer`]: batched inserts with deduplication tokens, the spill file
//!   and its replay;
//! - [`lease`] and [`alert_state`]: the alert evaluation lease and the
//!   alert state shared by the collectors;
//! - [`rollup`]: the settle runs that make the hourly rollup count each
//!   report once, and the same corrections for rows not settled yet;
//! - [`read`]: the read planner: aggregates from the rollup (the exact
//!   p75 from the raw values of the one sketch bin it falls in), counts,
//!   page views, attributions and export over the deduplicated raw
//!   reports.
//!
//! - [`catalog`]: the caps on sites and pages, over the shared `pages`
//!   table and a copy of it in memory refreshed periodically.
//!
//! Ingestion is stateless but for the page catalog: any collector may take
//! any beacon, and the caps hold across collectors up to what they admit
//! within one refresh interval (see [`catalog`]). The engine runs on
//! a Tokio runtime of its own (two threads), so its futures can be awaited
//! from actix's workers and from the alert evaluator alike.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::store::{
    Aggregate, AggregateKey, AggregateQuery, Attributed, AttributionQuery, ExportQuery, ExportStream, Inserted,
    NewBeacon, PageViews, Store, StoreError, StoreFuture, StorePhase, StoreStatus, ViewsQuery,
};

pub mod alert_state;
mod catalog;
pub mod lease;
mod read;
mod rollup;
pub mod schema;
mod writer;

/// The spill file's name in the data directory.
pub const SPILL_FILE_NAME: &str = "clickhouse-spill.jsonl";

/// Where and how to reach ClickHouse, and the batching.
#[derive(Clone, Debug)]
pub struct ClickHouseOptions {
    /// `http://host:8123` (or https).
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Days of reports kept (the tables' TTL, and the reads' cut-off).
    pub retention_days: u32,
    /// A batch is inserted once it has this many rows ...
    pub batch_rows: usize,
    /// ... or this long after its first beacon, whichever comes first.
    pub batch_interval_ms: u64,
    /// Beacons that may wait for their batch; past that, 503 `overloaded`.
    pub queue_len: usize,
    /// Where batches go while ClickHouse cannot take them.
    pub spill_path: PathBuf,
    /// Tries of a batch before it is spilled.
    pub insert_attempts: u32,
    /// Longest one insert may take.
    pub insert_timeout: Duration,
    /// How often the spill is retried while it holds batches.
    pub replay_interval_ms: u64,
    /// Distinct page keys per site; reports of further pages are kept
    /// under the page key [`crate::store::OTHER_PAGE`]. As in SQLite.
    pub max_pages_per_site: u32,
    /// Distinct page keys of all sites together; past it, new pages of any
    /// site go to its `(other)` page. 0: no limit.
    pub max_pages: u32,
    /// Distinct sites; beacons of further sites are refused. 0: no limit.
    pub max_sites: u32,
    /// How often the page catalog is read again from `pages` (the other
    /// collectors' new pages); the caps are approximate by what the
    /// collectors admit within it.
    pub catalog_refresh_ms: u64,
}

impl ClickHouseOptions {
    pub fn new(url: impl Into<String>, database: impl Into<String>, data_dir: &std::path::Path) -> ClickHouseOptions {
        ClickHouseOptions {
            url: url.into(),
            database: database.into(),
            user: None,
            password: None,
            retention_days: crate::config::DEFAULT_RETENTION_DAYS,
            batch_rows: 10_000,
            batch_interval_ms: 1_000,
            queue_len: crate::config::DEFAULT_QUEUE_LEN,
            spill_path: data_dir.join(SPILL_FILE_NAME),
            insert_attempts: 3,
            insert_timeout: Duration::from_secs(10),
            replay_interval_ms: 1_000,
            max_pages_per_site: 10_000,
            max_pages: 0,
            max_sites: 0,
            catalog_refresh_ms: 10_000,
        }
    }
}

/// One row of `reports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clickhouse::Row)]
struct RawRow {
    pub site: String,
    pub page: String,
    pub metric: String,
    pub report_id: String,
    pub value: f64,
    pub delta: f64,
    pub navigation_type: String,
    pub form_factor: String,
    pub page_view_id: String,
    pub session_id: String,
    pub received_ms: i64,
    /// Orders rows received in the same millisecond (a re-report's later
    /// value wins).
    pub seq: u64,
    pub attribution: String,
}

/// Counters for `/metrics` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches_inserted: u64,
    pub batches_spilled: u64,
    pub batches_replayed: u64,
    pub insert_failures: u64,
    pub spilled_batches_pending: u64,
}

struct Shared {
    pub options: ClickHouseOptions,
    pub client: clickhouse::Client,
    /// Tokens of this process's batches start with it.
    pub writer_id: String,
    pub seq: AtomicU64,
    pub phase: Mutex<StorePhase>,
    pub queue_depth: AtomicU64,
    pub stopping: AtomicBool,
    pub spill: Arc<writer::Spill>,
    pub replay_signal: Notify,
    pub batches_inserted: AtomicU64,
    pub batches_spilled: AtomicU64,
    pub batches_replayed: AtomicU64,
    pub insert_failures: AtomicU64,
    /// The admitted sites and pages (loaded before the store is ready).
    pub catalog: Mutex<catalog::Catalog>,
}

impl Shared {
    fn new(options: ClickHouseOptions, client: clickhouse::Client) -> Shared {
        Shared {
            spill: Arc::new(writer::Spill::open(options.spill_path.clone())),
            client,
            options,
            writer_id: writer_id(),
            seq: AtomicU64::new(0),
            phase: Mutex::new(StorePhase::Opening),
            queue_depth: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            replay_signal: Notify::new(),
            batches_inserted: AtomicU64::new(0),
            batches_spilled: AtomicU64::new(0),
            batches_replayed: AtomicU64::new(0),
            insert_failures: AtomicU64::new(0),
            catalog: Mutex::new(catalog::Catalog::default()),
        }
    }

    pub fn ready(&self) -> bool {
        *self.phase.lock().expect("phase lock poisoned") == StorePhase::Ready
    }

    pub fn spill_handle(&self) -> Arc<writer::Spill> {
        self.spill.clone()
    }

    fn set_phase(&self, p: StorePhase) {
        *self.phase.lock().expect("phase lock poisoned") = p;
    }

    fn caps(&self) -> catalog::Caps {
        catalog::Caps {
            max_pages_per_site: self.options.max_pages_per_site,
            max_pages: self.options.max_pages,
            max_sites: self.options.max_sites,
        }
    }

    /// Reads `pages` into the catalog.
    async fn refresh_catalog(&self) -> Result<(), StoreError> {
        let pages = catalog::load(&self.client).await.map_err(ch_err)?;
        self.catalog.lock().expect("catalog lock poisoned").merge(pages);
        Ok(())
    }
}

/// Reads the other collectors' new pages every `catalog_refresh_ms`.
async fn run_catalog_refresher(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(shared.options.catalog_refresh_ms.max(1))).await;
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = shared.refresh_catalog().await {
            tracing::warn!(error = %e, "cannot refresh the page catalog; keeping the last copy");
        }
    }
}

/// A ClickHouse-backed [`Store`].
pub struct ClickHouse {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    tx: Mutex<Option<mpsc::Sender<writer::Pending>>>,
    batcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A random-enough id for this process's tokens: the time, the process id
/// and a per-process random key.
fn writer_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i64(crate::time::now_ms());
    format!("{:016x}", h.finish())
}

/// The client for `options`, with `database` or without.
pub fn client(options: &ClickHouseOptions, with_database: bool) -> clickhouse::Client {
    // Reads name the bins and pages they want in the query text.
    let mut c = clickhouse::Client::default()
        .with_url(options.url.clone())
        .with_setting("max_query_size", "16777216");
    if with_database {
        c = c.with_database(options.database.clone());
    }
    if let Some(u) = &options.user {
        c = c.with_user(u.clone());
    }
    if let Some(p) = &options.password {
        c = c.with_password(p.clone());
    }
    c
}

/// The client's error with its causes ("network error: client error
/// (SendRequest): connection closed before message completed").
fn ch_err(e: clickhouse::error::Error) -> StoreError {
    let mut why = format!("ClickHouse: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        why.push_str(&format!(": {c}"));
        cause = c.source();
    }
    StoreError::Unavailable(why)
}

/// Reads `sql`'s rows, trying twice more when the request did not reach
/// the server (a kept-alive connection it had closed, a reset): a read
/// can be sent again.
async fn select<T: clickhouse::RowOwned + clickhouse::RowRead>(
    client: &clickhouse::Client,
    sql: &str,
) -> Result<Vec<T>, StoreError> {
    let mut tries = 0;
    loop {
        match client.query(sql).fetch_all::<T>().await {
            Err(clickhouse::error::Error::Network(e)) if tries < 2 => {
                tries += 1;
                tracing::debug!(error = %e, "ClickHouse read failed on the network; sending it again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r.map_err(ch_err),
        }
    }
}

/// The one row of `sql` (see [`select`]).
async fn select_one<T: clickhouse::RowOwned + clickhouse::RowRead>(
    client: &clickhouse::Client,
    sql: &str,
) -> Result<T, StoreError> {
    select(client, sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Unavailable(format!("ClickHouse answered no row to {sql}")))
}

impl ClickHouse {
    /// Starts the engine: returns at once; the schema is created or
    /// migrated in the background (retried until ClickHouse answers), and
    /// until then writes fail with [`StoreError::Starting`].
    pub fn start(options: ClickHouseOptions) -> Result<ClickHouse, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clickhouse")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start the ClickHouse runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let shared = Arc::new(Shared::new(options.clone(), client(&options, true)));
        let (tx, rx) = mpsc::channel(options.queue_len.max(1));
        let batcher = handle.spawn(writer::run_batcher(shared.clone(), rx));
        handle.spawn(writer::run_replayer(shared.clone()));
        handle.spawn(open(shared.clone()));
        let settle_lease = lease::ClickHouseLease::new(
            shared.client.clone(),
            handle.clone(),
            "rollup",
            shared.writer_id.clone(),
            rollup::lease_term_ms(),
        );
        handle.spawn(rollup::run_settler(shared.clone(), settle_lease));
        Ok(ClickHouse {
            shared,
            runtime: Mutex::new(Some(runtime)),
            handle,
            tx: Mutex::new(Some(tx)),
            batcher: Mutex::new(Some(batcher)),
        })
    }

    /// Blocks until the schema is in place (or the store failed).
    pub fn wait_ready(&self) -> Result<(), StoreError> {
        loop {
            match self.status().phase {
                StorePhase::Ready => return Ok(()),
                StorePhase::Failed(e) => return Err(StoreError::Failed(e)),
                StorePhase::Closed => return Err(StoreError::Closed),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    pub fn stats(&self) -> WriterStats {
        let s = &self.shared;
        WriterStats {
            batches_inserted: s.batches_inserted.load(Ordering::Relaxed),
            batches_spilled: s.batches_spilled.load(Ordering::Relaxed),
            batches_replayed: s.batches_replayed.load(Ordering::Relaxed),
            insert_failures: s.insert_failures.load(Ordering::Relaxed),
            spilled_batches_pending: s.spill.batches.load(Ordering::SeqCst),
        }
    }

    /// The client this store uses (with its database), for the alert lease.
    pub fn client(&self) -> clickhouse::Client {
        self.shared.client.clone()
    }

    /// The lease `name` (of `term_ms` per term) among the collectors of
    /// this database, held under `holder` (unique per collector).
    pub fn lease(&self, name: &str, holder: String, term_ms: i64) -> lease::ClickHouseLease {
        lease::ClickHouseLease::new(self.shared.client.clone(), self.handle.clone(), name, holder, term_ms)
    }

    /// The alert state shared by the collectors of this database.
    pub fn alert_state(&self) -> alert_state::ClickHouseSharedState {
        alert_state::ClickHouseSharedState::new(self.shared.client.clone(), self.handle.clone())
    }

    /// A random id of this process (its batches' tokens start with it).
    pub fn instance_id(&self) -> &str {
        &self.shared.writer_id
    }

    pub fn options(&self) -> &ClickHouseOptions {
        &self.shared.options
    }

    /// Reads the page catalog again now (it is also read every
    /// `catalog_refresh_ms`).
    pub fn refresh_catalog(&self) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let task = self.handle.spawn(async move { shared.refresh_catalog().await });
        self.handle
            .block_on_safe(task)
            .unwrap_or_else(|| Err(StoreError::Internal("the catalog refresh failed".into())))
    }

    /// Sites and pages (`(other)` pages included) in this collector's copy
    /// of the page catalog.
    pub fn catalog_size(&self) -> (usize, usize) {
        let c = self.shared.catalog.lock().expect("catalog lock poisoned");
        (c.sites(), c.pages())
    }

    /// Runs `f` on the engine's runtime.
    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> StoreFuture<T> {
        if !self.shared.ready() {
            let phase = self.status().phase;
            return Box::pin(async move {
                Err(match phase {
                    StorePhase::Closed => StoreError::Closed,
                    StorePhase::Failed(e) => StoreError::Failed(e),
                    _ => StoreError::Starting("creating or migrating the ClickHouse schema".into()),
                })
            });
        }
        let task = self.handle.spawn(f);
        Box::pin(async move {
            task.await
                .map_err(|e| StoreError::Internal(format!("ClickHouse task failed: {e}")))?
        })
    }
}

/// Creates the database if missing and brings the schema up to date,
/// retrying every second while ClickHouse does not answer.
async fn open(shared: Arc<Shared>) {
    let mut logged = false;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let opened = match migrate(&shared).await {
            Ok(()) => shared.refresh_catalog().await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(()) => {
                tokio::spawn(run_catalog_refresher(shared.clone()));
                shared.set_phase(StorePhase::Ready);
                shared.replay_signal.notify_one();
                tracing::info!(database = %shared.options.database, "ClickHouse schema is up to date");
                return;
            }
            Err(StoreError::SchemaTooNew { found, known, .. }) => {
                shared.set_phase(StorePhase::Failed(format!(
                    "ClickHouse database {} has schema version {found}, newer than this collector knows ({known}); upgrade the collector",
                    shared.options.database
                )));
                return;
            }
            Err(e) => {
                if !logged {
                    tracing::warn!(error = %e, "ClickHouse is not reachable yet; retrying");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn migrate(shared: &Shared) -> Result<(), StoreError> {
    let o = &shared.options;
    if o.database.is_empty() || !o.database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Internal(format!(
            "invalid ClickHouse database name {:?}",
            o.database
        )));
    }
    client(o, false)
        .query(&format!("CREATE DATABASE IF NOT EXISTS {}", o.database))
        .execute()
        .await
        .map_err(ch_err)?;
    let c = &shared.client;
    c.query(schema::VERSION_TABLE).execute().await.map_err(ch_err)?;
    let current: u32 = c
        .query("SELECT toUInt32(max(version)) FROM vitalsign_schema")
        .fetch_one()
        .await
        .map_err(ch_err)?;
    if current > schema::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: PathBuf::from(&o.database),
            found: current as i64,
            known: schema::SCHEMA_VERSION as i64,
        });
    }
    for (version, statements) in schema::migrations(o.retention_days) {
        if version <= current {
            continue;
        }
        for s in statements {
            c.query(&s).execute().await.map_err(ch_err)?;
        }
        if version == 3 {
            rollup::create_view(shared).await?;
        }
        c.query("INSERT INTO vitalsign_schema (version, applied_ms) VALUES (?, ?)")
            .bind(version)
            .bind(crate::time::now_ms())
            .execute()
            .await
            .map_err(ch_err)?;
        tracing::info!(version, "ClickHouse schema migrated");
    }
    // On a cluster `reports` is a Distributed table over the shards'
    // tables, whose TTL the operator sets (docs/clickhouse.md).
    let engine: String = c
        .query("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'reports'")
        .fetch_one()
        .await
        .map_err(ch_err)?;
    if engine != "MergeTree" {
        return Ok(());
    }
    for s in schema::retention_ddl(o.retention_days) {
        c.query(&s)
            .with_setting("materialize_ttl_after_modify", "0")
            .execute()
            .await
            .map_err(ch_err)?;
    }
    Ok(())
}

impl Store for ClickHouse {
    fn insert(&self, beacons: Vec<NewBeacon>) -> StoreFuture<Inserted> {
        match &*self.shared.phase.lock().expect("phase lock poisoned") {
            StorePhase::Ready => {}
            StorePhase::Opening | StorePhase::Loading => {
                return Box::pin(async {
                    Err(StoreError::Starting(
                        "creating or migrating the ClickHouse schema".into(),
                    ))
                })
            }
            _ => return Box::pin(async { Err(StoreError::Closed) }),
        }
        let mut beacons = beacons;
        let admitted = self.shared.catalog.lock().expect("catalog lock poisoned").admit(
            self.shared.caps(),
            &mut beacons,
            crate::time::now_ms(),
        );
        let pages = match admitted {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let reports = beacons.iter().map(|b| b.reports.len() as u32).sum();
        let rows = writer::rows_of(beacons, &self.shared.seq);
        let (done, rx) = oneshot::channel();
        let sent = match &*self.tx.lock().expect("tx lock poisoned") {
            Some(tx) => tx
                .try_send(writer::Pending {
                    rows,
                    pages,
                    reports,
                    done,
                })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(p) => (StoreError::Overloaded, p.pages),
                    mpsc::error::TrySendError::Closed(p) => (StoreError::Closed, p.pages),
                }),
            None => Err((StoreError::Closed, pages)),
        };
        if let Err((e, pages)) = sent {
            // The pages are admitted here already: write them anyway, so
            // that the others learn of them (best effort).
            if !pages.is_empty() {
                let client = self.shared.client.clone();
                self.handle.spawn(async move {
                    if let Err(e) = catalog::write(&client, &pages).await {
                        tracing::warn!(error = %e, "cannot write admitted pages to the page catalog");
                    }
                });
            }
            return Box::pin(async move { Err(e) });
        }
        self.shared.queue_depth.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { rx.await.map_err(|_| StoreError::Closed)? })
    }

    fn aggregates(&self, query: AggregateQuery) -> StoreFuture<Vec<Aggregate>> {
        let shared = self.shared.clone();
        self.run(async move { read::aggregates(&shared, &query).await })
    }

    fn count_at_or_below(&self, key: AggregateKey, span: crate::aggregate::Span, threshold: f64) -> StoreFuture<u64> {
        let shared = self.shared.clone();
        self.run(async move { Ok(read::counts_at_or_below(&shared, &key, span, &[threshold]).await?[0]) })
    }

    fn counts_at_or_below(
        &self,
        key: AggregateKey,
        span: crate::aggregate::Span,
        thresholds: Vec<f64>,
    ) -> StoreFuture<Vec<u64>> {
        let shared = self.shared.clone();
        self.run(async move { read::counts_at_or_below(&shared, &key, span, &thresholds).await })
    }

    fn page_views(&self, query: ViewsQuery) -> StoreFuture<Vec<PageViews>> {
        let shared = self.shared.clone();
        self.run(async move { read::page_views(&shared, &query).await })
    }

    fn attributions(&self, query: AttributionQuery) -> StoreFuture<Vec<Attributed>> {
        let shared = self.shared.clone();
        self.run(async move { read::attributions(&shared, &query).await })
    }

    fn export(&self, query: ExportQuery) -> ExportStream {
        let (tx, rx) = mpsc::channel(4);
        if !self.shared.ready() {
            let _ = tx.try_send(Err(StoreError::Starting(
                "creating or migrating the ClickHouse schema".into(),
            )));
            return rx;
        }
        let shared = self.shared.clone();
        self.handle.spawn(async move {
            match read::export(&shared, &query).await {
                Ok(reports) => {
                    for chunk in reports.chunks(10_000) {
                        if tx.send(Ok(chunk.to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        rx
    }

    fn status(&self) -> StoreStatus {
        let phase = self.shared.phase.lock().expect("phase lock poisoned").clone();
        StoreStatus {
            size_bytes: std::fs::metadata(self.shared.spill.path()).map_or(0, |m| m.len()),
            queue_depth: self.shared.queue_depth.load(Ordering::SeqCst) as usize,
            queue_capacity: self.shared.options.queue_len,
            accepting: self.tx.lock().expect("tx lock poisoned").is_some(),
            phase,
            disk_full: None,
        }
    }

    fn metrics_text(&self) -> String {
        let s = self.stats();
        format!(
            "# HELP vitalsign_clickhouse_batches_total Insert batches by outcome: inserted into ClickHouse, \
             spilled to the local file, replayed from it.\n\
             # TYPE vitalsign_clickhouse_batches_total counter\n\
             vitalsign_clickhouse_batches_total{{outcome=\"inserted\"}} {}\n\
             vitalsign_clickhouse_batches_total{{outcome=\"spilled\"}} {}\n\
             vitalsign_clickhouse_batches_total{{outcome=\"replayed\"}} {}\n\
             # HELP vitalsign_clickhouse_insert_failures_total Failed insert attempts (each retried or spilled).\n\
             # TYPE vitalsign_clickhouse_insert_failures_total counter\n\
             vitalsign_clickhouse_insert_failures_total {}\n\
             # HELP vitalsign_clickhouse_spill_batches Batches in the spill file, waiting for ClickHouse.\n\
             # TYPE vitalsign_clickhouse_spill_batches gauge\n\
             vitalsign_clickhouse_spill_batches {}\n",
            s.batches_inserted, s.batches_spilled, s.batches_replayed, s.insert_failures, s.spilled_batches_pending
        )
    }

    fn close(&self) -> Result<(), StoreError> {
        // Dropping the sender ends the batcher once it has made every
        // queued beacon durable.
        self.tx.lock().expect("tx lock poisoned").take();
        if let Some(b) = self.batcher.lock().expect("batcher lock poisoned").take() {
            let _ = self.handle.block_on_safe(b);
        }
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.replay_signal.notify_one();
        self.shared.set_phase(StorePhase::Closed);
        if let Some(rt) = self.runtime.lock().expect("runtime lock poisoned").take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        Ok(())
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            rt.shutdown_background();
        }
    }
}

/// Waiting for a task from outside the runtime, or (in a test's async
/// context) from a thread of its own.
trait BlockOnSafe {
    fn block_on_safe<T: Send + 'static>(&self, task: tokio::task::JoinHandle<T>) -> Option<T>;
}

impl BlockOnSafe for tokio::runtime::Handle {
    fn block_on_safe<T: Send + 'static>(&self, task: tokio::task::JoinHandle<T>) -> Option<T> {
        let handle = self.clone();
        std::thread::scope(|s| s.spawn(move || handle.block_on(task).ok()).join().ok().flatten())
    }
}

#[cfg(test)]
mod shim_process;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
