//! Alert state shared by the collectors of one store (ClickHouse), so that
//! a collector taking over the evaluation lease goes on from where the
//! last holder was: no second "firing" for an alert already notified, no
//! notification lost in a dead collector's file.
//!
//! Every collector keeps its [`AlertStore`] (`alerts.db`) as a working
//! copy. Behind [`SharedState`]:
//!
//! - **snapshots**: the lease holder saves the whole alert database after
//!   every change, tagged with its lease epoch and a sequence number;
//!   readers take the one with the highest `(epoch, seq)`, so a stale
//!   holder (one that lost the lease and does not know yet) can never
//!   overwrite a newer holder's state. A collector that gains the lease
//!   loads the latest snapshot before it evaluates or delivers; the others
//!   load each new one, so their API reads show the shared state.
//! - **commands**: acknowledgements and silences posted to any collector
//!   are written to shared storage first, then applied by the holder (at
//!   once when the request reached it, else on its next tick); the ids of
//!   applied commands are part of the snapshot, so each is applied once
//!   even across a takeover.
//!
//! Delivery is at least once, each request with its `Idempotency-Key`
//! (stable across retries, restarts and collectors): a notification is
//! sent only once a snapshot holding it is saved, and an attempt's outcome
//! is saved with the next snapshot, so a holder dying between sending and
//! that save makes the next holder send the same notification, with the
//! same key, again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::{AckOutcome, AlertStore, Silence};
use super::AlertError;

/// Where a snapshot stands among all: higher wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The lease epoch its writer held.
    pub epoch: u64,
    /// Its writer's sequence number within the epoch.
    pub seq: u64,
}

/// One saved alert database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub version: Version,
    /// The lease holder that saved it.
    pub holder: String,
    pub taken_ms: i64,
    /// A SQLite file image of `alerts.db`.
    pub data: Vec<u8>,
}

/// A change asked of the alert state through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    Ack {
        alert: i64,
        by: String,
        comment: String,
    },
    AddSilence {
        matchers: BTreeMap<String, String>,
        starts_ms: i64,
        ends_ms: i64,
        created_by: String,
        comment: String,
    },
    ExpireSilence {
        silence: i64,
    },
}

/// A [`Command`] as stored: a unique id and when it was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub id: String,
    pub at_ms: i64,
    pub command: Command,
}

impl Submitted {
    /// A new command with a random-enough id.
    pub fn new(command: Command, at_ms: i64) -> Submitted {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_i64(at_ms);
        h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        Submitted {
            id: format!("{at_ms:x}-{:016x}", h.finish()),
            at_ms,
            command,
        }
    }
}

/// How long commands are read back: one not applied within this (no
/// collector held the lease for a whole day) is dropped.
pub const COMMANDS_WINDOW_MS: i64 = crate::time::DAY_MS;

/// What a command did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Ack(AckOutcome),
    Silence(Silence),
    Expired(Option<Silence>),
    /// Applied before (by this collector or by an earlier holder).
    Already,
}

/// Applies `cmd` once: with its id recorded in the same transaction.
pub fn apply(store: &AlertStore, cmd: &Submitted) -> Result<Applied, AlertError> {
    store.write(|tx| {
        if !tx.mark_applied(&cmd.id, cmd.at_ms)? {
            return Ok(Applied::Already);
        }
        Ok(match &cmd.command {
            Command::Ack { alert, by, comment } => Applied::Ack(tx.ack(*alert, by, comment, cmd.at_ms)?),
            Command::AddSilence {
                matchers,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            } => Applied::Silence(tx.add_silence(matchers, *starts_ms, *ends_ms, created_by, comment, cmd.at_ms)?),
            Command::ExpireSilence { silence } => Applied::Expired(tx.expire_silence(*silence, cmd.at_ms)?),
        })
    })
}

/// Storage of the alert state shared by all collectors. Failures are
/// `Err` with a message; callers retry on their next tick.
pub trait SharedState: Send + Sync {
    /// Saves `snapshot`. Never replaces a snapshot of a higher version.
    fn save(&self, snapshot: &Snapshot) -> Result<(), String>;

    /// The snapshot of the highest version, if higher than `newer_than`.
    fn latest(&self, newer_than: Option<Version>) -> Result<Option<Snapshot>, String>;

    /// Stores a command for the holder; durable when this returns.
    fn submit(&self, command: &Submitted) -> Result<(), String>;

    /// The commands asked since `since_ms`, oldest first.
    fn commands(&self, since_ms: i64) -> Result<Vec<Submitted>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_epoch_first() {
        let v = |epoch, seq| Version { epoch, seq };
        assert!(v(2, 0) > v(1, 99));
        assert!(v(2, 3) > v(2, 2));
        let mut all = [v(1, 5), v(3, 0), v(2, 9)];
        all.sort();
        assert_eq!(all.last(), Some(&v(3, 0)));
    }

    #[test]
    fn commands_apply_once_and_travel_in_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let a = AlertStore::open(dir.path().join("a.db"), None).unwrap();
        let cmd = Submitted::new(
            Command::AddSilence {
                matchers: [("site".to_string(), "x.example".to_string())].into(),
                starts_ms: 1_000,
                ends_ms: i64::MAX / 2,
                created_by: "ops".into(),
                comment: "deploy".into(),
            },
            1_000,
        );
        assert!(matches!(apply(&a, &cmd).unwrap(), Applied::Silence(_)));
        assert_eq!(apply(&a, &cmd).unwrap(), Applied::Already);
        assert_eq!(a.silences(2_000).unwrap().len(), 1);
        // Another collector restores the snapshot: the command is known
        // there as applied.
        let (image, _, _) = a.snapshot().unwrap();
        let b = AlertStore::open(dir.path().join("b.db"), None).unwrap();
        b.restore(&image).unwrap();
        assert_eq!(b.silences(2_000).unwrap().len(), 1);
        assert_eq!(apply(&b, &cmd).unwrap(), Applied::Already);
        // ... and it is on disk: reopened, still there.
        drop(b);
        let b = AlertStore::open(dir.path().join("b.db"), None).unwrap();
        assert_eq!(b.silences(2_000).unwrap().len(), 1);
        let expire = Submitted::new(Command::ExpireSilence { silence: 1 }, 3_000);
        assert!(matches!(apply(&b, &expire).unwrap(), Applied::Expired(Some(_))));
        assert!(b.silences(3_000).unwrap().is_empty());
        // Not an alert database: refused, the store unchanged.
        assert!(b.restore(b"not sqlite").is_err());
        assert_eq!(b.silences(2_000).unwrap().len(), 1);
    }

    #[test]
    fn commands_round_trip_as_json() {
        let c = Submitted::new(
            Command::Ack {
                alert: 7,
                by: "me".into(),
                comment: String::new(),
            },
            5,
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"kind\":\"ack\""), "{json}");
        assert_eq!(serde_json::from_str::<Submitted>(&json).unwrap(), c);
        assert_ne!(Submitted::new(c.command.clone(), 5).id, c.id);
    }
}
