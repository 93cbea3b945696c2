//! Start-up: loading the saved aggregates and exact values, and the scan
//! of `beacons` that rebuilds the report id index (and, after a crash,
//! the aggregates).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};

use super::catalog::Catalog;
use super::schema::{metric_from_code, nav_from_code};
use crate::aggregate::{Cell, RatingCounts};
use crate::sketch::Sketch;
use crate::store::attribution_keys::{AttributionKeys, Field};
use crate::store::cells::{BaseCell, Cells, Place};
use crate::store::ids::{Location, ReportIds};
use crate::store::rows::{self};
use crate::store::values::Values;
use crate::store::views::{ViewDelta, Views};
use crate::store::StoreError;
use crate::time::Resolution;

/// The in-memory state that loading builds from the file.
pub(super) struct Loaded {
    pub(super) cells: Cells,
    pub(super) views: Views,
    pub(super) attribution_keys: AttributionKeys,
    pub(super) values: Values,
    pub(super) ids: ReportIds,
    /// The largest beacon row id (0 if none).
    pub(super) last_row: i64,
    /// The aggregates were rebuilt from the raw reports: the saved ones are
    /// stale, and are deleted before the next write.
    pub(super) rebuilt: bool,
}

/// Loads the saved aggregates and exact values when the last run shut down
/// cleanly, else rebuilds them from the raw reports; indexes the report
/// ids either way. Reads only: the writer takes beacons meanwhile (into
/// the intake). Gives up with [`StoreError::Closed`] once `stop` is set.
/// `second` opens another read connection: when the aggregates are loaded
/// from their saved copy, the report ids are indexed on it at the same time,
/// on a second thread (the two take about the same time).
pub(super) fn load(
    conn: &Connection,
    second: impl FnOnce() -> Result<Connection, StoreError> + Send,
    catalog: &Catalog,
    horizon_ms: i64,
    stop: &AtomicBool,
) -> Result<Loaded, StoreError> {
    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let clean: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'aggregates_clean'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if clean == Some(1) {
        let mut cells = Cells::new(horizon_ms);
        let mut values = Values::new();
        let (saved, indexed) = std::thread::scope(|s| {
            let indexer = std::thread::Builder::new().name("sqlite-ids".into()).spawn_scoped(
                s,
                || -> Result<(ReportIds, Views, AttributionKeys, Scanned), StoreError> {
                    let conn = second()?;
                    let mut ids = ReportIds::new();
                    let mut views = Views::new(horizon_ms);
                    let mut keys = AttributionKeys::new();
                    let scanned = scan_beacons(&conn, catalog, &mut ids, &mut views, &mut keys, None, stop)?;
                    tracing::info!(
                        reports = scanned.reports,
                        page_views = views.len(),
                        ms = ms(),
                        "indexed report ids and page views"
                    );
                    Ok((ids, views, keys, scanned))
                },
            );
            let saved = load_aggregates(conn, catalog, &mut cells, stop)
                .and_then(|n| Ok((n, load_values(conn, catalog, &mut values)?)));
            let indexed = match indexer {
                Ok(t) => t
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Internal("the id indexer panicked".into()))),
                Err(e) => Err(StoreError::Internal(format!("cannot start the id indexer: {e}"))),
            };
            (saved, indexed)
        });
        match saved {
            Ok((n, days)) => {
                tracing::info!(
                    cells = n,
                    days,
                    values = values.len(),
                    ms = ms(),
                    "loaded saved aggregates"
                );
                let (ids, views, attribution_keys, scanned) = indexed?;
                return Ok(Loaded {
                    cells,
                    views,
                    attribution_keys,
                    values,
                    ids,
                    last_row: scanned.last_row,
                    rebuilt: false,
                });
            }
            Err(e) => tracing::warn!(error = %e, "saved aggregates unreadable, rebuilding them"),
        }
    } else if clean.is_some() {
        tracing::info!("the last run did not shut down cleanly: rebuilding the aggregates from the raw reports");
    }
    // A new store has no `aggregates_clean` yet (it is written at the
    // first write): nothing to say, little to scan.
    let mut ids = ReportIds::new();
    let mut views = Views::new(horizon_ms);
    let mut attribution_keys = AttributionKeys::new();
    let mut cells = Cells::new(horizon_ms);
    let mut values = Values::new();
    let scanned = scan_beacons(
        conn,
        catalog,
        &mut ids,
        &mut views,
        &mut attribution_keys,
        Some((&mut cells, &mut values)),
        stop,
    )?;
    cells.mark_all_dirty();
    if scanned.reports > 0 || clean.is_some() {
        tracing::info!(
            reports = scanned.reports,
            ms = ms(),
            "rebuilt aggregates from raw reports"
        );
    }
    Ok(Loaded {
        cells,
        views,
        attribution_keys,
        values,
        ids,
        last_row: scanned.last_row,
        rebuilt: true,
    })
}

