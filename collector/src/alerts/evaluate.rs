//! Deciding a rule's condition for one page from the metric store's exact
//! counts.
//!
//! The nearest-rank `p`-th percentile of `n` values is the value of rank
//! `r = ceil(p/100 · n)`, so it is `<= T` exactly when at least `r` values
//! are `<= T`. For p75: the p75 is above `T` exactly when fewer than 75 % of
//! the samples are `<= T`. Counting values is exact where a sketch's
//! percentile is not, so a decision never flips on sketch error.

use beacon::{FormFactor, MetricName};

use super::rule::{Condition, Rule};
use super::state::Level;
use crate::time::{DAY_MS, HOUR_MS};

/// The page key the store files the pages past its per-site cap under;
/// many unrelated pages, so never alerted on.
pub const OTHER_PAGE: &str = "(other)";

/// The time buckets a window covers: UTC clock hours or days, `first..=last`
/// (bucket numbers since the epoch), the last one being the current,
/// partial one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    pub hourly: bool,
    pub first: i64,
    pub last: i64,
}

impl Period {
    fn bucket_ms(hourly: bool) -> i64 {
        if hourly {
            HOUR_MS
        } else {
            DAY_MS
        }
    }

    /// A rule window ending now: the current hour (or day) and the whole
    /// hours (or days) before it that make up its length, as the summary
    /// windows are cut (`1h` is the current hour and the previous one).
    /// Windows that are whole days of a week or more use daily buckets.
    pub fn window(window_ms: i64, now_ms: i64) -> Period {
        let hourly = !(window_ms % DAY_MS == 0 && window_ms >= 7 * DAY_MS);
        let size = Period::bucket_ms(hourly);
        let current = now_ms.div_euclid(size);
        Period {
            hourly,
            first: current - window_ms / size,
            last: current,
        }
    }

    /// The whole days before the day `window` starts in.
    pub fn baseline(window: Period, baseline_ms: i64) -> Period {
        let start_day = window.start_ms().div_euclid(DAY_MS);
        Period {
            hourly: false,
            first: start_day - baseline_ms / DAY_MS,
            last: start_day - 1,
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.first * Period::bucket_ms(self.hourly)
    }

    /// Exclusive.
    pub fn end_ms(&self) -> i64 {
        (self.last + 1) * Period::bucket_ms(self.hourly)
    }
}

/// One page's reports of one metric in a period, from the metric store.
#[derive(Clone, Debug, PartialEq)]
pub struct PageStats {
    pub site: String,
    pub page: String,
    pub count: u64,
    /// Reports rated good: values `<=` the metric's good threshold.
    pub good: u64,
    pub needs_improvement: u64,
    /// The asked percentile of the values, approximately (from the sketch:
    /// cheap for every page). [`AlertSource::value`] gives the exact one.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("reading metrics for alerts failed: {0}")]
pub struct SourceError(pub String);

/// What the alert engine reads from the metric store.
pub trait AlertSource {
    /// Whether the source can be read now (a store still loading at
    /// start-up cannot): an evaluation waits, changing nothing, until it
    /// can.
    fn ready(&self) -> bool {
        true
    }

    /// Every page with reports of `metric` in `period`, of one site or all
    /// sites, of one form factor or all together.
    fn pages(
        &self,
        site: Option<&str>,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        percentile: f64,
    ) -> Result<Vec<PageStats>, SourceError>;

    /// One page's percentile in `period`: exact where the store can tell
    /// (p75), otherwise as close as it can.
    fn value(
        &self,
        site: &str,
        page: &str,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        percentile: f64,
    ) -> Result<Option<f64>, SourceError>;

