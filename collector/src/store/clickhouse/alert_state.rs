//! [`SharedState`] on ClickHouse: the alert state shared by the collectors
//! of one database (see `alerts/shared.rs`).
//!
//! - `alert_snapshots`: the lease holder's snapshots of its alert database
//!   (deflated, hex), a `ReplacingMergeTree` on an empty key whose version
//!   is `(epoch, seq)` as one number, so merges keep only the latest;
//!   readers take the row of the highest `(epoch, seq)`, so that a stale
//!   holder's late save (its epoch is lower than the new holder's) never
//!   wins.
//! - `alert_commands`: acknowledgements and silences asked through any
//!   collector's API, for the holder to apply (a TTL drops them after a
//!   few days; the holder reads a day back).
//!
//! Reads use `select_sequential_consistency`, as the lease does.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::alerts::shared::{SharedState, Snapshot, Submitted, Version};

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
struct SnapshotRow {
    epoch: u64,
    seq: u64,
    holder: String,
    taken_ms: i64,
    data: String,
}

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
struct CommandRow {
    id: String,
    at_ms: i64,
    body: String,
}

pub struct ClickHouseSharedState {
    client: clickhouse::Client,
    handle: tokio::runtime::Handle,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("not a hex digit: {c:?}")),
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    b.chunks(2).map(|p| Ok((digit(p[0])? << 4) | digit(p[1])?)).collect()
}

/// Deflated (an alert database compresses well), then hex: `String`
/// columns are read back as UTF-8.
pub(super) fn encode(data: &[u8]) -> String {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).expect("writing to a Vec");
    hex(&z.finish().expect("writing to a Vec"))
}

pub(super) fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(&unhex(text)?[..])
        .read_to_end(&mut out)
        .map_err(|e| format!("a corrupt snapshot: {e}"))?;
    Ok(out)
}

impl ClickHouseSharedState {
    pub(super) fn new(client: clickhouse::Client, handle: tokio::runtime::Handle) -> ClickHouseSharedState {
        ClickHouseSharedState {
            client: client.with_setting("select_sequential_consistency", "1"),
            handle,
        }
    }

    /// Runs `f` on the engine's runtime from a plain thread (the
    /// evaluator, actix's blocking pool).
    fn block<T: Send>(
        &self,
        f: impl std::future::Future<Output = Result<T, clickhouse::error::Error>> + Send,
    ) -> Result<T, String> {
        let handle = self.handle.clone();
        std::thread::scope(|s| {
            s.spawn(|| handle.block_on(f))
                .join()
                .map_err(|_| "the ClickHouse call panicked".to_string())
        })?
        .map_err(|e| format!("ClickHouse: {e}"))
    }
}

impl SharedState for ClickHouseSharedState {
    fn save(&self, snapshot: &Snapshot) -> Result<(), String> {
        let row = SnapshotRow {
            epoch: snapshot.version.epoch,
            seq: snapshot.version.seq,
            holder: snapshot.holder.clone(),
            taken_ms: snapshot.taken_ms,
            data: encode(&snapshot.data),
        };
        self.block(async {
            let mut insert = self.client.insert::<SnapshotRow>("alert_snapshots").await?;
            insert.write(&row).await?;
            insert.end().await
        })
    }

    fn latest(&self, newer_than: Option<Version>) -> Result<Option<Snapshot>, String> {
        let mut sql = String::from("SELECT epoch, seq, holder, taken_ms, data FROM alert_snapshots");
        if let Some(v) = newer_than {
            sql.push_str(&format!(" WHERE (epoch, seq) > ({}, {})", v.epoch, v.seq));
        }
        sql.push_str(" ORDER BY epoch DESC, seq DESC LIMIT 1");
        let row: Option<SnapshotRow> = self.block(self.client.query(&sql).fetch_optional())?;
        row.map(|r| {
            Ok(Snapshot {
                version: Version {
                    epoch: r.epoch,
                    seq: r.seq,
                },
                holder: r.holder,
                taken_ms: r.taken_ms,
                data: decode(&r.data)?,
            })
        })
        .transpose()
    }

    fn submit(&self, command: &Submitted) -> Result<(), String> {
        let row = CommandRow {
            id: command.id.clone(),
            at_ms: command.at_ms,
            body: serde_json::to_string(command).expect("a command serialises"),
        };
        self.block(async {
            let mut insert = self.client.insert::<CommandRow>("alert_commands").await?;
            insert.write(&row).await?;
            insert.end().await
        })
    }

    fn commands(&self, since_ms: i64) -> Result<Vec<Submitted>, String> {
        let rows: Vec<CommandRow> = self.block(
            self.client
                .query("SELECT id, at_ms, body FROM alert_commands WHERE at_ms >= ? ORDER BY at_ms, id")
                .bind(since_ms)
                .fetch_all(),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match serde_json::from_str(&r.body) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(command = %r.id, error = %e, "an unreadable alert command: skipped");
                    None
                }
            })
            .collect())
    }
}
