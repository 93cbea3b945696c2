//! The read APIs' answers, computed from [`Store::aggregates`] and
//! [`Store::page_views`]: the summary (shaped after the Chrome UX Report
//! API), page lists, time series and one page's detail, each figure with
//! what a reader needs to trust it (the p75's confidence interval, a low
//! sample mark, the share of page views it covers). Each takes the time it
//! is computed at, so tests can fix it.

use std::collections::{BTreeMap, HashMap};

use beacon::{FormFactor, MetricName, NavigationType, Rating};
use serde::Serialize;

use crate::aggregate::{form_factor_str, Span, Window, WindowName};
use crate::percentile;
use crate::store::{Aggregate, AggregateKey, AggregateQuery, PageScope, PageViews, Store, StoreError, ViewsQuery};
use crate::time::{rfc3339, Date, Resolution, DAY_MS, HOUR_MS};

/// One bin of a metric's histogram, as in the Chrome UX Report API: good
/// is `[0, good]`, needs improvement `(good, poor]`, poor `(poor, ∞)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bin {
    pub start: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    pub density: f64,
}

/// A 95 % confidence interval of a p75: the exact values at the ranks of
/// [`percentile::interval_ranks`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
}

impl Interval {
    fn of(a: &Aggregate) -> Option<Interval> {
        a.p75_interval.map(|(low, high)| Interval {
            low,
            high,
            confidence: 0.95,
        })
    }
}

/// How reads judge their figures: below this many samples a p75 is marked
/// `lowSample` (the alert rules' minimum, 200 by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trust {
    pub low_sample_below: u64,
}

impl Default for Trust {
    fn default() -> Trust {
        Trust { low_sample_below: 200 }
    }
}

/// One metric of one page or site over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    pub count: u64,
    /// From the sketch: within 1 % of the exact nearest-rank value.
    pub p50: f64,
    /// Exact nearest-rank 75th percentile.
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
    /// Good / needs improvement / poor densities, from exact counts.
    pub histogram: [Bin; 3],
    /// The rating of the p75, from the exact counts.
    pub rating: Rating,
    /// The p75's 95 % confidence interval, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p75_interval: Option<Interval>,
    /// Fewer samples than [`Trust::low_sample_below`].
    pub low_sample: bool,
    /// Page views of the page or site in the window (all metrics).
    pub page_views: u64,
    /// The share of those page views with a report of this metric (one
    /// per page view and metric, as the agent reports), at most 1; null
    /// without page views.
    pub coverage: Option<f64>,
}

impl MetricSummary {
    /// `page_views`: of the aggregate's page or site, in its span.
    pub fn of(a: &Aggregate, trust: Trust, page_views: u64) -> Option<MetricSummary> {
        let t = a.key.metric.thresholds();
        let d = a.cell.ratings.densities();
        let p75 = a.p75.or_else(|| a.quantile(75.0))?;
        let n = a.count() as usize;
        let rank75 = percentile::rank(75.0, n);
        // A percentile of the same rank as the p75 is the p75, exactly; the
        // others are kept on their side of it (which only brings them
        // closer to the exact value), so p50 <= p75 <= p95 <= p99.
        let q = |p: f64| {
            let v = a.quantile(p).unwrap_or(p75);
            if percentile::rank(p, n) == rank75 {
                p75
            } else if p < 75.0 {
                v.min(p75)
            } else {
                v.max(p75)
            }
        };
        let p95 = q(95.0);
        Some(MetricSummary {
            count: a.count(),
            p50: q(50.0),
            p75,
            p95,
            p99: q(99.0).max(p95),
            histogram: [
                Bin {
                    start: 0.0,
                    end: Some(t.good),
                    density: d[0],
                },
                Bin {
                    start: t.good,
                    end: Some(t.poor),
                    density: d[1],
                },
                Bin {
                    start: t.poor,
                    end: None,
                    density: d[2],
                },
            ],
            rating: a.rating()?,
            p75_interval: Interval::of(a),
            low_sample: a.count() < trust.low_sample_below,
            page_views,
            coverage: coverage(a.count(), page_views),
        })
    }
}

fn coverage(reports: u64, page_views: u64) -> Option<f64> {
    (page_views > 0).then(|| (reports as f64 / page_views as f64).min(1.0))
}

