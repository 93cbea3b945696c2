//! The writer thread from start to finish: open the file (migrating it),
//! load it on a second thread while taking beacons into the intake, then
//! hand over to the [`Writer`]. When the disk is full at start-up, the
//! file is loaded from its main file alone and served read-only until
//! space returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::catalog::{load_catalog, Catalog};
use super::intake::{self, IntakeSites};
use super::retention::retention_bounds;
use super::schema::{classify, drop_moved_alert_tables, is_disk_full, migrate, open_connection, Role, SCHEMA_VERSION};
use super::startup::{load, Loaded};
use super::writer::Writer;
use super::{Insert, Shared, SqliteOptions, State};
use crate::store::{StoreError, StorePhase};
use crate::time::now_ms;

/// How often opening for writing is tried again while the disk is full.
const RETRY_OPEN: Duration = Duration::from_secs(1);

/// The writer thread's body.
pub(super) fn writer_thread(path: PathBuf, options: SqliteOptions, shared: Arc<Shared>, rx: Receiver<Insert>) {
    match start(&path, &options, &shared, &rx) {
        Ok(Some(writer)) => writer.run(rx),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, db = %path.display(), "the store cannot start");
            let reason = e.to_string();
            *shared.failure.lock().expect("failure lock poisoned") = Some(e);
            shared.set_phase(StorePhase::Failed(reason));
            // Refuse what is still queued until the store is closed.
            while let Ok(insert) = rx.recv() {
                shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                insert.answer(Err(StoreError::Closed));
            }
        }
    }
    shared.writer_alive.store(false, Ordering::Relaxed);
    shared.set_phase(StorePhase::Closed);
    tracing::debug!("sqlite writer finished");
}

/// How the file could be opened.
enum Opened {
    /// For writing, migrated.
    Writable(Connection),
    /// For reading only (`immutable`): the disk is full.
    ReadOnly(Connection),
}

/// Opens, loads and installs the store; the writer to run, or `None` if
/// the store was closed meanwhile.
fn start(
    path: &Path,
    options: &SqliteOptions,
    shared: &Arc<Shared>,
    rx: &Receiver<Insert>,
) -> Result<Option<Writer>, StoreError> {
    let Some(opened) = open(path, options, shared, rx)? else {
        return Ok(None);
    };
    let (cutoff_ms, horizon_ms) = retention_bounds(now_ms(), options.retention_days);
    let (mut conn, read_role) = match opened {
        Opened::Writable(conn) => (Some(conn), Role::Reader),
        Opened::ReadOnly(conn) => {
            shared.writable.store(false, Ordering::Release);
            shared.immutable_reads.store(true, Ordering::Release);
            shared.set_disk_full(Some(format!(
                "no space left for {} at start-up: reads are served, writes resume once space is freed",
                path.display()
            )));
            drop(conn);
            (None, Role::Immutable)
        }
    };
    let catalog = {
        let reader = open_connection(path, read_role)?;
        load_catalog(&reader)?
    };
    shared.set_phase(StorePhase::Loading);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let (path, catalog, stop) = (path.to_owned(), catalog.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sqlite-loader".into())
            .spawn(move || -> Result<Loaded, StoreError> {
                let conn = open_connection(&path, read_role)?;
                load(&conn, || open_connection(&path, read_role), &catalog, horizon_ms, &stop)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the loader thread: {e}")))?
    };
    // Meanwhile, beacons go into the intake.
    let mut sites = IntakeSites::default();
    let mut group = Vec::with_capacity(options.max_group);
    while !loader.is_finished() {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(first) => {
                take_group(first, rx, options.max_group, &mut group, shared);
                match conn.as_mut() {
                    Some(c) => take_into_intake(c, &mut group, &catalog, options, &mut sites, shared),
                    None => refuse_all(&mut group, shared),
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                stop.store(true, Ordering::Relaxed);
                let _ = loader.join();
                return Ok(None);
            }
        }
    }
    let loaded = loader
        .join()
        .map_err(|_| StoreError::Internal("the loader thread panicked".into()))??;
    let Loaded {
        mut cells,
        views,
        attribution_keys,
        values,
        ids,
        last_row,
        rebuilt,
    } = loaded;
    cells.start_rolling(now_ms());
    *shared.state.write().expect("state lock poisoned") = State {
        catalog,
        cells,
        views,
        attribution_keys,
        values,
        cutoff_ms,
    };
    shared.set_phase(StorePhase::Ready);
    tracing::info!(db = %path.display(), reports = ids.len(), "store loaded");
    let conn = match conn {
        Some(conn) => conn,
        None => match wait_until_writable(path, options, shared, rx)? {
            Some(conn) => conn,
            None => return Ok(None),
        },
    };
    Ok(Some(Writer::new(
        conn,
        shared,
        options.clone(),
        ids,
        last_row,
        rebuilt,
    )?))
}

/// Opens the file for writing and migrates it. While the disk is full:
/// opens it for reading instead when it can be read so (current schema, no
/// WAL to replay), else retries every second.
fn open(
    path: &Path,
    options: &SqliteOptions,
    shared: &Shared,
    rx: &Receiver<Insert>,
) -> Result<Option<Opened>, StoreError> {
    loop {
        let e = match open_writable(path, options) {
            Ok(conn) => {
                shared.set_disk_full(None);
                return Ok(Some(Opened::Writable(conn)));
            }
            Err(e) if is_disk_full(&e, path) => classify(e, path),
            Err(e) => return Err(e),
        };
        if let Some(conn) = open_read_only(path) {
            tracing::error!(error = %e, "the disk is full: serving the store read-only until space is freed");
            return Ok(Some(Opened::ReadOnly(conn)));
        }
        shared.set_disk_full(Some(e.to_string()));
        if !wait_refusing(rx, RETRY_OPEN, shared) {
            return Ok(None);
        }
    }
}

/// The writer connection, the schema brought up to date.
pub(super) fn open_writable(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let mut conn = open_connection(path, Role::Writer { fsync: options.fsync })?;
    migrate(&mut conn, path)?;
    drop_moved_alert_tables(&mut conn, path)?;
    Ok(conn)
}

/// The file opened `immutable`, when that reads all of it: the schema is
/// current and there is no WAL content (a clean shutdown leaves none).
fn open_read_only(path: &Path) -> Option<Connection> {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) || !path.is_file() {
        return None;
    }
    let conn = open_connection(path, Role::Immutable).ok()?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).ok()?;
    (version == SCHEMA_VERSION).then_some(conn)
}

