//! The database schema, its migrations, connection settings, and the
//! integer codes persisted for metrics, navigation types and resolutions.

use std::path::Path;
use std::time::Duration;

use beacon::{MetricName, NavigationType};
use rusqlite::{params, Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::store::rows::{self, Slot};
use crate::store::StoreError;
use crate::time::Resolution;

/// The schema version this code writes (`PRAGMA user_version`); each
/// migration in [`MIGRATIONS`] raises it by one.
pub(super) const SCHEMA_VERSION: i64 = 7;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
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
    // 5: beacons that arrive while the store loads at start-up wait in
    // `intake`, durably, and are written (deduplicated, counted) once it
    // has loaded (see `intake.rs`). Rows carry their site, indexed with the
    // time, for exports of one site, which scanned the whole table (6 s on
    // 10M reports); rows written before get it in the background
    // (`backfill.rs`), below the id in `meta.site_backfill_below`. (An
    // index on the page and time instead made each commit write a WAL
    // frame per page it touched: half again the CPU per beacon.)
    "ALTER TABLE beacons ADD COLUMN site_id INTEGER;
    CREATE INDEX beacons_site_time ON beacons (site_id, received_at) WHERE site_id IS NOT NULL;
    INSERT OR REPLACE INTO meta (key, value)
        SELECT 'site_backfill_below', COALESCE(MAX(id), 0) + 1 FROM beacons;
    CREATE TABLE intake (
        seq          INTEGER PRIMARY KEY,
        site         TEXT    NOT NULL,
        page         TEXT    NOT NULL,
        form_factor  INTEGER NOT NULL, -- 0 none, 1 phone, 2 tablet, 3 desktop
        received_at  INTEGER NOT NULL, -- unix ms
        page_view_id TEXT,
        session_id   TEXT,
        reports      BLOB    NOT NULL  -- see rows.rs
    );",
    // 6: saved sketches start with a format version byte; those saved
    // before have none, so they go, and the first start rebuilds the
    // aggregates from the raw reports.
    "DELETE FROM aggregates;
    UPDATE meta SET value = 0 WHERE key = 'aggregates_clean';",
    // 7: what to fix first. The reports' attributions (element selectors,
    // subparts, the longest script), one JSON array per row aligned with
    // the slots of `reports`, NULL when none has one.
    "ALTER TABLE beacons ADD COLUMN attribution TEXT;
    ALTER TABLE intake ADD COLUMN attribution TEXT;",
];

/// The writer's page cache, KiB. Small: a write group touches few pages
/// (appends), and SQLite walks the whole cache at every commit
/// (`pcache1TruncateUnsafe`, 5–7 % of the writer at 32–64 MiB).
pub(super) const WRITER_CACHE_KIB: i64 = 8 * 1024;
/// The writer's page cache for retention deletes and saving aggregates:
/// large transactions over pages all over the file, which with the small
/// cache spill to the WAL mid-transaction and read pages again.
pub(super) const MAINTENANCE_CACHE_KIB: i64 = 64 * 1024;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Writer {
        fsync: bool,
    },
    Checkpointer,
    Reader,
    /// Reads the main file only, without WAL and its shared-memory file
    /// (`immutable=1`): how a store whose disk is full is read at
    /// start-up, when SQLite cannot size the shared-memory file. Only
    /// valid while nothing writes and the WAL is empty.
    Immutable,
}

pub(super) fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    if role == Role::Immutable {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(immutable_uri(path), flags).map_err(open_err)?;
        conn.pragma_update(None, "cache_size", -16_384).map_err(open_err)?;
        return Ok(conn);
    }
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
        Role::Immutable => unreachable!("opened above"),
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

/// `file:PATH?immutable=1`, with the characters a URI path cannot hold
/// escaped.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Whether the file system holding the database file at `path` is (about)
/// full.
pub(super) fn space_low(path: &Path) -> bool {
    crate::store::space_low(path.parent().unwrap_or(Path::new(".")))
}

/// Whether `e` means the disk is full: SQLite says so (`SQLITE_FULL`), or
/// an I/O error while the file system has no space left (sizing the WAL's
/// shared-memory file fails as `SQLITE_IOERR_SHMSIZE`, "disk I/O error").
pub(super) fn is_disk_full(e: &StoreError, path: &Path) -> bool {
    let sqlite = match e {
        StoreError::DiskFull(_) => return true,
        StoreError::Sqlite(e) | StoreError::Open { source: e, .. } => e,
        _ => return false,
    };
    match sqlite.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => true,
        Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen) => space_low(path),
        _ => false,
    }
}

/// `e` as [`StoreError::DiskFull`] when it means the disk is full.
pub(super) fn classify(e: StoreError, path: &Path) -> StoreError {
    if matches!(e, StoreError::DiskFull(_)) || !is_disk_full(&e, path) {
        return e;
    }
    StoreError::DiskFull(format!(
        "no space left for {} ({e}); free some and writes resume",
        path.display()
    ))
}