/// The Core Web Vitals assessment: passed when the p75 of LCP, INP and
/// CLS are all good; failed when one of them is not; insufficient data
/// when one of them has no reports (and none failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assessment {
    Passed,
    Failed,
    InsufficientData,
}

const CORE: [MetricName; 3] = [MetricName::Lcp, MetricName::Inp, MetricName::Cls];

impl Assessment {
    pub fn of(metrics: &BTreeMap<MetricName, MetricSummary>) -> Assessment {
        Assessment::of_ratings(|m| metrics.get(&m).map(|s| s.rating))
    }

    fn of_ratings(rating: impl Fn(MetricName) -> Option<Rating>) -> Assessment {
        if CORE.iter().any(|&m| rating(m).is_some_and(|r| r != Rating::Good)) {
            Assessment::Failed
        } else if CORE.iter().all(|&m| rating(m).is_some()) {
            Assessment::Passed
        } else {
            Assessment::InsufficientData
        }
    }
}

/// A page's or a whole site's metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub site: String,
    /// Absent for the whole site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Keyed by metric name (`"LCP"`); only metrics with reports.
    pub metrics: BTreeMap<MetricName, MetricSummary>,
    pub core_web_vitals: Assessment,
    /// Page views in the window.
    pub page_views: u64,
    /// When the last beacon arrived (whatever the window), RFC 3339.
    pub last_beacon_at: Option<String>,
    /// Sites only: whether a site that was sending has gone quiet (see
    /// [`is_quiet`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet: Option<bool>,
}

/// A site has gone quiet when its last beacon is more than an hour old
/// while it sent beacons within the last 7 days.
pub fn is_quiet(last_received_ms: Option<i64>, now_ms: i64) -> bool {
    last_received_ms.is_some_and(|last| now_ms - last > HOUR_MS && now_ms - last <= 7 * DAY_MS)
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionPeriod {
    pub first_date: Date,
    pub last_date: Date,
}

/// `GET /v1/summary`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub window: &'static str,
    pub form_factor: &'static str,
    pub collection_period: CollectionPeriod,
    /// The window's first bucket's start and now, RFC 3339.
    pub from: String,
    pub to: String,
    /// Metrics with fewer samples are marked `lowSample`.
    pub low_sample_below: u64,
    /// One record per site (the whole site), by site.
    pub sites: Vec<Record>,
    /// One record per page, by site then page.
    pub pages: Vec<Record>,
}

fn collection_period(w: &Window) -> CollectionPeriod {
    CollectionPeriod {
        first_date: w.first_date(),
        last_date: w.last_date(),
    }
}

/// Page views by (site, page or `None` for the site).
type ViewsByKey = HashMap<(String, Option<String>), PageViews>;

async fn page_views(
    store: &dyn Store,
    site: Option<String>,
    pages: PageScope,
    form_factor: Option<FormFactor>,
    span: Span,
) -> Result<ViewsByKey, StoreError> {
    let views = store
        .page_views(ViewsQuery {
            site,
            pages,
            form_factor,
            span,
        })
        .await?;
    Ok(views
        .into_iter()
        .map(|v| ((v.site.clone(), v.page.clone()), v))
        .collect())
}

/// The records of `aggregates`, each with its page views: sites, then
/// pages, each sorted.
fn records(aggregates: &[Aggregate], views: &ViewsByKey, trust: Trust, now_ms: i64) -> (Vec<Record>, Vec<Record>) {
    let mut by_key: BTreeMap<(String, Option<String>), BTreeMap<MetricName, MetricSummary>> = BTreeMap::new();
    for a in aggregates {
        let key = (a.key.site.clone(), a.key.page.clone());
        let viewed = views.get(&key).map_or(0, PageViews::total);
        if let Some(s) = MetricSummary::of(a, trust, viewed) {
            by_key.entry(key).or_default().insert(a.key.metric, s);
        }
    }
    let (mut sites, mut pages) = (Vec::new(), Vec::new());
    for ((site, page), metrics) in by_key {
        let v = views.get(&(site.clone(), page.clone()));
        let last = v.and_then(|v| v.last_received_ms);
        let record = Record {
            core_web_vitals: Assessment::of(&metrics),
            quiet: page.is_none().then(|| is_quiet(last, now_ms)),
            site,
            page: page.clone(),
            metrics,
            page_views: v.map_or(0, PageViews::total),
            last_beacon_at: last.map(rfc3339),
        };
        if page.is_some() {
            pages.push(record);
        } else {
            sites.push(record);
        }
    }
    (sites, pages)
}

