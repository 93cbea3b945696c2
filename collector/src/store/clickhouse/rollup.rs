//! The hourly rollup, made exact for re-reports by correction rows.
//!
//! The materialized view adds every raw row to `reports_rollup` as it is
//! inserted: a re-report (same `site, metric, report_id`, a grown CLS or
//! INP) or a beacon sent twice would count twice there, and under the page
//! and hour of its own receipt. The read APIs count a report once, with
//! its latest value, under the page, form factor and hour of its first
//! receipt, as the SQLite engine does. The rollup's counts (per rating and
//! per sketch bin) are plain sums of signed integers, so a settle run
//! (this module, on the holder of the lease `rollup`) adds, for each
//! report with more than one row, the difference between what the view
//! added and what the report should count: minus each new row, minus the
//! report as settled before, plus the report as it is now. After a run
//! over the rows inserted up to *W*, the rollup holds every report with
//! rows up to *W* exactly once.
//!
//! Correction rows carry their run (its end *W*) in the rollup's key, and
//! reads take only runs that finished (`rollup_runs`): a run that died
//! half-way is redone (its inserts have deduplication tokens) and is never
//! read half-done. Rows inserted since the last finished run are corrected
//! at read time by the same computation, not stored: every read is exact.
//!
//! Which rows a run covers is decided by their `inserted_ms`, stamped by
//! ClickHouse at insert time (a spilled batch replayed hours later is new
//! to the run that follows), and a run stops [`SETTLE_MARGIN_MS`] before
//! now, so that an insert still in flight when the run starts is not
//! missed. A report's earlier rows are looked for however old they are
//! (through a bloom filter index on `report_id`), as the SQLite engine
//! merges a re-report whenever it comes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use beacon::{MetricName, Rating};
use serde::{Deserialize, Serialize};

use super::lease::ClickHouseLease;
use super::read::lit;
use super::{ch_err, select, select_one, Shared};
use crate::sketch;
use crate::store::StoreError;
use crate::time::{now_ms, HOUR_MS};

/// How far behind now a run stops: longer than an insert may take.
pub const SETTLE_MARGIN_MS: i64 = 5 * 60_000;

/// How often the lease holder runs.
pub const SETTLE_INTERVAL: Duration = Duration::from_secs(60);

/// The term of the `rollup` lease.
const LEASE_TERM_MS: i64 = 5 * 60_000;

/// A raw row, as far as the rollup needs it.
#[derive(Clone, Debug, Deserialize, clickhouse::Row)]
pub(super) struct IdRow {
    pub site: String,
    pub metric: String,
    pub report_id: String,
    pub page: String,
    pub form_factor: String,
    pub received_ms: i64,
    pub seq: u64,
    pub value: f64,
    pub inserted_ms: i64,
}

impl IdRow {
    /// The order of a report's rows: receipt, then the writer's sequence;
    /// the rest only breaks ties between collectors.
    fn order(&self) -> (i64, u64, i64, u64) {
        (self.received_ms, self.seq, self.inserted_ms, self.value.to_bits())
    }
}

/// Where one report counts in the rollup, and with which value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Place {
    pub site: String,
    pub metric: String,
    pub page: String,
    pub form_factor: String,
    /// Start of the hour, in ms.
    pub hour_ms: i64,
}

/// Signed counts per rating and per sketch bin (-1: zero) of one place.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Delta {
    pub ratings: [i64; 3],
    pub bins: BTreeMap<i64, i64>,
}

impl Delta {
    pub fn add(&mut self, metric: MetricName, value: f64, n: i64) {
        let r = match metric.rate(value) {
            Rating::Good => 0,
            Rating::NeedsImprovement => 1,
            Rating::Poor => 2,
        };
        self.ratings[r] += n;
        let bin = if value <= 0.0 || !value.is_finite() {
            -1
        } else {
            sketch::bin_of(value) as i64
        };
        *self.bins.entry(bin).or_default() += n;
    }

    pub fn merge(&mut self, other: &Delta) {
        for (a, b) in self.ratings.iter_mut().zip(other.ratings) {
            *a += b;
        }
        for (k, n) in &other.bins {
            *self.bins.entry(*k).or_default() += n;
        }
    }

    fn is_zero(&self) -> bool {
        self.ratings.iter().all(|&n| n == 0) && self.bins.values().all(|&n| n == 0)
    }
}

/// The place and value a report's rows give: first receipt's page, form
/// factor and hour; latest value.
fn settled(rows: &[&IdRow]) -> Option<(Place, f64)> {
    let first = rows.iter().min_by_key(|r| r.order())?;
    let last = rows.iter().max_by_key(|r| r.order())?;
    Some((
        Place {
            site: first.site.clone(),
            metric: first.metric.clone(),
            page: first.page.clone(),
            form_factor: first.form_factor.clone(),
            hour_ms: first.received_ms.div_euclid(HOUR_MS) * HOUR_MS,
        },
        last.value,
    ))
}

