use std::collections::HashMap;

use beacon::{FormFactor, MetricName, NavigationType};
use rusqlite::params;

use super::schema::{MIGRATIONS, SCHEMA_VERSION};
use super::*;
use crate::aggregate::RatingCounts;
use crate::aggregate::{Window, WindowName};
use crate::percentile;
use crate::sketch::RELATIVE_ACCURACY;
use crate::store::{PageScope, Report, OTHER_PAGE};
use crate::testutil::Rng;
use crate::time::{now_ms, Resolution, DAY_MS};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn report(site: &str, page: &str, metric: MetricName, id: &str, value: f64, at: i64) -> Report {
    Report {
        site: site.into(),
        page: page.into(),
        metric,
        report_id: id.into(),
        value,
        delta: value,
        rating: metric.rate(value),
        navigation_type: NavigationType::Navigate,
        form_factor: Some(FormFactor::Phone),
        page_view_id: Some("pv".into()),
        session_id: None,
        received_at_ms: at,
        attribution: None,
    }
}

/// Inserts flat reports (grouped into beacons where they share a beacon's
/// fields), all or none.
fn insert_reports(store: &Sqlite, reports: Vec<Report>) -> StoreFuture<Inserted> {
    store.insert(NewBeacon::group(reports))
}

fn options() -> SqliteOptions {
    SqliteOptions::default()
}

fn query(site: Option<&str>, pages: PageScope, spans: Vec<Span>) -> AggregateQuery {
    AggregateQuery {
        site: site.map(Into::into),
        pages,
        metrics: vec![],
        form_factor: None,
        spans,
        exact_p75: true,
        p75_interval: false,
    }
}

fn find<'a>(aggs: &'a [Aggregate], page: Option<&str>, metric: MetricName) -> Option<&'a Aggregate> {
    aggs.iter()
        .find(|a| a.key.page.as_deref() == page && a.key.metric == metric)
}

fn export_all(store: &Sqlite) -> Vec<Report> {
    let mut rx = store.export(ExportQuery {
        site: None,
        from_ms: 0,
        to_ms: i64::MAX,
    });
    let mut out = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        out.extend(chunk.unwrap());
    }
    out
}

#[test]
fn re_reports_replace_values_in_raw_reports_and_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(dir.path(), options()).unwrap();
    let now = now_ms();
    let page = "https://a.example/";
    let w = Window::ending_at(WindowName::Days28, now);
    rt().block_on(async {
        let r = insert_reports(
            &store,
            vec![
                report("a.example", page, MetricName::Cls, "a", 0.05, now),
                report("a.example", page, MetricName::Cls, "b", 0.3, now),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            Inserted {
                new: 2,
                replaced: 0,
                deferred: 0
            }
        );
        // CLS grows: same id, later value, later time (the time is kept).
        let r = insert_reports(
            &store,
            vec![report("a.example", page, MetricName::Cls, "a", 0.2, now + 5000)],
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            Inserted {
                new: 0,
                replaced: 1,
                deferred: 0
            }
        );
        let aggs = store
            .aggregates(query(Some("a.example"), PageScope::SiteAndPages, vec![w.span]))
            .await
            .unwrap();
        for page in [None, Some(page)] {
            let cls = find(&aggs, page, MetricName::Cls).unwrap();
            assert_eq!(cls.count(), 2);
            assert_eq!(
                cls.cell.ratings,
                RatingCounts {
                    good: 0,
                    needs_improvement: 1,
                    poor: 1
                }
            );
            assert_eq!(cls.p75, Some(0.3));
        }
        // Another site's report with the same id is another report.
        insert_reports(
            &store,
            vec![report(
                "b.example",
                "https://b.example/",
                MetricName::Cls,
                "a",
                0.0,
                now,
            )],
        )
        .await
        .unwrap();
    });
    let rows = export_all(&store);
    assert_eq!(rows.len(), 3);
    let a = rows
        .iter()
        .find(|r| r.report_id == "a" && r.site == "a.example")
        .unwrap();
    assert_eq!((a.value, a.received_at_ms), (0.2, now));
    store.close().unwrap();
    assert!(matches!(
        rt().block_on(insert_reports(
            &store,
            vec![report("a.example", page, MetricName::Cls, "c", 1.0, now)]
        )),
        Err(StoreError::Closed)
    ));
}

/// (page, form factor, first received_at, latest value) of one report id.
type Kept = (String, Option<FormFactor>, i64, f64);