/// The summary of one site (or all) over a window ending at `now_ms`;
/// without `with_pages`, of the sites only (`pages` empty), which costs a
/// site's pages nothing.
#[allow(clippy::too_many_arguments)]
pub async fn summary(
    store: &dyn Store,
    site: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    with_pages: bool,
    trust: Trust,
    now_ms: i64,
) -> Result<Summary, StoreError> {
    let w = Window::ending_at(window, now_ms);
    let scope = if with_pages {
        PageScope::SiteAndPages
    } else {
        PageScope::Site
    };
    let aggregates = store
        .aggregates(AggregateQuery {
            site: site.clone(),
            pages: scope.clone(),
            metrics: vec![],
            form_factor,
            spans: vec![w.span],
            exact_p75: true,
            p75_interval: true,
        })
        .await?;
    let views = page_views(store, site, scope, form_factor, w.span).await?;
    let (sites, pages) = records(&aggregates, &views, trust, now_ms);
    Ok(Summary {
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        collection_period: collection_period(&w),
        from: rfc3339(w.start_ms()),
        to: rfc3339(w.end_ms()),
        low_sample_below: trust.low_sample_below,
        sites,
        pages,
    })
}

/// One site in `GET /v1/sites`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteEntry {
    pub site: String,
    pub last_beacon_at: Option<String>,
    /// See [`is_quiet`].
    pub quiet: bool,
}

/// `GET /v1/sites`: the sites a caller may read (all, or `only`), with
/// when each last sent a beacon, most recent first.
pub async fn sites(store: &dyn Store, only: Option<Vec<String>>, now_ms: i64) -> Result<Vec<SiteEntry>, StoreError> {
    // Beacon times do not depend on the span; the day's is the cheapest.
    let span = Window::ending_at(WindowName::Hour, now_ms).span;
    let views = store
        .page_views(ViewsQuery {
            site: None,
            pages: PageScope::Site,
            form_factor: None,
            span,
        })
        .await?;
    let mut out: Vec<SiteEntry> = views
        .into_iter()
        .filter(|v| only.as_ref().is_none_or(|o| o.contains(&v.site)))
        .map(|v| SiteEntry {
            quiet: is_quiet(v.last_received_ms, now_ms),
            last_beacon_at: v.last_received_ms.map(rfc3339),
            site: v.site,
        })
        .collect();
    // A site key's own site is readable before its first beacon, too.
    for site in only.iter().flatten() {
        if !out.iter().any(|e| &e.site == site) {
            out.push(SiteEntry {
                site: site.clone(),
                last_beacon_at: None,
                quiet: false,
            });
        }
    }
    out.sort_by(|a, b| {
        b.last_beacon_at
            .cmp(&a.last_beacon_at)
            .then_with(|| a.site.cmp(&b.site))
    });
    Ok(out)
}

/// One page in `GET /v1/pages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageEntry {
    pub site: String,
    pub page: String,
    /// Metric reports in the window, all metrics.
    pub count: u64,
    /// Reports per metric.
    pub metrics: BTreeMap<MetricName, u64>,
    pub page_views: u64,
    pub last_beacon_at: Option<String>,
    pub core_web_vitals: Assessment,
    pub p75: BTreeMap<MetricName, f64>,
    pub p75_interval: BTreeMap<MetricName, Interval>,
    pub rating: BTreeMap<MetricName, Rating>,
    pub low_sample: BTreeMap<MetricName, bool>,
    pub coverage: BTreeMap<MetricName, Option<f64>>,
}

/// How `GET /v1/pages` orders pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSort {
    /// By the worst rating among the p75 of LCP, INP and CLS (poor, needs
    /// improvement, good, no data), then page views (most first), then
    /// page key.
    Worst,
    PageViews,
    Count,
    Page,
    /// By this metric's p75; pages without it last.
    P75(MetricName),
}

