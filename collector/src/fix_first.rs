//! `GET /v1/fix-first`: what to fix first on a page (or a whole site),
//! from the attribution its reports carry. For LCP, the elements; for CLS,
//! the sources of the largest shift; for INP, the interaction targets and
//! the scripts of the long animation frames, by host, first-party or
//! third-party. Each with its sample count, the p75 of its reports, and the
//! share of the page's poor samples it accounts for; the subparts of LCP
//! and INP at p75; and one list of them all, the most poor samples first.

use std::collections::HashMap;

use beacon::{Attribution, FormFactor, MetricName, Rating};
use serde::Serialize;

use crate::aggregate::{form_factor_str, Window, WindowName};
use crate::percentile;
use crate::store::{AggregateQuery, Attributed, AttributionQuery, PageScope, Store, StoreError};
use crate::time::rfc3339;

/// Most items listed per kind (the rest are left out; `(other)` is what
/// the store's caps name values past them).
pub const TOP: usize = 10;

/// One element, source, target or script host.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// A selector, or a script's host.
    pub target: String,
    /// Scripts only: whether the host is the site's (or a subdomain of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,
    /// Attributed reports naming it.
    pub count: u64,
    /// The nearest-rank p75 of their values (for scripts: of the longest
    /// script's duration, ms).
    pub p75: f64,
    /// Of them, poor ones.
    pub poor: u64,
    /// Their share of the metric's poor samples on the page (all reports,
    /// attributed or not); 0 when it has none.
    pub poor_share: f64,
}

/// One metric's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFix {
    /// Reports of the metric in the window, and how many were poor.
    pub count: u64,
    pub poor: u64,
    /// Of them, those that carried attribution.
    pub attributed: u64,
    /// The items, the most poor samples first, then the most samples.
    pub items: Vec<Item>,
    /// LCP and INP: the p75 of each subpart over the attributed reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subparts: Option<HashMap<&'static str, f64>>,
    /// INP: the longest scripts' hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripts: Option<Vec<Item>>,
}

/// One entry of the list, the most poor samples first.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub metric: MetricName,
    /// `element` (LCP), `shift-source` (CLS), `interaction-target` (INP),
    /// `script` (INP, by host).
    pub kind: &'static str,
    #[serde(flatten)]
    pub item: Item,
}

/// `GET /v1/fix-first`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixFirst {
    pub site: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub window: &'static str,
    pub form_factor: &'static str,
    pub from: String,
    pub to: String,
    /// Keyed by `LCP`, `CLS`, `INP`; only metrics with reports.
    pub metrics: HashMap<MetricName, MetricFix>,
    pub actions: Vec<Action>,
}

/// The metrics attribution names things for.
const METRICS: [MetricName; 3] = [MetricName::Lcp, MetricName::Cls, MetricName::Inp];

fn target(metric: MetricName, a: &Attribution) -> Option<&str> {
    match metric {
        MetricName::Lcp => a.target.as_deref(),
        MetricName::Cls => a.largest_shift_target.as_deref(),
        MetricName::Inp => a.interaction_target.as_deref(),
        _ => None,
    }
}

fn subparts(metric: MetricName, a: &Attribution) -> Vec<(&'static str, Option<f64>)> {
    match metric {
        MetricName::Lcp => vec![
            ("timeToFirstByte", a.time_to_first_byte),
            ("resourceLoadDelay", a.resource_load_delay),
            ("resourceLoadDuration", a.resource_load_duration),
            ("elementRenderDelay", a.element_render_delay),
        ],
        MetricName::Inp => vec![
            ("inputDelay", a.input_delay),
            ("processingDuration", a.processing_duration),
            ("presentationDelay", a.presentation_delay),
        ],
        _ => Vec::new(),
    }
}

/// Whether a script on `host` is the site's own: the same host, or one
/// under the other (`cdn.shop.example` for `shop.example`, `shop.example`
/// for `www.shop.example`).
pub fn first_party(site: &str, host: &str) -> bool {
    let site = site.split(':').next().unwrap_or(site);
    let strip = |h: &str| h.strip_prefix("www.").unwrap_or(h).to_string();
    let (site, host) = (strip(site), strip(host));
    host == site || host.ends_with(&format!(".{site}")) || site.ends_with(&format!(".{host}"))
}

