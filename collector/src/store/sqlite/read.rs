//! Reads of the in-memory aggregates: windows, the exact p75 planner, and
//! exact counts at or below a threshold.

use std::time::Instant;

use beacon::MetricName;

use super::catalog::SiteEntry;
use super::{Shared, State};
use crate::aggregate::{Cell, Span};
use crate::percentile;
use crate::sketch::{bin_bounds, bin_of, bin_value, Located};
use crate::store::cells::{ff_selector, Scope};
use crate::store::values::{Select, Values};
use crate::store::{Aggregate, AggregateKey, AggregateQuery, PageScope, PageViews, StoreError, ViewsQuery};
use crate::time::Resolution;

/// The part of a span that the store still answers for.
fn clamp(span: &Span, state: &State) -> Span {
    let from_ms = match span.resolution {
        Resolution::Day => state.cutoff_ms,
        Resolution::Hour => state.cells.hour_horizon_ms().max(state.cutoff_ms),
    };
    let mut s = *span;
    s.first = s.first.max(span.resolution.bucket(from_ms + span.resolution.ms() - 1));
    s
}

/// How an aggregate's exact p75 is found.
pub(super) enum Exact {
    Known(f64),
    /// The `rank`-th smallest value of bin `key` of these pages.
    Bin {
        pages: Vec<u32>,
        key: u32,
        rank: u64,
        count: u64,
    },
}

struct Planned {
    aggregate: Aggregate,
    /// The exact order statistics wanted: the p75's rank, then those of
    /// its interval, if asked for.
    ranks: Vec<RankPlan>,
    metric: MetricName,
    ff: u8,
    span: Span,
}

/// One exact order statistic of an aggregate, and how it is found.
struct RankPlan {
    exact: Option<Exact>,
    /// Where the result may be cached, and the series' version.
    cache: Option<(ExactKey, u64)>,
    value: Option<f64>,
}

/// (scope, metric, form factor, span, rank).
pub(super) type ExactKey = (Scope, MetricName, u8, Span, u64);

/// Most exact p75s kept; past that the cache starts over.
const EXACT_CACHE_LEN: usize = 200_000;

/// How to find the `rank`-th smallest value of `cell`. `page_cells`: the
/// pages' cells of the same metric and span when they are at hand (their
/// bins tell which pages a site's bin draws from).
#[allow(clippy::too_many_arguments)]
fn plan_exact(
    state: &State,
    scope: Scope,
    site_pages: &[u32],
    page_cells: Option<&[(u32, Cell)]>,
    metric: MetricName,
    ff: u8,
    span: &Span,
    cell: &Cell,
    rank: u64,
) -> Option<Exact> {
    Some(match cell.sketch.locate_rank(rank)? {
        Located::Zero => Exact::Known(0.0),
        Located::Bin {
            key,
            rank_in_bin,
            bin_count,
            ..
        } => {
            let pages = match (scope, page_cells) {
                (Scope::Page(p), _) => vec![p],
                (Scope::Site(_), Some(cells)) => cells
                    .iter()
                    .filter(|(_, c)| c.sketch.bin_count(key) > 0)
                    .map(|&(p, _)| p)
                    .collect(),
                (Scope::Site(_), None) => site_pages
                    .iter()
                    .copied()
                    .filter(|&p| state.cells.bin_count(Scope::Page(p), metric, ff, span, key) > 0)
                    .collect(),
            };
            Exact::Bin {
                pages,
                key,
                rank: rank_in_bin,
                count: bin_count,
            }
        }
    })
}