impl PageSort {
    pub fn parse(s: &str) -> Option<PageSort> {
        Some(match s {
            "worst" => PageSort::Worst,
            "pageViews" => PageSort::PageViews,
            "count" => PageSort::Count,
            "page" => PageSort::Page,
            m => PageSort::P75(MetricName::parse(&m.to_ascii_uppercase())?),
        })
    }
}

/// Which pages `GET /v1/pages` lists, and in what order.
#[derive(Clone, Debug, PartialEq)]
pub struct PageList {
    /// Case-insensitive substring of the page key.
    pub filter: Option<String>,
    pub sort: PageSort,
    /// Descending (worst first, most first; the default but for `Page`).
    pub descending: bool,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl Default for PageList {
    fn default() -> PageList {
        PageList {
            filter: None,
            sort: PageSort::Count,
            descending: true,
            offset: 0,
            limit: None,
        }
    }
}

/// Most pages one `GET /v1/pages` answers.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// `GET /v1/pages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pages {
    pub window: &'static str,
    pub form_factor: &'static str,
    pub collection_period: CollectionPeriod,
    pub low_sample_below: u64,
    /// Pages matching the filter.
    pub total: usize,
    pub offset: usize,
    pub limit: Option<usize>,
    pub pages: Vec<PageEntry>,
}

fn rating_rank(r: Option<Rating>) -> u8 {
    match r {
        Some(Rating::Poor) => 0,
        Some(Rating::NeedsImprovement) => 1,
        Some(Rating::Good) => 2,
        None => 3,
    }
}

impl PageEntry {
    fn worst(&self) -> u8 {
        CORE.iter()
            .map(|m| rating_rank(self.rating.get(m).copied()))
            .min()
            .unwrap_or(3)
    }
}

fn compare(a: &PageEntry, b: &PageEntry, list: &PageList) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_key = || (&a.site, &a.page).cmp(&(&b.site, &b.page));
    let directed = |o: Ordering| if list.descending { o.reverse() } else { o };
    match list.sort {
        // Worst first when descending: lower rank is worse.
        PageSort::Worst => directed(
            b.worst()
                .cmp(&a.worst())
                .then_with(|| a.page_views.cmp(&b.page_views))
                .then_with(|| by_key().reverse()),
        ),
        PageSort::PageViews => directed(a.page_views.cmp(&b.page_views)).then_with(by_key),
        PageSort::Count => directed(a.count.cmp(&b.count)).then_with(by_key),
        PageSort::Page => directed(by_key()),
        PageSort::P75(m) => match (a.p75.get(&m), b.p75.get(&m)) {
            (Some(x), Some(y)) => directed(x.total_cmp(y)).then_with(by_key),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => by_key(),
        },
    }
}

pub async fn pages(
    store: &dyn Store,
    site: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    list: &PageList,
    trust: Trust,
    now_ms: i64,
) -> Result<Pages, StoreError> {
    let w = Window::ending_at(window, now_ms);
    let aggregates = store
        .aggregates(AggregateQuery {
            site: site.clone(),
            pages: PageScope::SiteAndPages,
            metrics: vec![],
            form_factor,
            spans: vec![w.span],
            exact_p75: true,
            p75_interval: true,
        })
        .await?;
    let views = page_views(store, site, PageScope::SiteAndPages, form_factor, w.span).await?;
    let (_, records) = records(&aggregates, &views, trust, now_ms);
    let filter = list.filter.as_ref().map(|f| f.to_lowercase());
    let mut pages: Vec<PageEntry> = records
        .into_iter()
        .filter(|r| {
            filter
                .as_ref()
                .is_none_or(|f| r.page.as_deref().is_some_and(|p| p.to_lowercase().contains(f)))
        })
        .map(|r| {
            let ms = &r.metrics;
            PageEntry {
                count: ms.values().map(|m| m.count).sum(),
                metrics: ms.iter().map(|(&k, m)| (k, m.count)).collect(),
                p75: ms.iter().map(|(&k, m)| (k, m.p75)).collect(),
                p75_interval: ms.iter().filter_map(|(&k, m)| Some((k, m.p75_interval?))).collect(),
                rating: ms.iter().map(|(&k, m)| (k, m.rating)).collect(),
                low_sample: ms.iter().map(|(&k, m)| (k, m.low_sample)).collect(),
                coverage: ms.iter().map(|(&k, m)| (k, m.coverage)).collect(),
                core_web_vitals: r.core_web_vitals,
                page_views: r.page_views,
                last_beacon_at: r.last_beacon_at,
                site: r.site,
                page: r.page.unwrap_or_default(),
            }
        })
        .collect();
    pages.sort_by(|a, b| compare(a, b, list));
    let total = pages.len();
    let limit = list.limit.map(|l| l.min(MAX_PAGE_LIMIT));
    let pages: Vec<PageEntry> = pages
        .into_iter()
        .skip(list.offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok(Pages {
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        collection_period: collection_period(&w),
        low_sample_below: trust.low_sample_below,
        total,
        offset: list.offset,
        limit,
        pages,
    })
}

/// One step of a time series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Start of the step, RFC 3339.
    pub start: String,
    pub count: u64,
    /// Exact nearest-rank p75; null without reports.
    pub p75: Option<f64>,
    pub rating: Option<Rating>,
    /// From the sketch (within 1 %); null without reports.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p75_interval: Option<Interval>,
    pub low_sample: bool,
}