/// Groups values by key into items: count, p75 (of `value`), poor.
fn items<'a>(groups: impl Iterator<Item = (&'a str, f64, bool)>, poor_total: u64, site: Option<&str>) -> Vec<Item> {
    let mut by: HashMap<&str, (Vec<f64>, u64)> = HashMap::new();
    for (key, value, poor) in groups {
        let e = by.entry(key).or_default();
        e.0.push(value);
        e.1 += poor as u64;
    }
    let mut out: Vec<Item> = by
        .into_iter()
        .map(|(key, (mut values, poor))| {
            values.sort_by(f64::total_cmp);
            Item {
                target: key.to_string(),
                first_party: site.map(|s| first_party(s, key)),
                count: values.len() as u64,
                p75: percentile::p75_sorted(&values).unwrap_or(0.0),
                poor,
                poor_share: if poor_total == 0 {
                    0.0
                } else {
                    poor as f64 / poor_total as f64
                },
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.poor
            .cmp(&a.poor)
            .then(b.count.cmp(&a.count))
            .then_with(|| a.target.cmp(&b.target))
    });
    out.truncate(TOP);
    out
}

/// The script's host, from its (query-less) URL.
fn host(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_owned)
}

pub async fn fix_first(
    store: &dyn Store,
    site: String,
    page: Option<String>,
    window: WindowName,
    form_factor: Option<FormFactor>,
    now_ms: i64,
) -> Result<FixFirst, StoreError> {
    let w = Window::ending_at(window, now_ms);
    let aggregates = store
        .aggregates(AggregateQuery {
            site: Some(site.clone()),
            pages: page.clone().map_or(PageScope::Site, PageScope::Page),
            metrics: METRICS.to_vec(),
            form_factor,
            spans: vec![w.span],
            exact_p75: false,
            p75_interval: false,
        })
        .await?;
    let reports: Vec<Attributed> = store
        .attributions(AttributionQuery {
            site: site.clone(),
            page: page.clone(),
            form_factor,
            // The window's buckets, as the aggregates count them (its end
            // is now, and a report of this millisecond counts too).
            from_ms: w.span.start_ms(),
            to_ms: w.span.end_ms(),
            metrics: METRICS.to_vec(),
        })
        .await?;
    let mut metrics = HashMap::new();
    let mut actions = Vec::new();
    for metric in METRICS {
        let Some(a) = aggregates.iter().find(|a| a.key.metric == metric) else {
            continue;
        };
        let poor_total = a.cell.ratings.poor;
        let mine: Vec<&Attributed> = reports.iter().filter(|r| r.metric == metric).collect();
        let is_poor = |v: f64| metric.rate(v) == Rating::Poor;
        let listed = items(
            mine.iter()
                .filter_map(|r| Some((target(metric, &r.attribution)?, r.value, is_poor(r.value)))),
            poor_total,
            None,
        );
        let kind = match metric {
            MetricName::Lcp => "element",
            MetricName::Cls => "shift-source",
            _ => "interaction-target",
        };
        actions.extend(listed.iter().map(|item| Action {
            metric,
            kind,
            item: item.clone(),
        }));
        let subparts = (metric != MetricName::Cls).then(|| {
            let mut by: HashMap<&'static str, Vec<f64>> = HashMap::new();
            for r in &mine {
                for (name, v) in subparts(metric, &r.attribution) {
                    if let Some(v) = v {
                        by.entry(name).or_default().push(v);
                    }
                }
            }
            by.into_iter()
                .map(|(name, mut values)| {
                    values.sort_by(f64::total_cmp);
                    (name, percentile::p75_sorted(&values).unwrap_or(0.0))
                })
                .collect()
        });
        let scripts = (metric == MetricName::Inp).then(|| {
            let hosts: Vec<(String, f64, bool)> = mine
                .iter()
                .filter_map(|r| {
                    let s = r.attribution.longest_script.as_ref()?;
                    Some((host(s.url.as_deref()?)?, s.duration, is_poor(r.value)))
                })
                .collect();
            items(
                hosts.iter().map(|(h, d, p)| (h.as_str(), *d, *p)),
                poor_total,
                Some(&site),
            )
        });
        if let Some(scripts) = &scripts {
            actions.extend(scripts.iter().map(|item| Action {
                metric,
                kind: "script",
                item: item.clone(),
            }));
        }
        metrics.insert(
            metric,
            MetricFix {
                count: a.count(),
                poor: poor_total,
                attributed: mine.len() as u64,
                items: listed,
                subparts,
                scripts,
            },
        );
    }
    actions.sort_by(|a, b| {
        b.item
            .poor
            .cmp(&a.item.poor)
            .then(b.item.poor_share.total_cmp(&a.item.poor_share))
            .then(b.item.count.cmp(&a.item.count))
    });
    Ok(FixFirst {
        site,
        page,
        window: window.as_str(),
        form_factor: form_factor_str(form_factor),
        from: rfc3339(w.start_ms()),
        to: rfc3339(w.end_ms()),
        metrics,
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_hosts() {
        assert!(first_party("shop.example", "shop.example"));
        assert!(first_party("shop.example:8443", "cdn.shop.example"));
        assert!(first_party("www.shop.example", "shop.example"));
        assert!(!first_party("shop.example", "tags.example.net"));
        assert!(!first_party("shop.example", "badshop.example"));
    }
}
