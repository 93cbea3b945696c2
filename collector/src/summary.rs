//! The `/v1/summary` answer and the one place it is computed. Stores feed
//! samples into a [`SummaryBuilder`]; when aggregates replace raw samples
//! (issue 5), only this module and the store's query change.

use std::collections::BTreeMap;

use beacon::MetricName;
use serde::{Deserialize, Serialize};

use crate::percentile;

/// Which data a summary covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SummaryQuery {
    /// Only this site (`host` or `host:port`), or all sites.
    pub site: Option<String>,
}

/// `{"pages": [...]}`, pages sorted by site then page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub pages: Vec<PageSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageSummary {
    pub site: String,
    pub page: String,
    /// Keyed by metric name (`"FCP"`); only metrics with samples.
    pub metrics: BTreeMap<MetricName, MetricSummary>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub count: u64,
    /// Nearest-rank 75th percentile of the values.
    pub p75: f64,
}

/// Collects samples in any order and computes the summary at the end.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    samples: BTreeMap<(String, String), BTreeMap<MetricName, Vec<f64>>>,
}

impl SummaryBuilder {
    pub fn new() -> SummaryBuilder {
        SummaryBuilder::default()
    }

    pub fn push(&mut self, site: &str, page: &str, metric: MetricName, value: f64) {
        // Avoid allocating the key for every sample of the same page.
        let values = match self.samples.get_mut(&(site.to_owned(), page.to_owned())) {
            Some(m) => m.entry(metric).or_default(),
            None => self
                .samples
                .entry((site.to_owned(), page.to_owned()))
                .or_default()
                .entry(metric)
                .or_default(),
        };
        values.push(value);
    }

    pub fn finish(self) -> Summary {
        let pages = self
            .samples
            .into_iter()
            .map(|((site, page), metrics)| PageSummary {
                site,
                page,
                metrics: metrics
                    .into_iter()
                    .filter_map(|(name, mut values)| {
                        let p75 = percentile::nearest_rank(&mut values, 75.0)?;
                        Some((
                            name,
                            MetricSummary {
                                count: values.len() as u64,
                                p75,
                            },
                        ))
                    })
                    .collect(),
            })
            .collect();
        Summary { pages }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sorts_and_serialises() {
        let mut b = SummaryBuilder::new();
        b.push("b.example", "https://b.example/", MetricName::Lcp, 900.0);
        for v in [300.0, 100.0, 200.0] {
            b.push("a.example", "https://a.example/x", MetricName::Fcp, v);
        }
        b.push("a.example", "https://a.example/", MetricName::Cls, 0.1);
        let json = serde_json::to_value(b.finish()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"pages": [
                {"site": "a.example", "page": "https://a.example/", "metrics": {"CLS": {"count": 1, "p75": 0.1}}},
                {"site": "a.example", "page": "https://a.example/x", "metrics": {"FCP": {"count": 3, "p75": 300.0}}},
                {"site": "b.example", "page": "https://b.example/", "metrics": {"LCP": {"count": 1, "p75": 900.0}}},
            ]})
        );
    }
}
