//! [`Store`] on one SQLite file (WAL mode).
//!
//! **Writes.** SQLite allows one writer at a time, and a commit is the
//! expensive part of a write. So all writes go through one writer thread
//! that owns the write connection and group-commits: it takes everything
//! queued (up to `max_group` beacons), writes it in one transaction, commits
//! once, acknowledges each beacon, then updates the in-memory aggregates
//! (readers wait for that: it holds the state lock from before the commit).
//! The queue is bounded; a full queue fails inserts at once (503) instead of
//! growing without limit.
//!
//! **Tables.** `beacons` holds one row per beacon, the raw data: its
//! shared fields as columns and its reports packed in a blob (`rows.rs`):
//! one row insert per beacon, where a row per report made a 10-metric
//! beacon ten. Its one index, `beacons_time` (for retention and export), is
//! appended to in arrival order. `sites` and `pages` give the ids it refers
//! to; `aggregates` holds the hourly and daily cells per page, metric and
//! form factor, and `exact_values` the exact values per page, metric and
//! day, both saved at shutdown; `meta` says whether they are up to date.
//!
//! **Dedup.** A re-report (same site, metric and report id) replaces the
//! earlier report's value in its row. The writer finds it through an
//! in-memory index of report ids ([`ReportIds`], about 20 bytes per
//! report, rebuilt by a scan of `beacons` at start-up): a unique SQLite
//! index on the ids cost a B-tree insert per report.
//!
//! **Aggregates** live in memory ([`Cells`]), updated by the writer after
//! each commit: adding a report adds its value to its cells, replacing a
//! report's value removes the old value first (the sketch can remove
//! values), so the aggregates always equal the aggregation of the
//! deduplicated raw reports. At a clean shutdown the changed cells are
//! saved and `meta.aggregates_clean` is set; at start-up they are loaded. If
//! the last run did not shut down cleanly (a crash, SIGKILL), they are
//! rebuilt from `beacons` (one scan of the table, sorted in memory by
//! page, metric, form factor and time before adding, for cache locality).
//!
//! **Exact p75.** The sketch tells which bin the nearest-rank p75 falls in
//! and its rank within the bin, exactly (bins hold exact counts). The
//! value is then read from the exact values of the raw reports, kept in
//! memory ([`Values`], 16 bytes per report) next to the cells and updated
//! with them: an index of the raw reports by value would insert each report
//! at a random place, which made it most of the writer's cost. Readers take
//! the aggregates lock, and the writer commits and updates the aggregates
//! and values under the same lock, so all always agree.
//!
//! **Start-up** ([`open`]). [`Sqlite::start`] returns at once; the writer
//! thread opens the file (migrating it), then loads the aggregates and the
//! id index on a thread of its own while it commits arriving beacons into
//! the intake ([`intake`]), and writes those through the normal path once
//! loaded. Until the file is open, writes fail with
//! [`StoreError::Starting`]; until loaded, reads do. When the disk is full
//! at start-up, the file is read without its WAL (`immutable`) and served
//! for reading until space returns.
//!
//! **Retention.** Every hour the writer drops cells and raw reports of days
//! past the retention (in chunks, between write groups), and pages and
//! sites left without reports (freeing their place under the caps).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use self::catalog::Catalog;
use self::export::{read_attributions, run_export};
use self::read::{read_aggregates, read_counts_at_or_below, read_page_views, ExactKey};
use self::schema::{open_connection, Role};
use crate::aggregate::Span;
use crate::store::attribution_keys::AttributionKeys;
use crate::store::cells::Cells;
use crate::store::values::Values;
use crate::store::views::Views;
use crate::store::{
    Aggregate, AggregateKey, AggregateQuery, Attributed, AttributionQuery, ExportQuery, ExportStream, Inserted,
    NewBeacon, PageViews, Store, StoreError, StoreFuture, StorePhase, StoreStatus, ViewsQuery,
};

mod backfill;
mod catalog;
mod checkpoint;
mod export;
mod intake;
mod open;
mod read;
mod retention;
mod schema;
mod startup;
mod writer;

