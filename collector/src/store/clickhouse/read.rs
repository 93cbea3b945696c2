//! The read planner of the ClickHouse engine.
//!
//! Aggregates (counts per rating and the collector's sketch, per page,
//! metric and time bucket) come from the hourly rollup, which counts each
//! report once (see `rollup.rs`): the rollup's rows, plus the corrections
//! of the rows inserted since the last settle run. The rest, and what the
//! rollup cannot answer (the exact p75: the values of the one bin it falls
//! in), reads the raw reports, deduplicated as the SQLite engine stores
//! them: per `(site, metric, report_id)` the latest value
//! (`argMax` by receipt time and sequence), and the page, form factor and
//! time bucket of the first receipt (`argMin`). A span's reports are the
//! ids with a row in it; all their rows are read, however old or late, so
//! that a re-report received inside the span of a report first received
//! before it still counts where the first receipt does.
//!
//! From the rollup's counts the same [`Cell`]s as the SQLite engine's are
//! built: exact rating counts, and the collector's sketch with the same
//! bins (`sketch::bin_of` is computed in SQL from the value's bits), so
//! p50, p95 and p99 are the same numbers. The exact p75 (and its interval)
//! is then read from the raw values of the one bin it falls in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use beacon::{FormFactor, MetricName, NavigationType};
use serde::Deserialize;

use super::schema::bin_expr;
use super::{rollup, select, select_one, Shared};
use crate::aggregate::{Cell, Span};
use crate::percentile;
use crate::sketch::Located;
use crate::store::{
    Aggregate, AggregateKey, AggregateQuery, Attributed, AttributionQuery, ExportQuery, PageScope, PageViews, Report,
    StoreError, ViewsQuery, HOURLY_DAYS,
};
use crate::time::{now_ms, Resolution, DAY_MS};

/// A string literal.
pub(crate) fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The retention cut-off and the hourly horizon, as the SQLite engine
/// computes them.
fn bounds(shared: &Shared) -> (i64, i64) {
    let today = Resolution::Day.floor(now_ms());
    let cutoff = today - (shared.options.retention_days.max(1) as i64 - 1) * DAY_MS;
    (cutoff, (today - HOURLY_DAYS * DAY_MS).max(cutoff))
}

/// The part of a span the store answers for.
fn clamp(shared: &Shared, span: &Span) -> Span {
    let (cutoff, horizon) = bounds(shared);
    let from_ms = match span.resolution {
        Resolution::Day => cutoff,
        Resolution::Hour => horizon,
    };
    let mut s = *span;
    s.first = s.first.max(span.resolution.bucket(from_ms + span.resolution.ms() - 1));
    s
}

#[cfg(test)]
fn ff_str(ff: Option<FormFactor>) -> &'static str {
    ff.map_or("", FormFactor::as_str)
}

fn ff_parse(s: &str) -> Option<FormFactor> {
    FormFactor::ALL.into_iter().find(|f| f.as_str() == s)
}

fn nav_parse(s: &str) -> NavigationType {
    NavigationType::ALL
        .into_iter()
        .find(|n| n.as_str() == s)
        .unwrap_or(NavigationType::Navigate)
}

/// Filters of the deduplicated reports.
#[derive(Default)]
struct Filter<'a> {
    /// Only ids with a row matching this condition on the raw row
    /// (a pre-filter: the deduplicated report is then tested again).
    ids_with: Option<String>,
    site: Option<&'a str>,
    page: Option<&'a str>,
    metrics: &'a [MetricName],
    form_factor: Option<FormFactor>,
    from_ms: i64,
    to_ms: i64,
    /// The retention cut-off: the oldest rows the reads take.
    kept_from_ms: i64,
}

/// Whether a span `[from, to)` covers so much of the data kept that
/// grouping every row of every id is cheaper than first collecting the
/// ids with a row in it. Both give the same answer: an id counts where its
/// first row is, and `HAVING first_ms` over all its rows decides that. On
/// the chDB front end over 3 M reports, 28 days: 2.4 s without the set of
/// ids, 3.8 s with it; 1 hour: 2.6 s without, 0.5 s with.
fn covers_most(kept_from_ms: i64, from_ms: i64, to_ms: i64) -> bool {
    covers_most_at(now_ms(), kept_from_ms, from_ms, to_ms)
}