/// A metric's rating thresholds, as the answers carry them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdPair {
    pub good: f64,
    pub poor: f64,
}

fn thresholds(metric: MetricName) -> ThresholdPair {
    let t = metric.thresholds();
    ThresholdPair {
        good: t.good,
        poor: t.poor,
    }
}

/// `"ms"`, or `"score"` for CLS.
pub fn unit(metric: MetricName) -> &'static str {
    match metric {
        MetricName::Cls => "score",
        _ => "ms",
    }
}

/// `GET /v1/timeseries`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeseries {
    pub site: String,
    /// Absent for the whole site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub metric: MetricName,
    pub window: &'static str,
    pub step: &'static str,
    pub form_factor: &'static str,
    pub unit: &'static str,
    pub thresholds: ThresholdPair,
    pub points: Vec<Point>,
}

/// Why a read cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum TimeseriesError {
    #[error("step {step} is coarser than window {window}'s own buckets; use step=1h")]
    StepTooCoarse { step: &'static str, window: &'static str },
    #[error("hourly steps are kept for 7 days only; use window=7d or less, or step=1d")]
    HoursTooOld,
    #[error("no reports for {0} in this window")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[allow(clippy::too_many_arguments)]
pub async fn timeseries(
    store: &dyn Store,
    site: String,
    page: Option<String>,
    metric: MetricName,
    window: WindowName,
    step: Resolution,
    form_factor: Option<FormFactor>,
    trust: Trust,
    now_ms: i64,
) -> Result<Timeseries, TimeseriesError> {
    let w = Window::ending_at(window, now_ms);
    let steps: Span = w.steps(step).ok_or(TimeseriesError::StepTooCoarse {
        step: step.as_str(),
        window: window.as_str(),
    })?;
    if step == Resolution::Hour && window == WindowName::Days28 {
        return Err(TimeseriesError::HoursTooOld);
    }
    let aggregates = store
        .aggregates(AggregateQuery {
            site: Some(site.clone()),
            pages: page.clone().map_or(PageScope::Site, PageScope::Page),
            metrics: vec![metric],
            form_factor,
            spans: steps.steps().collect(),
            exact_p75: true,
            p75_interval: true,
        })
        .await?;
    let by_step: BTreeMap<i64, &Aggregate> = aggregates.iter().map(|a| (a.span.first, a)).collect();
    let points = steps
        .steps()
        .map(|s| {
            let a = by_step.get(&s.first);
            let summary = a.and_then(|a| MetricSummary::of(a, trust, 0));
            Point {
                start: rfc3339(s.start_ms()),
                count: a.map_or(0, |a| a.count()),
                p75: a.and_then(|a| a.p75),
                rating: a.and_then(|a| a.rating()),
                p50: summary.as_ref().map(|m| m.p50),
                p95: summary.as_ref().map(|m| m.p95),
                p75_interval: a.and_then(|a| Interval::of(a)),
                low_sample: a.map_or(0, |a| a.count()) < trust.low_sample_below,
            }
        })
        .collect();
    Ok(Timeseries {
        site,
        page,
        metric,
        window: window.as_str(),
        step: step.as_str(),
        form_factor: form_factor_str(form_factor),
        unit: unit(metric),
        thresholds: thresholds(metric),
        points,
    })
}

