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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use beacon::{MetricName, NavigationType};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::cells::{ff_code, ff_from_code, ff_selector, BaseCell, Cells, Place, Scope};
use super::ids::{IdKey, Location, PendingIds, ReportIds};
use super::rows::{self, Slot};
use super::values::{Select, Values};
use super::wal;
use super::{
    Aggregate, AggregateKey, AggregateQuery, ExportQuery, ExportStream, Inserted, NewBeacon, NewReport, PageScope,
    Report, Store, StoreError, StoreFuture, StoreStatus, HOURLY_DAYS, OTHER_PAGE,
};
use crate::aggregate::{Cell, RatingCounts, Span};
use crate::sketch::{bin_bounds, bin_of, bin_value, Located, Sketch};
use crate::time::{now_ms, Resolution, DAY_MS};

/// Name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "vitalsign.db";

/// The schema version this code writes (`PRAGMA user_version`); each
/// migration in [`MIGRATIONS`] raises it by one.
const SCHEMA_VERSION: i64 = 4;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1 (the walking skeleton): raw metric reports with text keys.
    "CREATE TABLE IF NOT EXISTS metric_reports (
        site            TEXT    NOT NULL,
        page            TEXT    NOT NULL,
        metric          TEXT    NOT NULL,
        report_id       TEXT    NOT NULL,
        value           REAL    NOT NULL,
        delta           REAL    NOT NULL,
        rating          TEXT    NOT NULL,
        navigation_type TEXT    NOT NULL,
        form_factor     TEXT,
        page_view_id    TEXT,
        session_id      TEXT,
        received_at     INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS metric_reports_key
        ON metric_reports (site, metric, report_id);
    CREATE INDEX IF NOT EXISTS metric_reports_page
        ON metric_reports (site, page, metric);",
    // 2: ids for sites and pages, integer codes, the index that makes the
    // p75 exact, saved aggregates. Version 1 rows are carried over.
    "CREATE TABLE sites (
        id   INTEGER PRIMARY KEY AUTOINCREMENT,
        site TEXT NOT NULL UNIQUE
    );
    CREATE TABLE pages (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL,
        page    TEXT    NOT NULL,
        UNIQUE (site_id, page)
    );
    CREATE TABLE reports (
        id              INTEGER PRIMARY KEY,
        site_id         INTEGER NOT NULL,
        page_id         INTEGER NOT NULL,
        metric          INTEGER NOT NULL, -- 0 FCP, 1 LCP, 2 CLS, 3 INP, 4 TTFB
        report_id       TEXT    NOT NULL,
        value           REAL    NOT NULL,
        delta           REAL    NOT NULL,
        navigation_type INTEGER NOT NULL, -- index in NavigationType::ALL
        form_factor     INTEGER NOT NULL, -- 0 none, 1 phone, 2 tablet, 3 desktop
        page_view_id    TEXT,
        session_id      TEXT,
        received_at     INTEGER NOT NULL  -- unix ms when this id was first received
    );
    -- One row per metric instance: a re-report replaces the value. The site
    -- is part of the key so that one site cannot overwrite another's.
    CREATE UNIQUE INDEX reports_key ON reports (site_id, metric, report_id);
    -- Covering index for exact percentiles, thresholds and rebuilds.
    CREATE INDEX reports_value
        ON reports (page_id, metric, value, received_at, form_factor);
    CREATE INDEX reports_time ON reports (received_at);
    CREATE TABLE aggregates (
        page_id           INTEGER NOT NULL,
        metric            INTEGER NOT NULL,
        form_factor       INTEGER NOT NULL,
        resolution        INTEGER NOT NULL, -- 0 hour, 1 day
        bucket            INTEGER NOT NULL, -- hours or days since 1970-01-01
        good              INTEGER NOT NULL,
        needs_improvement INTEGER NOT NULL,
        poor              INTEGER NOT NULL,
        sketch            BLOB    NOT NULL,
        PRIMARY KEY (page_id, metric, form_factor, resolution, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    INSERT INTO sites (site) SELECT DISTINCT site FROM metric_reports ORDER BY site;
    INSERT INTO pages (site_id, page)
        SELECT DISTINCT s.id, m.page FROM metric_reports m JOIN sites s ON s.site = m.site
        ORDER BY 1, 2;
    INSERT INTO reports (site_id, page_id, metric, report_id, value, delta,
                         navigation_type, form_factor, page_view_id, session_id, received_at)
        SELECT s.id, p.id,
            CASE m.metric WHEN 'FCP' THEN 0 WHEN 'LCP' THEN 1 WHEN 'CLS' THEN 2
                          WHEN 'INP' THEN 3 ELSE 4 END,
            m.report_id, m.value, m.delta,
            CASE m.navigation_type WHEN 'navigate' THEN 0 WHEN 'reload' THEN 1
                WHEN 'back-forward' THEN 2 WHEN 'back-forward-cache' THEN 3
                WHEN 'prerender' THEN 4 WHEN 'restore' THEN 5 ELSE 6 END,
            CASE m.form_factor WHEN 'phone' THEN 1 WHEN 'tablet' THEN 2
                               WHEN 'desktop' THEN 3 ELSE 0 END,
            m.page_view_id, m.session_id, m.received_at
        FROM metric_reports m
        JOIN sites s ON s.site = m.site
        JOIN pages p ON p.site_id = s.id AND p.page = m.page
        ORDER BY m.rowid;
    DROP TABLE metric_reports;",
    // 3: exact values are kept in memory (see `values.rs`) and saved at
    // shutdown like the aggregates; the value index, a random insert per
    // report, goes. The saved aggregates are marked stale, so that the first
    // start rebuilds both from the raw reports.
    "DROP INDEX IF EXISTS reports_value;
    CREATE TABLE exact_values (
        page_id INTEGER NOT NULL,
        metric  INTEGER NOT NULL,
        day     INTEGER NOT NULL, -- days since 1970-01-01
        data    BLOB    NOT NULL, -- sorted (value f64, ms in day u32, form factor u8), little-endian
        PRIMARY KEY (day, page_id, metric) -- retention deletes whole days
    ) WITHOUT ROWID;
    UPDATE meta SET value = 0 WHERE key = 'aggregates_clean';",
    // 4: one row per beacon, its reports packed in a blob (see `rows.rs`);
    // dedup by report id is an in-memory index (see `ids.rs`), not a
    // unique index. The rows of `reports` move over in Rust
    // ([`move_reports_into_beacons`]), one beacon row per report.
    "CREATE TABLE beacons (
        id           INTEGER PRIMARY KEY,
        page_id      INTEGER NOT NULL,
        form_factor  INTEGER NOT NULL, -- 0 none, 1 phone, 2 tablet, 3 desktop
        received_at  INTEGER NOT NULL, -- unix ms
        page_view_id TEXT,
        session_id   TEXT,
        reports      BLOB    NOT NULL  -- see rows.rs
    );
    CREATE INDEX beacons_time ON beacons (received_at);",
];

const INSERT_SQL: &str = "INSERT INTO beacons
    (id, page_id, form_factor, received_at, page_view_id, session_id, reports)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Raw reports deleted per retention step, between write groups.
