//! What the collector keeps per (site, page, metric, form factor, time
//! bucket): exact counts of good / needs-improvement / poor reports and a
//! [`Sketch`] of the values; and the windows summaries are computed over.
//!
//! Ratings come from the exact counts: the nearest-rank p75 is `<= T`
//! exactly when at least `ceil(0.75·n)` values are `<= T`, so no sketch error
//! can flip a rating. The p75 value itself is made exact by the store (see
//! `store::sqlite`), p50/p95/p99 come from the sketch.

use beacon::{FormFactor, MetricName, Rating};
use serde::Serialize;

use crate::percentile;
use crate::sketch::Sketch;
use crate::time::{Date, Resolution, DAY_MS, HOUR_MS};

/// Exact counts of reports per rating at the reference thresholds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RatingCounts {
    pub good: u64,
    pub needs_improvement: u64,
    pub poor: u64,
}

impl RatingCounts {
    #[inline]
    pub fn total(&self) -> u64 {
        self.good + self.needs_improvement + self.poor
    }

    #[inline]
    fn slot(&mut self, rating: Rating) -> &mut u64 {
        match rating {
            Rating::Good => &mut self.good,
            Rating::NeedsImprovement => &mut self.needs_improvement,
            Rating::Poor => &mut self.poor,
        }
    }

    #[inline]
    pub fn add(&mut self, rating: Rating) {
        *self.slot(rating) += 1;
    }

    /// Returns false (changing nothing) if there is no such report to remove.
    #[inline]
    pub fn remove(&mut self, rating: Rating) -> bool {
        let slot = self.slot(rating);
        if *slot == 0 {
            return false;
        }
        *slot -= 1;
        true
    }

    pub fn merge(&mut self, other: &RatingCounts) {
        self.good += other.good;
        self.needs_improvement += other.needs_improvement;
        self.poor += other.poor;
    }

    /// The rating of the nearest-rank `p`-th percentile, exactly; `None`
    /// without reports.
    pub fn rating_at(&self, p: f64) -> Option<Rating> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let rank = percentile::rank(p, n as usize).max(1) as u64;
        Some(if self.good >= rank {
            Rating::Good
        } else if self.good + self.needs_improvement >= rank {
            Rating::NeedsImprovement
        } else {
            Rating::Poor
        })
    }

    /// Share of good, needs-improvement and poor reports (0 without any).
    pub fn densities(&self) -> [f64; 3] {
        let n = self.total();
        if n == 0 {
            return [0.0; 3];
        }
        let n = n as f64;
        [
            self.good as f64 / n,
            self.needs_improvement as f64 / n,
            self.poor as f64 / n,
        ]
    }
}

/// The aggregate of some reports of one metric.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    pub ratings: RatingCounts,
    pub sketch: Sketch,
}

impl Cell {
    #[inline]
    pub fn count(&self) -> u64 {
        self.ratings.total()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    #[inline]
    pub fn add(&mut self, metric: MetricName, value: f64) {
        self.ratings.add(metric.rate(value));
        self.sketch.add(value);
    }

    /// Whether `value` could be removed: its rating and its sketch bin
    /// hold at least one report.
    #[inline]
    pub fn holds(&self, metric: MetricName, value: f64) -> bool {
        let r = self.ratings;
        let rated = match metric.rate(value) {
            Rating::Good => r.good,
            Rating::NeedsImprovement => r.needs_improvement,
            Rating::Poor => r.poor,
        };
        rated > 0 && self.sketch.holds(value)
    }

    /// Removes a value added before; false (and no change) if it was not.
    #[inline]
    pub fn remove(&mut self, metric: MetricName, value: f64) -> bool {
        let rating = metric.rate(value);
        let mut probe = self.ratings;
        if !probe.remove(rating) || !self.sketch.remove(value) {
            return false;
        }
        self.ratings = probe;
        true
    }

    pub fn merge(&mut self, other: &Cell) {
        self.ratings.merge(&other.ratings);
        self.sketch.merge(&other.sketch);
    }

    /// Removes every report of `other`, which must have been merged in;
    /// false (leaving `self` unspecified) if it was not.
    pub fn subtract(&mut self, other: &Cell) -> bool {
        let r = &mut self.ratings;
        let o = &other.ratings;
        if r.good < o.good || r.needs_improvement < o.needs_improvement || r.poor < o.poor {
            return false;
        }
        r.good -= o.good;
        r.needs_improvement -= o.needs_improvement;
        r.poor -= o.poor;
        self.sketch.subtract(&other.sketch)
    }

    /// Merges many cells at once (one sort instead of one merge per cell).
    pub fn merged<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Cell {
        let mut out = Cell::default();
        let mut parts: Vec<&Sketch> = Vec::new();
        for c in cells {
            out.ratings.merge(&c.ratings);
            parts.push(&c.sketch);
        }
        out.sketch = Sketch::merged(parts);
        out
    }
}

/// A form factor selector: one device class, or all of them together.
pub fn form_factor_str(ff: Option<FormFactor>) -> &'static str {
    ff.map(FormFactor::as_str).unwrap_or("all")
}

/// Consecutive time buckets `first..=last` of one resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub resolution: Resolution,
    pub first: i64,
    pub last: i64,
}

