//! The writer thread: group commits of beacons, dedup of re-reports, and
//! saving the aggregates at shutdown.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use beacon::{Attribution, MetricName, NavigationType};
use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{page_id, site_id, Catalog, NewIds};
use super::checkpoint::{
    checkpoint, start_checkpointer, CheckpointClock, WRITER_CHECKPOINT_EVERY, WRITER_CHECKPOINT_LATEST,
    WRITER_CHECKPOINT_WINDOW,
};
use super::intake;
use super::open::take_group;
use super::schema::{classify, metric_code, nav_code, resolution_code, space_low, write_tx, MAINTENANCE_CACHE_KIB};
use super::{Insert, Shared, SqliteOptions};
use crate::store::attribution_keys::{self, Admit, AttributionKeys, Field};
use crate::store::cells::{ff_code, Place};
use crate::store::ids::{IdKey, Location, PendingIds, ReportIds};
use crate::store::rows::{self, Slot};
use crate::store::views::{ViewDelta, Views};
use crate::store::{Inserted, NewBeacon, NewReport, StoreError};
use crate::time::{now_ms, Resolution};

const INSERT_SQL: &str = "INSERT INTO beacons
    (id, page_id, form_factor, received_at, page_view_id, session_id, reports, site_id, attribution)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Write groups (and writer checkpoints) slower than this are logged at
/// debug level, with where the time went.
const SLOW_GROUP: Duration = Duration::from_millis(20);
/// How often the writer wakes up when idle, to start retention on time.
const TICK: Duration = Duration::from_secs(30);

/// A change to the aggregates, applied once its transaction is committed.
enum Delta {
    Add(Place, f64),
    Remove(Place, f64),
}

/// How often the writer tries a small write while the disk is full, to
/// notice when space is back even if no beacons arrive (`/readyz` turns
/// load balancers away meanwhile).
const DISK_PROBE_EVERY: Duration = Duration::from_secs(1);

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) shared: Arc<Shared>,
    pub(super) options: SqliteOptions,
    /// Whether this run has marked the saved aggregates stale (the first
    /// write does, see [`Writer::begin`]); nothing is written before.
    begun: bool,
    /// The aggregates were rebuilt at start-up: the saved ones are deleted
    /// when this run begins writing.
    rebuilt: bool,
    /// Beacons taken into the intake at start-up are still to be written;
    /// newer ones wait for them (a re-report must follow its first report).
    intake_pending: bool,
    /// The last write failed for lack of space (mirrors
    /// [`Shared::disk_full`], which the writer clears once a write works).
    disk_full: bool,
    /// Rows with an id below this may still lack their site
    /// (`backfill.rs`); 1: none.
    pub(super) backfill_below: i64,
    /// The checkpoint thread, stopped before the final save.
    checkpointer: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
    /// The cut-off of a retention pass under way.
    pub(super) retention: Option<i64>,
    /// The clock hour of the last retention pass.
    pub(super) retention_hour: i64,
    pub(super) last_checkpoint: Instant,
    /// When the checkpointer thread last finished one.
    pub(super) checkpoints: CheckpointClock,
    /// The clock hour the rolling window merges were last moved to.
    pub(super) rolled_hour: i64,
    /// Where each stored report id is, for dedup.
    pub(super) ids: ReportIds,
    /// The id of the next beacon row (the writer numbers them itself, so
    /// that a report's location is known before its row is written).
    pub(super) next_row: i64,
}

impl Writer {
    /// The writer for a loaded store; starts the checkpoint thread.
    pub(super) fn new(
        conn: Connection,
        shared: &Arc<Shared>,
        options: SqliteOptions,
        ids: ReportIds,
        last_row: i64,
        rebuilt: bool,
    ) -> Result<Writer, StoreError> {
        let clock = CheckpointClock::new();
        let checkpointer = start_checkpointer(&shared.path, clock.clone())?;
        let mut writer = Writer {
            conn,
            shared: shared.clone(),
            options,
            begun: false,
            rebuilt,
            intake_pending: true,
            disk_full: shared.disk_full().is_some(),
            checkpointer: Some(checkpointer),
            retention: None,
            retention_hour: i64::MIN,
            last_checkpoint: Instant::now(),
            checkpoints: clock,
            rolled_hour: Resolution::Hour.bucket(now_ms()),
            ids,
            next_row: last_row + 1,
            backfill_below: 1,
        };
        writer.backfill_below = writer.load_backfill()?;
        Ok(writer)
    }