/// The corrections that make the view's rows of the reports in `rows`
/// (all rows, up to `to_ms`, of every report with a row inserted in
/// `[from_ms, to_ms)`) count as settled reports.
pub(super) fn corrections(rows: &[IdRow], from_ms: i64, to_ms: i64) -> BTreeMap<Place, Delta> {
    let mut by_id: HashMap<(&str, &str, &str), Vec<&IdRow>> = HashMap::new();
    for r in rows.iter().filter(|r| r.inserted_ms < to_ms) {
        by_id.entry((&r.site, &r.metric, &r.report_id)).or_default().push(r);
    }
    let mut out: BTreeMap<Place, Delta> = BTreeMap::new();
    for ((_, metric, _), all) in by_id {
        let Some(metric) = MetricName::parse(metric) else {
            continue;
        };
        let (old, new): (Vec<&IdRow>, Vec<&IdRow>) = all.iter().partition(|r| r.inserted_ms < from_ms);
        // One row alone is what the view counted already.
        if new.is_empty() || all.len() == 1 {
            continue;
        }
        let mut add = |place: Place, value: f64, n: i64| out.entry(place).or_default().add(metric, value, n);
        for r in &new {
            let (place, value) = settled(&[r]).expect("one row");
            add(place, value, -1);
        }
        if let Some((place, value)) = settled(&old) {
            add(place, value, -1);
        }
        let (place, value) = settled(&all).expect("rows");
        add(place, value, 1);
    }
    out.retain(|_, d| {
        d.bins.retain(|_, n| *n != 0);
        !d.is_zero()
    });
    out
}

/// Every row up to `to_ms` of the reports with a row inserted in
/// `[from_ms, to_ms)` and more than one row, within `filter` (an SQL
/// condition on raw rows).
pub(super) async fn rows_of_new_reports(
    shared: &Shared,
    from_ms: i64,
    to_ms: i64,
    filter: &str,
) -> Result<Vec<IdRow>, StoreError> {
    let new = format!("inserted_ms >= {from_ms} AND inserted_ms < {to_ms} AND ({filter})");
    // A report's earlier rows may be days old (as in the SQLite engine, a
    // re-report or a beacon sent again is merged however late): all rows
    // are looked through, the bloom filter index on `report_id` skipping
    // the granules without any of the ids.
    // Only reports with more than one row need a correction: the rows of
    // the others stay in ClickHouse.
    let sql = format!(
        "SELECT site, metric, report_id, page, form_factor, received_ms, seq, value, inserted_ms FROM reports \
         WHERE inserted_ms < {to_ms} AND ({filter}) AND (site, metric, report_id) IN \
         (SELECT site, metric, report_id FROM reports WHERE inserted_ms < {to_ms} AND ({filter}) \
          AND (site, metric, report_id) IN (SELECT site, metric, report_id FROM reports WHERE {new}) \
          GROUP BY site, metric, report_id HAVING count() > 1)",
    );
    select(&shared.client, &sql).await
}