/// One bucket of a metric's value distribution: values in `(start, end]`
/// (the first bucket from 0 inclusive), exactly counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub start: f64,
    /// Null for the last bucket (everything above `start`).
    pub end: Option<f64>,
    pub count: u64,
}

/// The bucket edges of a metric's distribution: even steps up to about
/// twice its poor threshold, then one bucket for the rest.
pub fn distribution_edges(metric: MetricName) -> Vec<f64> {
    let (step, last): (f64, f64) = match metric {
        MetricName::Lcp => (250.0, 8000.0),
        MetricName::Fcp => (200.0, 6000.0),
        MetricName::Ttfb => (100.0, 3600.0),
        MetricName::Inp => (25.0, 1000.0),
        MetricName::Cls => (0.025, 0.5),
    };
    let n = (last / step).round() as usize;
    // Multiples computed from integers, so that 0.1 and 0.25 are exact edges.
    (1..=n).map(|i| (i as f64 * step * 1000.0).round() / 1000.0).collect()
}

/// Per form factor: the count, exact p75 and rating.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FormFactorSplit {
    pub count: u64,
    pub p75: f64,
    pub rating: Rating,
}

/// One metric of `GET /v1/page`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDetail {
    #[serde(flatten)]
    pub summary: MetricSummary,
    pub unit: &'static str,
    pub thresholds: ThresholdPair,
    pub distribution: Vec<Bucket>,
    /// Keyed by `phone`, `tablet`, `desktop`; null without reports.
    pub form_factors: BTreeMap<&'static str, Option<FormFactorSplit>>,
}

/// `GET /v1/page`: one page (or a whole site) in detail.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDetail {
    pub site: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub window: &'static str,
    pub form_factor: &'static str,
    pub collection_period: CollectionPeriod,
    pub from: String,
    pub to: String,
    pub low_sample_below: u64,
    pub page_views: u64,
    pub last_beacon_at: Option<String>,
    pub core_web_vitals: Assessment,
    /// Page views by the navigation type of their first report.
    pub navigation_types: BTreeMap<&'static str, u64>,
    pub metrics: BTreeMap<MetricName, MetricDetail>,
}