/// [`covers_most`] at `now_ms`: an open span (to `i64::MAX`) ends now.
fn covers_most_at(now_ms: i64, kept_from_ms: i64, from_ms: i64, to_ms: i64) -> bool {
    let from = from_ms.max(kept_from_ms);
    let covered = to_ms.min(now_ms).saturating_sub(from).max(0);
    let kept = now_ms.saturating_sub(kept_from_ms).max(1);
    covered.saturating_mul(2) >= kept
}

/// The deduplicated reports of `f`: `site, metric, report_id, page, ff,
/// first_ms, v` (and more with `full`).
fn dedup_sql(f: &Filter, full: bool) -> String {
    let k = "(received_ms, seq)";
    let mut keys = vec!["1".to_string()];
    if let Some(s) = f.site {
        keys.push(format!("site = {}", lit(s)));
    }
    if !f.metrics.is_empty() && f.metrics.len() < MetricName::ALL.len() {
        let list: Vec<String> = f.metrics.iter().map(|m| lit(m.as_str())).collect();
        keys.push(format!("metric IN ({})", list.join(", ")));
    }
    let keys = keys.join(" AND ");
    let (from, to) = (f.from_ms, f.to_ms);
    // All the rows of an id, however early or late, decide whether it was
    // first received in the span and its latest value (the SQLite engine
    // merges a re-report or a beacon sent again whenever it comes), so the
    // scan is never bounded in time: only, where that is cheaper, to the
    // ids that can qualify.
    let mut wh = vec![keys.clone()];
    if let Some(cond) = &f.ids_with {
        // A small set (rows in a few sketch bins): it alone is enough.
        wh.push(format!(
            "(site, metric, report_id) IN (SELECT site, metric, report_id FROM reports \
             WHERE received_ms >= {from} AND {keys} AND ({cond}))"
        ));
    } else if !covers_most(f.kept_from_ms, from, to) {
        // A report first received in the span has a row there.
        wh.push(format!(
            "(site, metric, report_id) IN (SELECT site, metric, report_id FROM reports \
             WHERE received_ms >= {from} AND received_ms < {to} AND {keys})"
        ));
    }
    let mut having = vec![format!("first_ms >= {}", f.from_ms), format!("first_ms < {}", f.to_ms)];
    if let Some(p) = f.page {
        having.push(format!("page = {}", lit(p)));
    }
    if let Some(ff) = f.form_factor {
        having.push(format!("ff = {}", lit(ff.as_str())));
    }
    let extra = if full {
        format!(
            ", argMax(delta, {k}) AS d, argMin(navigation_type, {k}) AS nav, argMin(page_view_id, {k}) AS pv, \
             argMin(session_id, {k}) AS sid, argMaxIf(attribution, {k}, attribution != '') AS attr, min(seq) AS first_seq"
        )
    } else {
        String::new()
    };
    format!(
        "SELECT site, metric, report_id, argMin(page, {k}) AS page, argMin(form_factor, {k}) AS ff, \
         min(received_ms) AS first_ms, argMax(value, {k}) AS v{extra} \
         FROM reports WHERE {} GROUP BY site, metric, report_id HAVING {}",
        wh.join(" AND "),
        having.join(" AND ")
    )
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct BinValues {
    site: String,
    page_key: String,
    metric: String,
    bucket: i64,
    bin: i64,
    values: Vec<f64>,
}

type BucketKey = (String, String, MetricName, i64);

/// Pages are told apart unless only whole sites are wanted (then one
/// group per site: `''`).
fn page_key_expr(pages: &PageScope) -> &'static str {
    match pages {
        PageScope::Site => "''",
        _ => "page",
    }
}

/// The time bucket of a deduplicated report; one span alone is one
/// group (its first bucket), which keeps the answer small.
fn bucket_expr(res: Resolution, spans: &[Span], ms: &str) -> String {
    match one_bucket(spans) {
        Some(b) => format!("toInt64({b})"),
        None => format!("toInt64(intDiv({ms}, {}))", res.ms()),
    }
}