    /// Exactly how many of one page's reports in `period` are `<= threshold`.
    fn count_at_or_below(
        &self,
        site: &str,
        page: &str,
        metric: MetricName,
        form_factor: Option<FormFactor>,
        period: Period,
        threshold: f64,
    ) -> Result<u64, SourceError>;
}

/// The nearest rank `ceil(p/100 · n)`, exact for percentiles with at most
/// two decimals (which the rule checks enforce).
pub fn rank(p: f64, n: u64) -> u64 {
    let hundredths = (p * 100.0).round() as u128;
    (hundredths * n as u128).div_ceil(10_000) as u64
}

/// Whether the `p`-th percentile of `n` values is above `T`, given how many
/// of them are `<= T`.
pub fn percentile_above(p: f64, n: u64, at_or_below: u64) -> bool {
    n > 0 && at_or_below < rank(p, n)
}

/// How many of a page's values are `<= threshold`: from the exact rating
/// counts when the threshold is a rating boundary of the metric, otherwise
/// counted by the store.
pub fn count_at_or_below(
    source: &dyn AlertSource,
    stats: &PageStats,
    metric: MetricName,
    form_factor: Option<FormFactor>,
    period: Period,
    threshold: f64,
) -> Result<u64, SourceError> {
    let t = metric.thresholds();
    if threshold == t.good {
        Ok(stats.good)
    } else if threshold == t.poor {
        Ok(stats.good + stats.needs_improvement)
    } else {
        source.count_at_or_below(&stats.site, &stats.page, metric, form_factor, period, threshold)
    }
}

/// The outcome of one rule on one page, with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub level: Level,
    /// The percentile over the window.
    pub value: Option<f64>,
    /// What the value is compared with: the rule's threshold, or the
    /// baseline raised by `worse_by_percent`.
    pub threshold: Option<f64>,
    pub count: u64,
    /// Regression rules: the percentile and count over the baseline.
    pub baseline: Option<f64>,
    pub baseline_count: Option<u64>,
}

impl Observation {
    /// A page without reports in the window.
    pub fn no_data(rule: &Rule) -> Observation {
        Observation {
            level: Level::Insufficient,
            value: None,
            threshold: match rule.condition {
                Condition::Threshold { threshold } => Some(threshold),
                Condition::Regression { .. } => None,
            },
            count: 0,
            baseline: None,
            baseline_count: None,
        }
    }
}

/// The value a firing alert must come down to (or below) to resolve.
pub fn resolve_threshold(threshold: f64, margin_percent: f64) -> f64 {
    threshold * (1.0 - margin_percent / 100.0)
}

/// Decides a threshold rule for one page. `firing` asks for the resolve
/// decision too (`Between` or `Below`), which may cost the store a count;
/// when not firing "not above" is reported as `Below`.
pub fn threshold(
    rule: &Rule,
    threshold: f64,
    source: &dyn AlertSource,
    stats: &PageStats,
    period: Period,
    firing: bool,
) -> Result<Observation, SourceError> {
    let mut obs = Observation {
        level: Level::Insufficient,
        value: stats.value,
        threshold: Some(threshold),
        count: stats.count,
        baseline: None,
        baseline_count: None,
    };
    if stats.count < rule.min_samples {
        return Ok(obs);
    }
    let (p, n, ff) = (rule.percentile, stats.count, rule.form_factor);
    let le = count_at_or_below(source, stats, rule.metric, ff, period, threshold)?;
    obs.level = if percentile_above(p, n, le) {
        Level::Above
    } else if !firing {
        Level::Below
    } else {
        let r = resolve_threshold(threshold, rule.resolve_margin_percent);
        let le = count_at_or_below(source, stats, rule.metric, ff, period, r)?;
        // The percentile is <= r exactly when at least rank values are.
        if percentile_above(p, n, le) {
            Level::Between
        } else {
            Level::Below
        }
    };
    Ok(obs)
}

/// One side of a regression: how many reports and their percentile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Side {
    pub count: u64,
    pub value: Option<f64>,
}

