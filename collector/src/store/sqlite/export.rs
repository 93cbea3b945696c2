//! Streaming raw reports out of `beacons`.

use std::sync::atomic::Ordering;

use rusqlite::{params, Connection};

use super::schema::{metric_from_code, nav_from_code};
use super::Shared;
use crate::store::cells::ff_from_code;
use crate::store::rows;
use crate::store::{Attributed, AttributionQuery, ExportQuery, Report, StoreError};

/// Exported reports per chunk.
const EXPORT_CHUNK: usize = 1_000;

/// Every site: the time index, in order.
const ALL_SQL: &str = "SELECT b.id, s.site, p.page, b.form_factor, b.page_view_id, b.session_id,
        b.received_at, b.reports, b.attribution
    FROM beacons b JOIN pages p ON p.id = b.page_id JOIN sites s ON s.id = p.site_id
    WHERE b.received_at >= ?1 AND b.received_at < ?2
    ORDER BY b.received_at, b.id";

/// One site: its range of the site-and-time index, already in order
/// (through the time index, a small site on a large store read every row
/// of the window).
pub(super) const SITE_SQL: &str = "SELECT b.id, s.site, p.page, b.form_factor, b.page_view_id, b.session_id,
        b.received_at, b.reports, b.attribution
    FROM beacons b INDEXED BY beacons_site_time
        JOIN pages p ON p.id = b.page_id JOIN sites s ON s.id = p.site_id
    WHERE b.site_id = ?3 AND b.received_at >= ?1 AND b.received_at < ?2
    ORDER BY b.received_at, b.id";

/// One site while older rows still lack their site (`backfill.rs`).
const SITE_BY_NAME_SQL: &str = "SELECT b.id, s.site, p.page, b.form_factor, b.page_view_id, b.session_id,
        b.received_at, b.reports, b.attribution
    FROM beacons b JOIN pages p ON p.id = b.page_id JOIN sites s ON s.id = p.site_id
    WHERE b.received_at >= ?1 AND b.received_at < ?2 AND s.site = ?3
    ORDER BY b.received_at, b.id";

pub(super) fn run_export(
    shared: &Shared,
    conn: &Connection,
    q: &ExportQuery,
    out: &tokio::sync::mpsc::Sender<Result<Vec<Report>, StoreError>>,
) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (cutoff, site_id) = {
        let state = shared.state.read().expect("state lock poisoned");
        let site_id = q.site.as_ref().map(|s| state.catalog.by_name.get(s).copied());
        (state.cutoff_ms, site_id)
    };
    let from = q.from_ms.max(cutoff);
    let backfilled = shared.site_backfilled.load(Ordering::Acquire);
    let (mut stmt, mut rows);
    match (&q.site, site_id) {
        (None, _) => {
            stmt = tx.prepare(ALL_SQL)?;
            rows = stmt.query(params![from, q.to_ms])?;
        }
        (Some(_), Some(None)) => return Ok(()), // no such site
        (Some(_), Some(Some(id))) if backfilled => {
            stmt = tx.prepare(SITE_SQL)?;
            rows = stmt.query(params![from, q.to_ms, id])?;
        }
        (Some(site), _) => {
            stmt = tx.prepare(SITE_BY_NAME_SQL)?;
            rows = stmt.query(params![from, q.to_ms, site])?;
        }
    }
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let Some(slots) = row.get_ref(7)?.as_blob().ok().and_then(rows::decode) else {
            tracing::error!(row = id, "beacon row with a malformed reports blob, not exported");
            continue;
        };
        let (site, page): (String, String) = (row.get(1)?, row.get(2)?);
        let form_factor = ff_from_code(row.get(3)?);
        let (page_view_id, session_id): (Option<String>, Option<String>) = (row.get(4)?, row.get(5)?);
        let received_at_ms: i64 = row.get(6)?;
        let mut attribution = row
            .get::<_, Option<String>>(8)?
            .as_deref()
            .map(rows::decode_attributions)
            .unwrap_or_default()
            .into_iter();
        for slot in slots {
            let a = attribution.next().flatten();
            let Some(metric) = metric_from_code(slot.metric as i64) else {
                continue;
            };
            chunk.push(Report {
                site: site.clone(),
                page: page.clone(),
                metric,
                report_id: slot.id.to_owned(),
                value: slot.value,
                delta: slot.delta,
                rating: metric.rate(slot.value),
                navigation_type: nav_from_code(slot.navigation_type as i64),
                form_factor,
                page_view_id: page_view_id.clone(),
                session_id: session_id.clone(),
                received_at_ms,
                attribution: a,
            });
        }
        if chunk.len() >= EXPORT_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
            if out.blocking_send(Ok(full)).is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
    Ok(())
}

/// The attributed reports of one site (or page) in a time range, from the
/// site's range of the site-and-time index (rows without attribution are
/// passed over without decoding).
pub(super) fn read_attributions(
    shared: &Shared,
    conn: &Connection,
    q: &AttributionQuery,
) -> Result<Vec<Attributed>, StoreError> {
    let (site_id, page_id, cutoff) = {
        let state = shared.state.read().expect("state lock poisoned");
        let Some(&site) = state.catalog.by_name.get(&q.site) else {
            return Ok(Vec::new());
        };
        let page = match &q.page {
            None => None,
            Some(p) => match state.catalog.page_id(site, p) {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
        };
        (site, page, state.cutoff_ms)
    };
    let backfilled = shared.site_backfilled.load(Ordering::Acquire);
    let sql = if backfilled {
        "SELECT b.page_id, b.form_factor, b.reports, b.attribution FROM beacons b INDEXED BY beacons_site_time
         WHERE b.site_id = ?1 AND b.received_at >= ?2 AND b.received_at < ?3 AND b.attribution IS NOT NULL"
    } else {
        "SELECT b.page_id, b.form_factor, b.reports, b.attribution FROM beacons b
         WHERE b.page_id IN (SELECT id FROM pages WHERE site_id = ?1)
           AND b.received_at >= ?2 AND b.received_at < ?3 AND b.attribution IS NOT NULL"
    };
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare(sql)?;
    let mut rows = stmt.query(params![site_id, q.from_ms.max(cutoff), q.to_ms])?;
    let ff = q.form_factor.map(|f| crate::store::cells::ff_code(Some(f)));
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if page_id.is_some_and(|p| row.get::<_, u32>(0).ok() != Some(p)) {
            continue;
        }
        if ff.is_some_and(|f| row.get::<_, u8>(1).ok() != Some(f)) {
            continue;
        }
        let Some(slots) = row.get_ref(2)?.as_blob().ok().and_then(rows::decode) else {
            continue;
        };
        let Some(text) = row.get_ref(3)?.as_str_or_null().ok().flatten() else {
            continue;
        };
        for (slot, a) in slots.iter().zip(rows::decode_attributions(text)) {
            let (Some(metric), Some(attribution)) = (metric_from_code(slot.metric as i64), a) else {
                continue;
            };
            if q.metrics.is_empty() || q.metrics.contains(&metric) {
                out.push(Attributed {
                    metric,
                    value: slot.value,
                    attribution,
                });
            }
        }
    }
    Ok(out)
}
