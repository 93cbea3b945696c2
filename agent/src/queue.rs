//! Reports waiting to be sent. A metric is re-reported as it changes (CLS and
//! INP grow), so only the latest report per metric `id` is kept.

use alloc::vec::Vec;

use beacon::MetricReport;

#[derive(Clone, Debug, Default)]
pub struct Queue {
    reports: Vec<MetricReport>,
}

impl Queue {
    pub fn push(&mut self, report: MetricReport) {
        match self
            .reports
            .iter_mut()
            .find(|r| r.id == report.id && r.name == report.name)
        {
            Some(existing) => *existing = report,
            None => self.reports.push(report),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// Everything queued, leaving the queue empty.
    pub fn take(&mut self) -> Vec<MetricReport> {
        core::mem::take(&mut self.reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon::{MetricName, NavigationType, Rating};

    fn report(name: MetricName, id: &str, value: f64) -> MetricReport {
        MetricReport {
            name,
            value,
            delta: value,
            id: id.into(),
            rating: Rating::Good,
            navigation_type: NavigationType::Navigate,
        }
    }

    #[test]
    fn keeps_the_latest_report_per_id() {
        let mut q = Queue::default();
        q.push(report(MetricName::Cls, "a", 0.01));
        q.push(report(MetricName::Fcp, "b", 900.0));
        q.push(report(MetricName::Cls, "a", 0.05));
        assert_eq!(q.len(), 2);
        let all = q.take();
        assert_eq!(all[0].value, 0.05);
        assert_eq!(all[1].name, MetricName::Fcp);
        assert!(q.is_empty());
    }
}
