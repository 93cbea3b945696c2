//! Alert state, history, silences and the notification outbox, in a SQLite
//! file of their own (`alerts.db` beside the metric store's file), with its
//! own schema version. The metric store is the only writer of its file: a
//! second writer there made the metric writer's transactions fail with
//! "database is locked" whenever an evaluation committed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use beacon::FormFactor;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::evaluate::Observation;
use super::state::{Machine, State};
use super::AlertError;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "alerts.db";

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// The tables, in the order the legacy import copies them.
const TABLES: [&str; 4] = ["alert_series", "alert_events", "alert_silences", "alert_outbox"];

/// Version 1. Before it, the same tables lived in the metric store's file
/// (see [`import_legacy`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_series (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    site TEXT NOT NULL,
    page TEXT NOT NULL,
    form_factor TEXT NOT NULL,
    state TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    pending_since_ms INTEGER,
    fired_at_ms INTEGER,
    resolved_at_ms INTEGER,
    last_notified_ms INTEGER,
    notifications INTEGER NOT NULL DEFAULT 0,
    value REAL,
    threshold REAL,
    sample_count INTEGER NOT NULL DEFAULT 0,
    baseline REAL,
    baseline_count INTEGER,
    evaluated_ms INTEGER NOT NULL,
    -- The labels notifications carried, for closing an alert whose rule
    -- is gone; Alertmanager matches alerts by their labels.
    labels TEXT NOT NULL DEFAULT '{}',
    acked_by TEXT,
    acked_at_ms INTEGER,
    ack_comment TEXT,
    -- The fired_at_ms of the episode acknowledged: an acknowledgement
    -- lapses when the next episode starts.
    ack_episode_ms INTEGER
);
CREATE INDEX IF NOT EXISTS alert_series_state ON alert_series (state, since_ms);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    value REAL,
    threshold REAL,
    sample_count INTEGER,
    baseline REAL,
    actor TEXT,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS alert_events_series ON alert_events (series_id, at_ms);
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY,
    receiver TEXT NOT NULL,
    series_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    notification TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivery TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    last_http_status INTEGER,
    done_ms INTEGER,
    UNIQUE (receiver, idempotency_key)
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (receiver, delivery, next_attempt_ms);
CREATE INDEX IF NOT EXISTS alert_outbox_series ON alert_outbox (series_id, receiver);
";

/// Commands of other collectors applied here (see `alerts/shared.rs`):
/// part of the snapshot, so a collector taking over applies each once.
/// Created on every open (an older collector leaves it alone).
const SHARED_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_applied_commands (
    id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
";

/// Identifies an alert series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub rule: String,
    pub site: String,
    pub page: String,
    pub form_factor: Option<FormFactor>,
}

impl SeriesKey {
    /// 16 hex digits (as Alertmanager's fingerprints) of a SHA-256 of the
    /// key: stable across restarts and versions.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.rule.as_str(),
            self.site.as_str(),
            self.page.as_str(),
            form_factor_str(self.form_factor),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub fn form_factor_str(ff: Option<FormFactor>) -> &'static str {
    ff.map_or("all", FormFactor::as_str)
}

pub fn parse_form_factor(s: &str) -> Option<Option<FormFactor>> {
    match s {
        "all" => Some(None),
        s => FormFactor::ALL.into_iter().find(|f| f.as_str() == s).map(Some),
    }
}

/// Who acknowledged a firing alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub by: String,
    #[serde(skip)]
    pub at_ms: i64,
    pub comment: String,
}

/// One alert series as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    /// The alert's id in the API.
    pub id: i64,
    pub key: SeriesKey,
    pub fingerprint: String,
    pub machine: Machine,
    /// The evidence of the last evaluation.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub count: u64,
    pub baseline: Option<f64>,
    pub baseline_count: Option<u64>,
    pub evaluated_ms: i64,
    pub labels: BTreeMap<String, String>,
    /// Set when the current firing episode is acknowledged.
    pub ack: Option<Ack>,
}

/// One entry of an alert's history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at_ms: i64,
    /// The state entered, or `acknowledged`.
    pub event: String,
    pub from: Option<State>,
    pub to: Option<State>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub count: Option<u64>,
    pub baseline: Option<f64>,
    pub actor: Option<String>,
    pub comment: Option<String>,
}

/// A silence: while active, alerts whose labels all match `matchers` send
/// no firing notifications. Matcher values may use `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    pub id: i64,
    pub matchers: BTreeMap<String, String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub created_by: String,
    pub comment: String,
    pub created_ms: i64,
}

impl Silence {
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|(name, pattern)| labels.get(name).is_some_and(|v| super::rule::glob_match(pattern, v)))
    }
}