/// What a user computes by hand from the export: for each key and window,
/// the deduplicated values.
struct Truth {
    /// (site, metric, id) -> what is kept of it
    reports: HashMap<(String, MetricName, String), Kept>,
}

impl Truth {
    fn values(
        &self,
        site: &str,
        page: Option<&str>,
        metric: MetricName,
        ff: Option<FormFactor>,
        from: i64,
        to: i64,
    ) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .reports
            .iter()
            .filter(|((s, m, _), (p, f, at, _))| {
                s == site
                    && *m == metric
                    && page.is_none_or(|page| page == p)
                    && ff.is_none_or(|ff| Some(ff) == *f)
                    && (from..to).contains(at)
            })
            .map(|(_, &(_, _, _, v))| v)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

fn check_against_truth(store: &Sqlite, truth: &Truth, now: i64, pages: &[&str]) {
    let rt = rt();
    for window in WindowName::ALL {
        let w = Window::ending_at(window, now);
        for ff in [None, Some(FormFactor::Phone), Some(FormFactor::Desktop)] {
            let mut q = query(Some("a.example"), PageScope::SiteAndPages, vec![w.span]);
            q.form_factor = ff;
            let aggs = rt.block_on(store.aggregates(q)).unwrap();
            for &metric in &MetricName::ALL {
                for page in pages.iter().map(|p| Some(*p)).chain([None]) {
                    let values = truth.values("a.example", page, metric, ff, w.start_ms(), w.span.end_ms());
                    let got = find(&aggs, page, metric);
                    let what = format!("{window:?} {ff:?} {page:?} {metric:?}");
                    if values.is_empty() {
                        assert!(got.is_none(), "{what}: {got:?}");
                        continue;
                    }
                    let got = got.unwrap_or_else(|| panic!("{what}: missing"));
                    assert_eq!(got.count(), values.len() as u64, "{what}");
                    assert_eq!(got.p75, percentile::nearest_rank_sorted(&values, 75.0), "{what}");
                    let good = values
                        .iter()
                        .filter(|&&v| metric.rate(v) == beacon::Rating::Good)
                        .count();
                    assert_eq!(got.cell.ratings.good, good as u64, "{what}");
                    assert_eq!(got.rating(), Some(metric.rate(got.p75.unwrap())), "{what}");
                    for p in [50.0, 95.0, 99.0] {
                        let exact = percentile::nearest_rank_sorted(&values, p).unwrap();
                        let est = got.quantile(p).unwrap();
                        assert!(
                            (est - exact).abs() <= exact * RELATIVE_ACCURACY + 1e-12,
                            "{what} p{p}: {est} vs {exact}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn exact_p75_and_counts_match_brute_force_on_random_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let store = Sqlite::open(&path, options()).unwrap();
    let now = now_ms();
    let pages = ["https://a.example/", "https://a.example/b", "https://a.example/c"];
    let mut rng = Rng::new(42);
    let mut truth = Truth {
        reports: HashMap::new(),
    };
    let rt = rt();
    insert_random_beacons(&rt, &store, &mut rng, &mut truth, now, &pages, 0..1500);
    check_against_truth(&store, &truth, now, &pages);

    // count_at_or_below is exact for any threshold.
    let w = Window::ending_at(WindowName::Days28, now);
    for _ in 0..200 {
        let metric = MetricName::ALL[rng.below(5) as usize];
        let page = [None, Some(pages[rng.below(3) as usize])][rng.below(2) as usize];
        let values = truth.values("a.example", page, metric, None, w.start_ms(), w.span.end_ms());
        let threshold = match (rng.below(3), values.is_empty()) {
            (0, false) => values[rng.below(values.len() as u64) as usize],
            _ => rng.f64_log(0.001, 10_000.0),
        };
        let key = AggregateKey {
            site: "a.example".into(),
            page: page.map(Into::into),
            metric,
            form_factor: None,
        };
        let got = rt.block_on(store.count_at_or_below(key, w.span, threshold)).unwrap();
        let want = values.iter().filter(|&&v| v <= threshold).count() as u64;
        assert_eq!(got, want, "{metric:?} {page:?} <= {threshold}");
    }

    // A clean restart loads the saved aggregates; a crash rebuilds them.
    // Either way re-reports of ids stored before still find them.
    store.close().unwrap();
    let store = Sqlite::open(&path, options()).unwrap();
    check_against_truth(&store, &truth, now, &pages);
    insert_random_beacons(&rt, &store, &mut rng, &mut truth, now, &pages, 1500..2500);
    check_against_truth(&store, &truth, now, &pages);
    std::mem::forget(store); // like SIGKILL: nothing saved
    let store = Sqlite::open(&path, options()).unwrap();
    check_against_truth(&store, &truth, now, &pages);
    insert_random_beacons(&rt, &store, &mut rng, &mut truth, now, &pages, 2500..3500);
    check_against_truth(&store, &truth, now, &pages);
    // The raw reports are the deduplicated truth too.
    let mut exported: Vec<_> = export_all(&store)
        .into_iter()
        .map(|r| {
            (
                (r.metric, r.report_id),
                (r.page, r.form_factor, r.received_at_ms, r.value),
            )
        })
        .collect();
    let mut want: Vec<_> = truth
        .reports
        .iter()
        .map(|((_, metric, id), v)| ((*metric, id.clone()), v.clone()))
        .collect();
    exported.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(exported, want);
    store.close().unwrap();
}

/// Inserts beacons of 1 to 4 reports each (sharing page, form factor and
/// time, as a beacon's do) numbered `ids`; about one in five re-reports an
/// earlier id, sometimes one of the same beacon. Records them in `truth`.
#[allow(clippy::too_many_arguments)]
fn insert_random_beacons(
    rt: &tokio::runtime::Runtime,
    store: &Sqlite,
    rng: &mut Rng,
    truth: &mut Truth,
    now: i64,
    pages: &[&str],
    ids: std::ops::Range<u64>,
) {
    let mut i = ids.start;
    while i < ids.end {
        let page = pages[rng.below(pages.len() as u64) as usize];
        let ff = [
            None,
            Some(FormFactor::Phone),
            Some(FormFactor::Tablet),
            Some(FormFactor::Desktop),
        ][rng.below(4) as usize];
        // Mostly recent, some old, a few in the current hour.
        let age = match rng.below(4) {
            0 => rng.below(HOUR_MS_U),
            1 => rng.below(30 * HOUR_MS_U),
            _ => rng.below(30 * DAY_MS as u64),
        } as i64;
        let mut beacon = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let metric = MetricName::ALL[rng.below(5) as usize];
            let t = metric.thresholds();
            // Repeated values, zeros and values on the thresholds are common.
            let value = match rng.below(6) {
                0 => 0.0,
                1 => t.good,
                2 => t.poor,
                3 => (rng.below(20) as f64) * t.good / 10.0,
                _ => rng
                    .f64_log(t.good / 50.0, t.poor * 4.0)
                    .min(crate::validate::max_value(metric)),
            };
            let id = if i > 10 && rng.below(5) == 0 {
                // A re-report of an earlier id (maybe another metric's: then new).
                format!("id{}", rng.below(i))
            } else {
                format!("id{i}")
            };
            i += 1;
            let mut r = report("a.example", page, metric, &id, value, now - age);
            r.form_factor = ff;
            truth
                .reports
                .entry((r.site.clone(), metric, id))
                .and_modify(|e| e.3 = value)
                .or_insert((page.into(), ff, r.received_at_ms, value));
            beacon.push(r);
        }
        rt.block_on(insert_reports(store, beacon)).unwrap();
    }
}

const HOUR_MS_U: u64 = crate::time::HOUR_MS as u64;

#[test]
fn retention_drops_old_reports_pages_and_cells() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let keep_long = SqliteOptions {
        retention_days: 100,
        ..options()
    };
    let store = Sqlite::open_in_dir(dir.path(), keep_long.clone()).unwrap();
    let rt = rt();
    rt.block_on(async {
        for (i, age_days) in [50, 36, 34, 1, 0].into_iter().enumerate() {
            let page = format!("https://a.example/{age_days}");
            let at = now - age_days * DAY_MS;
            insert_reports(
                &store,
                vec![report(
                    "a.example",
                    &page,
                    MetricName::Lcp,
                    &format!("r{i}"),
                    1000.0,
                    at,
                )],
            )
            .await
            .unwrap();
        }
        insert_reports(
            &store,
            vec![report(
                "old.example",
                "https://old.example/",
                MetricName::Lcp,
                "o",
                1.0,
                now - 60 * DAY_MS,
            )],
        )
        .await
        .unwrap();
    });
    assert_eq!(export_all(&store).len(), 6);
    store.close().unwrap();

    let store = Sqlite::open_in_dir(dir.path(), options()).unwrap();
    // Retention runs in the background once loaded; reads are cut at the
    // retention from the start.
    let rows = export_all(&store);
    let cutoff = Resolution::Day.floor(now) - 34 * DAY_MS;
    assert!(rows.iter().all(|r| r.received_at_ms >= cutoff), "{rows:?}");
    store.wait_first_retention();
    let rows = export_all(&store);
    assert!(rows.iter().all(|r| r.received_at_ms >= cutoff), "{rows:?}");
    assert_eq!(rows.len(), 3, "{rows:?}");
    {
        let state = store.inner.shared.state.read().unwrap();
        assert!(
            !state.catalog.by_name.contains_key("old.example"),
            "sites without reports go"
        );
        let site = &state.catalog.sites[&state.catalog.by_name["a.example"]];
        assert_eq!(site.pages.len(), 3, "pages without reports go: {:?}", site.pages);
    }
    let far = Span {
        resolution: Resolution::Day,
        first: Resolution::Day.bucket(now) - 90,
        last: Resolution::Day.bucket(now),
    };
    let aggs = rt
        .block_on(store.aggregates(query(None, PageScope::Site, vec![far])))
        .unwrap();
    assert_eq!(aggs.len(), 1);
    assert_eq!(aggs[0].count(), 3);
    // The ids of the reports retention deleted are forgotten: the same id again is new;
    // a kept one is still found.
    let again = |id: &str| {
        let r = report("a.example", "https://a.example/", MetricName::Lcp, id, 2000.0, now);
        rt.block_on(insert_reports(&store, vec![r])).unwrap()
    };
    assert_eq!(
        again("r0"),
        Inserted {
            new: 1,
            replaced: 0,
            deferred: 0
        }
    );
    assert_eq!(
        again("r3"),
        Inserted {
            new: 0,
            replaced: 1,
            deferred: 0
        }
    );
    assert_eq!(export_all(&store).len(), 4);
    store.close().unwrap();
    // And the saved aggregates no longer have them either.
    let store = Sqlite::open_in_dir(dir.path(), keep_long).unwrap();
    let aggs = rt
        .block_on(store.aggregates(query(None, PageScope::Site, vec![far])))
        .unwrap();
    assert_eq!(aggs[0].count(), 4, "3 kept, 1 new");
    store.close().unwrap();
}

#[test]
fn pages_past_the_cap_count_under_other_and_sites_past_theirs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(
        dir.path(),
        SqliteOptions {
            max_pages_per_site: 2,
            max_sites: 2,
            ..options()
        },
    )
    .unwrap();
    let now = now_ms();
    let rt = rt();
    rt.block_on(async {
        for (i, p) in ["/1", "/2", "/3", "/4", "/1"].iter().enumerate() {
            let page = format!("https://a.example{p}");
            insert_reports(
                &store,
                vec![report(
                    "a.example",
                    &page,
                    MetricName::Fcp,
                    &format!("f{i}"),
                    100.0 * (i + 1) as f64,
                    now,
                )],
            )
            .await
            .unwrap();
        }
        insert_reports(
            &store,
            vec![report(
                "b.example",
                "https://b.example/",
                MetricName::Fcp,
                "x",
                1.0,
                now,
            )],
        )
        .await
        .unwrap();
        let err = insert_reports(
            &store,
            vec![report(
                "c.example",
                "https://c.example/",
                MetricName::Fcp,
                "x",
                1.0,
                now,
            )],
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::TooManySites { limit: 2, .. }), "{err}");
    });
    let w = Window::ending_at(WindowName::Hour, now);
    let aggs = rt
        .block_on(store.aggregates(query(Some("a.example"), PageScope::SiteAndPages, vec![w.span])))
        .unwrap();
    let pages: Vec<(Option<&str>, u64)> = aggs.iter().map(|a| (a.key.page.as_deref(), a.count())).collect();
    assert_eq!(
        pages,
        vec![
            (None, 5),
            (Some(OTHER_PAGE), 2),
            (Some("https://a.example/1"), 2),
            (Some("https://a.example/2"), 1)
        ]
    );
    assert_eq!(find(&aggs, Some(OTHER_PAGE), MetricName::Fcp).unwrap().p75, Some(400.0));
    let rows = export_all(&store);
    assert_eq!(rows.iter().filter(|r| r.page == OTHER_PAGE).count(), 2);
    store.close().unwrap();
    // Still capped after a restart.
    let store = Sqlite::open_in_dir(
        dir.path(),
        SqliteOptions {
            max_pages_per_site: 2,
            ..options()
        },
    )
    .unwrap();
    rt.block_on(insert_reports(
        &store,
        vec![report(
            "a.example",
            "https://a.example/5",
            MetricName::Fcp,
            "f9",
            1.0,
            now,
        )],
    ))
    .unwrap();
    assert_eq!(export_all(&store).iter().filter(|r| r.page == OTHER_PAGE).count(), 3);
    store.close().unwrap();
}

#[test]
fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let now = now_ms();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (id, metric, value, ff) in [
            ("a", "LCP", 1000.0, Some("phone")),
            ("b", "LCP", 3000.0, None),
            ("c", "CLS", 0.0, Some("desktop")),
        ] {
            conn.execute(
                "INSERT INTO metric_reports VALUES ('a.example', 'https://a.example/', ?1, ?2, ?3, ?3, 'good', 'back-forward-cache', ?4, 'pv', NULL, ?5)",
                params![metric, id, value, ff, now],
            )
            .unwrap();
        }
    }
    let store = Sqlite::open(&path, options()).unwrap();
    let rows = export_all(&store);
    assert_eq!(rows.len(), 3);
    let b = rows.iter().find(|r| r.report_id == "b").unwrap();
    assert_eq!((b.metric, b.value, b.form_factor), (MetricName::Lcp, 3000.0, None));
    assert_eq!(b.navigation_type, NavigationType::BackForwardCache);
    assert_eq!(b.rating, beacon::Rating::NeedsImprovement);
    let w = Window::ending_at(WindowName::Hour, now);
    let aggs = rt()
        .block_on(store.aggregates(query(None, PageScope::Site, vec![w.span])))
        .unwrap();
    assert_eq!(find(&aggs, None, MetricName::Lcp).unwrap().p75, Some(3000.0));
    store.close().unwrap();
}

#[test]
fn a_version_2_database_loses_its_value_index_and_keeps_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let now = now_ms();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO sites (site) VALUES ('a.example');
             INSERT INTO pages (site_id, page) VALUES (1, 'https://a.example/');",
        )
        .unwrap();
        // LCP 1000, 2000, 3000, 4000 (phone): nearest-rank p75 is 3000.
        for (i, value) in [1000.0, 2000.0, 3000.0, 4000.0].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO reports (site_id, page_id, metric, report_id, value, delta,
                    navigation_type, form_factor, page_view_id, session_id, received_at)
                 VALUES (1, 1, 1, ?1, ?2, ?2, 0, 1, 'pv', NULL, ?3)",
                params![format!("id{i}"), value, now - i as i64],
            )
            .unwrap();
        }
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'reports_value'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
    }
    let store = Sqlite::open(&path, options()).unwrap();
    let w = Window::ending_at(WindowName::Hour, now);
    let aggs = rt()
        .block_on(store.aggregates(query(None, PageScope::SiteAndPages, vec![w.span])))
        .unwrap();
    assert_eq!(find(&aggs, None, MetricName::Lcp).unwrap().p75, Some(3000.0));
    assert_eq!(
        find(&aggs, Some("https://a.example/"), MetricName::Lcp).unwrap().p75,
        Some(3000.0)
    );
    // A re-report of a migrated id replaces its value, in memory too.
    let r = report("a.example", "https://a.example/", MetricName::Lcp, "id2", 500.0, now);
    let done = rt().block_on(insert_reports(&store, vec![r])).unwrap();
    assert_eq!(done.replaced, 1);
    let aggs = rt()
        .block_on(store.aggregates(query(None, PageScope::Site, vec![w.span])))
        .unwrap();
    assert_eq!(find(&aggs, None, MetricName::Lcp).unwrap().p75, Some(2000.0));
    store.close().unwrap();
    let conn = Connection::open(&path).unwrap();
    let (version, indexes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'reports_value')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, indexes), (SCHEMA_VERSION, 0));
    // Version 4: one beacon row per old report row, `reports` gone.
    let (rows, old_tables): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM beacons),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'reports')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, old_tables), (4, 0));
}

