//! [`Store`] on one SQLite file.
//!
//! SQLite allows one writer at a time, and a commit (an fsync of the WAL) is
//! the expensive part of a write. So all writes go through one writer thread
//! that owns the write connection and group-commits: it takes everything
//! queued, writes it in one transaction, commits once, then acknowledges
//! each request. Reads use their own connections (WAL lets them run while
//! the writer writes), from a small pool, on the runtime's blocking threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use beacon::MetricName;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{Report, Store, StoreError, StoreFuture};
use crate::summary::{Summary, SummaryBuilder, SummaryQuery};

/// Name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "vitalsign.db";

/// The schema version this code writes (`PRAGMA user_version`); each
/// migration in [`MIGRATIONS`] raises it by one.
const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: raw metric reports, one row per (site, metric, report id).
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
        received_at     INTEGER NOT NULL  -- unix milliseconds
    );
    -- Agents re-report CLS and INP with the same id as they grow: the
    -- newest report replaces the older. The site is part of the key so
    -- that one site's agent cannot overwrite another site's reports.
    CREATE UNIQUE INDEX IF NOT EXISTS metric_reports_key
        ON metric_reports (site, metric, report_id);
    CREATE INDEX IF NOT EXISTS metric_reports_page
        ON metric_reports (site, page, metric);",
];

const INSERT_SQL: &str = "INSERT INTO metric_reports
    (site, page, metric, report_id, value, delta, rating, navigation_type,
     form_factor, page_view_id, session_id, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (site, metric, report_id) DO UPDATE SET
        page = excluded.page,
        value = excluded.value,
        delta = excluded.delta,
        rating = excluded.rating,
        navigation_type = excluded.navigation_type,
        form_factor = excluded.form_factor,
        page_view_id = excluded.page_view_id,
        session_id = excluded.session_id,
        received_at = excluded.received_at";

/// Tuning of [`Sqlite`]; the defaults suit a small server.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Beacons that may wait for the writer before handlers wait to enqueue
    /// (backpressure instead of unbounded memory).
    pub queue_len: usize,
    /// Most beacons committed in one transaction.
    pub max_group: usize,
    /// Read connections kept open for reuse.
    pub max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            queue_len: 4096,
            max_group: 1024,
            max_idle_readers: 4,
        }
    }
}