const RETENTION_CHUNK: usize = 5_000;
/// The writer's page cache, KiB. Small: a write group touches few pages
/// (appends), and SQLite walks the whole cache at every commit
/// (`pcache1TruncateUnsafe`, 5–7 % of the writer at 32–64 MiB).
const WRITER_CACHE_KIB: i64 = 8 * 1024;
/// The writer's page cache for retention deletes and saving aggregates:
/// large transactions over pages all over the file, which with the small
/// cache spill to the WAL mid-transaction and read pages again.
const MAINTENANCE_CACHE_KIB: i64 = 64 * 1024;

/// Write groups (and writer checkpoints) slower than this are logged at
/// debug level, with where the time went.
const SLOW_GROUP: Duration = Duration::from_millis(20);
/// How often the writer wakes up when idle, to start retention on time.
const TICK: Duration = Duration::from_secs(30);

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

#[derive(Debug, Default)]
struct Catalog {
    by_name: HashMap<String, u32>,
    sites: HashMap<u32, SiteEntry>,
    /// Page id to (site id, page key).
    pages: HashMap<u32, (u32, String)>,
}

#[derive(Debug, Default)]
struct SiteEntry {
    name: String,
    /// Page keys (not the overflow page) to ids.
    pages: HashMap<String, u32>,
    /// The [`OTHER_PAGE`] page, once needed.
    other: Option<u32>,
}

impl SiteEntry {
    fn page_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pages.values().copied().chain(self.other)
    }
}

impl Catalog {
    fn add_site(&mut self, id: u32, name: String) {
        self.by_name.insert(name.clone(), id);
        self.sites.entry(id).or_default().name = name;
    }

    fn add_page(&mut self, id: u32, site: u32, page: String) {
        let Some(entry) = self.sites.get_mut(&site) else {
            tracing::warn!(page_id = id, site_id = site, "page of an unknown site, skipped");
            return;
        };
        if page == OTHER_PAGE {
            entry.other = Some(id);
        } else {
            entry.pages.insert(page.clone(), id);
        }
        self.pages.insert(id, (site, page));
    }

    fn remove_page(&mut self, id: u32) {
        if let Some((site, page)) = self.pages.remove(&id) {
            if let Some(entry) = self.sites.get_mut(&site) {
                if entry.other == Some(id) {
                    entry.other = None;
                } else {
                    entry.pages.remove(&page);
                }
            }
        }
    }

    fn remove_site(&mut self, id: u32) {
        if let Some(entry) = self.sites.remove(&id) {
            self.by_name.remove(&entry.name);
        }
    }

    fn page_id(&self, site: u32, page: &str) -> Option<u32> {
        let entry = self.sites.get(&site)?;
        if page == OTHER_PAGE {
            entry.other
        } else {
            entry.pages.get(page).copied()
        }
    }
}

/// Sites and pages created by the transaction being written.
#[derive(Default)]
struct NewIds {
    sites: Vec<(u32, String)>,
    site_ids: HashMap<String, u32>,
    pages: Vec<(u32, u32, String)>,
    page_ids: HashMap<(u32, String), u32>,
    new_pages_per_site: HashMap<u32, u32>,
}

/// A change to the aggregates, applied once its transaction is committed.
enum Delta {
    Add(Place, f64),
    Remove(Place, f64),
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

/// How often the checkpointer thread copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// How often the writer itself checkpoints, between two groups. Its
/// checkpoint has little left to copy (the checkpointer thread did most),
/// but, no commit running meanwhile, it can finish: then the next commit
/// starts the WAL over instead of growing it without end.
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// The writer checkpoints within this long after the checkpointer thread
/// finished one, when what is left to copy and fsync is least (a few
/// milliseconds of commits instead of up to [`CHECKPOINT_EVERY`]'s: this
/// checkpoint stalls every beacon waiting for the writer)...
const WRITER_CHECKPOINT_WINDOW: Duration = Duration::from_millis(10);
/// ... unless none came in this long.
const WRITER_CHECKPOINT_LATEST: Duration = Duration::from_secs(10);

/// When the checkpointer thread last finished a checkpoint.
#[derive(Clone)]
struct CheckpointClock {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one; 0: never.
    done: Arc<AtomicU64>,
}

impl CheckpointClock {
    fn new() -> CheckpointClock {
        CheckpointClock {
            epoch: Instant::now(),
            done: Arc::new(AtomicU64::new(0)),
        }
    }