#[test]
fn exact_values_are_saved_at_close_and_a_bad_save_is_rebuilt_from_raw_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let now = now_ms();
    let store = Sqlite::open(&path, options()).unwrap();
    let values = [1200.0, 2400.5, 3100.25, 900.0, 5000.0, 2999.0, 4100.0];
    for (i, v) in values.iter().enumerate() {
        let r = report(
            "a.example",
            "https://a.example/",
            MetricName::Lcp,
            &format!("id{i}"),
            *v,
            now - i as i64,
        );
        rt().block_on(insert_reports(&store, vec![r])).unwrap();
    }
    let want = percentile::nearest_rank(&mut values.clone(), 75.0);
    assert_eq!(want, Some(4100.0));
    let w = Window::ending_at(WindowName::Hour, now);
    let p75 = |store: &Sqlite| {
        let aggs = rt()
            .block_on(store.aggregates(query(None, PageScope::SiteAndPages, vec![w.span])))
            .unwrap();
        (
            find(&aggs, None, MetricName::Lcp).unwrap().p75,
            find(&aggs, Some("https://a.example/"), MetricName::Lcp).unwrap().p75,
        )
    };
    assert_eq!(p75(&store), (want, want));
    store.close().unwrap();
    let saved: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM exact_values", [], |r| r.get(0))
        .unwrap();
    assert_eq!(saved, 1, "one page, metric and day");

    // Loaded back at a clean start.
    let store = Sqlite::open(&path, options()).unwrap();
    assert_eq!(p75(&store), (want, want));
    store.close().unwrap();

    // A malformed save is not trusted: rebuilt from the raw reports.
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE exact_values SET data = x'0102'", [])
        .unwrap();
    let store = Sqlite::open(&path, options()).unwrap();
    assert_eq!(p75(&store), (want, want));
    store.close().unwrap();
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Sqlite::open(&path, options()).err().unwrap();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

