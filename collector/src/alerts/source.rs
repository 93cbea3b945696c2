//! [`AlertSource`] over the metric store: its aggregates (exact rating
//! counts, sketch) and exact look-ups (p75, counts at or below a value).

use std::sync::{Arc, OnceLock};

use beacon::{FormFactor, MetricName};

use super::evaluate::{AlertSource, PageStats, Period, SourceError};
use crate::aggregate::Span;
use crate::store::{AggregateKey, AggregateQuery, PageScope, Store, StoreFuture};
use crate::time::Resolution;

/// Reads the store from the evaluator thread: the store's futures run on
/// tokio's blocking pool, so the thread drives them with a small runtime of
/// its own. The runtime is made at the first read, on the thread that
/// reads: a source that is never used (alerts disabled) is dropped
/// wherever it is, and a tokio runtime cannot be dropped inside another
/// runtime's task.
pub struct StoreSource {
    store: Arc<dyn Store>,
    runtime: OnceLock<tokio::runtime::Runtime>,
}

impl StoreSource {
    pub fn new(store: Arc<dyn Store>) -> StoreSource {
        StoreSource {
            store,
            runtime: OnceLock::new(),
        }
    }

    fn wait<T>(&self, f: StoreFuture<T>) -> Result<T, SourceError> {
        let runtime = match self.runtime.get() {
            Some(r) => r,
            None => {
                let built = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| SourceError(format!("cannot start the alert evaluator's runtime: {e}")))?;
                self.runtime.get_or_init(|| built)
            }
        };
        runtime.block_on(f).map_err(|e| SourceError(e.to_string()))
    }
}

pub fn span(p: Period) -> Span {
    Span {
        resolution: if p.hourly { Resolution::Hour } else { Resolution::Day },
        first: p.first,
        last: p.last,
    }
}

impl AlertSource for StoreSource {
    fn ready(&self) -> bool {
        self.store.status().phase == crate::store::StorePhase::Ready
    }

    fn pages(
        &self,
        site: Option<&str>,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        percentile: f64,
    ) -> Result<Vec<PageStats>, SourceError> {
        let aggregates = self.wait(self.store.aggregates(AggregateQuery {
            site: site.map(str::to_string),
            pages: PageScope::SiteAndPages,
            metrics: vec![metric],
            form_factor,
            spans: vec![span(period)],
            exact_p75: false,
            p75_interval: false,
        }))?;
        Ok(aggregates
            .into_iter()
            .filter_map(|a| {
                let value = a.quantile(percentile);
                let r = a.cell.ratings;
                Some(PageStats {
                    site: a.key.site,
                    page: a.key.page?,
                    count: r.total(),
                    good: r.good,
                    needs_improvement: r.needs_improvement,
                    value,
                })
            })
            .collect())
    }

    fn value(
        &self,
        site: &str,
        page: &str,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        percentile: f64,
    ) -> Result<Option<f64>, SourceError> {
        let exact = percentile == 75.0;
        let aggregates = self.wait(self.store.aggregates(AggregateQuery {
            site: Some(site.to_string()),
            pages: PageScope::Page(page.to_string()),
            metrics: vec![metric],
            form_factor,
            spans: vec![span(period)],
            exact_p75: exact,
            p75_interval: false,
        }))?;
        Ok(aggregates
            .first()
            .and_then(|a| if exact { a.p75 } else { a.quantile(percentile) }))
    }

    fn count_at_or_below(
        &self,
        site: &str,
        page: &str,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        threshold: f64,
    ) -> Result<u64, SourceError> {
        let key = AggregateKey {
            site: site.to_string(),
            page: Some(page.to_string()),
            metric,
            form_factor,
        };
        self.wait(self.store.count_at_or_below(key, span(period), threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::evaluate::{percentile_above, rank};
    use crate::store::{NewBeacon, Report, Sqlite, SqliteOptions};
    use crate::testutil::Rng;
    use crate::time::now_ms;
    use beacon::NavigationType;

    /// Against the real store: counts and exact values agree with the
    /// reports put in, and so do the threshold decisions made from them.
    #[test]
    fn decisions_from_the_real_store_match_the_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Sqlite::open_in_dir(dir.path(), SqliteOptions::default()).unwrap());
        let source = StoreSource::new(store.clone());
        let now = now_ms();
        let mut rng = Rng::new(3);
        let page = "https://shop.example/cart";
        let values: Vec<f64> = (0..400)
            .map(|i| match i % 4 {
                0 => 4000.0,
                1 => rng.f64_log(100.0, 9000.0),
                _ => 3000.0 + rng.below(2000) as f64,
            })
            .collect();
        let reports: Vec<Report> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Report {
                site: "shop.example".into(),
                page: page.into(),
                metric: MetricName::Lcp,
                report_id: format!("r{i}"),
                value: v,
                delta: v,
                rating: MetricName::Lcp.rate(v),
                navigation_type: NavigationType::Navigate,
                form_factor: Some(FormFactor::Phone),
                page_view_id: None,
                session_id: None,
                received_at_ms: now,
                attribution: None,
            })
            .collect();
        source.wait(store.insert(NewBeacon::group(reports))).unwrap();
        let period = Period::window(3_600_000, now);
        let pages = source.pages(None, MetricName::Lcp, None, period, 75.0).unwrap();
        assert_eq!(pages.len(), 1);
        let s = &pages[0];
        assert_eq!((s.site.as_str(), s.page.as_str(), s.count), ("shop.example", page, 400));
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let p75 = sorted[rank(75.0, 400) as usize - 1];
        let exact = source
            .value("shop.example", page, MetricName::Lcp, None, period, 75.0)
            .unwrap();
        assert_eq!(exact, Some(p75));
        for t in [2500.0, 3999.0, 4000.0, p75, p75 - 0.5, 4500.0] {
            let le = source
                .count_at_or_below("shop.example", page, MetricName::Lcp, None, period, t)
                .unwrap();
            assert_eq!(le, values.iter().filter(|&&v| v <= t).count() as u64, "{t}");
            assert_eq!(percentile_above(75.0, 400, le), p75 > t, "{t}");
        }
        let phone = source
            .pages(None, MetricName::Lcp, Some(FormFactor::Phone), period, 75.0)
            .unwrap();
        assert_eq!(phone[0].count, 400);
        assert!(source
            .pages(None, MetricName::Lcp, Some(FormFactor::Desktop), period, 75.0)
            .unwrap()
            .is_empty());
        store.close().unwrap();
    }
}