/// A SQLite-backed [`Store`]. Cheap to clone; all clones share the writer.
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` once closed. Inserts take a read lock only to clone it.
    tx: RwLock<Option<mpsc::Sender<Insert>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    idle_readers: Mutex<Vec<Connection>>,
    max_idle_readers: usize,
}

/// One beacon's reports, and where to say they are committed.
struct Insert {
    reports: Vec<Report>,
    ack: oneshot::Sender<Result<(), StoreError>>,
}

impl Sqlite {
    /// Opens (creating if needed) `vitalsign.db` in `data_dir`, creating the
    /// directory too.
    pub fn open_in_dir(data_dir: &Path) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        Sqlite::open(data_dir.join(DB_FILE_NAME), SqliteOptions::default())
    }

    /// Opens (creating if needed) the database file at `path`, brings its
    /// schema up to date and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, options: SqliteOptions) -> Result<Sqlite, StoreError> {
        let path = path.into();
        let mut conn = open_connection(&path, false)?;
        migrate(&mut conn, &path)?;

        let (tx, rx) = mpsc::channel(options.queue_len.max(1));
        let max_group = options.max_group.max(1);
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(conn, rx, max_group))
            .map_err(|e| StoreError::Internal(format!("cannot start writer thread: {e}")))?;

        Ok(Sqlite {
            inner: Arc::new(Inner {
                path,
                tx: RwLock::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                idle_readers: Mutex::new(Vec::new()),
                max_idle_readers: options.max_idle_readers,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl Inner {
    /// Runs `f` on a pooled read connection (blocking).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle_readers
            .lock()
            .expect("reader pool poisoned")
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => open_connection(&self.path, true)?,
        };
        let result = f(&conn);
        let mut pool = self.idle_readers.lock().expect("reader pool poisoned");
        if pool.len() < self.max_idle_readers {
            pool.push(conn);
        }
        result
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // WAL: readers do not block the writer nor it them. NORMAL: a commit
    // survives a crash of this process (not of the OS), and costs no fsync
    // per commit; the WAL is synced at checkpoints.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_err)?;
    if read_only {
        conn.pragma_update(None, "query_only", true)
            .map_err(open_err)?;
    }
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
        tracing::info!(path = %path.display(), from, to = from + 1, "migrated database schema");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The writer thread: group commits until every sender is gone (close, or
/// the last `Sqlite` dropped) and the queue is empty.
fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Insert>, max_group: usize) {
    let mut group = Vec::with_capacity(max_group);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, &mut group);
    }
    tracing::debug!("sqlite writer finished");
}

/// Writes each queued beacon under its own savepoint (so one failing beacon
/// does not fail the others), commits once, then acknowledges each.
fn commit_group(conn: &mut Connection, group: &mut Vec<Insert>) {
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(group.len());
    let committed = (|| -> Result<(), rusqlite::Error> {
        let mut tx = conn.transaction()?;
        for insert in group.iter() {
            let mut sp = tx.savepoint()?;
            match insert_reports(&sp, &insert.reports) {
                Ok(()) => {
                    sp.commit()?;
                    results.push(Ok(()));
                }
                Err(e) => {
                    sp.rollback()?;
                    tracing::error!(error = %e, "cannot store a beacon");
                    results.push(Err(StoreError::Sqlite(e)));
                }
            }
        }
        tx.commit()
    })();
    match committed {
        Ok(()) => {
            for (insert, result) in group.drain(..).zip(results) {
                // The handler may have given up (client gone); nothing to do.
                let _ = insert.ack.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, beacons = group.len(), "cannot commit beacons");
            let msg = e.to_string();
            for insert in group.drain(..) {
                let _ = insert
                    .ack
                    .send(Err(StoreError::Internal(format!("commit failed: {msg}"))));
            }
        }
    }
}

fn insert_reports(conn: &Connection, reports: &[Report]) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(INSERT_SQL)?;
    for r in reports {
        stmt.execute(params![
            r.site,
            r.page,
            r.metric.as_str(),
            r.report_id,
            r.value,
            r.delta,
            r.rating.as_str(),
            r.navigation_type.as_str(),
            r.form_factor.map(|f| f.as_str()),
            r.page_view_id,
            r.session_id,
            r.received_at_ms,
        ])?;
    }
    Ok(())
}

fn read_summary(conn: &Connection, query: &SummaryQuery) -> Result<Summary, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT site, page, metric, value FROM metric_reports
         WHERE ?1 IS NULL OR site = ?1",
    )?;
    let mut rows = stmt.query(params![query.site])?;
    let mut builder = SummaryBuilder::new();
    while let Some(row) = rows.next()? {
        let text = |i| row.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
        let (site, page, metric) = (text(0)?, text(1)?, text(2)?);
        let value: f64 = row.get(3)?;
        match MetricName::parse(metric) {
            Some(metric) => builder.push(site, page, metric, value),
            None => tracing::warn!(metric, "unknown metric name in database, skipped"),
        }
    }
    Ok(builder.finish())
}

impl Store for Sqlite {
    fn insert(&self, reports: Vec<Report>) -> StoreFuture<()> {
        let tx = self.inner.tx.read().expect("sender lock poisoned").clone();
        Box::pin(async move {
            if reports.is_empty() {
                return Ok(());
            }
            let tx = tx.ok_or(StoreError::Closed)?;
            let (ack, done) = oneshot::channel();
            tx.send(Insert { reports, ack })
                .await
                .map_err(|_| StoreError::Closed)?;
            // An ack dropped unsent means the writer stopped before committing.
            done.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn summary(&self, query: SummaryQuery) -> StoreFuture<Summary> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.with_reader(|c| read_summary(c, &query)))
                .await
                .map_err(|e| StoreError::Internal(format!("summary query task failed: {e}")))?
        })
    }

    fn close(&self) -> Result<(), StoreError> {
        // Dropping our sender lets the writer finish once the queue is empty
        // and in-flight inserts (which hold their own senders) are done.
        self.inner.tx.write().expect("sender lock poisoned").take();
        let writer = self
            .inner
            .writer
            .lock()
            .expect("writer lock poisoned")
            .take();
        if let Some(writer) = writer {
            writer
                .join()
                .map_err(|_| StoreError::Internal("the writer thread panicked".into()))?;
        }
        self.inner
            .idle_readers
            .lock()
            .expect("reader pool poisoned")
            .clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon::{FormFactor, NavigationType, Rating};

    fn report(id: &str, value: f64) -> Report {
        Report {
            site: "a.example".into(),
            page: "https://a.example/".into(),
            metric: MetricName::Cls,
            report_id: id.into(),
            value,
            delta: value,
            rating: MetricName::Cls.rate(value),
            navigation_type: NavigationType::Navigate,
            form_factor: Some(FormFactor::Phone),
            page_view_id: None,
            session_id: None,
            received_at_ms: 1,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn insert_dedups_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open_in_dir(dir.path()).unwrap();
        rt().block_on(async {
            store
                .insert(vec![report("a", 0.1), report("b", 0.3)])
                .await
                .unwrap();
            store.insert(vec![report("a", 0.2)]).await.unwrap();
            let s = store.summary(SummaryQuery::default()).await.unwrap();
            let cls = s.pages[0].metrics[&MetricName::Cls];
            assert_eq!((cls.count, cls.p75), (2, 0.3));
        });
        store.close().unwrap();
        assert!(matches!(
            rt().block_on(store.insert(vec![report("c", 1.0)])),
            Err(StoreError::Closed)
        ));

        let store = Sqlite::open_in_dir(dir.path()).unwrap();
        let s = rt()
            .block_on(store.summary(SummaryQuery {
                site: Some("a.example".into()),
            }))
            .unwrap();
        assert_eq!(s.pages[0].metrics[&MetricName::Cls].count, 2);
        let s = rt()
            .block_on(store.summary(SummaryQuery {
                site: Some("b.example".into()),
            }))
            .unwrap();
        assert!(s.pages.is_empty());
        let rating: String = store
            .inner
            .with_reader(|c| {
                Ok(c.query_row(
                    "SELECT rating FROM metric_reports WHERE report_id='a'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(rating, Rating::NeedsImprovement.as_str());
        store.close().unwrap();
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE_NAME);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Sqlite::open(&path, SqliteOptions::default()).err().unwrap();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn concurrent_inserts_are_all_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open_in_dir(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..200)
                .map(|i| tokio::spawn(store.insert(vec![report(&format!("id{i}"), 0.01)])))
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        });
        store.close().unwrap();
        let store = Sqlite::open_in_dir(dir.path()).unwrap();
        let s = rt.block_on(store.summary(SummaryQuery::default())).unwrap();
        assert_eq!(s.pages[0].metrics[&MetricName::Cls].count, 200);
    }
}