/// A notification waiting in (or done with) the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub receiver: String,
    pub series_id: i64,
    pub idempotency_key: String,
    /// The [`super::receivers::Notification`] as JSON.
    pub notification: String,
    pub attempts: u32,
    pub created_ms: i64,
}

/// Counts of one receiver's notifications by delivery state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStats {
    pub receiver: String,
    pub pending: u64,
    pub sent: u64,
    pub dead: u64,
}

/// What [`AlertStore::ack`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum AckOutcome {
    Acked(Box<SeriesRow>),
    NotFound,
    /// Only firing alerts can be acknowledged; this one is in `State`.
    NotFiring(State),
}

/// Which alerts [`AlertStore::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Empty: pending and firing ones, plus any that changed state since
    /// `recent_since_ms`.
    pub states: Vec<State>,
    pub recent_since_ms: i64,
    pub rule: Option<String>,
    pub site: Option<String>,
    /// Glob over the page key.
    pub page: Option<String>,
    /// Restrict to these sites (a site-scoped API key).
    pub sites: Option<Vec<String>>,
    pub limit: usize,
}

pub struct AlertStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn state_of(s: String) -> rusqlite::Result<State> {
    State::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown alert state {s:?}").into(),
        )
    })
}

fn opt_state(s: Option<String>) -> rusqlite::Result<Option<State>> {
    s.map(state_of).transpose()
}

const SERIES_COLUMNS: &str = "id, fingerprint, rule, site, page, form_factor, state, since_ms,
    pending_since_ms, fired_at_ms, resolved_at_ms, last_notified_ms, notifications, value,
    threshold, sample_count, baseline, baseline_count, evaluated_ms, acked_by, acked_at_ms,
    ack_comment, ack_episode_ms, labels";

