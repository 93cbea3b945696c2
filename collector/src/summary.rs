//! The read APIs' answers, computed from [`Store::aggregates`]: the
//! summary (shaped after the Chrome UX Report API), page lists and time
//! series. Each takes the time it is computed at, so tests can fix it.

use std::collections::BTreeMap;

use beacon::{FormFactor, MetricName, Rating};
use serde::Serialize;

use crate::aggregate::{form_factor_str, Span, Window, WindowName};
use crate::percentile;
use crate::store::{Aggregate, AggregateQuery, PageScope, Store, StoreError};
use crate::time::{rfc3339, Date, Resolution};

/// One bin of a metric's histogram, as in the Chrome UX Report API: good
/// is `[0, good]`, needs improvement `(good, poor]`, poor `(poor, ∞)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bin {
    pub start: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    pub density: f64,
}

/// One metric of one page or site over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
}

impl MetricSummary {
    pub fn of(a: &Aggregate) -> Option<MetricSummary> {
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
        })
    }
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

impl Assessment {
    pub fn of(metrics: &BTreeMap<MetricName, MetricSummary>) -> Assessment {
        let core = [MetricName::Lcp, MetricName::Inp, MetricName::Cls];
        if core
            .iter()
            .any(|m| metrics.get(m).is_some_and(|s| s.rating != Rating::Good))
        {
            Assessment::Failed
        } else if core.iter().all(|m| metrics.contains_key(m)) {
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

/// Every metric of the site (or all sites) and of each of its pages over
/// the window, with the exact p75 only when asked for.
async fn site_and_pages(
    store: &dyn Store,
    site: Option<String>,
    w: &Window,
    form_factor: Option<FormFactor>,
    exact_p75: bool,
) -> Result<Vec<Aggregate>, StoreError> {
    store
        .aggregates(AggregateQuery {
            site,
            pages: PageScope::SiteAndPages,
            metrics: vec![],
            form_factor,
            spans: vec![w.span],
            exact_p75,
        })
        .await
}

/// The summary of one site (or all) over a window ending at `now_ms`.
pub async fn summary(
    store: &dyn Store,
    site: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    now_ms: i64,
) -> Result<Summary, StoreError> {
    let w = Window::ending_at(window, now_ms);
    let aggregates = site_and_pages(store, site, &w, form_factor, true).await?;
    let mut records: BTreeMap<(String, Option<String>), BTreeMap<MetricName, MetricSummary>> = BTreeMap::new();
    for a in &aggregates {
        if let Some(s) = MetricSummary::of(a) {
            records
                .entry((a.key.site.clone(), a.key.page.clone()))
                .or_default()
                .insert(a.key.metric, s);
        }
    }
    let (mut sites, mut pages) = (Vec::new(), Vec::new());
    for ((site, page), metrics) in records {
        let record = Record {
            core_web_vitals: Assessment::of(&metrics),
            site,
            page: page.clone(),
            metrics,
        };
        if page.is_some() {
            pages.push(record);
        } else {
            sites.push(record);
        }
    }
    Ok(Summary {
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        collection_period: collection_period(&w),
        from: rfc3339(w.start_ms()),
        to: rfc3339(w.end_ms()),
        sites,
        pages,
    })
}

/// One page in `GET /v1/pages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageCount {
    pub site: String,
    pub page: String,
    /// Metric reports in the window, all metrics.
    pub count: u64,
    pub metrics: BTreeMap<MetricName, u64>,
}

/// `GET /v1/pages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pages {
    pub window: &'static str,
    pub form_factor: &'static str,
    pub collection_period: CollectionPeriod,
    /// Most reports first.
    pub pages: Vec<PageCount>,
}

pub async fn pages(
    store: &dyn Store,
    site: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    now_ms: i64,
) -> Result<Pages, StoreError> {
    let w = Window::ending_at(window, now_ms);
    let aggregates = site_and_pages(store, site, &w, form_factor, false).await?;
    let mut by_page: BTreeMap<(String, String), BTreeMap<MetricName, u64>> = BTreeMap::new();
    for a in aggregates {
        if let Some(page) = a.key.page.clone() {
            by_page
                .entry((a.key.site.clone(), page))
                .or_default()
                .insert(a.key.metric, a.count());
        }
    }
    let mut pages: Vec<PageCount> = by_page
        .into_iter()
        .map(|((site, page), metrics)| PageCount {
            site,
            page,
            count: metrics.values().sum(),
            metrics,
        })
        .collect();
    pages.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.site, &a.page).cmp(&(&b.site, &b.page)))
    });
    Ok(Pages {
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        collection_period: collection_period(&w),
        pages,
    })
}

/// One step of a time series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Start of the step, RFC 3339.
    pub start: String,
    pub count: u64,
    /// Exact nearest-rank p75; null without reports.
    pub p75: Option<f64>,
    pub rating: Option<Rating>,
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
    pub points: Vec<Point>,
}

/// Why a time series cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TimeseriesError {
    #[error("step {step} is coarser than window {window}'s own buckets; use step=1h")]
    StepTooCoarse { step: &'static str, window: &'static str },
    #[error("hourly steps are kept for 7 days only; use window=7d or less, or step=1d")]
    HoursTooOld,
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
        })
        .await?;
    let by_step: BTreeMap<i64, &Aggregate> = aggregates.iter().map(|a| (a.span.first, a)).collect();
    let points = steps
        .steps()
        .map(|s| {
            let a = by_step.get(&s.first);
            Point {
                start: rfc3339(s.start_ms()),
                count: a.map_or(0, |a| a.count()),
                p75: a.and_then(|a| a.p75),
                rating: a.and_then(|a| a.rating()),
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
        points,
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
        }
    }

    #[test]
    fn metric_summary_shape() {
        let s = MetricSummary::of(&aggregate(MetricName::Lcp, &[1000.0, 2000.0, 3000.0, 5000.0])).unwrap();
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
            })
        );
        assert!((s.p50 - 2000.0).abs() / 2000.0 < 0.01);
    }

    #[test]
    fn assessment() {
        let good = |m| MetricSummary::of(&aggregate(m, &[0.0])).unwrap();
        let poor = |m| MetricSummary::of(&aggregate(m, &[100_000.0])).unwrap();
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