    fn mark(&self) {
        self.done
            .store(self.epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    /// Whether the last checkpoint finished within `window`.
    fn within(&self, window: Duration) -> bool {
        let done = self.done.load(Ordering::Relaxed);
        done > 0 && (self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(done) <= window.as_millis() as u64
    }
}

/// Checkpoints in a thread of their own, so that the writer never waits
/// for one (a checkpoint fsyncs; inside a commit it would stall every
/// beacon of the group). PASSIVE: it copies what it can without blocking
/// the writer or readers.
fn start_checkpointer(
    path: &Path,
    clock: CheckpointClock,
) -> Result<(std::sync::mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let conn = open_connection(path, Role::Checkpointer)?;
    let mut resident = wal::Resident::new(path);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                match checkpoint(&conn) {
                    Ok(()) => {
                        clock.mark();
                        resident.refresh();
                    }
                    Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// A PASSIVE checkpoint: copies what it can without blocking the writer or
/// readers.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[derive(Clone, Copy)]
enum Role {
    Writer { fsync: bool },
    Checkpointer,
    Reader,
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // WAL: readers do not block the writer nor it them. NORMAL: a commit
    // survives a crash of this process (it is in the WAL), but not of the
    // OS; FULL also fsyncs each commit.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    match role {
        Role::Writer { fsync } => {
            let sync = if fsync { "FULL" } else { "NORMAL" };
            conn.pragma_update(None, "synchronous", sync).map_err(open_err)?;
            conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
                .map_err(open_err)?;
            // The checkpointer thread keeps the WAL short; this is only a
            // safety net should it fall behind (400 MB of 4 KiB pages).
            conn.pragma_update(None, "wal_autocheckpoint", 100_000)
                .map_err(open_err)?;
            conn.pragma_update(None, "journal_size_limit", 256 << 20)
                .map_err(open_err)?;
        }
        Role::Checkpointer => {
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        }
        Role::Reader => {
            conn.pragma_update(None, "query_only", true).map_err(open_err)?;
            conn.pragma_update(None, "cache_size", -16_384).map_err(open_err)?;
            // Reads through a memory map: index look-ups without a system
            // call per page, sharing the OS page cache.
            conn.pragma_update(None, "mmap_size", 1i64 << 30).map_err(open_err)?;
        }
    }
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        if from == 3 {
            move_reports_into_beacons(&tx)?;
        }
        tracing::info!(path = %path.display(), from, to = from + 1, "migrated database schema");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Schema 4: each row of `reports` becomes a one-report beacon row, in
/// the same order; then `reports` goes.
fn move_reports_into_beacons(tx: &Connection) -> Result<(), StoreError> {
    let mut read = tx.prepare(
        "SELECT page_id, form_factor, received_at, page_view_id, session_id,
                metric, navigation_type, value, delta, report_id
         FROM reports ORDER BY id",
    )?;
    let mut write = tx.prepare(
        "INSERT INTO beacons (page_id, form_factor, received_at, page_view_id, session_id, reports)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut rows = read.query([])?;
    let mut blob = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(9)?;
        blob.clear();
        rows::push(
            &mut blob,
            &Slot {
                metric: row.get(5)?,
                navigation_type: row.get(6)?,
                value: row.get(7)?,
                delta: row.get(8)?,
                id: &id,
            },
        );
        write.execute(params![
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            blob
        ])?;
    }
    tx.execute_batch("DROP TABLE reports;")?;
    Ok(())
}

/// `(cutoff, hour horizon)`: reports received before `cutoff` are past the
/// retention; hourly cells are kept from the horizon on.
fn retention_bounds(now: i64, retention_days: u32) -> (i64, i64) {
    let today = Resolution::Day.floor(now);
    let cutoff = today - (retention_days.max(1) as i64 - 1) * DAY_MS;
    (cutoff, (today - HOURLY_DAYS * DAY_MS).max(cutoff))
}

fn metric_code(m: MetricName) -> i64 {
    MetricName::ALL.iter().position(|&x| x == m).unwrap_or(0) as i64
}

fn metric_from_code(code: i64) -> Option<MetricName> {
    MetricName::ALL.get(usize::try_from(code).ok()?).copied()
}

fn nav_code(n: NavigationType) -> i64 {
    NavigationType::ALL.iter().position(|&x| x == n).unwrap_or(0) as i64
}

fn nav_from_code(code: i64) -> NavigationType {
    usize::try_from(code)
        .ok()
        .and_then(|i| NavigationType::ALL.get(i).copied())
        .unwrap_or(NavigationType::Navigate)
}

fn resolution_code(r: Resolution) -> i64 {
    match r {
        Resolution::Hour => 0,
        Resolution::Day => 1,
    }
}

fn load_catalog(conn: &Connection) -> Result<Catalog, StoreError> {
    let mut catalog = Catalog::default();
    let mut stmt = conn.prepare("SELECT id, site FROM sites")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        catalog.add_site(row.get(0)?, row.get(1)?);
    }
    let mut stmt = conn.prepare("SELECT id, site_id, page FROM pages")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        catalog.add_page(row.get(0)?, row.get(1)?, row.get(2)?);
    }
    Ok(catalog)
}

fn load_aggregates(conn: &Connection, catalog: &Catalog, cells: &mut Cells) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT page_id, metric, form_factor, resolution, bucket, good,
                needs_improvement, poor, sketch FROM aggregates",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    let corrupt = |what: &str| StoreError::Internal(format!("saved aggregate {what}"));
    while let Some(row) = rows.next()? {
        let page: u32 = row.get(0)?;
        let Some(&(site, _)) = catalog.pages.get(&page) else {
            continue;
        };
        let metric = metric_from_code(row.get(1)?).ok_or_else(|| corrupt("has an unknown metric"))?;
        let resolution = match row.get::<_, i64>(3)? {
            0 => Resolution::Hour,
            1 => Resolution::Day,
            _ => return Err(corrupt("has an unknown resolution")),
        };
        let blob = row.get_ref(8)?.as_blob().map_err(|_| corrupt("sketch is not a blob"))?;
        let sketch = Sketch::from_bytes(blob).ok_or_else(|| corrupt("sketch is malformed"))?;
        let count = |i| -> Result<u64, StoreError> {
            u64::try_from(row.get::<_, i64>(i)?).map_err(|_| corrupt("has a negative count"))
        };
        let ratings = RatingCounts {
            good: count(5)?,
            needs_improvement: count(6)?,
            poor: count(7)?,
        };
        if ratings.total() != sketch.count() {
            return Err(corrupt("counts disagree"));
        }
        let base = BaseCell {
            page,
            metric,
            ff: row.get(2)?,
            resolution,
            bucket: row.get(4)?,
            cell: None,
        };
        if resolution == Resolution::Hour && resolution.start(base.bucket) < cells.hour_horizon_ms() {
            continue;
        }
        cells.load(site, &base, &Cell { ratings, sketch });
        n += 1;
    }
    Ok(n)
}

/// Loads the exact values saved at the last clean shutdown; the number of
/// days loaded.
fn load_values(conn: &Connection, catalog: &Catalog, values: &mut Values) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare("SELECT page_id, metric, day, data FROM exact_values")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    let corrupt = |what: &str| StoreError::Internal(format!("saved exact values {what}"));
    while let Some(row) = rows.next()? {
        let page: u32 = row.get(0)?;
        if !catalog.pages.contains_key(&page) {
            continue;
        }
        let metric = metric_from_code(row.get(1)?).ok_or_else(|| corrupt("have an unknown metric"))?;
        let blob = row.get_ref(3)?.as_blob().map_err(|_| corrupt("are not a blob"))?;
        if !values.load_day(page, metric, row.get(2)?, blob) {
            return Err(corrupt("are malformed"));
        }
        n += 1;
    }
    Ok(n)
}

/// What [`scan_beacons`] found.
struct Scanned {
    reports: u64,
    /// The largest row id (0 if none).
    last_row: i64,
}

/// Reads every raw report: its id into `ids`, and its value into the
/// aggregates when given (to rebuild them).
fn scan_beacons(
    conn: &Connection,
    catalog: &Catalog,
    ids: &mut ReportIds,
    mut rebuild: Option<(&mut Cells, &mut Values)>,
) -> Result<Scanned, StoreError> {
    // Read first, then add in (page, metric, form factor, time) order: the
    // table is in arrival order, which jumps between pages at every row,
    // and adding in that order missed the CPU caches at every cell (three
    // times slower than sorting first).
    let mut all: Vec<(u32, u8, u8, i64, f64)> = Vec::new();
    let mut scanned = Scanned {
        reports: 0,
        last_row: 0,
    };
    let mut stmt = conn.prepare("SELECT id, page_id, form_factor, received_at, reports FROM beacons")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        scanned.last_row = scanned.last_row.max(id);
        let page: u32 = row.get(1)?;
        let Some(&(site, _)) = catalog.pages.get(&page) else {
            continue;
        };
        let (ff, at): (u8, i64) = (row.get(2)?, row.get(3)?);
        // A malformed row (never written so by this code) loses its own
        // reports only, not the start-up of the store.
        let Some(slots) = row.get_ref(4)?.as_blob().ok().and_then(rows::decode) else {
            tracing::error!(row = id, "beacon row with a malformed reports blob, skipped");
            continue;
        };
        for (slot, r) in slots.iter().enumerate() {
            if metric_from_code(r.metric as i64).is_none() {
                continue;
            }
            ids.insert(
                ids.key(site, r.metric, r.id),
                Location {
                    row: id,
                    slot: slot as u8,
                },
            );
            scanned.reports += 1;
            if rebuild.is_some() {
                all.push((page, r.metric, ff, at, r.value));
            }
        }
    }
    let Some((cells, values)) = rebuild.as_mut() else {
        return Ok(scanned);
    };
    all.sort_unstable_by_key(|&(page, metric, ff, at, _)| (page, metric, ff, at));
    for &(page, metric, ff, at, value) in &all {
        let (Some(&(site, _)), Some(metric)) = (catalog.pages.get(&page), metric_from_code(metric as i64)) else {
            continue;
        };
        let place = Place {
            site,
            page,
            metric,
            ff,
            received_at_ms: at,
        };
        cells.add(&place, value);
        values.add(page, metric, ff, at, value);
    }
    values.finish();
    Ok(scanned)
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    options: SqliteOptions,
    /// The cut-off of a retention pass under way.
    retention: Option<i64>,
    /// The clock hour of the last retention pass.
    retention_hour: i64,
    last_checkpoint: Instant,
    /// When the checkpointer thread last finished one.
    checkpoints: CheckpointClock,
    /// The clock hour the rolling window merges were last moved to.
    rolled_hour: i64,
    /// Where each stored report id is, for dedup.
    ids: ReportIds,
    /// The id of the next beacon row (the writer numbers them itself, so
    /// that a report's location is known before its row is written).
    next_row: i64,
}

impl Writer {
    /// Group commits until every sender is gone (close, or the last
    /// `Sqlite` dropped) and the queue is empty; then saves the aggregates.
    fn run(mut self, rx: Receiver<Insert>) {
        let mut group = Vec::with_capacity(self.options.max_group);
        loop {
            let wait = if self.retention.is_some() {
                Duration::from_millis(1)
            } else {
                TICK
            };
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    group.push(first);
                    while group.len() < self.options.max_group {
                        match rx.try_recv() {
                            Ok(next) => group.push(next),
                            Err(_) => break,
                        }
                    }
                    self.shared.queue_depth.fetch_sub(group.len() as i64, Ordering::Relaxed);
                    self.commit_group(&mut group);
                    let since = self.last_checkpoint.elapsed();
                    if since >= WRITER_CHECKPOINT_EVERY
                        && (since >= WRITER_CHECKPOINT_LATEST || self.checkpoints.within(WRITER_CHECKPOINT_WINDOW))
                    {
                        self.last_checkpoint = Instant::now();
                        if let Err(e) = checkpoint(&self.conn) {
                            tracing::warn!(error = %e, "checkpoint failed");
                        }
                        let took = self.last_checkpoint.elapsed();
                        if took >= SLOW_GROUP {
                            tracing::debug!(ms = took.as_secs_f64() * 1e3, "slow writer checkpoint");
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = self.maintain() {
                tracing::error!(error = %e, "retention failed");
                self.retention = None;
            }
        }
        if let Err(e) = self.save_aggregates() {
            tracing::error!(error = %e, "cannot save aggregates; they will be rebuilt at start-up");
        }
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "final checkpoint failed");
        }
        self.shared.writer_alive.store(false, Ordering::Relaxed);
        tracing::debug!("sqlite writer finished");
    }

