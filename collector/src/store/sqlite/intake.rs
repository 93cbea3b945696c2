//! The start-up intake: beacons that arrive while the store loads.
//!
//! Dedup and the aggregates need the in-memory state that loading builds
//! (the report id index above all), which takes seconds on a large store.
//! Refusing beacons meanwhile loses them (a page's last CLS and INP leave
//! through `sendBeacon`, which never retries), so the writer commits them
//! as they are into the `intake` table (durable: a `204` is still a
//! commit) and, once loaded, writes them through the normal path in
//! arrival order, deleting each chunk from `intake` in the transaction that
//! stores it. A crash in between leaves them in `intake` for the next
//! start. Site limits are checked at intake, against the same catalog
//! the later write uses, so a beacon taken here is never refused later.

use std::collections::HashSet;

use rusqlite::{params, Connection};

use super::catalog::Catalog;
use super::schema::{metric_code, metric_from_code, nav_code, nav_from_code, write_tx};
use super::{Insert, SqliteOptions};
use crate::store::cells::{ff_code, ff_from_code};
use crate::store::rows::{self, Slot};
use crate::store::{Inserted, NewBeacon, NewReport, StoreError};

/// Sites first seen in the intake (not in the catalog yet), counted
/// against `max_sites` as the later write will count them.
#[derive(Default)]
pub(super) struct IntakeSites(HashSet<String>);

/// Commits the group's beacons into `intake`; each insert's outcome (an
/// `Err` for the whole group if the transaction failed).
pub(super) fn write_group(
    conn: &mut Connection,
    group: &[Insert],
    catalog: &Catalog,
    options: &SqliteOptions,
    sites: &mut IntakeSites,
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let tx = write_tx(conn)?;
    let mut added: Vec<String> = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO intake (site, page, form_factor, received_at, page_view_id, session_id, reports, attribution)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut blob = Vec::new();
        'inserts: for item in group {
            // All or none per insert, like the normal write.
            for b in &item.beacons {
                let known =
                    catalog.by_name.contains_key(&b.site) || sites.0.contains(&b.site) || added.contains(&b.site);
                if !known {
                    let count = catalog.sites.len() + sites.0.len() + added.len();
                    if options.max_sites > 0 && count >= options.max_sites as usize {
                        results.push(Err(StoreError::TooManySites {
                            site: b.site.clone(),
                            limit: options.max_sites,
                        }));
                        continue 'inserts;
                    }
                    added.push(b.site.clone());
                }
            }
            let mut reports = 0u32;
            for b in &item.beacons {
                if b.reports.is_empty() {
                    continue;
                }
                blob.clear();
                for r in &b.reports {
                    let slot = Slot {
                        metric: metric_code(r.metric) as u8,
                        navigation_type: nav_code(r.navigation_type) as u8,
                        value: r.value,
                        delta: r.delta,
                        id: &r.report_id,
                    };
                    rows::push(&mut blob, &slot);
                }
                let attribution: Vec<Option<&beacon::Attribution>> =
                    b.reports.iter().map(|r| r.attribution.as_ref()).collect();
                insert.execute(params![
                    b.site,
                    b.page,
                    ff_code(b.form_factor),
                    b.received_at_ms,
                    b.page_view_id,
                    b.session_id,
                    blob,
                    rows::encode_attributions(&attribution),
                ])?;
                reports += b.reports.len() as u32;
            }
            results.push(Ok(Inserted {
                deferred: reports,
                ..Inserted::default()
            }));
        }
    }
    tx.commit()?;
    sites.0.extend(added);
    Ok(results)
}

/// Up to `limit` of the oldest beacons in `intake`, and the sequence
/// number of the last row read (`None`: the intake is empty). A row that
/// does not decode (never written so) is logged and skipped.
pub(super) fn read_chunk(conn: &Connection, limit: usize) -> Result<(Vec<NewBeacon>, Option<i64>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, site, page, form_factor, received_at, page_view_id, session_id, reports, attribution
         FROM intake ORDER BY seq LIMIT ?1",
    )?;
    let mut rows = stmt.query([limit as i64])?;
    let mut out = Vec::new();
    let mut last = None;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        last = Some(seq);
        let Some(slots) = row.get_ref(7)?.as_blob().ok().and_then(rows::decode) else {
            tracing::error!(seq, "intake row with a malformed reports blob, skipped");
            continue;
        };
        let mut attribution = row
            .get::<_, Option<String>>(8)?
            .as_deref()
            .map(rows::decode_attributions)
            .unwrap_or_default()
            .into_iter();
        let reports = slots
            .iter()
            .filter_map(|s| {
                let a = attribution.next().flatten();
                Some(NewReport {
                    metric: metric_from_code(s.metric as i64)?,
                    report_id: s.id.to_owned(),
                    value: s.value,
                    delta: s.delta,
                    navigation_type: nav_from_code(s.navigation_type as i64),
                    attribution: a,
                })
            })
            .collect();
        out.push(NewBeacon {
            site: row.get(1)?,
            page: row.get(2)?,
            form_factor: ff_from_code(row.get(3)?),
            received_at_ms: row.get(4)?,
            page_view_id: row.get(5)?,
            session_id: row.get(6)?,
            reports,
        });
    }
    Ok((out, last))
}