impl Span {
    /// The single bucket holding `ms`.
    pub fn bucket_at(resolution: Resolution, ms: i64) -> Span {
        let b = resolution.bucket(ms);
        Span {
            resolution,
            first: b,
            last: b,
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.resolution.start(self.first)
    }

    /// Exclusive end.
    pub fn end_ms(&self) -> i64 {
        self.resolution.start(self.last + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    /// The buckets of this span, each as a span.
    pub fn steps(&self) -> impl Iterator<Item = Span> + '_ {
        (self.first..=self.last).map(|b| Span {
            resolution: self.resolution,
            first: b,
            last: b,
        })
    }
}

/// The summary windows: the current (partial) clock hour or UTC day plus
/// the whole hours or days before it that make up the window's length.
/// `1h` is the current hour and the previous one; `28d` is today and the 28
/// days before (the Chrome UX Report's 28 days, plus today so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowName {
    Hour,
    Day,
    Week,
    Days28,
}

impl WindowName {
    pub const ALL: [WindowName; 4] = [WindowName::Hour, WindowName::Day, WindowName::Week, WindowName::Days28];

    pub const fn as_str(self) -> &'static str {
        match self {
            WindowName::Hour => "1h",
            WindowName::Day => "24h",
            WindowName::Week => "7d",
            WindowName::Days28 => "28d",
        }
    }

    pub fn parse(s: &str) -> Option<WindowName> {
        WindowName::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// The bucket resolution the window is made of, and how many whole
    /// buckets come before the current one.
    pub const fn shape(self) -> (Resolution, i64) {
        match self {
            WindowName::Hour => (Resolution::Hour, 1),
            WindowName::Day => (Resolution::Hour, 24),
            WindowName::Week => (Resolution::Day, 7),
            WindowName::Days28 => (Resolution::Day, 28),
        }
    }

    pub const fn length_ms(self) -> i64 {
        match self {
            WindowName::Hour => HOUR_MS,
            WindowName::Day => 24 * HOUR_MS,
            WindowName::Week => 7 * DAY_MS,
            WindowName::Days28 => 28 * DAY_MS,
        }
    }
}

/// A window ending at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub name: WindowName,
    pub span: Span,
    pub now_ms: i64,
}

impl Window {
    pub fn ending_at(name: WindowName, now_ms: i64) -> Window {
        let (resolution, before) = name.shape();
        let current = resolution.bucket(now_ms);
        Window {
            name,
            span: Span {
                resolution,
                first: current - before,
                last: current,
            },
            now_ms,
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.span.start_ms()
    }

    /// The window's data runs up to now.
    pub fn end_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn first_date(&self) -> Date {
        Date::of_ms(self.start_ms())
    }

    pub fn last_date(&self) -> Date {
        Date::of_ms(self.now_ms)
    }

    /// The window cut into `step` buckets; `None` when the step is coarser
    /// than the window's own buckets (a day step over a 24 h window).
    pub fn steps(&self, step: Resolution) -> Option<Span> {
        if step > self.span.resolution {
            return None;
        }
        Some(Span {
            resolution: step,
            first: step.bucket(self.start_ms()),
            last: step.bucket(self.now_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    #[test]
    fn rating_of_p75_comes_from_exact_counts() {
        let mut rng = Rng::new(5);
        for _ in 0..2_000 {
            let n = 1 + rng.below(50) as usize;
            let metric = MetricName::ALL[rng.below(5) as usize];
            let t = metric.thresholds();
            // Values on and around the thresholds, where errors would show.
            let candidates = [
                0.0,
                t.good * 0.999,
                t.good,
                t.good * 1.0001,
                t.poor,
                t.poor * 1.0001,
                t.poor * 3.0,
            ];
            let values: Vec<f64> = (0..n)
                .map(|_| candidates[rng.below(candidates.len() as u64) as usize])
                .collect();
            let mut cell = Cell::default();
            values.iter().for_each(|&v| cell.add(metric, v));
            let mut sorted = values.clone();
            let p75 = percentile::nearest_rank(&mut sorted, 75.0).unwrap();
            assert_eq!(cell.ratings.rating_at(75.0), Some(metric.rate(p75)), "{values:?}");
            assert_eq!(cell.count(), n as u64);
            let d = cell.ratings.densities();
            assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(RatingCounts::default().rating_at(75.0), None);
    }

    #[test]
    fn cell_remove_is_checked() {
        let mut c = Cell::default();
        c.add(MetricName::Cls, 0.3);
        assert!(!c.remove(MetricName::Cls, 0.05), "never added");
        assert_eq!(c.count(), 1);
        assert!(c.remove(MetricName::Cls, 0.3));
        assert!(c.is_empty());
    }

    #[test]
    fn windows_cover_the_current_bucket_and_whole_ones_before() {
        // 2024-05-01T14:04:05.123Z
        let now = 1_714_572_245_123;
        let w = Window::ending_at(WindowName::Hour, now);
        assert_eq!(w.start_ms(), 1_714_568_400_000); // 13:00
        assert_eq!(w.span.end_ms(), 1_714_572_000_000 + HOUR_MS); // 15:00
        let w = Window::ending_at(WindowName::Days28, now);
        assert_eq!(
            w.first_date(),
            Date {
                year: 2024,
                month: 4,
                day: 3
            }
        );
        assert_eq!(
            w.last_date(),
            Date {
                year: 2024,
                month: 5,
                day: 1
            }
        );
        assert_eq!(w.span.last - w.span.first, 28);
        let w = Window::ending_at(WindowName::Day, now);
        assert_eq!(w.span.last - w.span.first, 24);
        assert_eq!(w.steps(Resolution::Day), None);
        let steps = Window::ending_at(WindowName::Week, now)
            .steps(Resolution::Hour)
            .unwrap();
        assert_eq!(steps.steps().count(), 7 * 24 + 15);
    }
}