#[allow(clippy::too_many_arguments)]
pub async fn page_detail(
    store: &dyn Store,
    site: String,
    page: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    trust: Trust,
    now_ms: i64,
) -> Result<PageDetail, TimeseriesError> {
    let w = Window::ending_at(window, now_ms);
    let scope = page.clone().map_or(PageScope::Site, PageScope::Page);
    let query = |form_factor, interval| AggregateQuery {
        site: Some(site.clone()),
        pages: scope.clone(),
        metrics: vec![],
        form_factor,
        spans: vec![w.span],
        exact_p75: true,
        p75_interval: interval,
    };
    let aggregates = store.aggregates(query(form_factor, true)).await?;
    let views = page_views(store, Some(site.clone()), scope.clone(), form_factor, w.span).await?;
    let v = views.get(&(site.clone(), page.clone()));
    if aggregates.is_empty() && v.is_none() {
        let what = page.clone().unwrap_or_else(|| site.clone());
        return Err(TimeseriesError::NotFound(what));
    }
    let viewed = v.map_or(0, PageViews::total);
    let mut splits: BTreeMap<(MetricName, &'static str), FormFactorSplit> = BTreeMap::new();
    for ff in FormFactor::ALL {
        for a in store.aggregates(query(Some(ff), false)).await? {
            if let (Some(p75), Some(rating)) = (a.p75, a.rating()) {
                let split = FormFactorSplit {
                    count: a.count(),
                    p75,
                    rating,
                };
                splits.insert((a.key.metric, ff.as_str()), split);
            }
        }
    }
    let mut metrics = BTreeMap::new();
    for a in &aggregates {
        let Some(summary) = MetricSummary::of(a, trust, viewed) else {
            continue;
        };
        let metric = a.key.metric;
        let edges = distribution_edges(metric);
        let key = AggregateKey {
            site: site.clone(),
            page: page.clone(),
            metric,
            form_factor,
        };
        let at_or_below = store.counts_at_or_below(key, w.span, edges.clone()).await?;
        let mut distribution = Vec::with_capacity(edges.len() + 1);
        let mut below = 0;
        let mut start = 0.0;
        for (&edge, &n) in edges.iter().zip(&at_or_below) {
            distribution.push(Bucket {
                start,
                end: Some(edge),
                count: n - below,
            });
            (below, start) = (n, edge);
        }
        distribution.push(Bucket {
            start,
            end: None,
            count: a.count() - below,
        });
        let form_factors = FormFactor::ALL
            .iter()
            .map(|ff| (ff.as_str(), splits.get(&(metric, ff.as_str())).cloned()))
            .collect();
        metrics.insert(
            metric,
            MetricDetail {
                summary,
                unit: unit(metric),
                thresholds: thresholds(metric),
                distribution,
                form_factors,
            },
        );
    }
    let by_navigation = v.map_or([0; 7], |v| v.by_navigation);
    let navigation_types = NavigationType::ALL
        .iter()
        .zip(by_navigation)
        .map(|(n, count)| (n.as_str(), count))
        .collect();
    let summaries: BTreeMap<MetricName, MetricSummary> = metrics.iter().map(|(&m, d)| (m, d.summary.clone())).collect();
    Ok(PageDetail {
        site,
        page,
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        collection_period: collection_period(&w),
        from: rfc3339(w.start_ms()),
        to: rfc3339(w.end_ms()),
        low_sample_below: trust.low_sample_below,
        page_views: viewed,
        last_beacon_at: v.and_then(|v| v.last_received_ms).map(rfc3339),
        core_web_vitals: Assessment::of(&summaries),
        navigation_types,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Cell;
    use crate::store::AggregateKey;

    fn aggregate(metric: MetricName, values: &[f64]) -> Aggregate {
        let mut cell = Cell::default();
        values.iter().for_each(|&v| cell.add(metric, v));
        Aggregate {
            key: AggregateKey {
                site: "a.example".into(),
                page: None,
                metric,
                form_factor: None,
            },
            span: Span::bucket_at(Resolution::Day, 0),
            cell,
            p75: Some(values[values.len() * 3 / 4]),
            p75_interval: None,
        }
    }

    #[test]
    fn metric_summary_shape() {
        let s = MetricSummary::of(
            &aggregate(MetricName::Lcp, &[1000.0, 2000.0, 3000.0, 5000.0]),
            Trust::default(),
            8,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "count": 4, "p50": s.p50, "p75": 5000.0, "p95": s.p95, "p99": s.p99,
                "histogram": [
                    {"start": 0.0, "end": 2500.0, "density": 0.5},
                    {"start": 2500.0, "end": 4000.0, "density": 0.25},
                    {"start": 4000.0, "density": 0.25},
                ],
                "rating": "needs-improvement",
                "lowSample": true, "pageViews": 8, "coverage": 0.5,
            })
        );
        assert!((s.p50 - 2000.0).abs() / 2000.0 < 0.01);
    }

    #[test]
    fn assessment() {
        let good = |m| MetricSummary::of(&aggregate(m, &[0.0]), Trust::default(), 1).unwrap();
        let poor = |m| MetricSummary::of(&aggregate(m, &[100_000.0]), Trust::default(), 1).unwrap();
        let mut ms = BTreeMap::new();
        ms.insert(MetricName::Lcp, good(MetricName::Lcp));
        ms.insert(MetricName::Cls, good(MetricName::Cls));
        assert_eq!(Assessment::of(&ms), Assessment::InsufficientData);
        ms.insert(MetricName::Inp, good(MetricName::Inp));
        assert_eq!(Assessment::of(&ms), Assessment::Passed);
        ms.insert(MetricName::Fcp, poor(MetricName::Fcp));
        assert_eq!(Assessment::of(&ms), Assessment::Passed, "FCP is not a Core Web Vital");
        ms.remove(&MetricName::Inp);
        ms.insert(MetricName::Cls, poor(MetricName::Cls));
        assert_eq!(Assessment::of(&ms), Assessment::Failed);
    }
}