fn series_from_row(r: &Row) -> rusqlite::Result<SeriesRow> {
    let form_factor: String = r.get(5)?;
    let fired_at_ms: Option<i64> = r.get(9)?;
    let ack_episode: Option<i64> = r.get(22)?;
    let ack = match (r.get::<_, Option<String>>(19)?, r.get::<_, Option<i64>>(20)?) {
        (Some(by), Some(at_ms)) if ack_episode.is_some() && ack_episode == fired_at_ms => Some(Ack {
            by,
            at_ms,
            comment: r.get::<_, Option<String>>(21)?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(SeriesRow {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        key: SeriesKey {
            rule: r.get(2)?,
            site: r.get(3)?,
            page: r.get(4)?,
            form_factor: parse_form_factor(&form_factor).unwrap_or(None),
        },
        machine: Machine {
            state: state_of(r.get(6)?)?,
            since_ms: r.get(7)?,
            pending_since_ms: r.get(8)?,
            fired_at_ms,
            resolved_at_ms: r.get(10)?,
            last_notified_ms: r.get(11)?,
            notifications: r.get(12)?,
        },
        value: r.get(13)?,
        threshold: r.get(14)?,
        count: r.get::<_, i64>(15)? as u64,
        baseline: r.get(16)?,
        baseline_count: r.get::<_, Option<i64>>(17)?.map(|n| n as u64),
        evaluated_ms: r.get(18)?,
        labels: serde_json::from_str(&r.get::<_, String>(23)?).unwrap_or_default(),
        ack,
    })
}

fn event_from_row(r: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        at_ms: r.get(0)?,
        event: r.get(1)?,
        from: opt_state(r.get(2)?)?,
        to: opt_state(r.get(3)?)?,
        value: r.get(4)?,
        threshold: r.get(5)?,
        count: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        baseline: r.get(7)?,
        actor: r.get(8)?,
        comment: r.get(9)?,
    })
}

fn silence_from_row(r: &Row) -> rusqlite::Result<Silence> {
    let matchers: String = r.get(1)?;
    Ok(Silence {
        id: r.get(0)?,
        matchers: serde_json::from_str(&matchers).unwrap_or_default(),
        starts_ms: r.get(2)?,
        ends_ms: r.get(3)?,
        created_by: r.get(4)?,
        comment: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

/// Creates the schema in a new file (importing legacy tables), or checks
/// that an existing one is not newer than this code.
fn migrate(conn: &mut Connection, path: &Path, legacy: Option<&Path>) -> Result<(), AlertError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(AlertError::SchemaTooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // ATTACH is not allowed inside a transaction: attach first.
    let legacy = legacy.filter(|p| p.is_file());
    if let Some(legacy) = legacy {
        let uri = format!("file:{}?mode=ro", legacy.display());
        conn.execute("ATTACH DATABASE ?1 AS legacy", [uri])?;
    }
    let result = (|| -> Result<usize, AlertError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let imported = if legacy.is_some() { import_legacy(&tx)? } else { 0 };
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(imported)
    })();
    if legacy.is_some() {
        let _ = conn.execute("DETACH DATABASE legacy", []);
    }
    let imported = result?;
    if imported > 0 {
        tracing::info!(
            rows = imported,
            from = %legacy.map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            "moved alert state into its own file"
        );
    }
    Ok(())
}

/// Copies the alert tables of the attached `legacy` database (same
/// columns: those versions created them with this schema) into `main`;
/// the number of rows copied.
fn import_legacy(tx: &Connection) -> Result<usize, AlertError> {
    let mut rows = 0;
    for table in TABLES {
        let present: bool = tx.query_row(
            "SELECT count(*) > 0 FROM legacy.sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if !present {
            continue;
        }
        let columns: Vec<String> = tx
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}', 'legacy')"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let list = columns.join(", ");
        rows += tx.execute(
            &format!("INSERT INTO main.{table} ({list}) SELECT {list} FROM legacy.{table}"),
            [],
        )?;
    }
    Ok(rows)
}

impl AlertStore {
    /// Opens (creating if needed) the alert database at `path` and brings
    /// its schema up to date. `legacy`: the metric store's file, whose alert
    /// tables (where collectors before schema version 1 kept them) are
    /// copied over once, when this file is created.
    pub fn open(path: impl Into<PathBuf>, legacy: Option<&Path>) -> Result<AlertStore, AlertError> {
        let path = path.into();
        let open_err = |source| AlertError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        // A rollback journal, not WAL: one connection uses this file, and
        // without WAL's shared-memory file it can still be opened and read
        // when the disk is full.
        conn.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(open_err)?;
        migrate(&mut conn, &path, legacy)?;
        conn.execute_batch(SHARED_SCHEMA)?;
        Ok(AlertStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back), so the poison can be ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one IMMEDIATE transaction: all of it is committed, or
    /// none.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T, AlertError>) -> Result<T, AlertError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Tx(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    pub fn all_series(&self) -> Result<Vec<SeriesRow>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM alert_series"))?;
        let rows = stmt.query_map([], series_from_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn series(&self, id: i64) -> Result<Option<SeriesRow>, AlertError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {SERIES_COLUMNS} FROM alert_series WHERE id = ?1"),
                [id],
                series_from_row,
            )
            .optional()?;
        Ok(row)
    }

    /// Alerts, most recently changed first.
    pub fn list(&self, f: &ListFilter) -> Result<Vec<SeriesRow>, AlertError> {
        let conn = self.conn();
        let mut sql = format!("SELECT {SERIES_COLUMNS} FROM alert_series WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if f.states.is_empty() {
            sql.push_str(" AND (state IN ('pending', 'firing') OR (state <> 'ok' AND since_ms >= ?))");
            args.push(f.recent_since_ms.into());
        } else {
            let marks = vec!["?"; f.states.len()].join(", ");
            sql.push_str(&format!(" AND state IN ({marks})"));
            args.extend(f.states.iter().map(|s| s.as_str().to_string().into()));
        }
        if let Some(rule) = &f.rule {
            sql.push_str(" AND rule = ?");
            args.push(rule.clone().into());
        }
        if let Some(site) = &f.site {
            sql.push_str(" AND site = ?");
            args.push(site.clone().into());
        }
        if let Some(sites) = &f.sites {
            if sites.is_empty() {
                return Ok(Vec::new());
            }
            let marks = vec!["?"; sites.len()].join(", ");
            sql.push_str(&format!(" AND site IN ({marks})"));
            args.extend(sites.iter().map(|s| s.clone().into()));
        }
        sql.push_str(" ORDER BY since_ms DESC, id DESC");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), series_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            if f.page
                .as_deref()
                .is_some_and(|p| !super::rule::glob_match(p, &row.key.page))
            {
                continue;
            }
            out.push(row);
            if f.limit > 0 && out.len() >= f.limit {
                break;
            }
        }
        Ok(out)
    }

    /// An alert's history, oldest first, at most the last `limit` entries.
    pub fn events(&self, series_id: i64, limit: usize) -> Result<Vec<Event>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at_ms, event, from_state, to_state, value, threshold, sample_count, baseline,
                    actor, comment
             FROM alert_events WHERE series_id = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
        )?;
        let mut rows: Vec<Event> = stmt
            .query_map(params![series_id, limit as i64], event_from_row)?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Acknowledges the current firing episode of alert `id`.
    pub fn ack(&self, id: i64, by: &str, comment: &str, now_ms: i64) -> Result<AckOutcome, AlertError> {
        self.write(|tx| tx.ack(id, by, comment, now_ms))
    }

    pub fn add_silence(
        &self,
        matchers: &BTreeMap<String, String>,
        starts_ms: i64,
        ends_ms: i64,
        created_by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Silence, AlertError> {
        self.write(|tx| tx.add_silence(matchers, starts_ms, ends_ms, created_by, comment, now_ms))
    }

    /// Silences not ended by `now_ms` (active or starting later).
    pub fn silences(&self, now_ms: i64) -> Result<Vec<Silence>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, matchers, starts_ms, ends_ms, created_by, comment, created_ms
             FROM alert_silences WHERE ends_ms > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([now_ms], silence_from_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Ends a silence now; `None` if there is no such silence.
    pub fn expire_silence(&self, id: i64, now_ms: i64) -> Result<Option<Silence>, AlertError> {
        self.write(|tx| tx.expire_silence(id, now_ms))
    }

    /// The oldest due notifications of `receiver`, at most `limit`. A
    /// notification waits while an earlier one of the same alert to the
    /// same receiver is pending, so a resolved one never overtakes its
    /// firing one.
    pub fn due(&self, receiver: &str, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT o.id, o.receiver, o.series_id, o.idempotency_key, o.notification, o.attempts,
                    o.created_ms
             FROM alert_outbox o
             WHERE o.receiver = ?1 AND o.delivery = 'pending' AND o.next_attempt_ms <= ?2
               AND NOT EXISTS (SELECT 1 FROM alert_outbox e
                               WHERE e.receiver = o.receiver AND e.series_id = o.series_id
                                 AND e.delivery = 'pending' AND e.id < o.id)
             ORDER BY o.next_attempt_ms, o.id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![receiver, now_ms, limit as i64], |r| {
                Ok(OutboxItem {
                    id: r.get(0)?,
                    receiver: r.get(1)?,
                    series_id: r.get(2)?,
                    idempotency_key: r.get(3)?,
                    notification: r.get(4)?,
                    attempts: r.get(5)?,
                    created_ms: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// When the next pending notification of `receiver` that is not
    /// waiting for an earlier one is due.
    pub fn next_due_ms(&self, receiver: &str) -> Result<Option<i64>, AlertError> {
        let conn = self.conn();
        let next = conn.query_row(
            "SELECT MIN(o.next_attempt_ms) FROM alert_outbox o
             WHERE o.receiver = ?1 AND o.delivery = 'pending'
               AND NOT EXISTS (SELECT 1 FROM alert_outbox e
                               WHERE e.receiver = o.receiver AND e.series_id = o.series_id
                                 AND e.delivery = 'pending' AND e.id < o.id)",
            [receiver],
            |r| r.get(0),
        )?;
        Ok(next)
    }

    /// Records an attempt: `next_attempt_ms` set retries then; otherwise the
    /// notification is done, `sent` or dead-lettered.
    pub fn record_attempt(
        &self,
        id: i64,
        attempts: u32,
        outcome: AttemptRecord<'_>,
        now_ms: i64,
    ) -> Result<(), AlertError> {
        let (delivery, next, error, status) = match outcome {
            AttemptRecord::Sent { http_status } => ("sent", None, None, Some(http_status)),
            AttemptRecord::Retry {
                next_attempt_ms,
                error,
                http_status,
            } => ("pending", Some(next_attempt_ms), Some(error), http_status),
            AttemptRecord::Dead { error, http_status } => ("dead", None, Some(error), http_status),
        };
        self.write(|tx| {
            tx.0.execute(
                "UPDATE alert_outbox SET attempts = ?2, delivery = ?3,
                        next_attempt_ms = COALESCE(?4, next_attempt_ms), last_error = ?5,
                        last_http_status = ?6, done_ms = CASE WHEN ?3 = 'pending' THEN NULL ELSE ?7 END
                 WHERE id = ?1",
                params![id, attempts, delivery, next, error, status.map(i64::from), now_ms],
            )?;
            Ok(())
        })
    }

    /// Rows changed through this store since it was opened: a snapshot is
    /// taken only when it moved.
    pub fn changes(&self) -> u64 {
        self.conn().total_changes()
    }

    /// The whole database as bytes (a SQLite file image), the highest
    /// outbox id in it and [`AlertStore::changes`] at that moment.
    pub fn snapshot(&self) -> Result<(Vec<u8>, i64, u64), AlertError> {
        let conn = self.conn();
        let max_id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM alert_outbox", [], |r| r.get(0))?;
        let data = conn.serialize(rusqlite::MAIN_DB)?.to_vec();
        Ok((data, max_id, conn.total_changes()))
    }

    /// Replaces the whole database (on disk) with `image`, a
    /// [`AlertStore::snapshot`] of this or another collector; checked
    /// first (a SQLite image of this schema version), left as it was if
    /// not. Returns the highest outbox id in it.
    pub fn restore(&self, image: &[u8]) -> Result<i64, AlertError> {
        let mut src = Connection::open_in_memory()?;
        src.deserialize_read_exact(rusqlite::MAIN_DB, image, image.len(), true)?;
        let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            return Err(AlertError::SchemaTooNew {
                path: PathBuf::from("the shared alert state"),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let max_id: i64 = src.query_row("SELECT COALESCE(MAX(id), 0) FROM alert_outbox", [], |r| r.get(0))?;
        let mut conn = self.conn();
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut conn)?;
            backup.run_to_completion(256, Duration::ZERO, None)?;
        }
        conn.execute_batch(SHARED_SCHEMA)?;
        Ok(max_id)
    }

    /// How many series are in each state (states without any left out).
    pub fn state_counts(&self) -> Result<Vec<(State, u64)>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM alert_series GROUP BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((state_of(r.get(0)?)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Dead-letters the pending notifications of receivers no longer
    /// configured (nothing would ever send them); returns how many.
    pub fn abandon_unknown_receivers(&self, known: &[String], now_ms: i64) -> Result<usize, AlertError> {
        let list = serde_json::to_string(known).expect("strings serialise");
        self.write(|tx| {
            Ok(tx.0.execute(
                "UPDATE alert_outbox SET delivery = 'dead', done_ms = ?2,
                        last_error = 'the receiver is no longer configured'
                 WHERE delivery = 'pending' AND receiver NOT IN (SELECT value FROM json_each(?1))",
                params![list, now_ms],
            )?)
        })
    }

    pub fn delivery_stats(&self) -> Result<Vec<DeliveryStats>, AlertError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT receiver, delivery, COUNT(*) FROM alert_outbox GROUP BY receiver, delivery ORDER BY receiver",
        )?;
        let mut out: Vec<DeliveryStats> = Vec::new();
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        for row in rows {
            let (receiver, delivery, n) = row?;
            if out.last().is_none_or(|s| s.receiver != receiver) {
                out.push(DeliveryStats {
                    receiver,
                    ..Default::default()
                });
            }
            let s = out.last_mut().expect("pushed above");
            match delivery.as_str() {
                "pending" => s.pending = n,
                "sent" => s.sent = n,
                _ => s.dead = n,
            }
        }
        Ok(out)
    }

    /// Deletes what is older than `before_ms`: alerts that ended (and their
    /// history), delivered or dead notifications, ended silences.
    pub fn prune(&self, before_ms: i64) -> Result<usize, AlertError> {
        self.write(|tx| {
            let c = tx.0;
            let mut n = c.execute(
                "DELETE FROM alert_events WHERE series_id IN
                   (SELECT id FROM alert_series WHERE state IN ('ok', 'resolved', 'insufficient_data')
                      AND since_ms < ?1)",
                [before_ms],
            )?;
            n += c.execute(
                "DELETE FROM alert_series WHERE state IN ('ok', 'resolved', 'insufficient_data')
                   AND since_ms < ?1
                   AND NOT EXISTS (SELECT 1 FROM alert_outbox o
                                   WHERE o.series_id = alert_series.id AND o.delivery = 'pending')",
                [before_ms],
            )?;
            n += c.execute("DELETE FROM alert_events WHERE at_ms < ?1", [before_ms])?;
            n += c.execute(
                "DELETE FROM alert_outbox WHERE delivery <> 'pending' AND done_ms < ?1",
                [before_ms],
            )?;
            n += c.execute("DELETE FROM alert_silences WHERE ends_ms < ?1", [before_ms])?;
            // Commands are read back for a day (shared.rs): kept longer.
            n += c.execute(
                "DELETE FROM alert_applied_commands WHERE at_ms < ?1",
                [before_ms.min(crate::time::now_ms() - 3 * crate::time::DAY_MS)],
            )?;
            Ok(n)
        })
    }
}

/// How an attempt ended, for [`AlertStore::record_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptRecord<'a> {
    Sent {
        http_status: u16,
    },
    Retry {
        next_attempt_ms: i64,
        error: &'a str,
        http_status: Option<u16>,
    },
    Dead {
        error: &'a str,
        http_status: Option<u16>,
    },
}

/// The write transaction of [`AlertStore::write`].
pub struct Tx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx<'_> {
    /// Acknowledges the current firing episode of alert `id`.
    pub fn ack(&self, id: i64, by: &str, comment: &str, now_ms: i64) -> Result<AckOutcome, AlertError> {
        let tx = self;
        let changed = tx.0.execute(
            "UPDATE alert_series SET acked_by = ?2, acked_at_ms = ?3, ack_comment = ?4,
                    ack_episode_ms = fired_at_ms
             WHERE id = ?1 AND state = 'firing'",
            params![id, by, now_ms, comment],
        )?;
        let row =
            tx.0.query_row(
                &format!("SELECT {SERIES_COLUMNS} FROM alert_series WHERE id = ?1"),
                [id],
                series_from_row,
            )
            .optional()?;
        let Some(row) = row else {
            return Ok(AckOutcome::NotFound);
        };
        if changed == 0 {
            return Ok(AckOutcome::NotFiring(row.machine.state));
        }
        tx.0.execute(
            "INSERT INTO alert_events (series_id, at_ms, event, value, threshold, sample_count,
                                       baseline, actor, comment)
             VALUES (?1, ?2, 'acknowledged', ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                now_ms,
                row.value,
                row.threshold,
                row.count as i64,
                row.baseline,
                by,
                comment
            ],
        )?;
        Ok(AckOutcome::Acked(Box::new(row)))
    }

    pub fn add_silence(
        &self,
        matchers: &BTreeMap<String, String>,
        starts_ms: i64,
        ends_ms: i64,
        created_by: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Silence, AlertError> {
        let json = serde_json::to_string(matchers).expect("a map of strings serialises");
        self.0.execute(
            "INSERT INTO alert_silences (matchers, starts_ms, ends_ms, created_by, comment, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![json, starts_ms, ends_ms, created_by, comment, now_ms],
        )?;
        Ok(Silence {
            id: self.0.last_insert_rowid(),
            matchers: matchers.clone(),
            starts_ms,
            ends_ms,
            created_by: created_by.into(),
            comment: comment.into(),
            created_ms: now_ms,
        })
    }

    /// Ends a silence at `now_ms`; `None` if there is no such silence.
    pub fn expire_silence(&self, id: i64, now_ms: i64) -> Result<Option<Silence>, AlertError> {
        self.0.execute(
            "UPDATE alert_silences SET ends_ms = MIN(ends_ms, ?2) WHERE id = ?1",
            params![id, now_ms],
        )?;
        let row = self
            .0
            .query_row(
                "SELECT id, matchers, starts_ms, ends_ms, created_by, comment, created_ms
                 FROM alert_silences WHERE id = ?1",
                [id],
                silence_from_row,
            )
            .optional()?;
        Ok(row)
    }

    /// Records that the shared command `id` (see `alerts/shared.rs`) is
    /// applied; false if it already was.
    pub fn mark_applied(&self, id: &str, at_ms: i64) -> Result<bool, AlertError> {
        let n = self.0.execute(
            "INSERT OR IGNORE INTO alert_applied_commands (id, at_ms) VALUES (?1, ?2)",
            params![id, at_ms],
        )?;
        Ok(n == 1)
    }
    /// Inserts a new series; returns its id.
    pub fn insert_series(
        &self,
        key: &SeriesKey,
        machine: &Machine,
        obs: &Observation,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<i64, AlertError> {
        self.0.execute(
            "INSERT INTO alert_series (fingerprint, rule, site, page, form_factor, state, since_ms,
                 evaluated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'ok', ?6, ?6)",
            params![
                key.fingerprint(),
                key.rule,
                key.site,
                key.page,
                form_factor_str(key.form_factor),
                now_ms
            ],
        )?;
        let id = self.0.last_insert_rowid();
        self.update_series(id, machine, obs, labels, now_ms)?;
        Ok(id)
    }

    /// Saves the machine and the evidence; leaves the acknowledgement
    /// columns alone (the API writes those).
    pub fn update_series(
        &self,
        id: i64,
        m: &Machine,
        obs: &Observation,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<(), AlertError> {
        let labels = serde_json::to_string(labels).expect("a map of strings serialises");
        self.0.execute(
            "UPDATE alert_series SET state = ?2, since_ms = ?3, pending_since_ms = ?4,
                    fired_at_ms = ?5, resolved_at_ms = ?6, last_notified_ms = ?7,
                    notifications = ?8, value = ?9, threshold = ?10, sample_count = ?11,
                    baseline = ?12, baseline_count = ?13, evaluated_ms = ?14, labels = ?15
             WHERE id = ?1",
            params![
                id,
                m.state.as_str(),
                m.since_ms,
                m.pending_since_ms,
                m.fired_at_ms,
                m.resolved_at_ms,
                m.last_notified_ms,
                m.notifications,
                obs.value,
                obs.threshold,
                obs.count as i64,
                obs.baseline,
                obs.baseline_count.map(|n| n as i64),
                now_ms,
                labels
            ],
        )?;
        Ok(())
    }

    pub fn add_transition(
        &self,
        series_id: i64,
        from: State,
        to: State,
        obs: &Observation,
        comment: Option<&str>,
        now_ms: i64,
    ) -> Result<(), AlertError> {
        self.0.execute(
            "INSERT INTO alert_events (series_id, at_ms, event, from_state, to_state, value,
                                       threshold, sample_count, baseline, comment)
             VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?7, ?8, ?9)",
            params![
                series_id,
                now_ms,
                to.as_str(),
                from.as_str(),
                obs.value,
                obs.threshold,
                obs.count as i64,
                obs.baseline,
                comment
            ],
        )?;
        Ok(())
    }

    /// Writes a notification to the outbox, due now. A second one with the
    /// same receiver and key is ignored (returns false).
    pub fn enqueue(
        &self,
        receiver: &str,
        series_id: i64,
        status: &str,
        idempotency_key: &str,
        notification_json: &str,
        now_ms: i64,
    ) -> Result<bool, AlertError> {
        let n = self.0.execute(
            "INSERT OR IGNORE INTO alert_outbox (receiver, series_id, status, idempotency_key,
                 notification, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![receiver, series_id, status, idempotency_key, notification_json, now_ms],
        )?;
        Ok(n == 1)
    }

    /// The receivers notifications of the series were written for.
    pub fn receivers_of(&self, series_id: i64) -> Result<Vec<String>, AlertError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT DISTINCT receiver FROM alert_outbox WHERE series_id = ?1 ORDER BY receiver")?;
        let rows = stmt.query_map([series_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// When a notification of the series was last written for `receiver`.
    pub fn last_enqueued_ms(&self, series_id: i64, receiver: &str) -> Result<Option<i64>, AlertError> {
        let v = self.0.query_row(
            "SELECT MAX(created_ms) FROM alert_outbox WHERE series_id = ?1 AND receiver = ?2",
            params![series_id, receiver],
            |r| r.get(0),
        )?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::state::Level;

    fn obs(value: f64) -> Observation {
        Observation {
            level: Level::Above,
            value: Some(value),
            threshold: Some(4000.0),
            count: 300,
            baseline: None,
            baseline_count: None,
        }
    }

    fn labels() -> BTreeMap<String, String> {
        [("alertname".to_string(), "lcp-p75".to_string())].into()
    }

    fn key() -> SeriesKey {
        SeriesKey {
            rule: "lcp-p75".into(),
            site: "shop.example".into(),
            page: "https://shop.example/cart".into(),
            form_factor: Some(FormFactor::Phone),
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let k = key();
        assert_eq!(k.fingerprint(), key().fingerprint());
        assert_eq!(k.fingerprint().len(), 16);
        let mut other = key();
        other.form_factor = None;
        assert_ne!(k.fingerprint(), other.fingerprint());
    }

    #[test]
    fn series_events_acks_and_outbox_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(dir.path().join("a.db"), None).unwrap();
        let mut m = Machine::new(1000);
        m.state = State::Firing;
        m.fired_at_ms = Some(1000);
        let id = store
            .write(|tx| {
                let id = tx.insert_series(&key(), &m, &obs(5000.0), &labels(), 1000)?;
                tx.add_transition(id, State::Ok, State::Firing, &obs(5000.0), None, 1000)?;
                assert!(tx.enqueue("ops", id, "firing", "k1", "{}", 1000)?);
                assert!(!tx.enqueue("ops", id, "firing", "k1", "{}", 1000)?, "same key twice");
                assert!(tx.enqueue("ops", id, "resolved", "k2", "{}", 1001)?);
                assert_eq!(tx.last_enqueued_ms(id, "ops")?, Some(1001));
                assert_eq!(tx.receivers_of(id)?, vec!["ops".to_string()]);
                Ok(id)
            })
            .unwrap();
        drop(store);
        // Reopened: everything is still there.
        let store = AlertStore::open(dir.path().join("a.db"), None).unwrap();
        let s = store.series(id).unwrap().unwrap();
        assert_eq!(
            (s.key.clone(), s.machine.clone(), s.value, s.count),
            (key(), m.clone(), Some(5000.0), 300)
        );
        assert_eq!(s.labels, labels());
        assert_eq!(store.list(&ListFilter::default()).unwrap().len(), 1);
        // The resolved notification waits for the firing one.
        let due = store.due("ops", 5000, 10).unwrap();
        assert_eq!(
            due.iter().map(|d| d.idempotency_key.as_str()).collect::<Vec<_>>(),
            ["k1"]
        );
        store
            .record_attempt(
                due[0].id,
                1,
                AttemptRecord::Retry {
                    next_attempt_ms: 9000,
                    error: "503",
                    http_status: Some(503),
                },
                5000,
            )
            .unwrap();
        assert!(store.due("ops", 5000, 10).unwrap().is_empty());
        assert_eq!(store.next_due_ms("ops").unwrap(), Some(9000), "k2 waits for k1");
        let due = store.due("ops", 9000, 10).unwrap();
        assert_eq!((due[0].idempotency_key.as_str(), due[0].attempts), ("k1", 1));
        store
            .record_attempt(due[0].id, 2, AttemptRecord::Sent { http_status: 200 }, 9000)
            .unwrap();
        let due = store.due("ops", 9000, 10).unwrap();
        assert_eq!(due[0].idempotency_key, "k2");
        store
            .record_attempt(
                due[0].id,
                1,
                AttemptRecord::Dead {
                    error: "400",
                    http_status: Some(400),
                },
                9000,
            )
            .unwrap();
        assert_eq!(
            store.delivery_stats().unwrap(),
            vec![DeliveryStats {
                receiver: "ops".into(),
                pending: 0,
                sent: 1,
                dead: 1
            }]
        );

        // Acks hold for the episode acknowledged only.
        assert_eq!(store.ack(999, "a", "", 2000).unwrap(), AckOutcome::NotFound);
        let AckOutcome::Acked(row) = store.ack(id, "alice", "looking", 2000).unwrap() else {
            panic!()
        };
        assert_eq!(row.ack.as_ref().unwrap().by, "alice");
        let events = store.events(id, 10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
            ["firing", "acknowledged"]
        );
        assert_eq!(events[1].actor.as_deref(), Some("alice"));
        m.fired_at_ms = Some(3000);
        store
            .write(|tx| tx.update_series(id, &m, &obs(4500.0), &labels(), 3000))
            .unwrap();
        assert_eq!(store.series(id).unwrap().unwrap().ack, None);
        m.state = State::Resolved;
        store
            .write(|tx| tx.update_series(id, &m, &obs(100.0), &labels(), 3000))
            .unwrap();
        assert_eq!(
            store.ack(id, "bob", "", 4000).unwrap(),
            AckOutcome::NotFiring(State::Resolved)
        );

        // Silences.
        let matchers: BTreeMap<String, String> = [("page".to_string(), "*/cart".to_string())].into();
        let s = store.add_silence(&matchers, 0, 10_000, "carol", "deploy", 0).unwrap();
        let labels: BTreeMap<String, String> = [("page".to_string(), "https://shop.example/cart".to_string())].into();
        assert!(s.matches(&labels) && s.active_at(5));
        assert!(!s.matches(&BTreeMap::new()));
        assert_eq!(store.silences(5).unwrap(), vec![s.clone()]);
        assert_eq!(store.expire_silence(s.id, 6).unwrap().unwrap().ends_ms, 6);
        assert!(store.silences(6).unwrap().is_empty());
        assert_eq!(store.expire_silence(12345, 6).unwrap(), None);

        // Notifications for a receiver gone from the config are given up.
        store
            .write(|tx| tx.enqueue("gone", id, "firing", "k3", "{}", 9000).map(|_| ()))
            .unwrap();
        assert_eq!(store.abandon_unknown_receivers(&["ops".to_string()], 9500).unwrap(), 1);
        assert_eq!(store.abandon_unknown_receivers(&["ops".to_string()], 9500).unwrap(), 0);
        assert!(store.due("gone", i64::MAX, 10).unwrap().is_empty());

        // Pruning leaves nothing of the resolved alert.
        assert!(store.prune(1_000_000).unwrap() > 0);
        assert_eq!(store.series(id).unwrap(), None);
        assert!(store.delivery_stats().unwrap().is_empty());
    }

    /// Alert state that an older collector kept in the metric store's file
    /// moves into `alerts.db` once; a newer schema is refused.
    #[test]
    fn legacy_alert_tables_are_imported_once_and_newer_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("vitalsign.db");
        {
            let old = Connection::open(&legacy).unwrap();
            old.pragma_update(None, "journal_mode", "WAL").unwrap();
            old.execute_batch(SCHEMA).unwrap();
            old.execute(
                "INSERT INTO alert_silences (matchers, starts_ms, ends_ms, created_by, comment, created_ms)
                 VALUES ('{\"site\":\"a.example\"}', 0, 9000000000000, 'carol', 'deploying', 5)",
                [],
            )
            .unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let store = AlertStore::open(&path, Some(&legacy)).unwrap();
        let silences = store.silences(1).unwrap();
        assert_eq!(silences.len(), 1);
        assert_eq!(
            (silences[0].created_by.as_str(), silences[0].comment.as_str()),
            ("carol", "deploying")
        );
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Opened again: not imported a second time.
        let store = AlertStore::open(&path, Some(&legacy)).unwrap();
        assert_eq!(store.silences(1).unwrap().len(), 1);
        store
            .conn()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        let err = AlertStore::open(&path, Some(&legacy))
            .err()
            .expect("newer schema refused");
        assert!(err.to_string().contains("newer than this collector knows"), "{err}");
    }
}