fn load_aggregates(
    conn: &Connection,
    catalog: &Catalog,
    cells: &mut Cells,
    stop: &AtomicBool,
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT page_id, metric, form_factor, resolution, bucket, good,
                needs_improvement, poor, sketch FROM aggregates",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    let corrupt = |what: &str| StoreError::Internal(format!("saved aggregate {what}"));
    while let Some(row) = rows.next()? {
        if n % 65_536 == 0 && stop.load(Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        let page: u32 = row.get(0)?;
        let Some(&(site, _)) = catalog.pages.get(&page) else {
            continue;
        };
        let metric = metric_from_code(row.get(1)?).ok_or_else(|| corrupt("has an unknown metric"))?;
        let resolution = match row.get::<_, i64>(3)? {
            0 => Resolution::Hour,
            1 => Resolution::Day,
            _ => return Err(corrupt("has an unknown resolution")),
        };
        let blob = row.get_ref(8)?.as_blob().map_err(|_| corrupt("sketch is not a blob"))?;
        let sketch = Sketch::from_bytes(blob).ok_or_else(|| corrupt("sketch is malformed"))?;
        let count = |i| -> Result<u64, StoreError> {
            u64::try_from(row.get::<_, i64>(i)?).map_err(|_| corrupt("has a negative count"))
        };
        let ratings = RatingCounts {
            good: count(5)?,
            needs_improvement: count(6)?,
            poor: count(7)?,
        };
        if ratings.total() != sketch.count() {
            return Err(corrupt("counts disagree"));
        }
        let base = BaseCell {
            page,
            metric,
            ff: row.get(2)?,
            resolution,
            bucket: row.get(4)?,
            cell: None,
        };
        if resolution == Resolution::Hour && resolution.start(base.bucket) < cells.hour_horizon_ms() {
            continue;
        }
        cells.load(site, &base, &Cell { ratings, sketch });
        n += 1;
    }
    Ok(n)
}

/// Loads the exact values saved at the last clean shutdown; the number of
/// days loaded.
fn load_values(conn: &Connection, catalog: &Catalog, values: &mut Values) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare("SELECT page_id, metric, day, data FROM exact_values")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    let corrupt = |what: &str| StoreError::Internal(format!("saved exact values {what}"));
    while let Some(row) = rows.next()? {
        let page: u32 = row.get(0)?;
        if !catalog.pages.contains_key(&page) {
            continue;
        }
        let metric = metric_from_code(row.get(1)?).ok_or_else(|| corrupt("have an unknown metric"))?;
        let blob = row.get_ref(3)?.as_blob().map_err(|_| corrupt("are not a blob"))?;
        if !values.load_day(page, metric, row.get(2)?, blob) {
            return Err(corrupt("are malformed"));
        }
        n += 1;
    }
    Ok(n)
}

/// What [`scan_beacons`] found.
struct Scanned {
    reports: u64,
    /// The largest row id (0 if none).
    last_row: i64,
}

/// Reads every raw report: its id into `ids`, and its value into the
/// aggregates when given (to rebuild them).
fn scan_beacons(
    conn: &Connection,
    catalog: &Catalog,
    ids: &mut ReportIds,
    views: &mut Views,
    keys: &mut AttributionKeys,
    mut rebuild: Option<(&mut Cells, &mut Values)>,
    stop: &AtomicBool,
) -> Result<Scanned, StoreError> {
    // Read first, then add in (page, metric, form factor, time) order: the
    // table is in arrival order, which jumps between pages at every row,
    // and adding in that order missed the CPU caches at every cell (three
    // times slower than sorting first).
    let mut all: Vec<(u32, u8, u8, i64, f64)> = Vec::new();
    let mut scanned = Scanned {
        reports: 0,
        last_row: 0,
    };
    // In row order, which is arrival order: a page view counts at its first beacon.
    let mut stmt = conn.prepare(
        "SELECT id, page_id, form_factor, received_at, reports, page_view_id, attribution FROM beacons ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if id % 65_536 == 0 && stop.load(Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        scanned.last_row = scanned.last_row.max(id);
        let page: u32 = row.get(1)?;
        let Some(&(site, _)) = catalog.pages.get(&page) else {
            continue;
        };
        let (ff, at): (u8, i64) = (row.get(2)?, row.get(3)?);
        // A malformed row (never written so by this code) loses its own
        // reports only, not the start-up of the store.
        let Some(slots) = row.get_ref(4)?.as_blob().ok().and_then(rows::decode) else {
            tracing::error!(row = id, "beacon row with a malformed reports blob, skipped");
            continue;
        };
        let view = row
            .get_ref(5)?
            .as_str_or_null()
            .ok()
            .flatten()
            .map(|pv| views.key(site, pv));
        if let Some(text) = row.get_ref(6)?.as_str_or_null().ok().flatten() {
            let day = Resolution::Day.bucket(at);
            for a in rows::decode_attributions(text).iter().flatten() {
                for field in Field::ALL {
                    if let Some(v) = field.get(a) {
                        keys.record(page, field, keys.key(v), day);
                    }
                }
            }
        }
        views.add(&ViewDelta {
            key: view,
            site,
            page,
            ff,
            at_ms: at,
            nav: nav_from_code(slots.first().map_or(0, |s| s.navigation_type) as i64),
        });
        for (slot, r) in slots.iter().enumerate() {
            if metric_from_code(r.metric as i64).is_none() {
                continue;
            }
            ids.insert(
                ids.key(site, r.metric, r.id),
                Location {
                    row: id,
                    slot: slot as u8,
                },
            );
            scanned.reports += 1;
            if rebuild.is_some() {
                all.push((page, r.metric, ff, at, r.value));
            }
        }
    }
    let Some((cells, values)) = rebuild.as_mut() else {
        return Ok(scanned);
    };
    all.sort_unstable_by_key(|&(page, metric, ff, at, _)| (page, metric, ff, at));
    for &(page, metric, ff, at, value) in &all {
        let (Some(&(site, _)), Some(metric)) = (catalog.pages.get(&page), metric_from_code(metric as i64)) else {
            continue;
        };
        let place = Place {
            site,
            page,
            metric,
            ff,
            received_at_ms: at,
        };
        cells.add(&place, value);
        values.add(page, metric, ff, at, value);
    }
    values.finish();
    Ok(scanned)
}