/// Name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "vitalsign.db";

/// Tuning and limits of [`Sqlite`]; the defaults suit a small server.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Beacons that may wait for the writer; past that inserts fail with
    /// [`StoreError::Overloaded`].
    pub queue_len: usize,
    /// Most beacons committed in one transaction.
    pub max_group: usize,
    /// Read connections kept open for reuse.
    pub max_idle_readers: usize,
    /// Days of reports kept, today included.
    pub retention_days: u32,
    /// Distinct page keys per site; reports of further pages are kept
    /// under the page key [`crate::store::OTHER_PAGE`].
    pub max_pages_per_site: u32,
    /// Distinct page keys of all sites together (each page costs memory);
    /// past it, new pages of any site go to its `(other)` page. 0: no limit.
    pub max_pages: u32,
    /// Distinct sites; beacons of further sites are refused. 0: no limit.
    pub max_sites: u32,
    /// fsync every commit (`synchronous = FULL`): survives power loss, not
    /// only a crash of the process, at a cost in throughput.
    pub fsync: bool,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            queue_len: 4096,
            max_group: 1024,
            max_idle_readers: 4,
            retention_days: 35,
            max_pages_per_site: 10_000,
            max_pages: 0,
            max_sites: 0,
            fsync: false,
        }
    }
}

/// A SQLite-backed [`Store`]. Cheap to clone; all clones share the writer.
/// Dropping the last clone stops the writer as [`Store::close`] does, but
/// without waiting for it.
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Handle>,
}

/// Owned by the `Sqlite` clones only: when they are gone, the queue's
/// sender is dropped and the writer finishes.
struct Handle {
    /// `None` once closed.
    tx: RwLock<Option<SyncSender<Insert>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// What the writer and the readers share.
struct Shared {
    path: PathBuf,
    queue_len: usize,
    queue_depth: AtomicI64,
    writer_alive: AtomicBool,
    /// The phase ([`StorePhase`]), with its code in `phase_code` for the
    /// checks on every insert and read.
    phase: Mutex<StorePhase>,
    phase_code: AtomicU8,
    phase_changed: Condvar,
    /// The error that failed the store, for the first [`Sqlite::wait_ready`].
    failure: Mutex<Option<StoreError>>,
    /// False while the file could only be opened for reading.
    writable: AtomicBool,
    /// Why writes fail for lack of space, while they do.
    disk_full: Mutex<Option<String>>,
    /// Read connections open the file `immutable` (without its WAL) while
    /// it is read-only; [`Shared::read_guard`] is held (shared) by a read
    /// on such a connection, and taken (exclusive) by the writer before it
    /// starts writing, so that no such read overlaps a write.
    immutable_reads: AtomicBool,
    read_guard: RwLock<()>,
    state: RwLock<State>,
    /// Retention passes finished (the first runs right after loading).
    retention_passes: AtomicU64,
    /// Every beacon row has its site (rows older than schema 5 get it in
    /// the background): exports of one site may use its index.
    site_backfilled: AtomicBool,
    idle_readers: Mutex<Vec<Connection>>,
    /// Exact p75s found in raw reports, by series and span, with the
    /// series' version then: valid while the series has not changed.
    exact_cache: Mutex<HashMap<ExactKey, (u64, f64)>>,
    max_idle_readers: usize,
}

/// Names and ids, aggregates, the retention cut-off: changed by the writer
/// only, together with its commits. Empty until the store has loaded.
struct State {
    catalog: Catalog,
    cells: Cells,
    /// Page views per page and bucket, and each page's last beacon.
    views: Views,
    /// The values attribution names per page (their caps).
    attribution_keys: AttributionKeys,
    /// The exact values of the raw reports.
    values: Values,
    /// Nothing received before this is answered.
    cutoff_ms: i64,
}

/// Beacons to store together, and where to say they are committed.
struct Insert {
    beacons: Vec<NewBeacon>,
    /// Also hands the beacons back, so that the thread that allocated
    /// their strings frees them (a free from another thread costs glibc's
    /// allocator a lock and more, in the writer, the bottleneck).
    ack: oneshot::Sender<(Result<Inserted, StoreError>, Vec<NewBeacon>)>,
}

impl Insert {
    /// Tells the inserting handler how it went (it may have given up: the
    /// client went away, nothing to do then).
    fn answer(self, result: Result<Inserted, StoreError>) {
        let _ = self.ack.send((result, self.beacons));
    }
}

const PHASE_OPENING: u8 = 0;
const PHASE_LOADING: u8 = 1;
const PHASE_READY: u8 = 2;
const PHASE_ENDED: u8 = 3;

impl Sqlite {
    /// [`Sqlite::start`] in `data_dir` (created if missing), on its
    /// `vitalsign.db`.
    pub fn start_in_dir(data_dir: &Path, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        Sqlite::start(data_dir.join(DB_FILE_NAME), options)
    }