/// One correction row of `reports_rollup`.
#[derive(Debug, Serialize, clickhouse::Row)]
struct CorrectionRow {
    site: String,
    metric: String,
    page: String,
    form_factor: String,
    hour: u32,
    run: i64,
    good: i64,
    needs_improvement: i64,
    poor: i64,
    bins: (Vec<i64>, Vec<i64>),
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct RunRow {
    to_ms: i64,
}

/// The end of the last finished run: rows inserted before it are settled
/// in the rollup (runs up to it are read).
pub(super) async fn settled_until(shared: &Shared) -> Result<i64, StoreError> {
    select_one(
        &shared.client,
        "SELECT toInt64(max(to_ms)) FROM rollup_runs WHERE done = 1",
    )
    .await
}

async fn insert_run_row(shared: &Shared, token: String, from_ms: i64, to_ms: i64, done: u8) -> Result<(), StoreError> {
    shared
        .client
        .clone()
        .with_setting("insert_deduplication_token", token)
        .with_setting("insert_deduplicate", "1")
        .query("INSERT INTO rollup_runs (from_ms, to_ms, done, at_ms) VALUES (?, ?, ?, ?)")
        .bind(from_ms)
        .bind(to_ms)
        .bind(done)
        .bind(now_ms())
        .execute()
        .await
        .map_err(ch_err)
}

/// One settle run up to `now_ms - SETTLE_MARGIN_MS` (`now_ms` by
/// ClickHouse's clock, which stamps the rows): the range after the
/// last finished run, its corrections, then the run marked done. A run
/// started and not finished (its collector died) is finished with its own
/// range. Returns the range settled.
pub(super) async fn settle(shared: &Shared, now_ms: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let from_ms = settled_until(shared).await?;
    let wanted = now_ms - SETTLE_MARGIN_MS;
    if wanted <= from_ms {
        return Ok(None);
    }
    // Claim the range: of runs racing from the same start one row is
    // stored, and all use its end.
    insert_run_row(shared, format!("rollup:run:{from_ms}"), from_ms, wanted, 0).await?;
    let run: RunRow = shared
        .client
        .query("SELECT to_ms FROM rollup_runs WHERE from_ms = ? AND done = 0 ORDER BY at_ms LIMIT 1")
        .bind(from_ms)
        .fetch_one()
        .await
        .map_err(ch_err)?;
    let to_ms = run.to_ms;
    let rows = rows_of_new_reports(shared, from_ms, to_ms, "1").await?;
    let fixes = corrections(&rows, from_ms, to_ms);
    if !fixes.is_empty() {
        let client = shared
            .client
            .clone()
            .with_setting("insert_deduplication_token", format!("rollup:fix:{from_ms}:{to_ms}"))
            .with_setting("insert_deduplicate", "1")
            // The crate cannot parse the `quantilesDD` state's type, a
            // column the corrections leave out.
            .with_validation(false);
        let mut insert = client.insert::<CorrectionRow>("reports_rollup").await.map_err(ch_err)?;
        for (place, d) in fixes {
            let row = CorrectionRow {
                site: place.site,
                metric: place.metric,
                page: place.page,
                form_factor: place.form_factor,
                hour: (place.hour_ms / 1000) as u32,
                run: to_ms,
                good: d.ratings[0],
                needs_improvement: d.ratings[1],
                poor: d.ratings[2],
                bins: d.bins.into_iter().unzip(),
            };
            insert.write(&row).await.map_err(ch_err)?;
        }
        insert.end().await.map_err(ch_err)?;
    }
    insert_run_row(shared, format!("rollup:done:{from_ms}"), from_ms, to_ms, 1).await?;
    tracing::debug!(from_ms, to_ms, rows = rows.len(), "rollup settled");
    Ok(Some((from_ms, to_ms)))
}

/// Creates the rollup's view, after version 3's tables: on a database
/// with rows, the view takes the rows inserted from a moment just ahead
/// (the origin, agreed on through `rollup_runs`), and once that moment
/// has passed, the rows from before it are copied into the rollup. No
/// row is missed or counted twice even while other collectors insert;
/// the copy has a deduplication token, so a migration run twice copies
/// once.
pub(super) async fn create_view(shared: &Shared) -> Result<(), StoreError> {
    let c = &shared.client;
    let exists: u64 = c
        .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'reports_rollup_mv'")
        .fetch_one()
        .await
        .map_err(ch_err)?;
    let stored: Option<i64> = c
        .query("SELECT to_ms FROM rollup_runs WHERE from_ms = -1 AND done = 2 ORDER BY at_ms LIMIT 1")
        .fetch_optional()
        .await
        .map_err(ch_err)?;
    let origin_ms = match stored {
        Some(t) => t,
        // A view made with origin 0 took every row from the start.
        None if exists == 1 => return Ok(()),
        None => {
            let rows: u64 = c
                .query("SELECT count() FROM reports")
                .fetch_one()
                .await
                .map_err(ch_err)?;
            if rows == 0 {
                0
            } else {
                insert_run_row(shared, "rollup:origin".into(), -1, now_ms() + 2_000, 2).await?;
                c.query("SELECT to_ms FROM rollup_runs WHERE from_ms = -1 AND done = 2 ORDER BY at_ms LIMIT 1")
                    .fetch_one()
                    .await
                    .map_err(ch_err)?
            }
        }
    };
    c.query(&super::schema::rollup_mv(origin_ms))
        .execute()
        .await
        .map_err(ch_err)?;
    if origin_ms == 0 {
        return Ok(());
    }
    let wait = origin_ms + 1_000 - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let select = super::schema::rollup_mv_select("reports", 0).replace(
        "FROM reports\n",
        &format!("FROM reports\nWHERE inserted_ms < {origin_ms}\n"),
    );
    c.clone()
        .with_setting("insert_deduplication_token", "rollup:copy")
        .with_setting("insert_deduplicate", "1")
        .with_setting("max_threads", "1")
        .query(&format!("INSERT INTO reports_rollup {select}"))
        .execute()
        .await
        .map_err(ch_err)?;
    Ok(())
}

/// The settle loop: on the holder of the lease `rollup`, once a
/// [`SETTLE_INTERVAL`].
pub(super) async fn run_settler(shared: Arc<Shared>, lease: ClickHouseLease) {
    use std::sync::atomic::Ordering;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if shared.ready() {
            match lease.hold_async(now_ms()).await {
                Ok(true) => {
                    // ClickHouse's clock stamps `inserted_ms`: the run's
                    // end is read off it, not off this collector's.
                    let now = select_one::<i64>(&shared.client, "SELECT toUnixTimestamp64Milli(now64(3))").await;
                    if let Err(e) = match now {
                        Ok(now) => settle(&shared, now).await.map(|_| ()),
                        Err(e) => Err(e),
                    } {
                        tracing::warn!(error = %e, "cannot settle the rollup; retrying");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check the rollup lease"),
            }
        }
        tokio::time::sleep(SETTLE_INTERVAL).await;
    }
}

/// The lease term of the settle loop.
pub(super) fn lease_term_ms() -> i64 {
    LEASE_TERM_MS
}

/// An SQL condition on a raw or rollup row: `site`, `metric`, `page`,
/// `form_factor` as wanted.
pub(super) fn condition(site: Option<&str>, metrics: &[MetricName], page: Option<&str>, ff: Option<&str>) -> String {
    let mut wh = vec!["1".to_string()];
    if let Some(s) = site {
        wh.push(format!("site = {}", lit(s)));
    }
    if !metrics.is_empty() && metrics.len() < MetricName::ALL.len() {
        let list: Vec<String> = metrics.iter().map(|m| lit(m.as_str())).collect();
        wh.push(format!("metric IN ({})", list.join(", ")));
    }
    if let Some(p) = page {
        wh.push(format!("page = {}", lit(p)));
    }
    if let Some(f) = ff {
        wh.push(format!("form_factor = {}", lit(f)));
    }
    wh.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, page: &str, received_ms: i64, seq: u64, value: f64, inserted_ms: i64) -> IdRow {
        IdRow {
            site: "s".into(),
            metric: "CLS".into(),
            report_id: id.into(),
            page: page.into(),
            form_factor: "phone".into(),
            received_ms,
            seq,
            value,
            inserted_ms,
        }
    }

    fn total(fixes: &BTreeMap<Place, Delta>) -> Delta {
        let mut d = Delta::default();
        for f in fixes.values() {
            d.merge(f);
        }
        d
    }

    #[test]
    fn a_report_alone_needs_no_correction() {
        let rows = [row("a", "/", 1_000, 1, 0.05, 10)];
        assert!(corrections(&rows, 0, 100).is_empty());
        assert!(corrections(&rows, 20, 100).is_empty(), "not new in this run");
    }

    #[test]
    fn a_re_report_in_another_hour_counts_once_where_the_report_began() {
        // CLS 0.05 (good) at 00:59, grown to 0.3 (poor) at 01:01 on
        // another page key.
        let rows = [
            row("a", "/", HOUR_MS - 60_000, 1, 0.05, 10),
            row("a", "/next", HOUR_MS + 60_000, 2, 0.3, 11),
        ];
        let fixes = corrections(&rows, 0, 100);
        let first = fixes.keys().find(|p| p.hour_ms == 0).unwrap();
        assert_eq!(first.page, "/");
        // The view counted +good at hour 0 and +poor at hour 1; the fix
        // takes both out and puts the poor value at hour 0.
        assert_eq!(fixes[first].ratings, [-1, 0, 1]);
        let second = fixes.keys().find(|p| p.hour_ms == HOUR_MS).unwrap();
        assert_eq!(fixes[second].ratings, [0, 0, -1]);
        assert_eq!(total(&fixes).ratings, [-1, 0, 0], "net: one report less");
    }

    #[test]
    fn a_later_run_replaces_what_an_earlier_one_settled() {
        let a = row("a", "/", 1_000, 1, 0.05, 10);
        let b = row("a", "/", 2_000, 2, 0.2, 20);
        let c = row("a", "/", 3_000, 3, 0.3, 30);
        // Run 1 saw a alone: nothing. Run 2 ([15, 25)): a and b.
        let run2 = corrections(&[a.clone(), b.clone(), c.clone()], 15, 25);
        assert_eq!(total(&run2).ratings, [-1, 0, 0]);
        // Run 3 ([25, 35)): c replaces b: -c (view), -b (settled), +c.
        let run3 = corrections(&[a, b, c], 25, 35);
        assert_eq!(total(&run3).ratings, [0, -1, 0]);
    }

    #[test]
    fn a_beacon_sent_twice_counts_once() {
        let rows = [row("a", "/", 1_000, 1, 0.05, 10), row("a", "/", 1_000, 1, 0.05, 12)];
        let fixes = corrections(&rows, 0, 100);
        assert_eq!(total(&fixes).ratings, [-1, 0, 0]);
        assert_eq!(total(&fixes).bins.values().sum::<i64>(), -1);
    }

    #[test]
    fn rows_after_the_run_are_left_to_the_next() {
        let rows = [row("a", "/", 1_000, 1, 0.05, 10), row("a", "/", 2_000, 2, 0.3, 200)];
        assert!(corrections(&rows, 0, 100).is_empty());
    }
}