    /// Writes each queued beacon, commits once, acknowledges each, then
    /// updates the aggregates. An SQL error fails the whole group (nothing
    /// of it is kept); a beacon refused by a limit fails alone.
    fn commit_group(&mut self, group: &mut Vec<Insert>) {
        let mut results: Vec<Result<Inserted, StoreError>> = Vec::with_capacity(group.len());
        let mut deltas = Vec::new();
        let mut new_ids = NewIds::default();
        let mut pending = PendingIds::default();
        let shared = &self.shared;
        let options = &self.options;
        let ids = &self.ids;
        let next_row = &mut self.next_row;
        let started = Instant::now();
        let mut timings = [Duration::ZERO; 3];
        let committed = (|| -> Result<(), StoreError> {
            let tx = self.conn.transaction()?;
            {
                let state = shared.state.read().expect("state lock poisoned");
                // Prepared once per group: the statement cache's look-up
                // hashes the SQL text, a cost per report otherwise.
                let mut insert_stmt = tx.prepare_cached(INSERT_SQL)?;
                let mut w = GroupWrite {
                    tx: &tx,
                    insert: &mut insert_stmt,
                    catalog: &state.catalog,
                    options,
                    ids,
                    new_ids: &mut new_ids,
                    pending: &mut pending,
                    next_row,
                    deltas: &mut deltas,
                    looked_up: Vec::new(),
                };
                for insert in group.iter() {
                    results.push(w.beacons(&insert.beacons)?);
                }
            }
            timings[0] = started.elapsed();
            let mut state = shared.state.write().expect("state lock poisoned");
            tx.commit()?;
            timings[1] = started.elapsed();
            // Acknowledged once committed, before the aggregates take the
            // reports: the clients' next requests are parsed meanwhile. A
            // read that follows an acknowledgement still sees the reports:
            // it waits for this lock, held until they are added.
            for (insert, result) in group.drain(..).zip(results.drain(..)) {
                // The handler may have given up (client gone); nothing to do.
                let _ = insert.ack.send((result, insert.beacons));
            }
            let state = &mut *state;
            for (id, name) in new_ids.sites.drain(..) {
                state.catalog.add_site(id, name);
            }
            for (id, site, page) in new_ids.pages.drain(..) {
                state.catalog.add_page(id, site, page);
            }
            // Adds in batches (`add_many` overlaps their cache misses); a
            // removal may take back a value just added, so the adds before
            // it go first.
            let mut adds: Vec<(Place, f64)> = Vec::with_capacity(deltas.len());
            for delta in deltas.drain(..) {
                match delta {
                    Delta::Add(place, value) => adds.push((place, value)),
                    Delta::Remove(place, value) => {
                        state.cells.add_many(&adds);
                        state.values.add_many(&adds);
                        adds.clear();
                        if !state.cells.remove(&place, value) {
                            tracing::error!(?place, value, "replaced value missing from aggregates");
                        }
                        let p = &place;
                        if !state.values.remove(p.page, p.metric, p.ff, p.received_at_ms, value) {
                            tracing::error!(?place, value, "replaced value missing from exact values");
                        }
                    }
                }
            }
            state.cells.add_many(&adds);
            state.values.add_many(&adds);
            Ok(())
        })();
        if committed.is_ok() {
            for (key, at) in pending.drain() {
                self.ids.insert(key, at);
            }
        }
        timings[2] = started.elapsed();
        if timings[2] >= SLOW_GROUP {
            tracing::debug!(
                beacons = group.len(),
                write_ms = timings[0].as_secs_f64() * 1e3,
                commit_ms = timings[1].as_secs_f64() * 1e3,
                total_ms = timings[2].as_secs_f64() * 1e3,
                "slow write group"
            );
        }
        // Committed groups were acknowledged inside; a failed one is here.
        if let Err(e) = committed {
            tracing::error!(error = %e, beacons = group.len(), "cannot commit beacons");
            let msg = e.to_string();
            for insert in group.drain(..) {
                let failed = StoreError::Internal(format!("commit failed: {msg}"));
                let _ = insert.ack.send((Err(failed), insert.beacons));
            }
        }
    }