/// Reads aggregates from memory only: cells, and exact values for the p75.
pub(super) fn read_aggregates(shared: &Shared, q: &AggregateQuery) -> Result<Vec<Aggregate>, StoreError> {
    let state = shared.state.read().expect("state lock poisoned");
    let metrics: &[MetricName] = if q.metrics.is_empty() {
        &MetricName::ALL
    } else {
        &q.metrics
    };
    let ff = ff_selector(q.form_factor);
    let mut sites: Vec<(u32, &SiteEntry)> = match &q.site {
        Some(name) => state
            .catalog
            .by_name
            .get(name)
            .and_then(|id| state.catalog.sites.get(id).map(|s| (*id, s)))
            .into_iter()
            .collect(),
        None => state.catalog.sites.iter().map(|(&id, s)| (id, s)).collect(),
    };
    sites.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut planned: Vec<Planned> = Vec::new();
    for (site_id, site) in sites {
        let site_pages: Vec<u32> = site.page_ids().collect();
        let mut scopes: Vec<(Scope, Option<String>)> = Vec::new();
        match &q.pages {
            PageScope::Site => scopes.push((Scope::Site(site_id), None)),
            PageScope::SiteAndPages => {
                scopes.push((Scope::Site(site_id), None));
                let mut pages: Vec<(&String, u32)> = site_pages
                    .iter()
                    .filter_map(|p| state.catalog.pages.get(p).map(|(_, name)| (name, *p)))
                    .collect();
                pages.sort();
                scopes.extend(pages.into_iter().map(|(name, p)| (Scope::Page(p), Some(name.clone()))));
            }
            PageScope::Page(page) => {
                if let Some(p) = state.catalog.page_id(site_id, page) {
                    scopes.push((Scope::Page(p), Some(page.clone())));
                }
            }
        }
        for span in &q.spans {
            let clamped = clamp(span, &state);
            for &metric in metrics {
                // Pages first: a site's exact p75 looks at their bins.
                let mut page_cells: Vec<(u32, Cell)> = Vec::new();
                let mut site_cell = None;
                for (scope, _) in &scopes {
                    let cell = state.cells.window(*scope, metric, ff, &clamped);
                    match scope {
                        Scope::Page(p) => page_cells.push((*p, cell)),
                        Scope::Site(_) => site_cell = Some(cell),
                    }
                }
                let all_pages = matches!(q.pages, PageScope::SiteAndPages);
                let mut push = |scope: Scope, page: Option<String>, cell: Cell, page_cells: Option<&[(u32, Cell)]>| {
                    if cell.is_empty() {
                        return;
                    }
                    let n = cell.count() as usize;
                    let mut ranks = Vec::new();
                    if q.exact_p75 || q.p75_interval {
                        ranks.push(percentile::rank(75.0, n) as u64);
                    }
                    if q.p75_interval {
                        let (low, high) = percentile::interval_ranks(75.0, n).unwrap_or((1, 1));
                        ranks.extend([low as u64, high as u64]);
                    }
                    let version = state.cells.version(scope, metric, ff);
                    let ranks = ranks
                        .into_iter()
                        .map(|rank| {
                            let key: ExactKey = (scope, metric, ff, clamped, rank);
                            let cached = shared
                                .exact_cache
                                .lock()
                                .expect("cache lock poisoned")
                                .get(&key)
                                .copied();
                            match cached {
                                Some((v, value)) if v == version => RankPlan {
                                    exact: Some(Exact::Known(value)),
                                    cache: None,
                                    value: None,
                                },
                                _ => RankPlan {
                                    exact: plan_exact(
                                        &state,
                                        scope,
                                        &site_pages,
                                        page_cells,
                                        metric,
                                        ff,
                                        &clamped,
                                        &cell,
                                        rank,
                                    ),
                                    cache: Some((key, version)),
                                    value: None,
                                },
                            }
                        })
                        .collect();
                    planned.push(Planned {
                        aggregate: Aggregate {
                            key: AggregateKey {
                                site: site.name.clone(),
                                page,
                                metric,
                                form_factor: q.form_factor,
                            },
                            span: *span,
                            cell,
                            p75: None,
                            p75_interval: None,
                        },
                        ranks,
                        metric,
                        ff,
                        span: clamped,
                    });
                };
                if let Some(cell) = site_cell {
                    push(Scope::Site(site_id), None, cell, all_pages.then_some(&page_cells[..]));
                }
                for ((scope, page), (_, cell)) in scopes
                    .iter()
                    .filter(|(s, _)| matches!(s, Scope::Page(_)))
                    .zip(page_cells)
                {
                    push(*scope, page.clone(), cell, None);
                }
            }
        }
    }
    let planned_at = Instant::now();
    let lookups = planned
        .iter()
        .flat_map(|p| &p.ranks)
        .filter(|r| matches!(r.exact, Some(Exact::Bin { .. })))
        .count();
    resolve_exact(&state.values, &mut planned);
    drop(state);
    let mut cache = shared.exact_cache.lock().expect("cache lock poisoned");
    if cache.len() > EXACT_CACHE_LEN {
        cache.clear();
    }
    for r in planned.iter().flat_map(|p| &p.ranks) {
        if let (Some((key, version)), Some(value)) = (r.cache, r.value) {
            cache.insert(key, (version, value));
        }
    }
    drop(cache);
    tracing::debug!(
        aggregates = planned.len(),
        lookups,
        lookup_ms = planned_at.elapsed().as_secs_f64() * 1000.0,
        "read aggregates"
    );
    Ok(planned
        .into_iter()
        .map(|p| {
            let mut a = p.aggregate;
            let values: Vec<Option<f64>> = p.ranks.iter().map(|r| r.value).collect();
            a.p75 = values.first().copied().flatten();
            if let [_, Some(low), Some(high)] = values[..] {
                a.p75_interval = Some((low, high));
            }
            a
        })
        .collect())
}