#[test]
fn concurrent_inserts_are_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(dir.path(), options()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = now_ms();
    rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                tokio::spawn(insert_reports(
                    &store,
                    vec![report(
                        "a.example",
                        "https://a.example/",
                        MetricName::Cls,
                        &format!("id{i}"),
                        0.01,
                        now,
                    )],
                ))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    store.close().unwrap();
    let store = Sqlite::open_in_dir(dir.path(), options()).unwrap();
    let w = Window::ending_at(WindowName::Hour, now);
    let aggs = rt
        .block_on(store.aggregates(query(None, PageScope::Site, vec![w.span])))
        .unwrap();
    assert_eq!(aggs[0].count(), 200);
    store.close().unwrap();
}

#[test]
fn a_full_queue_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(
        dir.path(),
        SqliteOptions {
            queue_len: 1,
            ..options()
        },
    )
    .unwrap();
    let now = now_ms();
    // Hold the state lock so that the writer cannot finish its commit.
    let guard = store.inner.shared.state.read().unwrap();
    let pending: Vec<_> = (0..3)
        .map(|i| {
            insert_reports(
                &store,
                vec![report(
                    "a.example",
                    "https://a.example/",
                    MetricName::Cls,
                    &format!("q{i}"),
                    0.0,
                    now,
                )],
            )
        })
        .collect();
    drop(guard);
    let results: Vec<_> = rt().block_on(async {
        let mut out = Vec::new();
        for p in pending {
            out.push(p.await);
        }
        out
    });
    assert!(
        results.iter().any(|r| matches!(r, Err(StoreError::Overloaded))),
        "{results:?}"
    );
    assert!(results.iter().any(|r| r.is_ok()), "{results:?}");
    assert_eq!(store.status().queue_depth, 0);
    store.close().unwrap();
}