/// Decides a regression rule for one page from the percentile over the
/// window and over the baseline.
pub fn regression(
    rule: &Rule,
    worse_by_percent: f64,
    baseline_min_samples: u64,
    current: Side,
    baseline: Side,
) -> Observation {
    let mut obs = Observation {
        level: Level::Insufficient,
        value: current.value,
        threshold: None,
        count: current.count,
        baseline: baseline.value,
        baseline_count: Some(baseline.count),
    };
    let (Some(v), Some(base)) = (current.value, baseline.value) else {
        return obs;
    };
    let limit = base * (1.0 + worse_by_percent / 100.0);
    obs.threshold = Some(limit);
    if current.count < rule.min_samples || baseline.count < baseline_min_samples {
        return obs;
    }
    // "At least X % worse"; with a zero baseline only a higher value is.
    obs.level = if v >= limit && v > base {
        Level::Above
    } else if v > resolve_threshold(limit, rule.resolve_margin_percent) {
        Level::Between
    } else {
        Level::Below
    };
    obs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule::builtin_rules;
    use std::cell::Cell;

    /// A source over literal values, counting the store calls made.
    struct Values {
        values: Vec<f64>,
        calls: Cell<u32>,
    }

    impl AlertSource for Values {
        fn pages(
            &self,
            _: Option<&str>,
            _: MetricName,
            _: Option<FormFactor>,
            _: Period,
            _: f64,
        ) -> Result<Vec<PageStats>, SourceError> {
            unreachable!()
        }

        fn value(
            &self,
            _: &str,
            _: &str,
            _: MetricName,
            _: Option<FormFactor>,
            _: Period,
            p: f64,
        ) -> Result<Option<f64>, SourceError> {
            Ok(Some(nearest_rank(&self.values, p)))
        }

        fn count_at_or_below(
            &self,
            _: &str,
            _: &str,
            _: MetricName,
            _: Option<FormFactor>,
            _: Period,
            t: f64,
        ) -> Result<u64, SourceError> {
            self.calls.set(self.calls.get() + 1);
            Ok(self.values.iter().filter(|&&v| v <= t).count() as u64)
        }
    }

    fn stats_of(metric: MetricName, values: &[f64]) -> PageStats {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let r = rank(75.0, values.len() as u64).max(1) as usize;
        PageStats {
            site: "s".into(),
            page: "p".into(),
            count: values.len() as u64,
            good: values.iter().filter(|&&v| v <= metric.thresholds().good).count() as u64,
            needs_improvement: values
                .iter()
                .filter(|&&v| v > metric.thresholds().good && v <= metric.thresholds().poor)
                .count() as u64,
            value: sorted.get(r - 1).copied(),
        }
    }

    fn nearest_rank(values: &[f64], p: f64) -> f64 {
        let mut s = values.to_vec();
        s.sort_by(f64::total_cmp);
        s[(rank(p, s.len() as u64) as usize).clamp(1, s.len()) - 1]
    }

    #[test]
    fn ranks_are_exact() {
        assert_eq!(rank(75.0, 4), 3);
        assert_eq!(rank(75.0, 5), 4);
        assert_eq!(rank(75.0, 200), 150);
        assert_eq!(rank(99.9, 1000), 999);
        assert_eq!(rank(50.0, 1), 1);
        // 75 % of 4 is exactly 3 of 4 at or below: not above.
        assert!(!percentile_above(75.0, 4, 3));
        assert!(percentile_above(75.0, 4, 2));
        assert!(!percentile_above(75.0, 0, 0));
    }

    /// The count decision agrees with the literal nearest-rank percentile,
    /// on values at, just under and just over the threshold.
    #[test]
    fn count_decision_matches_nearest_rank() {
        let mut rng = crate::testutil::Rng::new(11);
        for _ in 0..5_000 {
            let t = 1000.0;
            let n = 1 + rng.below(40) as usize;
            let choices = [0.0, 999.999, 1000.0, 1000.001, 5000.0];
            let values: Vec<f64> = (0..n).map(|_| choices[rng.below(5) as usize]).collect();
            for p in [50.0, 75.0, 90.0, 99.0, 12.5] {
                let le = values.iter().filter(|&&v| v <= t).count() as u64;
                assert_eq!(
                    percentile_above(p, n as u64, le),
                    nearest_rank(&values, p) > t,
                    "p{p} {values:?}"
                );
            }
        }
    }

    fn rule(metric: MetricName, min_samples: u64) -> Rule {
        let mut r = builtin_rules().into_iter().find(|r| r.metric == metric).unwrap();
        r.min_samples = min_samples;
        r
    }

    const P: Period = Period {
        hourly: true,
        first: 0,
        last: 1,
    };

    #[test]
    fn threshold_levels_with_hysteresis() {
        let r = rule(MetricName::Lcp, 4);
        let check = |values: &[f64], firing: bool| {
            let src = Values {
                values: values.to_vec(),
                calls: Cell::new(0),
            };
            let s = stats_of(MetricName::Lcp, values);
            let o = threshold(&r, 4000.0, &src, &s, P, firing).unwrap();
            (o.level, src.calls.get())
        };
        // p75 = 5000 > 4000, decided from the rating counts alone.
        assert_eq!(check(&[1000.0, 2000.0, 5000.0, 6000.0], false), (Level::Above, 0));
        // p75 = 4000 exactly: not above.
        assert_eq!(check(&[1000.0, 2000.0, 4000.0, 6000.0], false), (Level::Below, 0));
        // Firing, p75 3900: not above, but not 5 % below 4000 (3800).
        assert_eq!(check(&[1000.0, 2000.0, 3900.0, 6000.0], true), (Level::Between, 1));
        assert_eq!(check(&[1000.0, 2000.0, 3800.0, 6000.0], true), (Level::Below, 1));
        // Too few samples.
        assert_eq!(check(&[9000.0; 3], true), (Level::Insufficient, 0));
    }

    #[test]
    fn thresholds_off_the_rating_boundaries_are_counted_exactly() {
        let r = rule(MetricName::Lcp, 1);
        let values = [3000.0, 3000.0, 3000.01, 3500.0];
        let src = Values {
            values: values.to_vec(),
            calls: Cell::new(0),
        };
        let s = stats_of(MetricName::Lcp, &values);
        // p75 = 3000.01 > 3000.
        let o = threshold(&r, 3000.0, &src, &s, P, false).unwrap();
        assert_eq!((o.level, src.calls.get()), (Level::Above, 1));
        let o = threshold(&r, 3000.01, &src, &s, P, false).unwrap();
        assert_eq!(o.level, Level::Below);
        // CLS at its poor boundary.
        let r = rule(MetricName::Cls, 1);
        let s = stats_of(MetricName::Cls, &[0.0, 0.1, 0.25, 0.26]);
        assert_eq!(threshold(&r, 0.25, &src, &s, P, false).unwrap().level, Level::Below);
    }

    #[test]
    fn regression_levels() {
        let r = rule(MetricName::Inp, 10);
        let page = |count, value| Side {
            count,
            value: Some(value),
        };
        let none = Side { count: 0, value: None };
        let lvl = |cur: Side, base: Side| regression(&r, 20.0, 10, cur, base).level;
        assert_eq!(lvl(page(10, 240.0), page(10, 200.0)), Level::Above);
        assert_eq!(lvl(page(10, 239.0), page(10, 200.0)), Level::Between);
        assert_eq!(lvl(page(10, 228.0), page(10, 200.0)), Level::Below);
        assert_eq!(lvl(page(10, 240.0), page(9, 200.0)), Level::Insufficient);
        assert_eq!(lvl(page(9, 240.0), page(10, 200.0)), Level::Insufficient);
        assert_eq!(lvl(page(10, 240.0), none), Level::Insufficient);
        assert_eq!(lvl(page(10, 0.0), page(10, 0.0)), Level::Below);
        assert_eq!(lvl(page(10, 0.01), page(10, 0.0)), Level::Above);
        let o = regression(&r, 20.0, 10, page(10, 300.0), page(50, 200.0));
        assert_eq!(
            (o.threshold, o.baseline, o.baseline_count),
            (Some(240.0), Some(200.0), Some(50))
        );
    }

    #[test]
    fn periods() {
        // 2024-05-01T14:04:05Z
        let now = 1_714_572_245_000;
        let w = Period::window(HOUR_MS, now);
        assert!(w.hourly);
        assert_eq!(w.start_ms(), 1_714_568_400_000); // 13:00
        assert_eq!(w.last - w.first, 1);
        let w24 = Period::window(24 * HOUR_MS, now);
        assert_eq!((w24.hourly, w24.last - w24.first), (true, 24));
        let w28 = Period::window(28 * DAY_MS, now);
        assert_eq!((w28.hourly, w28.last - w28.first), (false, 28));
        let b = Period::baseline(w, 7 * DAY_MS);
        assert!(!b.hourly);
        assert_eq!(b.end_ms(), 1_714_521_600_000); // 2024-05-01 00:00
        assert_eq!(b.end_ms() - b.start_ms(), 7 * DAY_MS);
        assert!(b.end_ms() <= w.start_ms());
    }
}