/// A write transaction that takes the write lock when it begins
/// (`BEGIN IMMEDIATE`). A deferred one reads first and upgrades at its
/// first write, and SQLite fails that upgrade at once, without the busy
/// timeout, when another connection wrote meanwhile: every write here
/// begins this way.
pub(super) fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = write_tx(conn)?;
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

/// Drops the alert tables that collectors before the alerts' own file kept
/// in this one, once `alerts.db` beside it has taken them over (the
/// collector opens the alerts first). Until then they stay, unused.
pub(super) fn drop_moved_alert_tables(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    const TABLES: [&str; 4] = ["alert_series", "alert_events", "alert_silences", "alert_outbox"];
    let present: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'alert_series'",
        [],
        |r| r.get(0),
    )?;
    let Some(alerts) = path.parent().map(|d| d.join(crate::alerts::store::FILE_NAME)) else {
        return Ok(());
    };
    if !present || !alerts.is_file() {
        return Ok(());
    }
    let moved = Connection::open_with_flags(&alerts, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|a| a.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)))
        .is_ok_and(|v| v >= 1);
    if moved {
        let tx = write_tx(conn)?;
        for t in TABLES {
            tx.execute_batch(&format!("DROP TABLE IF EXISTS {t};"))?;
        }
        tx.commit()?;
        tracing::info!(path = %path.display(), "dropped the alert tables now kept in {}", alerts.display());
    }
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

// The codes stored for metrics and navigation types. Written to disk: a
// code, once given, never changes meaning (pinned by a test), whatever the
// order of the enums' `ALL`.

pub(super) fn metric_code(m: MetricName) -> i64 {
    match m {
        MetricName::Fcp => 0,
        MetricName::Lcp => 1,
        MetricName::Cls => 2,
        MetricName::Inp => 3,
        MetricName::Ttfb => 4,
    }
}

pub(super) fn metric_from_code(code: i64) -> Option<MetricName> {
    Some(match code {
        0 => MetricName::Fcp,
        1 => MetricName::Lcp,
        2 => MetricName::Cls,
        3 => MetricName::Inp,
        4 => MetricName::Ttfb,
        _ => return None,
    })
}

pub(super) fn nav_code(n: NavigationType) -> i64 {
    match n {
        NavigationType::Navigate => 0,
        NavigationType::Reload => 1,
        NavigationType::BackForward => 2,
        NavigationType::BackForwardCache => 3,
        NavigationType::Prerender => 4,
        NavigationType::Restore => 5,
        NavigationType::SoftNavigation => 6,
    }
}

/// An unknown code (never written) reads as `navigate`.
pub(super) fn nav_from_code(code: i64) -> NavigationType {
    match code {
        1 => NavigationType::Reload,
        2 => NavigationType::BackForward,
        3 => NavigationType::BackForwardCache,
        4 => NavigationType::Prerender,
        5 => NavigationType::Restore,
        6 => NavigationType::SoftNavigation,
        _ => NavigationType::Navigate,
    }
}

pub(super) fn resolution_code(r: Resolution) -> i64 {
    match r {
        Resolution::Hour => 0,
        Resolution::Day => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes on disk, pinned: changing one would change what stored
    /// rows, cells and exact values mean.
    #[test]
    fn persisted_codes_never_change() {
        let metrics = [
            (MetricName::Fcp, 0),
            (MetricName::Lcp, 1),
            (MetricName::Cls, 2),
            (MetricName::Inp, 3),
            (MetricName::Ttfb, 4),
        ];
        for (m, code) in metrics {
            assert_eq!((metric_code(m), metric_from_code(code)), (code, Some(m)));
        }
        assert_eq!(metric_from_code(5), None);
        let navs = [
            (NavigationType::Navigate, 0),
            (NavigationType::Reload, 1),
            (NavigationType::BackForward, 2),
            (NavigationType::BackForwardCache, 3),
            (NavigationType::Prerender, 4),
            (NavigationType::Restore, 5),
            (NavigationType::SoftNavigation, 6),
        ];
        for (n, code) in navs {
            assert_eq!((nav_code(n), nav_from_code(code)), (code, n));
        }
        assert_eq!(metrics.len(), MetricName::ALL.len());
        assert_eq!(navs.len(), NavigationType::ALL.len());
        assert_eq!(resolution_code(Resolution::Hour), 0);
        assert_eq!(resolution_code(Resolution::Day), 1);
        use crate::store::cells::{ff_code, ff_from_code};
        use beacon::FormFactor;
        for (ff, code) in [
            (None, 0),
            (Some(FormFactor::Phone), 1),
            (Some(FormFactor::Tablet), 2),
            (Some(FormFactor::Desktop), 3),
        ] {
            assert_eq!((ff_code(ff), ff_from_code(code)), (code, ff));
        }
    }
}