#[test]
fn a_value_replaced_within_its_bin_changes_the_exact_p75() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(dir.path(), options()).unwrap();
    let now = now_ms();
    let rt = rt();
    let page = "https://a.example/";
    let w = Window::ending_at(WindowName::Days28, now);
    let p75 = |store: &Sqlite| {
        let aggs = rt
            .block_on(store.aggregates(query(Some("a.example"), PageScope::SiteAndPages, vec![w.span])))
            .unwrap();
        (
            find(&aggs, None, MetricName::Inp).unwrap().p75,
            find(&aggs, Some(page), MetricName::Inp).unwrap().p75,
        )
    };
    rt.block_on(insert_reports(
        &store,
        vec![report("a.example", page, MetricName::Inp, "i", 1000.0, now)],
    ))
    .unwrap();
    assert_eq!(p75(&store), (Some(1000.0), Some(1000.0)));
    assert_eq!(p75(&store), (Some(1000.0), Some(1000.0)), "again, from the cache");
    // Same sketch bin, other value: the counts do not change, the p75 does.
    assert_eq!(crate::sketch::bin_of(1000.0), crate::sketch::bin_of(1001.0));
    rt.block_on(insert_reports(
        &store,
        vec![report("a.example", page, MetricName::Inp, "i", 1001.0, now)],
    ))
    .unwrap();
    assert_eq!(p75(&store), (Some(1001.0), Some(1001.0)));
    store.close().unwrap();
}