    /// Group commits until every sender is gone (close, or the last
    /// `Sqlite` dropped) and the queue is empty; then saves the aggregates.
    pub(super) fn run(mut self, rx: Receiver<Insert>) {
        let mut group = Vec::with_capacity(self.options.max_group);
        self.write_intake();
        // The first retention pass starts at once (then every hour).
        if let Err(e) = self.maintain() {
            tracing::error!(error = %e, "retention failed");
            self.retention = None;
        }
        loop {
            let wait = if self.retention.is_some() || self.backfill_below > 1 {
                Duration::from_millis(1)
            } else if self.disk_full {
                DISK_PROBE_EVERY
            } else {
                TICK
            };
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    take_group(first, &rx, self.options.max_group, &mut group, &self.shared);
                    self.commit_group(&mut group, None);
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
                Err(RecvTimeoutError::Timeout) if self.disk_full => self.probe_space(),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = self.maintain() {
                tracing::error!(error = %e, "retention failed");
                self.retention = None;
            }
        }
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            let _ = thread.join();
        }
        // Nothing written this run (or not even the intake): the saved
        // aggregates are as they were.
        if self.begun && !self.intake_pending {
            if let Err(e) = self.save_aggregates() {
                tracing::error!(error = %e, "cannot save aggregates; they will be rebuilt at start-up");
            }
        }
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "final checkpoint failed");
        }
    }

    /// Before this run's first write: marks the saved aggregates stale
    /// (saved again at close), deleting them if they were rebuilt. A crash
    /// from then on rebuilds them at the next start.
    fn begin(&mut self) -> Result<(), StoreError> {
        if self.begun {
            return Ok(());
        }
        let tx = write_tx(&mut self.conn)?;
        if self.rebuilt {
            tx.execute("DELETE FROM aggregates", [])?;
            tx.execute("DELETE FROM exact_values", [])?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('aggregates_clean', 0)
             ON CONFLICT (key) DO UPDATE SET value = 0",
            [],
        )?;
        tx.commit()?;
        self.begun = true;
        Ok(())
    }

    /// Writes the beacons taken into the intake at start-up, oldest first,
    /// each chunk deleted from it in the transaction that stores it. On a
    /// failure (a full disk) they stay, and are tried again before the
    /// next group.
    fn write_intake(&mut self) {
        let mut written = 0usize;
        while self.intake_pending {
            let chunk = match intake::read_chunk(&self.conn, self.options.max_group) {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the intake");
                    return;
                }
            };
            let (beacons, Some(last)) = chunk else {
                self.intake_pending = false;
                break;
            };
            let mut answers = Vec::with_capacity(beacons.len());
            let mut group: Vec<Insert> = beacons
                .into_iter()
                .map(|b| {
                    let (ack, answer) = tokio::sync::oneshot::channel();
                    answers.push(answer);
                    Insert { beacons: vec![b], ack }
                })
                .collect();
            if !self.commit_group(&mut group, Some(last)) {
                return; // it stays in the intake
            }
            for mut answer in answers {
                match answer.try_recv() {
                    Ok((Ok(_), _)) => written += 1,
                    // Refused alone: a limit lowered since it was taken.
                    Ok((Err(e), _)) => tracing::warn!(error = %e, "beacon from the intake refused"),
                    Err(_) => {}
                }
            }
        }
        if written > 0 {
            tracing::info!(beacons = written, "wrote the beacons received while loading");
        }
    }

    /// While the disk is full: a small write, and enough free space, mean
    /// it is not any more.
    fn probe_space(&mut self) {
        let probe = (|| -> Result<(), StoreError> {
            let tx = write_tx(&mut self.conn)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('space_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                [now_ms()],
            )?;
            tx.commit()?;
            Ok(())
        })();
        if probe.is_ok() && !space_low(&self.shared.path) {
            self.disk_full = false;
            self.shared.set_disk_full(None);
        }
    }

    /// Writes each queued beacon, commits once, acknowledges each, then
    /// updates the aggregates. An SQL error fails the whole group (nothing
    /// of it is kept); a beacon refused by a limit fails alone.
    /// `intake_upto`: the group comes from the intake, whose rows up to
    /// this sequence number go in the same transaction. Whether the group
    /// was committed.
    fn commit_group(&mut self, group: &mut Vec<Insert>, intake_upto: Option<i64>) -> bool {
        let ready = self.begin().and_then(|()| {
            if intake_upto.is_none() && self.intake_pending {
                self.write_intake();
                if self.intake_pending {
                    return Err(StoreError::DiskFull(self.shared.disk_full().unwrap_or_else(|| {
                        "the beacons received while loading could not be written yet".into()
                    })));
                }
            }
            Ok(())
        });
        if let Err(e) = ready {
            self.failed(group, e);
            return false;
        }
        let mut results: Vec<Result<Inserted, StoreError>> = Vec::with_capacity(group.len());
        let mut deltas = Vec::new();
        let mut view_deltas = Vec::new();
        let mut named = Named::default();
        let mut new_ids = NewIds::default();
        let mut pending = PendingIds::default();
        let shared = &self.shared;
        let options = &self.options;
        let ids = &self.ids;
        let next_row = &mut self.next_row;
        let started = Instant::now();
        let mut timings = [Duration::ZERO; 3];
        let committed = (|| -> Result<(), StoreError> {
            let tx = write_tx(&mut self.conn)?;
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
                    views: &state.views,
                    view_deltas: &mut view_deltas,
                    attribution_keys: &state.attribution_keys,
                    named: &mut named,
                    looked_up: Vec::new(),
                };
                for insert in group.iter() {
                    results.push(w.beacons(&insert.beacons)?);
                }
            }
            if let Some(upto) = intake_upto {
                tx.execute("DELETE FROM intake WHERE seq <= ?1", [upto])?;
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
                insert.answer(result);
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
            for d in view_deltas.drain(..) {
                state.views.add(&d);
            }
            for (page, field, key, day) in named.seen.drain(..) {
                state.attribution_keys.record(page, field, key, day);
            }
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
        match committed {
            Ok(()) => {
                if self.disk_full {
                    self.disk_full = false;
                    self.shared.set_disk_full(None);
                }
                true
            }
            Err(e) => {
                self.failed(group, e);
                false
            }
        }
    }

    /// Answers every insert of a group that could not be committed.
    fn failed(&mut self, group: &mut Vec<Insert>, e: StoreError) {
        let e = classify(e, &self.shared.path);
        tracing::error!(error = %e, beacons = group.len(), "cannot commit beacons");
        if let StoreError::DiskFull(why) = &e {
            self.disk_full = true;
            self.shared.set_disk_full(Some(why.clone()));
        }
        for insert in group.drain(..) {
            insert.answer(Err(e.duplicate()));
        }
    }

    /// Moves the rolling window merges when the hour changes, starts an
    /// hourly retention pass, and advances a pass under way by one chunk.
    fn maintain(&mut self) -> Result<(), StoreError> {
        let now = now_ms();
        if self.begin().is_err() {
            return Ok(()); // no space yet: nothing to maintain before the first write
        }
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
        } else if self.backfill_below > 1 {
            if let Err(e) = self.backfill_step() {
                tracing::error!(error = %e, "filling the site of older rows failed; tried again next time");
            }
        }
        Ok(())
    }
}

