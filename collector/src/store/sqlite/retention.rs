//! Retention: dropping days past `retention_days`, in chunks between
//! write groups, and pages and sites left without reports.

use rusqlite::params;

use super::schema::{write_tx, MAINTENANCE_CACHE_KIB, WRITER_CACHE_KIB};
use super::writer::Writer;
use crate::store::ids::Location;
use crate::store::rows;
use crate::store::{StoreError, HOURLY_DAYS};
use crate::time::{Resolution, DAY_MS};

/// Raw reports deleted per retention step, between write groups.
const RETENTION_CHUNK: usize = 5_000;

/// `(cutoff, hour horizon)`: reports received before `cutoff` are past the
/// retention; hourly cells are kept from the horizon on.
pub(super) fn retention_bounds(now: i64, retention_days: u32) -> (i64, i64) {
    let today = Resolution::Day.floor(now);
    let cutoff = today - (retention_days.max(1) as i64 - 1) * DAY_MS;
    (cutoff, (today - HOURLY_DAYS * DAY_MS).max(cutoff))
}

impl Writer {
    /// Drops what is past the retention from memory and the saved
    /// aggregates at once; raw reports follow in [`Writer::retention_step`].
    pub(super) fn start_retention(&mut self, now: i64) -> Result<(), StoreError> {
        self.retention_hour = Resolution::Hour.bucket(now);
        let (cutoff, horizon) = retention_bounds(now, self.options.retention_days);
        {
            let mut state = self.shared.state.write().expect("state lock poisoned");
            state.cutoff_ms = state.cutoff_ms.max(cutoff);
            state.cells.prune(Resolution::Day.bucket(cutoff), horizon);
            state.values.prune(Resolution::Day.bucket(cutoff));
            state.views.prune(Resolution::Day.bucket(cutoff), horizon);
            state.attribution_keys.prune(Resolution::Day.bucket(cutoff));
        }
        let tx = write_tx(&mut self.conn)?;
        tx.execute(
            "DELETE FROM aggregates WHERE (resolution = 1 AND bucket < ?1)
                OR (resolution = 0 AND bucket < ?2)",
            params![Resolution::Day.bucket(cutoff), Resolution::Hour.bucket(horizon)],
        )?;
        tx.execute(
            "DELETE FROM exact_values WHERE day < ?1",
            params![Resolution::Day.bucket(cutoff)],
        )?;
        tx.commit()?;
        self.retention = Some(cutoff);
        Ok(())
    }

    /// Deletes one chunk of raw reports past the retention; when none are
    /// left, pages and sites without reports.
    pub(super) fn retention_step(&mut self) -> Result<(), StoreError> {
        let Some(cutoff) = self.retention else {
            return Ok(());
        };
        self.conn.pragma_update(None, "cache_size", -MAINTENANCE_CACHE_KIB)?;
        let deleted = self.delete_old_rows(cutoff);
        self.conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let deleted = deleted?;
        if deleted > 0 {
            tracing::debug!(deleted, "retention: deleted old reports");
            return Ok(());
        }
        self.retention = None;
        // Pages without reports: the exact values in memory are those of
        // the raw reports (no index of the reports by page is kept).
        let pages: Vec<u32> = {
            let state = self.shared.state.read().expect("state lock poisoned");
            let live = state.values.pages();
            state
                .catalog
                .pages
                .keys()
                .filter(|p| !live.contains(p))
                .copied()
                .collect()
        };
        let tx = write_tx(&mut self.conn)?;
        {
            let mut delete = tx.prepare("DELETE FROM pages WHERE id = ?1")?;
            for &p in &pages {
                delete.execute([p])?;
            }
        }
        let sites: Vec<u32> = tx
            .prepare(
                "DELETE FROM sites WHERE NOT EXISTS
                    (SELECT 1 FROM pages WHERE pages.site_id = sites.id)
                 RETURNING id",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut state = self.shared.state.write().expect("state lock poisoned");
        tx.commit()?;
        for &p in &pages {
            state.catalog.remove_page(p);
            state.views.remove_page(p);
            state.attribution_keys.remove_page(p);
        }
        for &s in &sites {
            state.catalog.remove_site(s);
        }
        drop(state);
        self.shared
            .retention_passes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        if !pages.is_empty() || !sites.is_empty() {
            tracing::info!(
                pages = pages.len(),
                sites = sites.len(),
                "retention: removed pages and sites without reports"
            );
        }
        Ok(())
    }

    /// Deletes one chunk of beacon rows received before `cutoff`, and
    /// their report ids; the number of rows deleted.
    fn delete_old_rows(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        let tx = write_tx(&mut self.conn)?;
        let gone: Vec<(i64, u32, Vec<u8>)> = tx
            .prepare(
                "DELETE FROM beacons WHERE id IN
                    (SELECT id FROM beacons WHERE received_at < ?1 LIMIT ?2)
                 RETURNING id, page_id, reports",
            )?
            .query_map(params![cutoff, RETENTION_CHUNK as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        tx.commit()?;
        let state = self.shared.state.read().expect("state lock poisoned");
        for (row, page, blob) in &gone {
            let Some(&(site, _)) = state.catalog.pages.get(page) else {
                continue;
            };
            for (slot, r) in rows::decode(blob).unwrap_or_default().iter().enumerate() {
                let at = Location {
                    row: *row,
                    slot: slot as u8,
                };
                self.ids.remove(self.ids.key(site, r.metric, r.id), at);
            }
        }
        Ok(gone.len())
    }
}