/// Finds each planned order statistic in the exact values.
fn resolve_exact(values: &Values, planned: &mut [Planned]) {
    for p in planned.iter_mut() {
        let (metric, ff, span) = (p.metric, p.ff, p.span);
        for r in p.ranks.iter_mut() {
            r.value = match &r.exact {
                None => None,
                Some(Exact::Known(v)) => Some(*v),
                Some(Exact::Bin {
                    pages,
                    key,
                    rank,
                    count,
                }) => {
                    let (lo, hi) = bin_bounds(*key);
                    let select = Select {
                        metric,
                        ff,
                        from_ms: span.start_ms(),
                        to_ms: span.end_ms(),
                        lo,
                        hi,
                        hi_inclusive: false,
                    };
                    let in_bin = values.select(pages, &select);
                    let found = if in_bin.len() as u64 == *count {
                        in_bin.get(*rank as usize - 1).copied()
                    } else {
                        None
                    };
                    if found.is_none() {
                        tracing::error!(key = ?p.aggregate.key, "exact values disagree with aggregates; value from the sketch");
                    }
                    Some(found.unwrap_or_else(|| bin_value(*key)))
                }
            };
        }
    }
}

/// [`count_at_or_below`] of each threshold, under one lock.
pub(super) fn read_counts_at_or_below(
    shared: &Shared,
    key: &AggregateKey,
    span: &Span,
    thresholds: &[f64],
) -> Result<Vec<u64>, StoreError> {
    let state = shared.state.read().expect("state lock poisoned");
    thresholds
        .iter()
        .map(|&t| count_at_or_below(&state, key, span, t))
        .collect()
}