    /// Moves the rolling window merges when the hour changes, starts an
    /// hourly retention pass, and advances a pass under way by one chunk.
    fn maintain(&mut self) -> Result<(), StoreError> {
        let now = now_ms();
        if Resolution::Hour.bucket(now) != self.rolled_hour {
            self.rolled_hour = Resolution::Hour.bucket(now);
            let started = Instant::now();
            self.shared
                .state
                .write()
                .expect("state lock poisoned")
                .cells
                .advance(now);
            tracing::debug!(ms = started.elapsed().as_millis() as u64, "moved rolling windows");
        }
        if self.retention.is_none() && Resolution::Hour.bucket(now) != self.retention_hour {
            self.start_retention(now)?;
        }
        if self.retention.is_some() {
            self.retention_step()?;
        }
        Ok(())
    }

    /// Drops what is past the retention from memory and the saved
    /// aggregates at once; raw reports follow in [`Writer::retention_step`].
    fn start_retention(&mut self, now: i64) -> Result<(), StoreError> {
        self.retention_hour = Resolution::Hour.bucket(now);
        let (cutoff, horizon) = retention_bounds(now, self.options.retention_days);
        {
            let mut state = self.shared.state.write().expect("state lock poisoned");
            state.cutoff_ms = state.cutoff_ms.max(cutoff);
            state.cells.prune(Resolution::Day.bucket(cutoff), horizon);
            state.values.prune(Resolution::Day.bucket(cutoff));
        }
        self.conn.execute(
            "DELETE FROM aggregates WHERE (resolution = 1 AND bucket < ?1)
                OR (resolution = 0 AND bucket < ?2)",
            params![Resolution::Day.bucket(cutoff), Resolution::Hour.bucket(horizon)],
        )?;
        self.conn.execute(
            "DELETE FROM exact_values WHERE day < ?1",
            params![Resolution::Day.bucket(cutoff)],
        )?;
        self.retention = Some(cutoff);
        Ok(())
    }