impl Writer {
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
        let tx = write_tx(&mut self.conn)?;
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
    /// The page views (keys made with `views`), applied once committed.
    views: &'a Views,
    view_deltas: &'a mut Vec<ViewDelta>,
    /// The values attribution names (the caps), and those this group
    /// stores, recorded once committed.
    attribution_keys: &'a AttributionKeys,
    named: &'a mut Named,
    /// A beacon's report id keys and where `ids` has them (reused buffer).
    looked_up: Vec<(IdKey, Option<Location>)>,
}

/// The attribution values a group stores: new ones (counted against the
/// caps while the group is written) and all, with their day.
#[derive(Default)]
pub(super) struct Named {
    new: HashSet<(u32, Field, u64)>,
    new_per_page: HashMap<(u32, Field), usize>,
    seen: Vec<(u32, Field, u64, i64)>,
}

/// A beacon row being filled.
struct NewRow<'b> {
    id: i64,
    beacon: &'b NewBeacon,
    site: u32,
    page: u32,
    blob: Vec<u8>,
    slots: usize,
    /// Each slot's attribution (see [`rows::encode_attributions`]), with
    /// the caps of [`AttributionKeys`] applied.
    attribution: Vec<Option<Cow<'b, Attribution>>>,
}

impl NewRow<'_> {
    pub(super) fn place(&self, metric: MetricName) -> Place {
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
    pub(super) fn beacons(&mut self, beacons: &[NewBeacon]) -> Result<Result<Inserted, StoreError>, StoreError> {
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
            self.view_deltas.push(ViewDelta {
                key: b.page_view_id.as_deref().map(|pv| self.views.key(site, pv)),
                site,
                page,
                ff: ff_code(b.form_factor),
                at_ms: b.received_at_ms,
                nav: b
                    .reports
                    .first()
                    .map_or(NavigationType::Navigate, |r| r.navigation_type),
            });
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
                    attribution: Vec::new(),
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
    pub(super) fn report<'b>(
        &mut self,
        row: &mut NewRow<'b>,
        r: &'b NewReport,
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
        let capped = self.capped(row.page, r.attribution.as_ref(), row.beacon.received_at_ms);
        row.attribution.push(capped);
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
    /// A re-report that carries attribution replaces the stored one too
    /// (it describes the new value: the later interaction, the grown
    /// window of shifts).
    pub(super) fn replace<'b>(
        &mut self,
        row: &mut NewRow<'b>,
        key: IdKey,
        stored: Option<Location>,
        metric: u8,
        r: &'b NewReport,
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
            if r.attribution.is_some() {
                let capped = self.capped(row.page, r.attribution.as_ref(), row.beacon.received_at_ms);
                if let Some(slot) = row.attribution.get_mut(at.slot as usize) {
                    *slot = capped;
                }
            }
            (row.place(r.metric), old)
        } else {
            type Stored = (u32, u8, i64, Vec<u8>, Option<String>);
            let stored: Option<Stored> = self
                .tx
                .prepare_cached(
                    "SELECT page_id, form_factor, received_at, reports, attribution FROM beacons WHERE id = ?1",
                )?
                .query_row([at.row], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })
                .optional()?;
            let Some((page, ff, received_at_ms, mut blob, attribution)) = stored else {
                return Ok(false);
            };
            let Some(old) = rows::replace_value(&mut blob, at.slot as usize, metric, &r.report_id, r.value, r.delta)
            else {
                // Another id with the same key (a hash collision): `r` is new.
                return Ok(false);
            };
            match &r.attribution {
                None => self
                    .tx
                    .prepare_cached("UPDATE beacons SET reports = ?1 WHERE id = ?2")?
                    .execute(params![blob, at.row])?,
                Some(_) => {
                    let a = self.capped(page, r.attribution.as_ref(), received_at_ms);
                    let mut all = attribution
                        .as_deref()
                        .map(rows::decode_attributions)
                        .unwrap_or_default();
                    if all.len() <= at.slot as usize {
                        all.resize(at.slot as usize + 1, None);
                    }
                    all[at.slot as usize] = a.map(Cow::into_owned);
                    let refs: Vec<Option<&Attribution>> = all.iter().map(Option::as_ref).collect();
                    self.tx
                        .prepare_cached("UPDATE beacons SET reports = ?1, attribution = ?3 WHERE id = ?2")?
                        .execute(params![blob, at.row, rows::encode_attributions(&refs)])?
                }
            };
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
            row.site,
            rows::encode_attributions(&row.attribution.iter().map(Option::as_deref).collect::<Vec<_>>()),
        ])?;
        Ok(())
    }

    /// `a` with the caps applied: a value of a capped field that the page
    /// has no room for becomes `(other)`; the values kept are noted in
    /// `named`, to be recorded once committed.
    fn capped<'b>(&mut self, page: u32, a: Option<&'b Attribution>, at_ms: i64) -> Option<Cow<'b, Attribution>> {
        let mut out = Cow::Borrowed(a?);
        let day = Resolution::Day.bucket(at_ms);
        for field in Field::ALL {
            let Some(value) = field.get(&out).filter(|v| *v != attribution_keys::OTHER) else {
                continue;
            };
            let key = self.attribution_keys.key(value);
            let pending = self.named.new_per_page.get(&(page, field)).copied().unwrap_or(0);
            let fresh = !self.named.new.contains(&(page, field, key));
            match (
                self.attribution_keys
                    .admits(page, field, key, pending, self.named.new.len()),
                fresh,
            ) {
                // Known, or let in earlier in this group.
                (Admit::Known, _) | (_, false) => {}
                (Admit::New, true) => {
                    self.named.new.insert((page, field, key));
                    *self.named.new_per_page.entry((page, field)).or_default() += 1;
                }
                (Admit::Full, true) => {
                    if let Some(v) = field.get_mut(out.to_mut()) {
                        *v = attribution_keys::OTHER.to_string();
                    }
                    continue;
                }
            }
            self.named.seen.push((page, field, key, day));
        }
        Some(out)
    }
}
