//! Filling in the site of beacon rows written before schema version 5
//! (which added `beacons.site_id` and its index for exports of one site):
//! a chunk of rows at a time, newest first, between write groups, like the
//! retention. Until it is done, exports of one site take the slower query
//! that does not need the column.

use std::sync::atomic::Ordering;

use rusqlite::OptionalExtension;

use super::schema::write_tx;
use super::writer::Writer;
use crate::store::StoreError;

/// Rows filled per step (as many as a retention step deletes: a step
/// holds up the beacons queued behind it).
const CHUNK: i64 = 5_000;

impl Writer {
    /// Where the backfill stands: rows with an id below the returned one
    /// may still lack their site (1: none do).
    pub(super) fn load_backfill(&mut self) -> Result<i64, StoreError> {
        let below: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'site_backfill_below'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let below = below.unwrap_or(1);
        self.shared.site_backfilled.store(below <= 1, Ordering::Release);
        Ok(below)
    }

    /// Fills the site of one chunk of older rows; `false` once none are left.
    pub(super) fn backfill_step(&mut self) -> Result<bool, StoreError> {
        let below = self.backfill_below;
        if below <= 1 {
            return Ok(false);
        }
        let from = (below - CHUNK).max(1);
        let tx = write_tx(&mut self.conn)?;
        let filled = tx.execute(
            "UPDATE beacons SET site_id = (SELECT site_id FROM pages WHERE pages.id = beacons.page_id)
             WHERE id >= ?1 AND id < ?2 AND site_id IS NULL",
            [from, below],
        )?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'site_backfill_below'", [from])?;
        tx.commit()?;
        self.backfill_below = from;
        tracing::debug!(filled, below = from, "filled the site of older beacon rows");
        if from <= 1 {
            self.shared.site_backfilled.store(true, Ordering::Release);
            tracing::info!("every beacon row has its site: exports of one site use their index");
            return Ok(false);
        }
        Ok(true)
    }
}