/// The alert tables that older collectors kept in this file are dropped
/// once `alerts.db` has taken them over, and kept until then.
#[test]
fn moved_alert_tables_are_dropped_only_once_alerts_db_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let tables = |path: &std::path::Path| -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'alert\\_%' ESCAPE '\\'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    Sqlite::open(&path, options()).unwrap().close().unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE alert_series (id INTEGER PRIMARY KEY); CREATE TABLE alert_events (id INTEGER);
             CREATE TABLE alert_silences (id INTEGER); CREATE TABLE alert_outbox (id INTEGER);",
        )
        .unwrap();
    Sqlite::open(&path, options()).unwrap().close().unwrap();
    assert_eq!(tables(&path), 4, "no alerts.db yet: kept");
    let alerts = dir.path().join(crate::alerts::store::FILE_NAME);
    crate::alerts::AlertStore::open(&alerts, Some(&path)).unwrap();
    Sqlite::open(&path, options()).unwrap().close().unwrap();
    assert_eq!(tables(&path), 0, "alerts.db has them: dropped");
}

fn export_site(store: &Sqlite, site: &str) -> Vec<Report> {
    let mut rx = store.export(ExportQuery {
        site: Some(site.into()),
        from_ms: 0,
        to_ms: i64::MAX,
    });
    let mut out = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        out.extend(chunk.unwrap());
    }
    out
}