/// Exactly how many reports of `key` in `span` are `<= threshold`.
fn count_at_or_below(state: &State, key: &AggregateKey, span: &Span, threshold: f64) -> Result<u64, StoreError> {
    if threshold.is_nan() || threshold < 0.0 {
        return Ok(0);
    }
    let Some(&site) = state.catalog.by_name.get(&key.site) else {
        return Ok(0);
    };
    let site_pages: Vec<u32> = state
        .catalog
        .sites
        .get(&site)
        .map(|s| s.page_ids().collect())
        .unwrap_or_default();
    let scope = match &key.page {
        None => Scope::Site(site),
        Some(page) => match state.catalog.page_id(site, page) {
            Some(p) => Scope::Page(p),
            None => return Ok(0),
        },
    };
    let ff = ff_selector(key.form_factor);
    let span = clamp(span, state);
    let cell = state.cells.window(scope, key.metric, ff, &span);
    if threshold == 0.0 || threshold.is_infinite() {
        return Ok(if threshold == 0.0 {
            cell.sketch.zero_count()
        } else {
            cell.count()
        });
    }
    let bin = bin_of(threshold);
    let below: u64 = cell.sketch.zero_count()
        + cell
            .sketch
            .bins()
            .iter()
            .take_while(|&&(k, _)| k < bin)
            .map(|&(_, n)| n)
            .sum::<u64>();
    if cell.sketch.bin_count(bin) == 0 {
        return Ok(below);
    }
    let pages: Vec<u32> = match scope {
        Scope::Page(p) => vec![p],
        Scope::Site(_) => site_pages
            .into_iter()
            .filter(|&p| state.cells.bin_count(Scope::Page(p), key.metric, ff, &span, bin) > 0)
            .collect(),
    };
    let (lo, _) = bin_bounds(bin);
    let select = Select {
        metric: key.metric,
        ff,
        from_ms: span.start_ms(),
        to_ms: span.end_ms(),
        lo,
        hi: threshold,
        hi_inclusive: true,
    };
    Ok(below + state.values.count(&pages, &select))
}

/// Page views of the sites and pages `q` asks for.
pub(super) fn read_page_views(shared: &Shared, q: &ViewsQuery) -> Result<Vec<PageViews>, StoreError> {
    let state = shared.state.read().expect("state lock poisoned");
    let ff = ff_selector(q.form_factor);
    let span = clamp(&q.span, &state);
    let mut sites: Vec<(u32, &SiteEntry)> = match &q.site {
        Some(name) => state
            .catalog
            .by_name
            .get(name)
            .and_then(|id| state.catalog.sites.get(id).map(|s| (*id, s)))
            .into_iter()
            .collect(),
        None => state.catalog.sites.iter().map(|(&id, s)| (id, s)).collect(),
    };
    sites.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut out = Vec::new();
    let count = |scope| {
        if span.is_empty() {
            [0; 7]
        } else {
            state.views.count(scope, ff, &span)
        }
    };
    for (site_id, site) in sites {
        let page_ids: Vec<u32> = site.page_ids().collect();
        let mut pages: Vec<(&String, u32)> = match &q.pages {
            PageScope::Site => Vec::new(),
            PageScope::SiteAndPages => page_ids
                .iter()
                .filter_map(|p| state.catalog.pages.get(p).map(|(_, name)| (name, *p)))
                .collect(),
            PageScope::Page(page) => state
                .catalog
                .page_id(site_id, page)
                .and_then(|p| state.catalog.pages.get(&p).map(|(_, name)| (name, p)))
                .into_iter()
                .collect(),
        };
        pages.sort();
        if !matches!(q.pages, PageScope::Page(_)) {
            let last = page_ids.iter().filter_map(|&p| state.views.last(p)).max();
            let by_navigation = count(Scope::Site(site_id));
            if last.is_some() || by_navigation.iter().any(|&n| n > 0) {
                out.push(PageViews {
                    site: site.name.clone(),
                    page: None,
                    by_navigation,
                    last_received_ms: last,
                });
            }
        }
        for (name, p) in pages {
            let last = state.views.last(p);
            let by_navigation = count(Scope::Page(p));
            if last.is_some() || by_navigation.iter().any(|&n| n > 0) {
                out.push(PageViews {
                    site: site.name.clone(),
                    page: Some(name.clone()),
                    by_navigation,
                    last_received_ms: last,
                });
            }
        }
    }
    Ok(out)
}
