//! Batched, durable inserts.
//!
//! Beacons queue for one batcher task, which inserts a batch every
//! [`super::ClickHouseOptions::batch_interval_ms`] or
//! [`super::ClickHouseOptions::batch_rows`] rows, whichever comes first.
//! Each batch gets its own deduplication token
//! (`insert_deduplication_token`), kept across retries and replays, so a
//! batch retried after a lost answer is stored once. A beacon is answered
//! once its batch is durable: inserted into ClickHouse, or, when ClickHouse
//! cannot take it, appended (and fsynced) to the local spill file. While the
//! spill holds batches, new batches go after them (order is kept), and the
//! replayer inserts them, oldest first, when ClickHouse is back. When both
//! fail the beacons get [`StoreError::Unavailable`] (503, `Retry-After`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::catalog::{self, PageRow};
use super::{RawRow, Shared};
use crate::store::{Inserted, NewBeacon, StoreError};

/// One insert waiting for its batch.
pub(super) struct Pending {
    pub rows: Vec<RawRow>,
    /// Pages admitted by this insert, written before its rows.
    pub pages: Vec<PageRow>,
    pub reports: u32,
    pub done: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// A batch as the spill file keeps it: one JSON line.
#[derive(Serialize, Deserialize)]
pub(super) struct SpilledBatch {
    pub token: String,
    pub rows: Vec<RawRow>,
    /// Pages first carried by the batch (written before its rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageRow>,
}

/// The rows of some beacons, in order, with their sequence numbers.
pub(super) fn rows_of(beacons: Vec<NewBeacon>, seq: &AtomicU64) -> Vec<RawRow> {
    let mut out = Vec::new();
    for b in beacons {
        for r in b.reports {
            out.push(RawRow {
                site: b.site.clone(),
                page: b.page.clone(),
                metric: r.metric.as_str().to_string(),
                report_id: r.report_id,
                value: r.value,
                delta: r.delta,
                navigation_type: r.navigation_type.as_str().to_string(),
                form_factor: b.form_factor.map_or("", |f| f.as_str()).to_string(),
                page_view_id: b.page_view_id.clone().unwrap_or_default(),
                session_id: b.session_id.clone().unwrap_or_default(),
                received_ms: b.received_at_ms,
                seq: seq.fetch_add(1, Ordering::Relaxed),
                attribution: r
                    .attribution
                    .as_ref()
                    .map(|a| serde_json::to_string(a).expect("attribution serialises"))
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// The spill file: batches not yet in ClickHouse, oldest first.
pub(super) struct Spill {
    path: PathBuf,
    /// Serialises appends and rewrites.
    lock: Mutex<()>,
    /// Batches in the file (0: empty or absent).
    pub batches: AtomicU64,
}

impl Spill {
    pub fn open(path: PathBuf) -> Spill {
        let batches = std::fs::File::open(&path)
            .map(|f| {
                std::io::BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .unwrap_or(0) as u64;
        Spill {
            path,
            lock: Mutex::new(()),
            batches: AtomicU64::new(batches),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_empty(&self) -> bool {
        self.batches.load(Ordering::SeqCst) == 0
    }

    /// Appends a batch and fsyncs; durable when it returns `Ok`.
    pub fn append(&self, batch: &SpilledBatch) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(batch).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _g = self.lock.lock().expect("spill lock poisoned");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()?;
        self.batches.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The batches in the file, oldest first (a torn last line, from a
    /// crash mid-append that was never acknowledged, is skipped).
    pub fn read(&self) -> std::io::Result<Vec<SpilledBatch>> {
        let _g = self.lock.lock().expect("spill lock poisoned");
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(b) => out.push(b),
                Err(e) => tracing::warn!(error = %e, "skipping a torn line of the ClickHouse spill file"),
            }
        }
        Ok(out)
    }

    /// Drops the first `n` batches (they are in ClickHouse now), keeping
    /// any appended since they were read.
    pub fn drop_first(&self, n: usize) -> std::io::Result<()> {
        let _g = self.lock.lock().expect("spill lock poisoned");
        let text = std::fs::read_to_string(&self.path)?;
        let rest: Vec<&str> = text.lines().filter(|l| !l.is_empty()).skip(n).collect();
        if rest.is_empty() {
            std::fs::remove_file(&self.path)?;
        } else {
            let tmp = self.path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            for l in &rest {
                f.write_all(l.as_bytes())?;
                f.write_all(b"\n")?;
            }
            f.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
        }
        self.batches.store(rest.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

/// Inserts one batch with its token.
pub(super) async fn insert_batch(
    shared: &Shared,
    token: &str,
    rows: &[RawRow],
) -> Result<(), clickhouse::error::Error> {
    let client = shared
        .client
        .clone()
        .with_setting("insert_deduplication_token", token)
        .with_setting("insert_deduplicate", "1")
        .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1");
    let mut insert = client.insert::<RawRow>("reports").await?;
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await
}

/// Inserts the batch's new pages into `pages`, then its rows.
async fn insert_with_pages(
    shared: &Shared,
    token: &str,
    rows: &[RawRow],
    pages: &[PageRow],
) -> Result<(), clickhouse::error::Error> {
    catalog::write(&shared.client, pages).await?;
    insert_batch(shared, token, rows).await
}

/// Tries a batch a few times (a lost answer, a restart of the server).
async fn insert_with_retries(shared: &Shared, token: &str, rows: &[RawRow], pages: &[PageRow]) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..shared.options.insert_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
        }
        match tokio::time::timeout(
            shared.options.insert_timeout,
            insert_with_pages(shared, token, rows, pages),
        )
        .await
        {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        shared.insert_failures.fetch_add(1, Ordering::Relaxed);
    }
    Err(last)
}

/// The batcher: collects queued inserts into batches and makes each
/// durable before answering its beacons.
pub(super) async fn run_batcher(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch_no = 0u64;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut rows = group[0].rows.len();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(shared.options.batch_interval_ms);
        while rows < shared.options.batch_rows {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => {
                    rows += p.rows.len();
                    group.push(p);
                }
                Ok(None) | Err(_) => break,
            }
        }
        batch_no += 1;
        let token = format!("{}-{batch_no}", shared.writer_id);
        let all: Vec<RawRow> = group.iter().flat_map(|p| p.rows.iter().cloned()).collect();
        let pages: Vec<PageRow> = group.iter().flat_map(|p| p.pages.iter().cloned()).collect();
        let outcome = make_durable(&shared, token, all, pages).await;
        shared.queue_depth.fetch_sub(group.len() as u64, Ordering::SeqCst);
        for p in group {
            let r = match &outcome {
                Ok(()) => Ok(Inserted {
                    new: p.reports,
                    replaced: 0,
                    deferred: 0,
                }),
                Err(e) => Err(StoreError::Unavailable(e.clone())),
            };
            let _ = p.done.send(r);
        }
    }
}

pub(super) async fn make_durable(
    shared: &Shared,
    token: String,
    rows: Vec<RawRow>,
    pages: Vec<PageRow>,
) -> Result<(), String> {
    if shared.spill.is_empty() {
        match insert_with_retries(shared, &token, &rows, &pages).await {
            Ok(()) => {
                shared.batches_inserted.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => tracing::warn!(error = %e, "ClickHouse insert failed: spilling the batch to disk"),
        }
    }
    let batch = SpilledBatch { token, rows, pages };
    let spill = shared.spill_handle();
    match tokio::task::spawn_blocking(move || spill.append(&batch)).await {
        Ok(Ok(())) => {
            shared.batches_spilled.fetch_add(1, Ordering::Relaxed);
            shared.replay_signal.notify_one();
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "ClickHouse is unavailable and the spill file cannot be written: {e}"
        )),
        Err(e) => Err(format!("spill task failed: {e}")),
    }
}

/// Replays the spill file into ClickHouse, oldest batch first, each with
/// its own token; a batch that fails stops the replay until the next try.
pub(super) async fn run_replayer(shared: Arc<Shared>) {
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if !shared.spill.is_empty() && shared.ready() {
            replay_once(&shared).await;
        }
        let _ = tokio::time::timeout(
            Duration::from_millis(shared.options.replay_interval_ms),
            shared.replay_signal.notified(),
        )
        .await;
    }
}

/// One pass over the spill; returns how many batches went in.
pub(super) async fn replay_once(shared: &Shared) -> usize {
    let spill = shared.spill_handle();
    let batches = match tokio::task::spawn_blocking(move || spill.read()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the ClickHouse spill file");
            return 0;
        }
        Err(_) => return 0,
    };
    let mut done = 0;
    for b in &batches {
        match tokio::time::timeout(
            shared.options.insert_timeout,
            insert_with_pages(shared, &b.token, &b.rows, &b.pages),
        )
        .await
        {
            Ok(Ok(())) => done += 1,
            _ => break,
        }
    }
    if done > 0 {
        let spill = shared.spill_handle();
        match tokio::task::spawn_blocking(move || spill.drop_first(done)).await {
            Ok(Ok(())) => {
                shared.batches_replayed.fetch_add(done as u64, Ordering::Relaxed);
                tracing::info!(batches = done, "replayed spilled batches into ClickHouse");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot shorten the ClickHouse spill file"),
            Err(_) => {}
        }
    }
    done
}
