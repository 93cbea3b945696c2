//! When a metric is reported, and with what delta (the reference's
//! `bindReporter`).

use beacon::{MetricName, Rating};

/// Decides whether a metric's current value is passed to the callback.
#[derive(Clone, Debug)]
pub struct Reporter {
    name: MetricName,
    report_all_changes: bool,
    prev_value: Option<f64>,
}

/// What one report carries besides the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    pub delta: f64,
    pub rating: Rating,
}

impl Reporter {
    pub fn new(name: MetricName, report_all_changes: bool) -> Self {
        Reporter {
            name,
            report_all_changes,
            prev_value: None,
        }
    }

    /// `value` is the metric's current value (negative while unknown).
    /// Reports when forced or reporting all changes, the value is known, and
    /// it changed since the last report (or nothing was reported yet, so a
    /// CLS of 0 is still reported once).
    pub fn report(&mut self, value: f64, force: bool) -> Option<Report> {
        // `value >= 0` is false for NaN too.
        let known = value >= 0.0;
        if !known || !(force || self.report_all_changes) {
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

    #[test]
    fn unknown_value_is_never_reported() {
        let mut r = Reporter::new(MetricName::Lcp, true);
        assert_eq!(r.report(-1.0, true), None);
        assert_eq!(r.report(f64::NAN, true), None);
    }

    #[test]
    fn first_report_has_delta_equal_to_value() {
        let mut r = Reporter::new(MetricName::Fcp, false);
        assert_eq!(r.report(1200.0, false), None, "not forced, not all changes");
        let rep = r.report(1200.0, true).unwrap();
        assert_eq!(rep.delta, 1200.0);
        assert_eq!(rep.rating, Rating::Good);
    }

    #[test]
    fn zero_is_reported_once_then_only_changes() {
        let mut r = Reporter::new(MetricName::Cls, false);
        assert_eq!(r.report(0.0, true).map(|x| x.delta), Some(0.0));
        assert_eq!(r.report(0.0, true), None);
        let rep = r.report(0.3, true).unwrap();
        assert!((rep.delta - 0.3).abs() < 1e-12);
        assert_eq!(rep.rating, Rating::Poor);
        assert_eq!(r.report(0.3, true), None);
    }

    #[test]
    fn report_all_changes_reports_without_force() {
        let mut r = Reporter::new(MetricName::Inp, true);
        assert_eq!(r.report(56.0, false).map(|x| x.delta), Some(56.0));
        assert_eq!(r.report(56.0, false), None);
        assert_eq!(
            r.report(300.0, false).map(|x| (x.delta, x.rating)),
            Some((244.0, Rating::NeedsImprovement))
        );
    }
}