/// Finding 9: an export of one site scanned every row of the window
/// (6.2 s for 1,612 rows on a 10M store). It reads that site's range of
/// the site-and-time index, already in time order; rows written before the
/// index existed get their site in the background, and are exported all
/// the while.
#[test]
fn an_export_of_one_site_reads_only_its_rows_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let store = Sqlite::open(&path, options()).unwrap();
    let now = now_ms();
    let mut reports = Vec::new();
    for i in 0..60 {
        let (site, page) = if i % 3 == 0 {
            ("small.example", format!("https://small.example/{}", i % 2))
        } else {
            ("big.example", format!("https://big.example/{}", i % 5))
        };
        reports.push(report(
            site,
            &page,
            MetricName::Lcp,
            &format!("r{i}"),
            100.0 + i as f64,
            now - 1000 + i,
        ));
    }
    rt().block_on(insert_reports(&store, reports)).unwrap();
    let check = |store: &Sqlite| {
        let small = export_site(store, "small.example");
        assert_eq!(small.len(), 20);
        assert!(small.iter().all(|r| r.site == "small.example"));
        assert!(
            small.windows(2).all(|w| w[0].received_at_ms <= w[1].received_at_ms),
            "oldest first"
        );
        assert!(export_site(store, "none.example").is_empty());
        assert_eq!(export_all(store).len(), 60);
    };
    check(&store);
    store.close().unwrap();
    // The plan: one range of the index, no scan of the table, no sort.
    let conn = Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", super::export::SITE_SQL))
        .unwrap()
        .query_map(params![0, i64::MAX, 1], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|l| l.contains("USING INDEX beacons_site_time (site_id=? AND received_at>? AND received_at<?)")),
        "{plan:?}"
    );
    assert!(
        !plan
            .iter()
            .any(|l| l.starts_with("SCAN b") || l.contains("TEMP B-TREE")),
        "{plan:?}"
    );
    // Rows as a version 4 store had them: no site; the backfill fills them
    // in, and exports are right before and after.
    conn.execute_batch(
        "UPDATE beacons SET site_id = NULL;
         UPDATE meta SET value = (SELECT MAX(id) + 1 FROM beacons) WHERE key = 'site_backfill_below';",
    )
    .unwrap();
    drop(conn);
    let store = Sqlite::open(&path, options()).unwrap();
    check(&store);
    store.wait_site_backfill();
    check(&store);
    let missing: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM beacons WHERE site_id IS NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(missing, 0);
    store.close().unwrap();
}