    /// Deletes one chunk of raw reports past the retention; when none are
    /// left, pages and sites without reports.
    fn retention_step(&mut self) -> Result<(), StoreError> {
        let Some(cutoff) = self.retention else {
            return Ok(());
        };
        self.conn.pragma_update(None, "cache_size", -MAINTENANCE_CACHE_KIB)?;
        let deleted = self.delete_old_rows(cutoff);
        self.conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let deleted = deleted?;
        if deleted > 0 {
            tracing::debug!(deleted, "retention: deleted old reports");
            return Ok(());
        }
        self.retention = None;
        // Pages without reports: the exact values in memory are those of
        // the raw reports (no index of the reports by page is kept).
        let pages: Vec<u32> = {
            let state = self.shared.state.read().expect("state lock poisoned");
            let live = state.values.pages();
            state
                .catalog
                .pages
                .keys()
                .filter(|p| !live.contains(p))
                .copied()
                .collect()
        };
        let tx = self.conn.transaction()?;
        {
            let mut delete = tx.prepare("DELETE FROM pages WHERE id = ?1")?;
            for &p in &pages {
                delete.execute([p])?;
            }
        }
        let sites: Vec<u32> = tx
            .prepare(
                "DELETE FROM sites WHERE NOT EXISTS
                    (SELECT 1 FROM pages WHERE pages.site_id = sites.id)
                 RETURNING id",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut state = self.shared.state.write().expect("state lock poisoned");
        tx.commit()?;
        for &p in &pages {
            state.catalog.remove_page(p);
        }
        for &s in &sites {
            state.catalog.remove_site(s);
        }
        drop(state);
        if !pages.is_empty() || !sites.is_empty() {
            tracing::info!(
                pages = pages.len(),
                sites = sites.len(),
                "retention: removed pages and sites without reports"
            );
        }
        Ok(())
    }

    /// Deletes one chunk of beacon rows received before `cutoff`, and
    /// their report ids; the number of rows deleted.
    fn delete_old_rows(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let gone: Vec<(i64, u32, Vec<u8>)> = tx
            .prepare(
                "DELETE FROM beacons WHERE id IN
                    (SELECT id FROM beacons WHERE received_at < ?1 LIMIT ?2)
                 RETURNING id, page_id, reports",
            )?
            .query_map(params![cutoff, RETENTION_CHUNK as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        tx.commit()?;
        let state = self.shared.state.read().expect("state lock poisoned");
        for (row, page, blob) in &gone {
            let Some(&(site, _)) = state.catalog.pages.get(page) else {
                continue;
            };
            for (slot, r) in rows::decode(blob).unwrap_or_default().iter().enumerate() {
                let at = Location {
                    row: *row,
                    slot: slot as u8,
                };
                self.ids.remove(self.ids.key(site, r.metric, r.id), at);
            }
        }
        Ok(gone.len())
    }

    /// Saves the cells changed since start-up and marks the saved
    /// aggregates up to date.
    fn save_aggregates(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let (changed, mut changed_days) = {
            let mut state = self.shared.state.write().expect("state lock poisoned");
            (state.cells.take_changed_base_cells(), state.values.take_changed())
        };
        // In key order: appends to the table's B-tree, not random inserts.
        changed_days.sort_unstable_by_key(|&(page, metric, day, _)| (day, page, metric_code(metric)));
        // Called once, at the end: no need to shrink the cache again.
        self.conn.pragma_update(None, "cache_size", -MAINTENANCE_CACHE_KIB)?;
        let tx = self.conn.transaction()?;
        {
            let mut upsert =
                tx.prepare("INSERT OR REPLACE INTO exact_values (page_id, metric, day, data) VALUES (?1, ?2, ?3, ?4)")?;
            let mut delete = tx.prepare("DELETE FROM exact_values WHERE day = ?3 AND page_id = ?1 AND metric = ?2")?;
            for (page, metric, day, blob) in &changed_days {
                match blob {
                    Some(blob) => upsert.execute(params![page, metric_code(*metric), day, blob])?,
                    None => delete.execute(params![page, metric_code(*metric), day])?,
                };
            }
        }
        {
            let mut upsert = tx.prepare(
                "INSERT OR REPLACE INTO aggregates (page_id, metric, form_factor, resolution,
                    bucket, good, needs_improvement, poor, sketch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut delete = tx.prepare(
                "DELETE FROM aggregates WHERE page_id = ?1 AND metric = ?2
                    AND form_factor = ?3 AND resolution = ?4 AND bucket = ?5",
            )?;
            for b in &changed {
                let key = params![
                    b.page,
                    metric_code(b.metric),
                    b.ff,
                    resolution_code(b.resolution),
                    b.bucket
                ];
                match &b.cell {
                    Some(c) => upsert.execute(params![
                        b.page,
                        metric_code(b.metric),
                        b.ff,
                        resolution_code(b.resolution),
                        b.bucket,
                        c.ratings.good as i64,
                        c.ratings.needs_improvement as i64,
                        c.ratings.poor as i64,
                        c.sketch.to_bytes()
                    ])?,
                    None => delete.execute(key)?,
                };
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('aggregates_clean', 1)
             ON CONFLICT (key) DO UPDATE SET value = 1",
            [],
        )?;
        tx.commit()?;
        tracing::info!(
            cells = changed.len(),
            days = changed_days.len(),
            ms = started.elapsed().as_millis() as u64,
            "saved aggregates and exact values"
        );
        Ok(())
    }
}

/// Writing one group's beacons, inside its transaction.
struct GroupWrite<'a, 'tx> {
    tx: &'tx Connection,
    insert: &'a mut rusqlite::CachedStatement<'tx>,
    catalog: &'a Catalog,
    options: &'a SqliteOptions,
    /// Report ids committed before this group.
    ids: &'a ReportIds,
    /// Sites and pages this group creates.
    new_ids: &'a mut NewIds,
    /// Report ids this group stores, added to `ids` once committed.
    pending: &'a mut PendingIds,
    next_row: &'a mut i64,
    /// Changes to the aggregates, applied once committed.
    deltas: &'a mut Vec<Delta>,
    /// A beacon's report id keys and where `ids` has them (reused buffer).
    looked_up: Vec<(IdKey, Option<Location>)>,
}

/// A beacon row being filled.
struct NewRow<'b> {
    id: i64,
    beacon: &'b NewBeacon,
    site: u32,
    page: u32,
    blob: Vec<u8>,
    slots: usize,
}

impl NewRow<'_> {
    fn place(&self, metric: MetricName) -> Place {
        Place {
            site: self.site,
            page: self.page,
            metric,
            ff: ff_code(self.beacon.form_factor),
            received_at_ms: self.beacon.received_at_ms,
        }
    }
}

impl GroupWrite<'_, '_> {
    /// Writes the reports of `beacons`, creating site and page ids as
    /// needed. `Ok(Err(_))`: they are refused (nothing of them written);
    /// `Err(_)`: the transaction failed.
    fn beacons(&mut self, beacons: &[NewBeacon]) -> Result<Result<Inserted, StoreError>, StoreError> {
        // All or none: refuse before writing any of them.
        let mut sites: Vec<u32> = Vec::with_capacity(beacons.len());
        for b in beacons {
            match site_id(self.tx, self.catalog, self.options, self.new_ids, &b.site)? {
                Ok(id) => sites.push(id),
                Err(refused) => return Ok(Err(refused)),
            }
        }
        let mut inserted = Inserted::default();
        for (b, site) in beacons.iter().zip(sites) {
            let page = page_id(self.tx, self.catalog, self.options, self.new_ids, site, &b.page)?;
            // All the beacon's keys first, then their look-ups in a loop of
            // their own: each look-up is a cache miss into a table of
            // millions of ids, and look-ups in a row overlap their misses
            // (one at a time, they were most of this function's time).
            let mut looked_up = std::mem::take(&mut self.looked_up);
            looked_up.clear();
            looked_up.extend(
                b.reports
                    .iter()
                    .map(|r| (self.ids.key(site, metric_code(r.metric) as u8, &r.report_id), None)),
            );
            for (key, at) in looked_up.iter_mut() {
                *at = self.ids.get(*key);
            }
            let mut looked = looked_up.iter();
            // One row per beacon (more only past a row's slots).
            for reports in b.reports.chunks(rows::MAX_SLOTS) {
                let mut row = NewRow {
                    id: *self.next_row,
                    beacon: b,
                    site,
                    page,
                    blob: Vec::with_capacity(1 + 40 * reports.len()),
                    slots: 0,
                };
                *self.next_row += 1;
                for (r, &(key, stored)) in reports.iter().zip(&mut looked) {
                    self.report(&mut row, r, key, stored, &mut inserted)?;
                }
                self.write_row(&row)?;
            }
            self.looked_up = looked_up;
        }
        Ok(Ok(inserted))
    }

    /// Adds `r` to `row`, or replaces the value of the report it re-reports.
    /// `key` is its id's key, `stored` where `ids` has that key.
    fn report(
        &mut self,
        row: &mut NewRow,
        r: &NewReport,
        key: IdKey,
        stored: Option<Location>,
        inserted: &mut Inserted,
    ) -> Result<(), StoreError> {
        let metric = metric_code(r.metric) as u8;
        if self.replace(row, key, stored, metric, r)? {
            inserted.replaced += 1;
            return Ok(());
        }
        let slot = Slot {
            metric,
            navigation_type: nav_code(r.navigation_type) as u8,
            value: r.value,
            delta: r.delta,
            id: &r.report_id,
        };
        rows::push(&mut row.blob, &slot);
        let at = Location {
            row: row.id,
            slot: row.slots as u8,
        };
        row.slots += 1;
        self.pending.insert(key, at);
        self.deltas.push(Delta::Add(row.place(r.metric), r.value));
        inserted.new += 1;
        Ok(())
    }

    /// If `r` re-reports a stored id, replaces that report's value (it
    /// keeps its row: page, form factor and time, so its aggregate cells
    /// stay the same) and says true. An id stored by this group is in
    /// `pending` (newer than `stored`, which is from before the group).
    fn replace(
        &mut self,
        row: &mut NewRow,
        key: IdKey,
        stored: Option<Location>,
        metric: u8,
        r: &NewReport,
    ) -> Result<bool, StoreError> {
        let Some(at) = self.pending.get(&key).copied().or(stored) else {
            return Ok(false);
        };
        let (place, old) = if at.row == row.id {
            // An earlier report of the row being filled.
            let Some(old) =
                rows::replace_value(&mut row.blob, at.slot as usize, metric, &r.report_id, r.value, r.delta)
            else {
                return Ok(false);
            };
            (row.place(r.metric), old)
        } else {
            let stored: Option<(u32, u8, i64, Vec<u8>)> = self
                .tx
                .prepare_cached("SELECT page_id, form_factor, received_at, reports FROM beacons WHERE id = ?1")?
                .query_row([at.row], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                .optional()?;
            let Some((page, ff, received_at_ms, mut blob)) = stored else {
                return Ok(false);
            };
            let Some(old) = rows::replace_value(&mut blob, at.slot as usize, metric, &r.report_id, r.value, r.delta)
            else {
                // Another id with the same key (a hash collision): `r` is new.
                return Ok(false);
            };
            self.tx
                .prepare_cached("UPDATE beacons SET reports = ?1 WHERE id = ?2")?
                .execute(params![blob, at.row])?;
            let place = Place {
                site: row.site,
                page,
                metric: r.metric,
                ff,
                received_at_ms,
            };
            (place, old)
        };
        self.deltas.push(Delta::Remove(place, old));
        self.deltas.push(Delta::Add(place, r.value));
        Ok(true)
    }

    fn write_row(&mut self, row: &NewRow) -> Result<(), StoreError> {
        if row.slots == 0 {
            return Ok(()); // all its reports were re-reports
        }
        let b = row.beacon;
        self.insert.execute(params![
            row.id,
            row.page,
            ff_code(b.form_factor),
            b.received_at_ms,
            b.page_view_id,
            b.session_id,
            row.blob,
        ])?;
        Ok(())
    }
}

fn site_id(
    tx: &Connection,
    catalog: &Catalog,
    options: &SqliteOptions,
    new_ids: &mut NewIds,
    site: &str,
) -> Result<Result<u32, StoreError>, StoreError> {
    if let Some(&id) = catalog.by_name.get(site).or_else(|| new_ids.site_ids.get(site)) {
        return Ok(Ok(id));
    }
    let count = catalog.sites.len() + new_ids.sites.len();
    if options.max_sites > 0 && count >= options.max_sites as usize {
        return Ok(Err(StoreError::TooManySites {
            site: site.to_owned(),
            limit: options.max_sites,
        }));
    }
    let id: u32 = tx
        .prepare_cached("INSERT INTO sites (site) VALUES (?1) RETURNING id")?
        .query_row([site], |r| r.get(0))?;
    new_ids.sites.push((id, site.to_owned()));
    new_ids.site_ids.insert(site.to_owned(), id);
    Ok(Ok(id))
}

/// The page's id; past the page cap, the site's [`OTHER_PAGE`] id.
fn page_id(
    tx: &Connection,
    catalog: &Catalog,
    options: &SqliteOptions,
    new_ids: &mut NewIds,
    site: u32,
    page: &str,
) -> Result<u32, StoreError> {
    if let Some(id) = catalog.page_id(site, page) {
        return Ok(id);
    }
    let key = (site, page.to_owned());
    if let Some(&id) = new_ids.page_ids.get(&key) {
        return Ok(id);
    }
    let known = catalog.sites.get(&site).map_or(0, |s| s.pages.len());
    let added = new_ids.new_pages_per_site.get(&site).copied().unwrap_or(0) as usize;
    if page != OTHER_PAGE && known + added >= options.max_pages_per_site as usize {
        return page_id(tx, catalog, options, new_ids, site, OTHER_PAGE);
    }
    let id: u32 = tx
        .prepare_cached("INSERT INTO pages (site_id, page) VALUES (?1, ?2) RETURNING id")?
        .query_row(params![site, page], |r| r.get(0))?;
    new_ids.pages.push((id, site, page.to_owned()));
    new_ids.page_ids.insert(key, id);
    if page != OTHER_PAGE {
        *new_ids.new_pages_per_site.entry(site).or_default() += 1;
    }
    Ok(id)
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

/// The part of a span that the store still answers for.
fn clamp(span: &Span, state: &State) -> Span {
    let from_ms = match span.resolution {
        Resolution::Day => state.cutoff_ms,
        Resolution::Hour => state.cells.hour_horizon_ms().max(state.cutoff_ms),
    };
    let mut s = *span;
    s.first = s.first.max(span.resolution.bucket(from_ms + span.resolution.ms() - 1));
    s
}

/// How an aggregate's exact p75 is found.
enum Exact {
    Known(f64),
    /// The `rank`-th smallest value of bin `key` of these pages.
    Bin {
        pages: Vec<u32>,
        key: u32,
        rank: u64,
        count: u64,
    },
}

struct Planned {
    aggregate: Aggregate,
    exact: Option<Exact>,
    metric: MetricName,
    ff: u8,
    span: Span,
    /// Where the result may be cached, and the series' version.
    cache: Option<(ExactKey, u64)>,
}

type ExactKey = (Scope, MetricName, u8, Span);

/// Most exact p75s kept; past that the cache starts over.
const EXACT_CACHE_LEN: usize = 200_000;

/// `page_cells`: the pages' cells of the same metric and span when they
/// are at hand (their bins tell which pages a site's bin draws from).
#[allow(clippy::too_many_arguments)]
fn plan_exact(
    state: &State,
    scope: Scope,
    site_pages: &[u32],
    page_cells: Option<&[(u32, Cell)]>,
    metric: MetricName,
    ff: u8,
    span: &Span,
    cell: &Cell,
) -> Option<Exact> {
    Some(match cell.sketch.locate(75.0)? {
        Located::Zero => Exact::Known(0.0),
        Located::Bin {
            key,
            rank_in_bin,
            bin_count,
            ..
        } => {
            let pages = match (scope, page_cells) {
                (Scope::Page(p), _) => vec![p],
                (Scope::Site(_), Some(cells)) => cells
                    .iter()
                    .filter(|(_, c)| c.sketch.bin_count(key) > 0)
                    .map(|&(p, _)| p)
                    .collect(),
                (Scope::Site(_), None) => site_pages
                    .iter()
                    .copied()
                    .filter(|&p| state.cells.bin_count(Scope::Page(p), metric, ff, span, key) > 0)
                    .collect(),
            };
            Exact::Bin {
                pages,
                key,
                rank: rank_in_bin,
                count: bin_count,
            }
        }
    })
}

/// Reads aggregates from memory only: cells, and exact values for the p75.
fn read_aggregates(shared: &Shared, q: &AggregateQuery) -> Result<Vec<Aggregate>, StoreError> {
    let state = shared.state.read().expect("state lock poisoned");
    let metrics: &[MetricName] = if q.metrics.is_empty() {
        &MetricName::ALL
    } else {
        &q.metrics
    };
    let ff = ff_selector(q.form_factor);
    let mut sites: Vec<(u32, &SiteEntry)> = match &q.site {
        Some(name) => state
            .catalog
            .by_name
            .get(name)
            .and_then(|id| state.catalog.sites.get(id).map(|s| (*id, s)))
            .into_iter()
            .collect(),
        None => state.catalog.sites.iter().map(|(&id, s)| (id, s)).collect(),
    };
    sites.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut planned: Vec<Planned> = Vec::new();
    for (site_id, site) in sites {
        let site_pages: Vec<u32> = site.page_ids().collect();
        let mut scopes: Vec<(Scope, Option<String>)> = Vec::new();
        match &q.pages {
            PageScope::Site => scopes.push((Scope::Site(site_id), None)),
            PageScope::SiteAndPages => {
                scopes.push((Scope::Site(site_id), None));
                let mut pages: Vec<(&String, u32)> = site_pages
                    .iter()
                    .filter_map(|p| state.catalog.pages.get(p).map(|(_, name)| (name, *p)))
                    .collect();
                pages.sort();
                scopes.extend(pages.into_iter().map(|(name, p)| (Scope::Page(p), Some(name.clone()))));
            }
            PageScope::Page(page) => {
                if let Some(p) = state.catalog.page_id(site_id, page) {
                    scopes.push((Scope::Page(p), Some(page.clone())));
                }
            }
        }
        for span in &q.spans {
            let clamped = clamp(span, &state);
            for &metric in metrics {
                // Pages first: a site's exact p75 looks at their bins.
                let mut page_cells: Vec<(u32, Cell)> = Vec::new();
                let mut site_cell = None;
                for (scope, _) in &scopes {
                    let cell = state.cells.window(*scope, metric, ff, &clamped);
                    match scope {
                        Scope::Page(p) => page_cells.push((*p, cell)),
                        Scope::Site(_) => site_cell = Some(cell),
                    }
                }
                let all_pages = matches!(q.pages, PageScope::SiteAndPages);
                let mut push = |scope: Scope, page: Option<String>, cell: Cell, page_cells: Option<&[(u32, Cell)]>| {
                    if cell.is_empty() {
                        return;
                    }
                    let mut cache = None;
                    let exact = if q.exact_p75 {
                        let key: ExactKey = (scope, metric, ff, clamped);
                        let version = state.cells.version(scope, metric, ff);
                        let cached = shared
                            .exact_cache
                            .lock()
                            .expect("cache lock poisoned")
                            .get(&key)
                            .copied();
                        match cached {
                            Some((v, p75)) if v == version => Some(Exact::Known(p75)),
                            _ => {
                                cache = Some((key, version));
                                plan_exact(&state, scope, &site_pages, page_cells, metric, ff, &clamped, &cell)
                            }
                        }
                    } else {
                        None
                    };
                    planned.push(Planned {
                        aggregate: Aggregate {
                            key: AggregateKey {
                                site: site.name.clone(),
                                page,
                                metric,
                                form_factor: q.form_factor,
                            },
                            span: *span,
                            cell,
                            p75: None,
                        },
                        exact,
                        metric,
                        ff,
                        span: clamped,
                        cache,
                    });
                };
                if let Some(cell) = site_cell {
                    push(Scope::Site(site_id), None, cell, all_pages.then_some(&page_cells[..]));
                }
                for ((scope, page), (_, cell)) in scopes
                    .iter()
                    .filter(|(s, _)| matches!(s, Scope::Page(_)))
                    .zip(page_cells)
                {
                    push(*scope, page.clone(), cell, None);
                }
            }
        }
    }
    let planned_at = Instant::now();
    let lookups = planned
        .iter()
        .filter(|p| matches!(p.exact, Some(Exact::Bin { .. })))
        .count();
    resolve_exact(&state.values, &mut planned);
    drop(state);
    let mut cache = shared.exact_cache.lock().expect("cache lock poisoned");
    if cache.len() > EXACT_CACHE_LEN {
        cache.clear();
    }
    for p in &planned {
        if let (Some((key, version)), Some(p75)) = (p.cache, p.aggregate.p75) {
            cache.insert(key, (version, p75));
        }
    }
    drop(cache);
    tracing::debug!(
        aggregates = planned.len(),
        lookups,
        lookup_ms = planned_at.elapsed().as_secs_f64() * 1000.0,
        "read aggregates"
    );
    Ok(planned.into_iter().map(|p| p.aggregate).collect())
}

/// Finds the exact p75 of each planned aggregate in the exact values.
fn resolve_exact(values: &Values, planned: &mut [Planned]) {
    for p in planned.iter_mut() {
        p.aggregate.p75 = match &p.exact {
            None => None,
            Some(Exact::Known(v)) => Some(*v),
            Some(Exact::Bin {
                pages,
                key,
                rank,
                count,
            }) => {
                let (lo, hi) = bin_bounds(*key);
                let select = Select {
                    metric: p.metric,
                    ff: p.ff,
                    from_ms: p.span.start_ms(),
                    to_ms: p.span.end_ms(),
                    lo,
                    hi,
                    hi_inclusive: false,
                };
                let in_bin = values.select(pages, &select);
                let found = if in_bin.len() as u64 == *count {
                    in_bin.get(*rank as usize - 1).copied()
                } else {
                    None
                };
                if found.is_none() {
                    tracing::error!(key = ?p.aggregate.key, "exact values disagree with aggregates; p75 from the sketch");
                }
                Some(found.unwrap_or_else(|| bin_value(*key)))
            }
        };
    }
}

fn read_count_at_or_below(shared: &Shared, key: &AggregateKey, span: &Span, threshold: f64) -> Result<u64, StoreError> {
    if threshold.is_nan() || threshold < 0.0 {
        return Ok(0);
    }
    let state = shared.state.read().expect("state lock poisoned");
    let Some(&site) = state.catalog.by_name.get(&key.site) else {
        return Ok(0);
    };
    let site_pages: Vec<u32> = state
        .catalog
        .sites
        .get(&site)
        .map(|s| s.page_ids().collect())
        .unwrap_or_default();
    let scope = match &key.page {
        None => Scope::Site(site),
        Some(page) => match state.catalog.page_id(site, page) {
            Some(p) => Scope::Page(p),
            None => return Ok(0),
        },
    };
    let ff = ff_selector(key.form_factor);
    let span = clamp(span, &state);
    let cell = state.cells.window(scope, key.metric, ff, &span);
    if threshold == 0.0 || threshold.is_infinite() {
        return Ok(if threshold == 0.0 {
            cell.sketch.zero_count()
        } else {
            cell.count()
        });
    }
    let bin = bin_of(threshold);
    let below: u64 = cell.sketch.zero_count()
        + cell
            .sketch
            .bins()
            .iter()
            .take_while(|&&(k, _)| k < bin)
            .map(|&(_, n)| n)
            .sum::<u64>();
    if cell.sketch.bin_count(bin) == 0 {
        return Ok(below);
    }
    let pages: Vec<u32> = match scope {
        Scope::Page(p) => vec![p],
        Scope::Site(_) => site_pages
            .into_iter()
            .filter(|&p| state.cells.bin_count(Scope::Page(p), key.metric, ff, &span, bin) > 0)
            .collect(),
    };
    let (lo, _) = bin_bounds(bin);
    let select = Select {
        metric: key.metric,
        ff,
        from_ms: span.start_ms(),
        to_ms: span.end_ms(),
        lo,
        hi: threshold,
        hi_inclusive: true,
    };
    Ok(below + state.values.count(&pages, &select))
}

/// Exported reports per chunk.
const EXPORT_CHUNK: usize = 1_000;

fn run_export(
    shared: &Shared,
    conn: &Connection,
    q: &ExportQuery,
    out: &tokio::sync::mpsc::Sender<Result<Vec<Report>, StoreError>>,
) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare(
        "SELECT b.id, s.site, p.page, b.form_factor, b.page_view_id, b.session_id,
                b.received_at, b.reports
         FROM beacons b JOIN pages p ON p.id = b.page_id JOIN sites s ON s.id = p.site_id
         WHERE b.received_at >= ?1 AND b.received_at < ?2 AND (?3 IS NULL OR s.site = ?3)
         ORDER BY b.received_at, b.id",
    )?;
    let cutoff = shared.state.read().expect("state lock poisoned").cutoff_ms;
    let mut rows = stmt.query(params![q.from_ms.max(cutoff), q.to_ms, q.site])?;
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let Some(slots) = row.get_ref(7)?.as_blob().ok().and_then(rows::decode) else {
            tracing::error!(row = id, "beacon row with a malformed reports blob, not exported");
            continue;
        };
        let (site, page): (String, String) = (row.get(1)?, row.get(2)?);
        let form_factor = ff_from_code(row.get(3)?);
        let (page_view_id, session_id): (Option<String>, Option<String>) = (row.get(4)?, row.get(5)?);
        let received_at_ms: i64 = row.get(6)?;
        for slot in slots {
            let Some(metric) = metric_from_code(slot.metric as i64) else {
                continue;
            };
            chunk.push(Report {
                site: site.clone(),
                page: page.clone(),
                metric,
                report_id: slot.id.to_owned(),
                value: slot.value,
                delta: slot.delta,
                rating: metric.rate(slot.value),
                navigation_type: nav_from_code(slot.navigation_type as i64),
                form_factor,
                page_view_id: page_view_id.clone(),
                session_id: session_id.clone(),
                received_at_ms,
            });
        }
        if chunk.len() >= EXPORT_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
            if out.blocking_send(Ok(full)).is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
    Ok(())
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
