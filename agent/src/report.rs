//! When a metric is reported, and with what delta (the reference's
//! `bindReporter`).

use beacon::{MetricName, Rating};

/// Which changes of a metric's value are reported besides forced reports
/// (on hide, on finalisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changes {
    /// Only forced reports (the reference's default).
    Forced,
    /// Every change (`reportAllChanges`).
    All,
    /// Every change while the page is visible, then only forced reports:
    /// the beacon queue's instances. Once the page is hidden, the page's
    /// own callbacks (by default) hear of a change only at the next hide,
    /// so the queue waits for the same moment; otherwise an interaction
    /// that finished after a hide left in a beacon that the callbacks had
    /// not been given (and never would be, if that hide was the last).
    WhileVisible,
}

/// Decides whether a metric's current value is passed to the callback.
#[derive(Clone, Debug)]
pub struct Reporter {
    name: MetricName,
    changes: Changes,
    prev_value: Option<f64>,
}

/// What one report carries besides the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    pub delta: f64,
    pub rating: Rating,
}

impl Reporter {
    pub fn new(name: MetricName, changes: Changes) -> Self {
        Reporter {
            name,
            changes,
            prev_value: None,
        }
    }

    /// `value` is the metric's current value (negative while unknown).
    /// Reports when forced or when changes are reported (`hidden` tells
    /// whether the page is hidden now, asked only for
    /// [`Changes::WhileVisible`]), the value is known, and it changed since
    /// the last report (or nothing was reported yet, so a CLS of 0 is still
    /// reported once).
    pub fn report(&mut self, value: f64, force: bool, hidden: impl FnOnce() -> bool) -> Option<Report> {
        // `value >= 0` is false for NaN too.
        if value.is_nan() || value < 0.0 {
            return None;
        }
        let wanted = force
            || match self.changes {
                Changes::Forced => false,
                Changes::All => true,
                Changes::WhileVisible => !hidden(),
            };
        if !wanted {
            return None;
        }
        let delta = value - self.prev_value.unwrap_or(0.0);
        if delta != 0.0 || self.prev_value.is_none() {
            self.prev_value = Some(value);
            return Some(Report {
                delta,
                rating: self.name.rate(value),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISIBLE: fn() -> bool = || false;
    const HIDDEN: fn() -> bool = || true;

    #[test]
    fn unknown_value_is_never_reported() {
        let mut r = Reporter::new(MetricName::Lcp, Changes::All);
        assert_eq!(r.report(-1.0, true, VISIBLE), None);
        assert_eq!(r.report(f64::NAN, true, VISIBLE), None);
    }

    #[test]
    fn first_report_has_delta_equal_to_value() {
        let mut r = Reporter::new(MetricName::Fcp, Changes::Forced);
        assert_eq!(r.report(1200.0, false, VISIBLE), None, "not forced, not all changes");
        let rep = r.report(1200.0, true, VISIBLE).unwrap();
        assert_eq!(rep.delta, 1200.0);
        assert_eq!(rep.rating, Rating::Good);
    }

    #[test]
    fn zero_is_reported_once_then_only_changes() {
        let mut r = Reporter::new(MetricName::Cls, Changes::Forced);
        assert_eq!(r.report(0.0, true, VISIBLE).map(|x| x.delta), Some(0.0));
        assert_eq!(r.report(0.0, true, VISIBLE), None);
        let rep = r.report(0.3, true, VISIBLE).unwrap();
        assert!((rep.delta - 0.3).abs() < 1e-12);
        assert_eq!(rep.rating, Rating::Poor);
        assert_eq!(r.report(0.3, true, VISIBLE), None);
    }

    #[test]
    fn report_all_changes_reports_without_force() {
        let mut r = Reporter::new(MetricName::Inp, Changes::All);
        assert_eq!(r.report(56.0, false, HIDDEN).map(|x| x.delta), Some(56.0));
        assert_eq!(r.report(56.0, false, HIDDEN), None);
        assert_eq!(
            r.report(300.0, false, VISIBLE).map(|x| (x.delta, x.rating)),
            Some((244.0, Rating::NeedsImprovement))
        );
    }

    #[test]
    fn the_queue_reports_changes_while_visible_and_then_only_when_forced() {
        // Two clicks: 120 ms while visible, then a hide, then a 2,008 ms
        // interaction whose entry arrives while hidden.
        let mut queue = Reporter::new(MetricName::Inp, Changes::WhileVisible);
        let mut callback = Reporter::new(MetricName::Inp, Changes::Forced);
        assert_eq!(queue.report(120.0, false, VISIBLE).map(|x| x.delta), Some(120.0));
        assert_eq!(callback.report(120.0, false, VISIBLE), None);
        // The hide: both are forced.
        assert_eq!(queue.report(120.0, true, HIDDEN), None, "already queued");
        assert_eq!(callback.report(120.0, true, HIDDEN).map(|x| x.delta), Some(120.0));
        // The slow interaction, while hidden: neither reports it...
        assert_eq!(queue.report(2008.0, false, HIDDEN), None);
        assert_eq!(callback.report(2008.0, false, HIDDEN), None);
        // ...until the next hide, where both do.
        assert_eq!(queue.report(2008.0, true, HIDDEN).map(|x| x.delta), Some(1888.0));
        assert_eq!(callback.report(2008.0, true, HIDDEN).map(|x| x.delta), Some(1888.0));
        let mut asked = false;
        Reporter::new(MetricName::Cls, Changes::Forced).report(0.1, false, || {
            asked = true;
            true
        });
        assert!(!asked, "visibility is read only for the queue's instances");
    }
}