/// The one group of `spans` if they are all one span.
fn one_bucket(spans: &[Span]) -> Option<i64> {
    match spans.split_first() {
        Some((first, rest)) if rest.iter().all(|s| s == first) => Some(first.first),
        _ => None,
    }
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct RollupRow {
    site: String,
    page_key: String,
    metric: String,
    bucket: i64,
    good: i64,
    ni: i64,
    poor: i64,
    bins: (Vec<i64>, Vec<i64>),
}

/// The cells of `spans` (all of resolution `res`, within `[from, to)`)
/// from the rollup: the view's rows and the finished settle runs'
/// corrections, plus the corrections of the rows inserted since, computed
/// here as the next run will.
#[allow(clippy::too_many_arguments)]
async fn rollup_cells(
    shared: &Shared,
    q: &AggregateQuery,
    page: Option<&str>,
    metrics: &[MetricName],
    res: Resolution,
    spans: &[Span],
    from: i64,
    to: i64,
) -> Result<BTreeMap<BucketKey, Cell>, StoreError> {
    let settled = rollup::settled_until(shared).await?;
    let ff = q.form_factor.map(FormFactor::as_str);
    let sql = format!(
        "SELECT site, {page_key} AS page_key, metric, {bucket} AS bucket, toInt64(sum(good)) AS good, \
         toInt64(sum(needs_improvement)) AS ni, toInt64(sum(poor)) AS poor, sumMap(bins) AS bins \
         FROM reports_rollup WHERE (run = 0 OR run <= {settled}) AND hour >= toDateTime({lo}) AND hour < toDateTime({hi}) \
         AND {cond} GROUP BY site, page_key, metric, bucket",
        page_key = page_key_expr(&q.pages),
        bucket = bucket_expr(res, spans, "toInt64(toUnixTimestamp(hour)) * 1000"),
        lo = from.div_euclid(1000),
        hi = to.div_euclid(1000),
        cond = rollup::condition(q.site.as_deref(), metrics, page, ff),
    );
    let rows: Vec<RollupRow> = select(&shared.client, &sql).await?;
    let mut acc: BTreeMap<BucketKey, rollup::Delta> = BTreeMap::new();
    for r in rows {
        let Some(metric) = MetricName::parse(&r.metric) else {
            continue;
        };
        let d = acc.entry((r.site, r.page_key, metric, r.bucket)).or_default();
        d.ratings[0] += r.good;
        d.ratings[1] += r.ni;
        d.ratings[2] += r.poor;
        for (k, n) in r.bins.0.into_iter().zip(r.bins.1) {
            *d.bins.entry(k).or_default() += n;
        }
    }
    // A report's rows are all wanted whatever their page and form factor:
    // the first row's decide where the report counts.
    let raw = rollup::condition(q.site.as_deref(), metrics, None, None);
    let pending = rollup::rows_of_new_reports(shared, settled, i64::MAX, &raw).await?;
    for (place, d) in rollup::corrections(&pending, settled, i64::MAX) {
        let Some(metric) = MetricName::parse(&place.metric) else {
            continue;
        };
        if page.is_some_and(|p| p != place.page)
            || ff.is_some_and(|f| f != place.form_factor)
            || place.hour_ms < from
            || place.hour_ms >= to
        {
            continue;
        }
        let page_key = match q.pages {
            PageScope::Site => String::new(),
            _ => place.page,
        };
        let bucket = one_bucket(spans).unwrap_or_else(|| place.hour_ms.div_euclid(res.ms()));
        acc.entry((place.site, page_key, metric, bucket)).or_default().merge(&d);
    }
    let mut out = BTreeMap::new();
    for (key, d) in acc {
        let mut cell = Cell::default();
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        cell.ratings.good = n(d.ratings[0]);
        cell.ratings.needs_improvement = n(d.ratings[1]);
        cell.ratings.poor = n(d.ratings[2]);
        for (bin, count) in d.bins {
            cell.sketch.add_bin(u32::try_from(bin).ok(), n(count));
        }
        if !cell.is_empty() {
            out.insert(key, cell);
        }
    }
    Ok(out)
}

/// One exact order statistic wanted: of the aggregate `index`, slot `slot`
/// (0: p75, 1 and 2: its interval), the `rank`-th smallest of bin `bin`.
struct Need {
    index: usize,
    slot: usize,
    site: String,
    page: Option<String>,
    metric: MetricName,
    span: Span,
    bin: i64,
    rank: u64,
}

pub(super) async fn aggregates(shared: &Shared, q: &AggregateQuery) -> Result<Vec<Aggregate>, StoreError> {
    let metrics: Vec<MetricName> = if q.metrics.is_empty() {
        MetricName::ALL.to_vec()
    } else {
        q.metrics.clone()
    };
    let page = match &q.pages {
        PageScope::Page(p) => Some(p.as_str()),
        _ => None,
    };
    let mut out: Vec<Aggregate> = Vec::new();
    // Per aggregate: its p75 and interval bounds, as far as known.
    let mut exact: Vec<[Option<f64>; 3]> = Vec::new();
    let mut needs: Vec<Need> = Vec::new();
    // One query per resolution asked for.
    let mut resolutions: Vec<Resolution> = q.spans.iter().map(|s| s.resolution).collect();
    resolutions.dedup();
    resolutions.sort_by_key(|r| r.ms());
    resolutions.dedup();
    let mut cells: HashMap<Resolution, BTreeMap<BucketKey, Cell>> = HashMap::new();
    for &res in &resolutions {
        let spans: Vec<Span> = q
            .spans
            .iter()
            .filter(|s| s.resolution == res)
            .map(|s| clamp(shared, s))
            .filter(|s| !s.is_empty())
            .collect();
        let (Some(from), Some(to)) = (
            spans.iter().map(|s| s.start_ms()).min(),
            spans.iter().map(|s| s.end_ms()).max(),
        ) else {
            continue;
        };
        let map = rollup_cells(shared, q, page, &metrics, res, &spans, from, to).await?;
        cells.insert(res, map);
    }
    // Sites, and their pages, with reports.
    let mut sites: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for map in cells.values() {
        for (site, page, _, _) in map.keys() {
            sites.entry(site.clone()).or_default().insert(page.clone());
        }
    }
    for (site, pages) in &sites {
        for span in &q.spans {
            let clamped = clamp(shared, span);
            let Some(map) = cells.get(&span.resolution) else {
                continue;
            };
            for &metric in &metrics {
                let cell_of = |page: &str| -> Cell {
                    let mut c = Cell::default();
                    if clamped.is_empty() {
                        return c;
                    }
                    let lo = (site.clone(), page.to_string(), metric, clamped.first);
                    let hi = (site.clone(), page.to_string(), metric, clamped.last);
                    for (_, cell) in map.range(lo..=hi) {
                        c.merge(cell);
                    }
                    c
                };
                let mut scopes: Vec<(Option<String>, Cell)> = Vec::new();
                match &q.pages {
                    PageScope::Site | PageScope::SiteAndPages => {
                        let mut site_cell = Cell::default();
                        let mut page_cells = Vec::new();
                        for p in pages {
                            let c = cell_of(p);
                            site_cell.merge(&c);
                            page_cells.push((Some(p.clone()), c));
                        }
                        scopes.push((None, site_cell));
                        if matches!(q.pages, PageScope::SiteAndPages) {
                            scopes.extend(page_cells);
                        }
                    }
                    PageScope::Page(p) => {
                        if pages.contains(p) {
                            scopes.push((Some(p.clone()), cell_of(p)));
                        }
                    }
                }
                for (page, cell) in scopes {
                    if cell.is_empty() {
                        continue;
                    }
                    let n = cell.count() as usize;
                    let mut ranks = Vec::new();
                    if q.exact_p75 || q.p75_interval {
                        ranks.push((0, percentile::rank(75.0, n) as u64));
                    }
                    if q.p75_interval {
                        let (low, high) = percentile::interval_ranks(75.0, n).unwrap_or((1, 1));
                        ranks.extend([(1, low as u64), (2, high as u64)]);
                    }
                    let index = out.len();
                    let mut known: [Option<f64>; 3] = [None; 3];
                    for (slot, rank) in ranks {
                        match cell.sketch.locate_rank(rank) {
                            Some(Located::Zero) => known[slot] = Some(0.0),
                            Some(Located::Bin { key, rank_in_bin, .. }) => needs.push(Need {
                                index,
                                slot,
                                site: site.clone(),
                                page: page.clone(),
                                metric,
                                span: clamped,
                                bin: key as i64,
                                rank: rank_in_bin,
                            }),
                            None => {}
                        }
                    }
                    exact.push(known);
                    out.push(Aggregate {
                        key: AggregateKey {
                            site: site.clone(),
                            page,
                            metric,
                            form_factor: q.form_factor,
                        },
                        span: *span,
                        cell,
                        p75: None,
                        p75_interval: None,
                    });
                }
            }
        }
    }
    if !needs.is_empty() {
        let found = exact_values(shared, q, &metrics, &needs).await?;
        for (need, value) in needs.iter().zip(found) {
            exact[need.index][need.slot] = value;
        }
    }
    for (a, e) in out.iter_mut().zip(&exact) {
        a.p75 = e[0];
        if q.p75_interval {
            if let (Some(l), Some(h)) = (e[1], e[2]) {
                a.p75_interval = Some((l, h));
            }
        }
    }
    Ok(out)
}

/// The values at the wanted ranks of the wanted bins.
async fn exact_values(
    shared: &Shared,
    q: &AggregateQuery,
    metrics: &[MetricName],
    needs: &[Need],
) -> Result<Vec<Option<f64>>, StoreError> {
    let mut by_res: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, n) in needs.iter().enumerate() {
        by_res.entry(n.span.resolution.ms()).or_default().push(i);
    }
    let mut out = vec![None; needs.len()];
    for idx in by_res.into_values() {
        let from = idx.iter().map(|&i| needs[i].span.start_ms()).min().expect("non-empty");
        let to = idx.iter().map(|&i| needs[i].span.end_ms()).max().expect("non-empty");
        // The bins wanted, per site and metric: a site's pages' p75s fall
        // in a few hundred bins at most, so the query stays short.
        let mut wanted: BTreeMap<(String, &'static str), BTreeSet<i64>> = BTreeMap::new();
        for &i in &idx {
            wanted
                .entry((needs[i].site.clone(), needs[i].metric.as_str()))
                .or_default()
                .insert(needs[i].bin);
        }
        let list = |value: &str| -> String {
            wanted
                .iter()
                .map(|((s, m), bins)| {
                    let bins: Vec<String> = bins.iter().map(|b| b.to_string()).collect();
                    format!(
                        "(site = {} AND metric = {} AND {} IN ({}))",
                        lit(s),
                        lit(m),
                        bin_expr(value),
                        bins.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        let page = match &q.pages {
            PageScope::Page(p) => Some(p.as_str()),
            _ => None,
        };
        let f = Filter {
            site: q.site.as_deref(),
            page,
            metrics,
            form_factor: q.form_factor,
            from_ms: from,
            to_ms: to,
            kept_from_ms: bounds(shared).0,
            // A report whose latest value is in a wanted bin has that row.
            ids_with: Some(list("value")),
        };
        let spans: Vec<Span> = idx.iter().map(|&i| needs[i].span).collect();
        let sql = format!(
            "SELECT site, {page_key} AS page_key, metric, {bucket} AS bucket, bin, arraySort(groupArray(v)) AS values \
             FROM (SELECT site, page, metric, first_ms, v, {bin} AS bin FROM ({d}) WHERE {list}) \
             GROUP BY site, page_key, metric, bucket, bin",
            page_key = page_key_expr(&q.pages),
            bucket = bucket_expr(spans[0].resolution, &spans, "first_ms"),
            bin = bin_expr("v"),
            d = dedup_sql(&f, false),
            list = list("v"),
        );
        let rows: Vec<BinValues> = select(&shared.client, &sql).await?;
        for &i in &idx {
            let n = &needs[i];
            let mut values: Vec<f64> = rows
                .iter()
                .filter(|r| {
                    r.site == n.site
                        && r.metric == n.metric.as_str()
                        && r.bin == n.bin
                        && n.page.as_ref().is_none_or(|p| *p == r.page_key)
                        && (n.span.first..=n.span.last).contains(&r.bucket)
                })
                .flat_map(|r| r.values.iter().copied())
                .collect();
            values.sort_by(f64::total_cmp);
            out[i] = values.get(n.rank as usize - 1).copied();
        }
    }
    Ok(out)
}

/// How many reports of `key` in `span` are at or below each threshold,
/// in one query.
pub(super) async fn counts_at_or_below(
    shared: &Shared,
    key: &AggregateKey,
    span: Span,
    thresholds: &[f64],
) -> Result<Vec<u64>, StoreError> {
    let clamped = clamp(shared, &span);
    if clamped.is_empty() || thresholds.is_empty() {
        return Ok(vec![0; thresholds.len()]);
    }
    let metrics = [key.metric];
    let f = Filter {
        site: Some(&key.site),
        page: key.page.as_deref(),
        metrics: &metrics,
        form_factor: key.form_factor,
        from_ms: clamped.start_ms(),
        to_ms: clamped.end_ms(),
        kept_from_ms: bounds(shared).0,
        ids_with: None,
    };
    let counts: Vec<String> = thresholds.iter().map(|t| format!("countIf(v <= {t:?})")).collect();
    let sql = format!("SELECT [{}] FROM ({})", counts.join(", "), dedup_sql(&f, false));
    select_one::<Vec<u64>>(&shared.client, &sql).await
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct ViewRow {
    site: String,
    page: String,
    nav: String,
    n: u64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct LastRow {
    site: String,
    page: String,
    last: i64,
}

/// A page's views by navigation type, and its last beacon.
type PageViewCounts = ([u64; 7], Option<i64>);

pub(super) async fn page_views(shared: &Shared, q: &ViewsQuery) -> Result<Vec<PageViews>, StoreError> {
    let (cutoff, _) = bounds(shared);
    let span = clamp(shared, &q.span);
    let site_filter = q
        .site
        .as_deref()
        .map(|s| format!(" AND site = {}", lit(s)))
        .unwrap_or_default();
    let page_filter = match &q.pages {
        PageScope::Page(p) => format!(" AND page = {}", lit(p)),
        _ => String::new(),
    };
    let mut counts: Vec<ViewRow> = Vec::new();
    if !span.is_empty() {
        let k = "(received_ms, seq)";
        let ff = q
            .form_factor
            .map(|f| format!(" AND ff = {}", lit(f.as_str())))
            .unwrap_or_default();
        // A view counts where its first beacon does, however late its
        // others come (as for reports, in `dedup_sql`).
        let (from, to) = (span.start_ms(), span.end_ms());
        let views = format!("page_view_id != ''{site_filter}");
        let ids = if covers_most(cutoff, from, to) {
            String::new()
        } else {
            format!(
                " AND (site, page_view_id) IN (SELECT site, page_view_id FROM reports \
                 WHERE received_ms >= {from} AND received_ms < {to} AND {views})"
            )
        };
        let sql = format!(
            "SELECT site, page, nav, count() AS n FROM (\
               SELECT site, page_view_id, argMin(page, {k}) AS page, argMin(form_factor, {k}) AS ff, \
               argMin(navigation_type, {k}) AS nav, min(received_ms) AS first_ms FROM reports \
               WHERE {views}{ids} GROUP BY site, page_view_id \
               HAVING first_ms >= {from} AND first_ms < {to}{ff}) WHERE 1{page_filter} GROUP BY site, page, nav",
        );
        counts = select(&shared.client, &sql).await?;
    }
    let sql = format!(
        "SELECT site, page, max(received_ms) AS last FROM reports WHERE received_ms >= {cutoff}{site_filter}{page_filter} \
         GROUP BY site, page"
    );
    let lasts: Vec<LastRow> = select(&shared.client, &sql).await?;
    // site -> page -> (navigation counts, last beacon)
    let mut by: BTreeMap<String, BTreeMap<String, PageViewCounts>> = BTreeMap::new();
    for l in lasts {
        by.entry(l.site).or_default().entry(l.page).or_default().1 = Some(l.last);
    }
    for c in counts {
        let nav = nav_parse(&c.nav);
        let i = NavigationType::ALL.iter().position(|n| *n == nav).unwrap_or(0);
        by.entry(c.site).or_default().entry(c.page).or_default().0[i] += c.n;
    }
    let mut out = Vec::new();
    for (site, pages) in by {
        if !matches!(q.pages, PageScope::Page(_)) {
            let mut total = [0u64; 7];
            let mut last = None;
            for (counts, l) in pages.values() {
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += c;
                }
                last = last.max(*l);
            }
            if last.is_some() || total.iter().any(|&n| n > 0) {
                out.push(PageViews {
                    site: site.clone(),
                    page: None,
                    by_navigation: total,
                    last_received_ms: last,
                });
            }
        }
        if matches!(q.pages, PageScope::Site) {
            continue;
        }
        for (page, (counts, last)) in pages {
            if last.is_some() || counts.iter().any(|&n| n > 0) {
                out.push(PageViews {
                    site: site.clone(),
                    page: Some(page),
                    by_navigation: counts,
                    last_received_ms: last,
                });
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct AttrRow {
    metric: String,
    v: f64,
    attr: String,
}

pub(super) async fn attributions(shared: &Shared, q: &AttributionQuery) -> Result<Vec<Attributed>, StoreError> {
    let (cutoff, _) = bounds(shared);
    let f = Filter {
        site: Some(&q.site),
        page: q.page.as_deref(),
        metrics: &q.metrics,
        form_factor: q.form_factor,
        from_ms: q.from_ms.max(cutoff),
        to_ms: q.to_ms,
        kept_from_ms: cutoff,
        ids_with: None,
    };
    let sql = format!("SELECT metric, v, attr FROM ({}) WHERE attr != ''", dedup_sql(&f, true));
    let rows: Vec<AttrRow> = select(&shared.client, &sql).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let metric = MetricName::parse(&r.metric)?;
            if !q.metrics.is_empty() && !q.metrics.contains(&metric) {
                return None;
            }
            Some(Attributed {
                metric,
                value: r.v,
                attribution: serde_json::from_str(&r.attr).ok()?,
            })
        })
        .collect())
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct ExportRow {
    site: String,
    metric: String,
    report_id: String,
    page: String,
    ff: String,
    first_ms: i64,
    v: f64,
    d: f64,
    nav: String,
    pv: String,
    sid: String,
    attr: String,
}

pub(super) async fn export(shared: &Shared, q: &ExportQuery) -> Result<Vec<Report>, StoreError> {
    let (cutoff, _) = bounds(shared);
    let f = Filter {
        site: q.site.as_deref(),
        from_ms: q.from_ms.max(cutoff),
        to_ms: q.to_ms,
        kept_from_ms: cutoff,
        ..Filter::default()
    };
    let sql = format!(
        "SELECT site, metric, report_id, page, ff, first_ms, v, d, nav, pv, sid, attr FROM ({}) \
         ORDER BY first_ms, first_seq",
        dedup_sql(&f, true)
    );
    let rows: Vec<ExportRow> = select(&shared.client, &sql).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let metric = MetricName::parse(&r.metric)?;
            Some(Report {
                site: r.site,
                page: r.page,
                metric,
                report_id: r.report_id,
                value: r.v,
                delta: r.d,
                rating: metric.rate(r.v),
                navigation_type: nav_parse(&r.nav),
                form_factor: ff_parse(&r.ff),
                page_view_id: (!r.pv.is_empty()).then_some(r.pv),
                session_id: (!r.sid.is_empty()).then_some(r.sid),
                received_at_ms: r.first_ms,
                attribution: if r.attr.is_empty() {
                    None
                } else {
                    serde_json::from_str(&r.attr).ok()
                },
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HOUR_MS;

    #[test]
    fn the_set_of_ids_is_skipped_only_for_spans_over_most_of_the_data_kept() {
        let now = 1_800_000_000_000;
        let kept = now - 35 * DAY_MS;
        assert!(covers_most_at(now, kept, now - 28 * DAY_MS, now));
        assert!(covers_most_at(now, kept, 0, i64::MAX), "everything, open-ended");
        assert!(covers_most_at(now, kept, kept, kept + 18 * DAY_MS));
        assert!(!covers_most_at(now, kept, now - 7 * DAY_MS, now));
        assert!(
            !covers_most_at(now, kept, now - HOUR_MS, i64::MAX),
            "the last hour, open-ended"
        );
        assert!(
            !covers_most_at(now, kept, now + DAY_MS, i64::MAX),
            "a span in the future"
        );
        assert!(!covers_most_at(now, kept, 0, kept), "a span before the data kept");
        assert!(!covers_most_at(now, now, now, now), "nothing kept");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(lit("a'b\\c"), "'a\\'b\\\\c'");
    }

    #[test]
    fn form_factor_codes_round_trip() {
        for ff in FormFactor::ALL {
            assert_eq!(ff_parse(ff_str(Some(ff))), Some(ff));
        }
        assert_eq!(ff_parse(ff_str(None)), None);
        for n in NavigationType::ALL {
            assert_eq!(nav_parse(n.as_str()), n);
        }
    }
}
