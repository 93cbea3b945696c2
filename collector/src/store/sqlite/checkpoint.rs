//! WAL checkpoints on a thread of their own, and when the writer does one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::schema::{open_connection, Role};
use crate::store::wal;
use crate::store::StoreError;

/// How often the checkpointer thread copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// How often the writer itself checkpoints, between two groups. Its
/// checkpoint has little left to copy (the checkpointer thread did most),
/// but, no commit running meanwhile, it can finish: then the next commit
/// starts the WAL over instead of growing it without end.
pub(super) const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// The writer checkpoints within this long after the checkpointer thread
/// finished one, when what is left to copy and fsync is least (a few
/// milliseconds of commits instead of up to [`CHECKPOINT_EVERY`]'s: this
/// checkpoint stalls every beacon waiting for the writer)...
pub(super) const WRITER_CHECKPOINT_WINDOW: Duration = Duration::from_millis(10);
/// ... unless none came in this long.
pub(super) const WRITER_CHECKPOINT_LATEST: Duration = Duration::from_secs(10);

/// When the checkpointer thread last finished a checkpoint.
#[derive(Clone)]
pub(super) struct CheckpointClock {
    pub(super) epoch: Instant,
    /// Milliseconds since `epoch`, plus one; 0: never.
    pub(super) done: Arc<AtomicU64>,
}

impl CheckpointClock {
    pub(super) fn new() -> CheckpointClock {
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
    pub(super) fn within(&self, window: Duration) -> bool {
        let done = self.done.load(Ordering::Relaxed);
        done > 0 && (self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(done) <= window.as_millis() as u64
    }
}

/// Checkpoints in a thread of their own, so that the writer never waits
/// for one (a checkpoint fsyncs; inside a commit it would stall every
/// beacon of the group). PASSIVE: it copies what it can without blocking
/// the writer or readers.
pub(super) fn start_checkpointer(
    path: &Path,
    clock: CheckpointClock,
) -> Result<(std::sync::mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let conn = open_connection(path, Role::Checkpointer)?;
    let mut resident = wal::Resident::new(path);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            // Failures repeat every 50 ms while they last (a full disk):
            // logged when they start, then once a minute.
            let mut failing_since: Option<std::time::Instant> = None;
            let mut logged = std::time::Instant::now();
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                match checkpoint(&conn) {
                    Ok(()) => {
                        clock.mark();
                        resident.refresh();
                        if failing_since.take().is_some() {
                            tracing::info!("checkpoints succeed again");
                        }
                    }
                    Err(e) => {
                        if failing_since.is_none() || logged.elapsed() >= Duration::from_secs(60) {
                            tracing::warn!(error = %e, "checkpoint failed");
                            logged = std::time::Instant::now();
                        }
                        failing_since.get_or_insert_with(std::time::Instant::now);
                    }
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// A PASSIVE checkpoint: copies what it can without blocking the writer or
/// readers.
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