    /// Starts the store on the database file at `path` (created if
    /// needed) and returns at once: the writer thread opens the file,
    /// migrates it and loads it meanwhile ([`StorePhase`]).
    pub fn start(path: impl Into<PathBuf>, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        let path = path.into();
        let (tx, rx) = std::sync::mpsc::sync_channel(options.queue_len.max(1));
        let shared = Arc::new(Shared {
            path: path.clone(),
            queue_len: options.queue_len.max(1),
            queue_depth: AtomicI64::new(0),
            writer_alive: AtomicBool::new(true),
            phase: Mutex::new(StorePhase::Opening),
            phase_code: AtomicU8::new(PHASE_OPENING),
            phase_changed: Condvar::new(),
            failure: Mutex::new(None),
            writable: AtomicBool::new(true),
            disk_full: Mutex::new(None),
            immutable_reads: AtomicBool::new(false),
            read_guard: RwLock::new(()),
            state: RwLock::new(State {
                catalog: Catalog::default(),
                cells: Cells::new(0),
                views: Views::new(0),
                attribution_keys: AttributionKeys::new(),
                values: Values::new(),
                cutoff_ms: i64::MAX,
            }),
            retention_passes: AtomicU64::new(0),
            site_backfilled: AtomicBool::new(false),
            idle_readers: Mutex::new(Vec::new()),
            exact_cache: Mutex::new(HashMap::new()),
            max_idle_readers: options.max_idle_readers,
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || open::writer_thread(path, options, thread_shared, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start writer thread: {e}")))?;
        Ok(Sqlite {
            inner: Arc::new(Handle {
                tx: RwLock::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                shared,
            }),
        })
    }

    /// [`Sqlite::open`] in `data_dir` (created if missing).
    pub fn open_in_dir(data_dir: &Path, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        let store = Sqlite::start_in_dir(data_dir, options)?;
        store.wait_ready()?;
        Ok(store)
    }

    /// Starts the store and waits until it has loaded (for tools and
    /// tests; the collector serves meanwhile, see [`Sqlite::start`]).
    pub fn open(path: impl Into<PathBuf>, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        let store = Sqlite::start(path, options)?;
        store.wait_ready()?;
        Ok(store)
    }

    /// Waits until the store serves reads: `Ok` once ready (possibly
    /// read-only, see [`StoreStatus::disk_full`]), `Err` if it failed or
    /// was closed first.
    pub fn wait_ready(&self) -> Result<(), StoreError> {
        let shared = &self.inner.shared;
        let mut phase = shared.phase.lock().expect("phase lock poisoned");
        loop {
            match &*phase {
                StorePhase::Ready => return Ok(()),
                StorePhase::Failed(e) => {
                    let first = shared.failure.lock().expect("failure lock poisoned").take();
                    return Err(first.unwrap_or_else(|| StoreError::Failed(e.clone())));
                }
                StorePhase::Closed => return Err(StoreError::Closed),
                StorePhase::Opening | StorePhase::Loading => {
                    phase = shared.phase_changed.wait(phase).expect("phase lock poisoned");
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Waits (at most 10 s) until every beacon row has its site.
    #[cfg(test)]
    fn wait_site_backfill(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.inner.shared.site_backfilled.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "site backfill not done within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits (at most 10 s) until the retention pass that follows loading
    /// has finished.
    #[cfg(test)]
    fn wait_first_retention(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.inner.shared.retention_passes.load(Ordering::Acquire) == 0 {
            assert!(std::time::Instant::now() < deadline, "no retention pass within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Shared {
    fn set_phase(&self, phase: StorePhase) {
        let code = match phase {
            StorePhase::Opening => PHASE_OPENING,
            StorePhase::Loading => PHASE_LOADING,
            StorePhase::Ready => PHASE_READY,
            StorePhase::Closed | StorePhase::Failed(_) => PHASE_ENDED,
        };
        let mut current = self.phase.lock().expect("phase lock poisoned");
        // A failure is not overwritten by the closing that follows it.
        if matches!(*current, StorePhase::Failed(_)) {
            return;
        }
        *current = phase;
        self.phase_code.store(code, Ordering::Release);
        self.phase_changed.notify_all();
    }

    fn set_disk_full(&self, why: Option<String>) {
        let mut current = self.disk_full.lock().expect("disk-full lock poisoned");
        if current.is_none() != why.is_none() {
            match &why {
                Some(why) => tracing::error!(reason = %why, "writes fail: the disk is full"),
                None => tracing::info!("disk space is back: writes succeed again"),
            }
        }
        *current = why;
    }

    fn disk_full(&self) -> Option<String> {
        self.disk_full.lock().expect("disk-full lock poisoned").clone()
    }

    /// `Ok` if reads are served now.
    fn readable(&self) -> Result<(), StoreError> {
        match self.phase_code.load(Ordering::Acquire) {
            PHASE_READY => Ok(()),
            PHASE_ENDED => Err(StoreError::Closed),
            _ => Err(StoreError::Starting(
                "loading the store, reads are answered once it has loaded".into(),
            )),
        }
    }

    /// A read connection from the pool, or a new one.
    fn take_reader(&self, role: Role) -> Result<Connection, StoreError> {
        let idle = self.idle_readers.lock().expect("reader pool poisoned").pop();
        match idle {
            Some(c) => Ok(c),
            None => open_connection(&self.path, role),
        }
    }

    /// Returns a read connection to the pool (never one left inside a
    /// transaction).
    fn give_back(&self, conn: Connection) {
        let mut pool = self.idle_readers.lock().expect("reader pool poisoned");
        if pool.len() < self.max_idle_readers && conn.is_autocommit() {
            pool.push(conn);
        }
    }

    /// Runs `f` on a pooled read connection (blocking).
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _guard = self.read_guard.read().expect("read guard poisoned");
        let role = if self.immutable_reads.load(Ordering::Acquire) {
            Role::Immutable
        } else {
            Role::Reader
        };
        let conn = self.take_reader(role)?;
        let result = f(&conn);
        self.give_back(conn);
        result
    }

    /// Makes reads open the file normally from now on (it is writable):
    /// waits for reads on `immutable` connections to finish and drops
    /// those connections. `false` if such a read is still running (try
    /// again later).
    fn end_immutable_reads(&self) -> bool {
        let Ok(_guard) = self.read_guard.try_write() else {
            return false;
        };
        self.immutable_reads.store(false, Ordering::Release);
        self.idle_readers.lock().expect("reader pool poisoned").clear();
        true
    }
}

impl Sqlite {
    /// Runs a read of the in-memory state on tokio's blocking threads.
    fn compute<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let inner = self.inner.shared.clone();
        Box::pin(async move {
            inner.readable()?;
            tokio::task::spawn_blocking(move || f(&inner))
                .await
                .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
        })
    }
}

impl Store for Sqlite {
    fn insert(&self, beacons: Vec<NewBeacon>) -> StoreFuture<Inserted> {
        if beacons.iter().all(|b| b.reports.is_empty()) {
            return Box::pin(async { Ok(Inserted::default()) });
        }
        let shared = &self.inner.shared;
        let refused = match shared.phase_code.load(Ordering::Acquire) {
            PHASE_OPENING => Some(StoreError::Starting(
                "opening the store, beacons are taken once it is open".into(),
            )),
            PHASE_ENDED => Some(StoreError::Closed),
            _ if !shared.writable.load(Ordering::Acquire) => {
                Some(StoreError::DiskFull(shared.disk_full().unwrap_or_else(|| {
                    "the database could only be opened for reading".into()
                })))
            }
            _ => None,
        };
        if let Some(e) = refused {
            return Box::pin(async move { Err(e) });
        }
        let (ack, done) = oneshot::channel();
        let sent = {
            let tx = self.inner.tx.read().expect("sender lock poisoned");
            match tx.as_ref() {
                None => Err(StoreError::Closed),
                Some(tx) => {
                    shared.queue_depth.fetch_add(1, Ordering::Relaxed);
                    tx.try_send(Insert { beacons, ack }).map_err(|e| {
                        shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                        match e {
                            TrySendError::Full(_) => StoreError::Overloaded,
                            TrySendError::Disconnected(_) => StoreError::Closed,
                        }
                    })
                }
            }
        };
        Box::pin(async move {
            sent?;
            // An ack dropped unsent means the writer stopped before committing.
            let (result, beacons) = done.await.map_err(|_| StoreError::Closed)?;
            drop(beacons);
            result
        })
    }

    fn aggregates(&self, query: AggregateQuery) -> StoreFuture<Vec<Aggregate>> {
        self.compute(move |shared| read_aggregates(shared, &query))
    }

    fn count_at_or_below(&self, key: AggregateKey, span: Span, threshold: f64) -> StoreFuture<u64> {
        self.compute(move |shared| Ok(read_counts_at_or_below(shared, &key, &span, &[threshold])?[0]))
    }

    fn counts_at_or_below(&self, key: AggregateKey, span: Span, thresholds: Vec<f64>) -> StoreFuture<Vec<u64>> {
        self.compute(move |shared| read_counts_at_or_below(shared, &key, &span, &thresholds))
    }

    fn page_views(&self, query: ViewsQuery) -> StoreFuture<Vec<PageViews>> {
        self.compute(move |shared| read_page_views(shared, &query))
    }

    fn attributions(&self, query: AttributionQuery) -> StoreFuture<Vec<Attributed>> {
        self.compute(move |shared| shared.with_reader(|conn| read_attributions(shared, conn, &query)))
    }

    fn export(&self, query: ExportQuery) -> ExportStream {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        if let Err(e) = self.inner.shared.readable() {
            let _ = tx.try_send(Err(e));
            return rx;
        }
        let inner = self.inner.shared.clone();
        let spawned = std::thread::Builder::new().name("sqlite-export".into()).spawn(move || {
            if let Err(e) = inner.with_reader(|c| run_export(&inner, c, &query, &tx)) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start export thread");
        }
        rx
    }

    fn status(&self) -> StoreStatus {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let shared = &self.inner.shared;
        let wal = PathBuf::from(format!("{}-wal", shared.path.display()));
        StoreStatus {
            size_bytes: size(&shared.path) + size(&wal),
            queue_depth: shared.queue_depth.load(Ordering::Relaxed).max(0) as usize,
            queue_capacity: shared.queue_len,
            accepting: self.inner.tx.read().map(|t| t.is_some()).unwrap_or(false)
                && shared.writer_alive.load(Ordering::Relaxed),
            phase: shared.phase.lock().expect("phase lock poisoned").clone(),
            disk_full: shared.disk_full(),
        }
    }

    fn close(&self) -> Result<(), StoreError> {
        // Dropping the sender lets the writer finish once the queue is empty.
        self.inner.tx.write().expect("sender lock poisoned").take();
        let writer = self.inner.writer.lock().expect("writer lock poisoned").take();
        if let Some(writer) = writer {
            writer
                .join()
                .map_err(|_| StoreError::Internal("the writer thread panicked".into()))?;
        }
        self.inner
            .shared
            .idle_readers
            .lock()
            .expect("reader pool poisoned")
            .clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
