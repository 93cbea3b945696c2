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
//! **Retention.** Every hour the writer drops cells and raw reports of days
//! past the retention (in chunks, between write groups), and pages and
//! sites left without reports (freeing their place under the caps).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use self::catalog::{load_catalog, Catalog};
use self::checkpoint::{start_checkpointer, CheckpointClock};
use self::export::run_export;
use self::read::{read_aggregates, read_count_at_or_below, ExactKey};
use self::retention::retention_bounds;
use self::schema::{drop_moved_alert_tables, migrate, open_connection, Role};
use self::startup::{load_aggregates, load_values, scan_beacons};
use self::writer::Writer;
use crate::aggregate::Span;
use crate::store::cells::Cells;
use crate::store::ids::ReportIds;
use crate::store::values::Values;
use crate::store::{
    Aggregate, AggregateKey, AggregateQuery, ExportQuery, ExportStream, Inserted, NewBeacon, Store, StoreError,
    StoreFuture, StoreStatus,
};
use crate::time::{now_ms, Resolution};

mod catalog;
mod checkpoint;
mod export;
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
    /// under the page key [`OTHER_PAGE`].
    pub max_pages_per_site: u32,
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
/// sender is dropped and the writer finishes (and so does the
/// checkpointer, whose sender goes too).
struct Handle {
    /// `None` once closed.
    tx: RwLock<Option<SyncSender<Insert>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>>,
    shared: Arc<Shared>,
}

/// What the writer and the readers share.
struct Shared {
    path: PathBuf,
    queue_len: usize,
    queue_depth: AtomicI64,
    writer_alive: AtomicBool,
    state: RwLock<State>,
    idle_readers: Mutex<Vec<Connection>>,
    /// Exact p75s found in raw reports, by series and span, with the
    /// series' version then: valid while the series has not changed.
    exact_cache: Mutex<HashMap<ExactKey, (u64, f64)>>,
    max_idle_readers: usize,
}

/// Names and ids, aggregates, the retention cut-off: changed by the writer
/// only, together with its commits.
struct State {
    catalog: Catalog,
    cells: Cells,
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
impl Sqlite {
    /// Opens (creating if needed) `vitalsign.db` in `data_dir`, creating the
    /// directory too.
    pub fn open_in_dir(data_dir: &Path, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        Sqlite::open(data_dir.join(DB_FILE_NAME), options)
    }

    /// Opens (creating if needed) the database file at `path`, brings its
    /// schema up to date, loads or rebuilds the aggregates, applies the
    /// retention and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        let path = path.into();
        let mut conn = open_connection(&path, Role::Writer { fsync: options.fsync })?;
        migrate(&mut conn, &path)?;
        drop_moved_alert_tables(&mut conn, &path)?;

        let started = Instant::now();
        let catalog = load_catalog(&conn)?;
        let (cutoff_ms, horizon_ms) = retention_bounds(now_ms(), options.retention_days);
        let mut cells = Cells::new(horizon_ms);
        let mut values = Values::new();
        let clean = conn
            .query_row("SELECT value FROM meta WHERE key = 'aggregates_clean'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            == Some(1);
        let loaded = if clean {
            load_aggregates(&conn, &catalog, &mut cells).and_then(|n| {
                tracing::info!(
                    cells = n,
                    ms = started.elapsed().as_millis() as u64,
                    "loaded aggregates"
                );
                Ok((n, load_values(&conn, &catalog, &mut values)?))
            })
        } else {
            Ok((0, 0))
        };
        let mut ids = ReportIds::new();
        let scanned = match loaded {
            Ok((n, days)) if clean => {
                tracing::info!(
                    cells = n,
                    days,
                    values = values.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "loaded exact values"
                );
                let scanned = scan_beacons(&conn, &catalog, &mut ids, None)?;
                tracing::info!(
                    reports = scanned.reports,
                    ms = started.elapsed().as_millis() as u64,
                    "indexed report ids"
                );
                scanned
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!(error = %e, "saved aggregates unreadable, rebuilding them");
                } else {
                    tracing::info!("last run did not shut down cleanly, rebuilding aggregates");
                }
                cells = Cells::new(horizon_ms);
                conn.execute("DELETE FROM aggregates", [])?;
                conn.execute("DELETE FROM exact_values", [])?;
                values = Values::new();
                let scanned = scan_beacons(&conn, &catalog, &mut ids, Some((&mut cells, &mut values)))?;
                cells.mark_all_dirty();
                tracing::info!(
                    reports = scanned.reports,
                    ms = started.elapsed().as_millis() as u64,
                    "rebuilt aggregates from raw reports"
                );
                scanned
            }
        };
        cells.start_rolling(now_ms());
        // From now on the saved aggregates are stale until saved at close.
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('aggregates_clean', 0)
             ON CONFLICT (key) DO UPDATE SET value = 0",
            [],
        )?;

        let (tx, rx) = std::sync::mpsc::sync_channel(options.queue_len.max(1));
        let shared = Arc::new(Shared {
            path,
            queue_len: options.queue_len.max(1),
            queue_depth: AtomicI64::new(0),
            writer_alive: AtomicBool::new(true),
            state: RwLock::new(State {
                catalog,
                cells,
                values,
                cutoff_ms,
            }),
            idle_readers: Mutex::new(Vec::new()),
            exact_cache: Mutex::new(HashMap::new()),
            max_idle_readers: options.max_idle_readers,
        });
        let clock = CheckpointClock::new();
        let mut writer = Writer {
            conn,
            shared: shared.clone(),
            options,
            retention: None,
            retention_hour: i64::MIN,
            last_checkpoint: Instant::now(),
            checkpoints: clock.clone(),
            rolled_hour: Resolution::Hour.bucket(now_ms()),
            ids,
            next_row: scanned.last_row + 1,
        };
        writer.start_retention(now_ms())?;
        while writer.retention.is_some() {
            writer.retention_step()?;
        }
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Internal(format!("cannot start writer thread: {e}")))?;
        let checkpointer = start_checkpointer(&shared.path, clock)?;
        Ok(Sqlite {
            inner: Arc::new(Handle {
                tx: RwLock::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                checkpointer: Mutex::new(Some(checkpointer)),
                shared,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }
}
impl Shared {
    /// A read connection from the pool, or a new one.
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let idle = self.idle_readers.lock().expect("reader pool poisoned").pop();
        match idle {
            Some(c) => Ok(c),
            None => open_connection(&self.path, Role::Reader),
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
        let conn = self.take_reader()?;
        let result = f(&conn);
        self.give_back(conn);
        result
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
        let (ack, done) = oneshot::channel();
        let sent = {
            let tx = self.inner.tx.read().expect("sender lock poisoned");
            match tx.as_ref() {
                None => Err(StoreError::Closed),
                Some(tx) => {
                    self.inner.shared.queue_depth.fetch_add(1, Ordering::Relaxed);
                    tx.try_send(Insert { beacons, ack }).map_err(|e| {
                        self.inner.shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
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
        self.compute(move |shared| read_count_at_or_below(shared, &key, &span, threshold))
    }

    fn export(&self, query: ExportQuery) -> ExportStream {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
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
        }
    }

    fn close(&self) -> Result<(), StoreError> {
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .expect("checkpointer lock poisoned")
            .take();
        if let Some((stop, thread)) = checkpointer {
            drop(stop);
            let _ = thread.join();
        }
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