/// Read-only and loaded: refuses beacons and tries to open for writing
/// every second; the connection once it can, `None` if closed first.
fn wait_until_writable(
    path: &Path,
    options: &SqliteOptions,
    shared: &Shared,
    rx: &Receiver<Insert>,
) -> Result<Option<Connection>, StoreError> {
    loop {
        if !wait_refusing(rx, RETRY_OPEN, shared) {
            return Ok(None);
        }
        match open_writable(path, options) {
            // Reads on `immutable` connections must not overlap writes.
            Ok(conn) if shared.end_immutable_reads() => {
                shared.writable.store(true, Ordering::Release);
                shared.set_disk_full(None);
                return Ok(Some(conn));
            }
            Ok(_) => {}
            Err(e) if is_disk_full(&e, path) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits `timeout`, refusing beacons as disk-full; `false` once the store
/// is closed.
fn wait_refusing(rx: &Receiver<Insert>, timeout: Duration, shared: &Shared) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(insert) => {
                shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                insert.answer(Err(disk_full_error(shared)));
            }
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

fn disk_full_error(shared: &Shared) -> StoreError {
    StoreError::DiskFull(
        shared
            .disk_full()
            .unwrap_or_else(|| "no space left on the device".into()),
    )
}

/// `first` and whatever else is queued, up to `max` inserts, into `group`.
pub(super) fn take_group(first: Insert, rx: &Receiver<Insert>, max: usize, group: &mut Vec<Insert>, shared: &Shared) {
    group.push(first);
    while group.len() < max {
        match rx.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    shared.queue_depth.fetch_sub(group.len() as i64, Ordering::Relaxed);
}

fn take_into_intake(
    conn: &mut Connection,
    group: &mut Vec<Insert>,
    catalog: &Catalog,
    options: &SqliteOptions,
    sites: &mut IntakeSites,
    shared: &Shared,
) {
    match intake::write_group(conn, group, catalog, options, sites) {
        Ok(results) => {
            shared.set_disk_full(None);
            for (insert, result) in group.drain(..).zip(results) {
                insert.answer(result);
            }
        }
        Err(e) => {
            let e = classify(e, &shared.path);
            tracing::error!(error = %e, beacons = group.len(), "cannot commit beacons into the intake");
            if let StoreError::DiskFull(why) = &e {
                shared.set_disk_full(Some(why.clone()));
            }
            for insert in group.drain(..) {
                insert.answer(Err(e.duplicate()));
            }
        }
    }
}

fn refuse_all(group: &mut Vec<Insert>, shared: &Shared) {
    for insert in group.drain(..) {
        insert.answer(Err(disk_full_error(shared)));
    }
}
