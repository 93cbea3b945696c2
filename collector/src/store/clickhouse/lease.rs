//! [`Lease`] on ClickHouse, safe under races without Keeper: a claim of
//! epoch `e` is an insert with the deduplication token `lease:NAME:e`, so of
//! collectors racing for the same epoch exactly one row is stored (the
//! others' inserts are dropped as duplicates of the first), and every
//! claimant then reads the same holder back. The holder renews by claiming
//! the next epoch once half the term has passed; the others claim it only
//! after the current term has expired. A holder counts itself as holding
//! only until [`SAFETY_MS`] before the end of its term (clock skew between
//! collectors must stay below that).
//!
//! On a replicated cluster the `leases` table is a `ReplicatedMergeTree`,
//! whose deduplication goes through Keeper, and the reads use
//! `select_sequential_consistency` (see `docs/clickhouse.md`).

use std::sync::Mutex;

use serde::Deserialize;

use crate::alerts::lease::Lease;

/// Margin before the end of a term at which a holder stops counting on it.
pub const SAFETY_MS: i64 = 2_000;

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Claim {
    epoch: u64,
    holder: String,
    expires_ms: i64,
}

pub struct ClickHouseLease {
    client: clickhouse::Client,
    handle: tokio::runtime::Handle,
    name: String,
    holder: String,
    term_ms: i64,
    /// The end and epoch of our current term, as last read.
    held_until: Mutex<Option<(i64, u64)>>,
}

impl ClickHouseLease {
    pub(super) fn new(
        client: clickhouse::Client,
        handle: tokio::runtime::Handle,
        name: &str,
        holder: String,
        term_ms: i64,
    ) -> ClickHouseLease {
        ClickHouseLease {
            client: client.with_setting("select_sequential_consistency", "1"),
            handle,
            name: name.to_string(),
            holder,
            term_ms: term_ms.max(3 * SAFETY_MS),
            held_until: Mutex::new(None),
        }
    }

    async fn latest(&self) -> Result<Option<Claim>, clickhouse::error::Error> {
        self.client
            .query("SELECT epoch, holder, expires_ms FROM leases WHERE name = ? ORDER BY epoch DESC LIMIT 1")
            .bind(&self.name)
            .fetch_optional()
            .await
    }

    async fn claim(&self, epoch: u64, now_ms: i64) -> Result<Claim, clickhouse::error::Error> {
        let token = format!("lease:{}:{epoch}", self.name);
        self.client
            .clone()
            .with_setting("insert_deduplication_token", token)
            .with_setting("insert_deduplicate", "1")
            .query("INSERT INTO leases (name, epoch, holder, expires_ms, claimed_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(&self.name)
            .bind(epoch)
            .bind(&self.holder)
            .bind(now_ms + self.term_ms)
            .bind(now_ms)
            .execute()
            .await?;
        // Whoever was first: the row of this epoch.
        self.client
            .query("SELECT epoch, holder, expires_ms FROM leases WHERE name = ? AND epoch = ? ORDER BY claimed_ms, holder LIMIT 1")
            .bind(&self.name)
            .bind(epoch)
            .fetch_one()
            .await
    }

    pub(super) async fn hold_async(&self, now_ms: i64) -> Result<bool, clickhouse::error::Error> {
        let latest = self.latest().await?;
        let next = match &latest {
            None => 0,
            Some(c) if c.holder == self.holder => {
                if c.expires_ms - now_ms > self.term_ms / 2 {
                    *self.held_until.lock().expect("lease lock poisoned") = Some((c.expires_ms, c.epoch));
                    return Ok(now_ms < c.expires_ms - SAFETY_MS);
                }
                c.epoch + 1
            }
            Some(c) if c.expires_ms <= now_ms => c.epoch + 1,
            Some(_) => {
                *self.held_until.lock().expect("lease lock poisoned") = None;
                return Ok(false);
            }
        };
        let won = self.claim(next, now_ms).await?;
        let ours = won.holder == self.holder;
        *self.held_until.lock().expect("lease lock poisoned") = ours.then_some((won.expires_ms, won.epoch));
        Ok(ours && now_ms < won.expires_ms - SAFETY_MS)
    }
}

impl Lease for ClickHouseLease {
    fn hold(&self, now_ms: i64) -> Result<bool, String> {
        let handle = self.handle.clone();
        let held = std::thread::scope(|s| {
            s.spawn(|| handle.block_on(self.hold_async(now_ms)))
                .join()
                .map_err(|_| "the lease check panicked".to_string())
        })?;
        match held {
            Ok(h) => Ok(h),
            Err(e) => {
                // Unreachable storage: count on the term read last, no more.
                let until = *self.held_until.lock().expect("lease lock poisoned");
                if until.is_some_and(|(u, _)| now_ms < u - SAFETY_MS) {
                    return Ok(true);
                }
                Err(format!("ClickHouse: {e}"))
            }
        }
    }

    fn holder(&self) -> &str {
        &self.holder
    }

    fn epoch(&self) -> Option<u64> {
        self.held_until.lock().expect("lease lock poisoned").map(|(_, e)| e)
    }
}