/// Beacons taken into the intake while a store loaded (and left there by
/// a crash) are written at the next start, in order, deduplicated against
/// what was stored before, and counted once.
#[test]
fn beacons_left_in_the_intake_are_written_at_start_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let now = now_ms();
    let store = Sqlite::open(&path, options()).unwrap();
    let first = vec![
        report("a.example", "https://a.example/", MetricName::Cls, "cls-1", 0.05, now),
        report("a.example", "https://a.example/", MetricName::Lcp, "lcp-1", 1000.0, now),
    ];
    rt().block_on(insert_reports(&store, first)).unwrap();
    store.close().unwrap();
    // As the writer leaves them: a re-report growing cls-1 twice, and a
    // new report, each its own beacon.
    {
        let conn = Connection::open(&path).unwrap();
        for (seq, (id, metric, value)) in [("cls-1", 2u8, 0.2), ("lcp-2", 1, 2000.0), ("cls-1", 2, 0.3)]
            .into_iter()
            .enumerate()
        {
            let mut blob = Vec::new();
            crate::store::rows::push(
                &mut blob,
                &crate::store::rows::Slot {
                    metric,
                    navigation_type: 0,
                    value,
                    delta: 0.1,
                    id,
                },
            );
            conn.execute(
                "INSERT INTO intake (seq, site, page, form_factor, received_at, page_view_id, session_id, reports)
                 VALUES (?1, 'a.example', 'https://a.example/', 1, ?2, 'pv', NULL, ?3)",
                params![seq as i64 + 1, now, blob],
            )
            .unwrap();
        }
    }
    let store = Sqlite::open(&path, options()).unwrap();
    store.wait_first_retention(); // the intake is written before anything else
    let mut rows: Vec<(String, f64)> = export_all(&store).into_iter().map(|r| (r.report_id, r.value)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        vec![
            ("cls-1".into(), 0.3),
            ("lcp-1".into(), 1000.0),
            ("lcp-2".into(), 2000.0)
        ]
    );
    let w = Window::ending_at(WindowName::Day, now);
    let aggs = rt()
        .block_on(store.aggregates(query(None, PageScope::Site, vec![w.span])))
        .unwrap();
    assert_eq!(find(&aggs, None, MetricName::Cls).unwrap().count(), 1);
    assert_eq!(find(&aggs, None, MetricName::Cls).unwrap().p75, Some(0.3));
    assert_eq!(find(&aggs, None, MetricName::Lcp).unwrap().count(), 2);
    let left: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM intake", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "written rows leave the intake");
    store.close().unwrap();
    // And they stay written: nothing doubles at the next start.
    let store = Sqlite::open(&path, options()).unwrap();
    assert_eq!(export_all(&store).len(), 3);
    store.close().unwrap();
}

/// Finding 8: the page cap was per site only (1,000 sites × 10,000 pages
/// of about 2.7 KB each). Past `max_pages` of all sites together, new
/// pages of any site go to its `(other)` page.
#[test]
fn pages_past_the_cap_of_all_sites_count_under_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open_in_dir(
        dir.path(),
        SqliteOptions {
            max_pages: 3,
            ..options()
        },
    )
    .unwrap();
    let now = now_ms();
    let reports: Vec<Report> = [
        ("a.example", "/1"),
        ("a.example", "/2"),
        ("b.example", "/1"),
        ("b.example", "/2"),
        ("a.example", "/3"),
        ("a.example", "/1"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (site, p))| {
        report(
            site,
            &format!("https://{site}{p}"),
            MetricName::Fcp,
            &format!("f{i}"),
            100.0,
            now,
        )
    })
    .collect();
    rt().block_on(insert_reports(&store, reports)).unwrap();
    let mut pages: Vec<String> = export_all(&store).into_iter().map(|r| r.page).collect();
    pages.sort();
    assert_eq!(
        pages,
        // a/1, a/2 and b/1 take the three places; b/2 and a/3 go to their
        // sites' `(other)` (one per site, beyond the cap).
        [
            "(other)",
            "(other)",
            "https://a.example/1",
            "https://a.example/1",
            "https://a.example/2",
            "https://b.example/1",
        ]
        .map(String::from)
        .to_vec()
    );
    store.close().unwrap();
}
