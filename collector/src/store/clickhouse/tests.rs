//! The ClickHouse engine against a real HTTP front end over chDB
//! (`tests/clickhouse/shim.py`, started here as a process on a free port):
//! schema creation and migration, batched inserts with deduplication
//! tokens, spill and replay while the front end is stopped, and every read
//! compared with the SQLite engine on the same generated data.

use std::sync::Arc;
use std::time::Duration;

use beacon::{Attribution, FormFactor, MetricName, NavigationType};

use super::shim_process::Shim;
use super::*;
use crate::aggregate::Span;
use crate::aggregate::WindowName;
use crate::store::{AggregateQuery, NewReport, PageScope, Report, Sqlite, SqliteOptions, OTHER_PAGE};
use crate::summary::{PageList, PageSort, Trust};
use crate::testutil::Rng;
use crate::time::{now_ms, Resolution, DAY_MS, HOUR_MS};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn options(shim: &Shim, dir: &std::path::Path) -> ClickHouseOptions {
    let mut o = ClickHouseOptions::new(shim.url(), "vs_test", dir);
    o.batch_interval_ms = 50;
    o.insert_attempts = 2;
    o.insert_timeout = Duration::from_secs(5);
    o.replay_interval_ms = 100;
    o
}

fn ready(o: ClickHouseOptions) -> ClickHouse {
    let s = ClickHouse::start(o).unwrap();
    s.wait_ready().unwrap();
    s
}

/// A generated data set: sites, pages, all metrics and form factors,
/// navigation types, page views with several beacons, re-reports of CLS
/// and INP under the same id (growing values, later beacons), attribution,
/// times over the last 12 days (hourly buckets included).
fn data(seed: u64, beacons: usize) -> Vec<NewBeacon> {
    let mut rng = Rng::new(seed);
    let now = now_ms();
    let mut out = Vec::new();
    let sites = ["shop.example", "blog.example", "app.example:8443"];
    for i in 0..beacons {
        let site = sites[rng.below(sites.len() as u64) as usize];
        let page = format!("https://{site}/p/{}", rng.below(6));
        let ff = match rng.below(4) {
            0 => None,
            1 => Some(FormFactor::Phone),
            2 => Some(FormFactor::Tablet),
            _ => Some(FormFactor::Desktop),
        };
        // Mostly recent, some within the hour, some days old.
        let age = match rng.below(3) {
            0 => rng.below(HOUR_MS as u64) as i64,
            1 => rng.below(2 * DAY_MS as u64) as i64,
            _ => rng.below(12 * DAY_MS as u64) as i64,
        };
        let at = now - age - 10 * 60_000;
        let pv = format!("pv-{i}");
        let nav = NavigationType::ALL[rng.below(NavigationType::ALL.len() as u64) as usize];
        let mut reports = Vec::new();
        for m in MetricName::ALL {
            if rng.below(5) == 0 {
                continue;
            }
            let value = match m {
                MetricName::Cls => {
                    if rng.below(3) == 0 {
                        0.0
                    } else {
                        rng.f64_log(0.001, 0.6)
                    }
                }
                MetricName::Inp => rng.f64_log(16.0, 900.0).round(),
                _ => rng.f64_log(100.0, 9000.0),
            };
            let attribution = (rng.below(2) == 0).then(|| Attribution {
                target: Some(format!("#el{}", rng.below(4))),
                largest_shift_target: Some(format!("div.s{}", rng.below(3))),
                interaction_target: Some(format!("button.b{}", rng.below(3))),
                ..Default::default()
            });
            reports.push(NewReport {
                metric: m,
                report_id: format!("v5-{i}-{}", m.as_str()),
                value,
                delta: value,
                navigation_type: nav,
                attribution,
            });
        }
        if reports.is_empty() {
            continue;
        }
        let first = NewBeacon {
            site: site.to_string(),
            page: page.clone(),
            form_factor: ff,
            page_view_id: Some(pv.clone()),
            session_id: Some(format!("s-{}", i / 3)),
            received_at_ms: at,
            reports,
        };
        // Re-reports: a later beacon of the same page view whose CLS and
        // INP grew.
        let grown: Vec<NewReport> = first
            .reports
            .iter()
            .filter(|r| matches!(r.metric, MetricName::Cls | MetricName::Inp))
            .cloned()
            .collect();
        let later: Vec<NewReport> = grown
            .into_iter()
            .filter(|_| rng.below(2) == 0)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|r| {
                let value = if r.metric == MetricName::Cls {
                    r.value + 0.05 + rng.unit() * 0.2
                } else {
                    (r.value + 40.0 + rng.below(400) as f64).min(60_000.0)
                };
                NewReport {
                    value,
                    delta: value - r.value,
                    attribution: (rng.below(2) == 0).then(|| Attribution {
                        largest_shift_target: Some("main".into()),
                        interaction_target: Some("a.grown".into()),
                        ..Default::default()
                    }),
                    ..r
                }
            })
            .collect();
        let again = (!later.is_empty()).then(|| NewBeacon {
            received_at_ms: at + 1 + rng.below(5 * 60_000) as i64,
            reports: later,
            ..first.clone()
        });
        out.push(first);
        out.extend(again);
    }
    out.sort_by_key(|b| b.received_at_ms);
    out
}

async fn insert_all(store: &dyn Store, beacons: &[NewBeacon]) {
    for chunk in beacons.chunks(50) {
        let futures: Vec<_> = chunk.iter().map(|b| store.insert(vec![b.clone()])).collect();
        for f in futures {
            f.await.unwrap();
        }
    }
}

async fn export_all(store: &dyn Store) -> Vec<Report> {
    let mut rx = store.export(ExportQuery {
        site: None,
        from_ms: 0,
        to_ms: i64::MAX,
    });
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend(chunk.unwrap());
    }
    out.sort_by(|a, b| (&a.site, a.metric, &a.report_id).cmp(&(&b.site, b.metric, &b.report_id)));
    out
}

fn sorted(mut a: Vec<Aggregate>) -> Vec<Aggregate> {
    a.sort_by(|x, y| {
        (&x.key, x.span.first, x.span.last, x.span.resolution.ms()).cmp(&(
            &y.key,
            y.span.first,
            y.span.last,
            y.span.resolution.ms(),
        ))
    });
    a
}

#[test]
fn schema_is_created_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(options(&shim, dir.path()));
    let client = store.client();
    block(async {
        let v: u32 = client
            .query("SELECT toUInt32(max(version)) FROM vitalsign_schema")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(v, schema::SCHEMA_VERSION);
        let tables: Vec<String> = client
            .query("SELECT name FROM system.tables WHERE database = 'vs_test' ORDER BY name")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(
            tables,
            [
                "alert_commands",
                "alert_snapshots",
                "leases",
                "pages",
                "reports",
                "reports_rollup",
                "reports_rollup_mv",
                "rollup_runs",
                "vitalsign_schema"
            ]
        );
    });
    store.close().unwrap();
    // Starting again changes nothing (one row per version).
    let store = ready(options(&shim, dir.path()));
    let client = store.client();
    block(async {
        let n: u64 = client
            .query("SELECT count() FROM vitalsign_schema")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, schema::SCHEMA_VERSION as u64);
        // A database from version 1 is migrated to the current one.
        client.query("DROP TABLE leases").execute().await.unwrap();
        client.query("DROP TABLE alert_snapshots").execute().await.unwrap();
        client
            .query("DELETE FROM vitalsign_schema WHERE version > 1")
            .execute()
            .await
            .unwrap();
    });
    store.close().unwrap();
    let store = ready(options(&shim, dir.path()));
    let client = store.client();
    block(async {
        let n: u64 = client
            .query("SELECT count() FROM system.tables WHERE database = 'vs_test' AND name = 'leases'")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, 1, "version 2 re-created the leases table");
        let n: u64 = client
            .query("SELECT count() FROM system.tables WHERE database = 'vs_test' AND name = 'alert_snapshots'")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, 1, "version 4 re-created the alert snapshots table");
        client
            .query("INSERT INTO vitalsign_schema (version, applied_ms) VALUES (99, 0)")
            .execute()
            .await
            .unwrap();
    });
    store.close().unwrap();
    let newer = ClickHouse::start(options(&shim, dir.path())).unwrap();
    match newer.wait_ready() {
        Err(StoreError::Failed(why)) => assert!(why.contains("schema version 99"), "{why}"),
        other => panic!("{other:?}"),
    }
    newer.close().unwrap();
}

#[test]
fn the_user_and_password_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start_with(&dir.path().join("ch"), 0, &["--user", "rum", "--password", "s3cret"]);
    let mut wrong = options(&shim, dir.path());
    wrong.user = Some("rum".into());
    wrong.password = Some("nope".into());
    let refused = ClickHouse::start(wrong).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        refused.status().phase,
        StorePhase::Opening,
        "not ready with a wrong password"
    );
    refused.close().unwrap();
    let mut right = options(&shim, dir.path());
    right.user = Some("rum".into());
    right.password = Some("s3cret".into());
    let store = ready(right);
    block(insert_all(&store, &data(3, 5)));
    assert!(!block(export_all(&store)).is_empty());
    store.close().unwrap();
}

#[test]
fn a_retried_batch_is_stored_once_and_the_rollup_fed_once() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(options(&shim, dir.path()));
    let beacons = data(7, 20);
    let rows = writer::rows_of(beacons.clone(), &AtomicU64::new(0));
    let shared = store.shared.clone();
    let handle = store.handle.clone();
    handle.block_on(async {
        writer::insert_batch(&shared, "test-token-1", &rows).await.unwrap();
        // The answer was lost, say: the same batch again, same token.
        writer::insert_batch(&shared, "test-token-1", &rows).await.unwrap();
        let n: u64 = shared
            .client
            .query("SELECT count() FROM reports")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, rows.len() as u64);
        let rolled: i64 = shared
            .client
            .query("SELECT toInt64(sum(good + needs_improvement + poor)) FROM reports_rollup")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(rolled, rows.len() as i64, "the materialized view saw the batch once");
        // Another token is another batch.
        writer::insert_batch(&shared, "test-token-2", &rows).await.unwrap();
        let n: u64 = shared
            .client
            .query("SELECT count() FROM reports")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, 2 * rows.len() as u64);
    });
    // Through the store: batches of many beacons, each acknowledged once
    // its batch is in; the same reports twice count once (re-reports).
    block(insert_all(&store, &beacons));
    let exported = block(export_all(&store));
    let mut expected: Vec<Report> = beacons.iter().flat_map(|b| b.to_reports()).collect();
    expected.sort_by(|a, b| (&a.site, a.metric, &a.report_id).cmp(&(&b.site, b.metric, &b.report_id)));
    expected.dedup_by(|a, b| (&a.site, a.metric, &a.report_id) == (&b.site, b.metric, &b.report_id));
    assert_eq!(exported.len(), expected.len());
    assert!(store.stats().batches_inserted >= 1);
    assert!(
        store.stats().batches_inserted < beacons.len() as u64,
        "beacons were batched: {:?}",
        store.stats()
    );
    store.close().unwrap();
}

#[test]
fn beacons_spill_while_clickhouse_is_down_and_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut shim = Shim::start(&dir.path().join("ch"));
    let mut o = options(&shim, dir.path());
    o.insert_attempts = 1;
    o.insert_timeout = Duration::from_secs(2);
    let store = ready(o);
    let beacons = data(11, 60);
    let (before, rest) = beacons.split_at(10);
    block(insert_all(&store, before));
    shim.stop();
    // Acknowledged: durable in the spill file.
    block(insert_all(&store, rest));
    let stats = store.stats();
    assert!(stats.batches_spilled >= 1, "{stats:?}");
    assert!(stats.spilled_batches_pending >= 1, "{stats:?}");
    let spilled = std::fs::read_to_string(dir.path().join(SPILL_FILE_NAME)).unwrap();
    assert_eq!(spilled.lines().count() as u64, stats.spilled_batches_pending);
    // In the file in the order of arrival: batch numbers and the rows'
    // sequence numbers rise (the replay goes through the file in order).
    let batches: Vec<writer::SpilledBatch> = spilled.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let numbers: Vec<u64> = batches
        .iter()
        .map(|b| b.token.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let seqs: Vec<u64> = batches.iter().flat_map(|b| b.rows.iter().map(|r| r.seq)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // ClickHouse and the spill both unavailable: refused, nothing stored.
    let spill_path = dir.path().join(SPILL_FILE_NAME);
    std::fs::rename(&spill_path, dir.path().join("aside")).unwrap();
    std::fs::create_dir(&spill_path).unwrap();
    let mut extra = data(99, 1);
    for r in &mut extra[0].reports {
        r.report_id = format!("refused-{}", r.report_id);
    }
    match block(store.insert(extra.clone())) {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("spill"), "{why}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir(&spill_path).unwrap();
    std::fs::rename(dir.path().join("aside"), &spill_path).unwrap();
    shim.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.stats().spilled_batches_pending > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not replayed: {:?}",
            store.stats()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!spill_path.exists());
    assert!(store.stats().batches_replayed >= 1);
    // Every acknowledged report once; the refused one not at all. In order:
    // the rows' sequence numbers rise with the order of arrival.
    let exported = block(export_all(&store));
    let mut expected: Vec<Report> = beacons.iter().flat_map(|b| b.to_reports()).collect();
    expected.sort_by(|a, b| (&a.site, a.metric, &a.report_id).cmp(&(&b.site, b.metric, &b.report_id)));
    expected.dedup_by(|a, b| (&a.site, a.metric, &a.report_id) == (&b.site, b.metric, &b.report_id));
    assert_eq!(exported.len(), expected.len());
    assert!(!exported
        .iter()
        .any(|r| extra[0].reports.iter().any(|x| x.report_id == r.report_id)));
    let client = store.client();
    let rows: u64 = block(async { client.query("SELECT count() FROM reports").fetch_one().await.unwrap() });
    assert_eq!(
        rows,
        beacons.iter().map(|b| b.reports.len() as u64).sum::<u64>(),
        "no batch twice"
    );
    // The pages first seen in spilled batches went into the page catalog
    // with them, on the replay.
    assert!(batches.iter().any(|b| !b.pages.is_empty()));
    let mut pages: Vec<(String, String)> = block(async {
        client
            .query("SELECT site, page FROM pages GROUP BY site, page")
            .fetch_all()
            .await
            .unwrap()
    });
    pages.sort();
    let mut expected: Vec<(String, String)> = beacons.iter().map(|b| (b.site.clone(), b.page.clone())).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(pages, expected);
    store.close().unwrap();
}

#[test]
fn every_read_agrees_with_the_sqlite_engine_on_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let ch = Arc::new(ready(options(&shim, dir.path())));
    let sqlite = Sqlite::start(dir.path().join("vitalsign.db"), SqliteOptions::default()).unwrap();
    sqlite.wait_ready().unwrap();
    let sqlite = Arc::new(sqlite);
    let beacons = data(42, 400);
    block(insert_all(ch.as_ref(), &beacons));
    block(insert_all(sqlite.as_ref(), &beacons));
    let engines: [(&str, Arc<dyn Store>); 2] = [("sqlite", sqlite.clone()), ("clickhouse", ch.clone())];
    // Nothing settled yet: the rollup's rows corrected at read time.
    block(assert_agree(&engines, true));
    // Everything settled: the rollup alone.
    // A run up to now: every row inserted so far; rows inserted after it
    // (from the next millisecond on) are left to the next.
    let settle_all = || {
        let until = now_ms() + rollup::SETTLE_MARGIN_MS;
        ch.handle.block_on(rollup::settle(&ch.shared, until)).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    };
    settle_all();
    assert!(
        ch.handle.block_on(rollup_corrections(&ch)) > 0,
        "the data's re-reports needed correction rows"
    );
    block(assert_agree(&engines, true));
    // Re-reports of settled reports:
    // `re_reports_of_settled_reports_count_as_in_the_sqlite_engine`.
    ch.close().unwrap();
    sqlite.close().unwrap();
}

/// Correction rows in the rollup. (On the store's runtime: a connection
/// opened on a runtime of its own would stay in the client's pool, dead,
/// once that runtime is gone.)
async fn rollup_corrections(ch: &ClickHouse) -> u64 {
    ch.client()
        .query("SELECT count() FROM reports_rollup WHERE run != 0")
        .fetch_one()
        .await
        .unwrap()
}

/// Re-reports of `beacons`' CLS and INP (grown, later, some under another
/// page), some beacons again as they were, and new ones.
fn later_data(beacons: &[NewBeacon], seed: u64) -> Vec<NewBeacon> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for b in beacons.iter().step_by(3) {
        let grown: Vec<NewReport> = b
            .reports
            .iter()
            .filter(|r| matches!(r.metric, MetricName::Cls | MetricName::Inp))
            .map(|r| {
                let value = if r.metric == MetricName::Cls {
                    r.value + 0.1 + rng.unit()
                } else {
                    r.value + 100.0 + rng.below(600) as f64
                };
                NewReport {
                    value,
                    delta: value - r.value,
                    ..r.clone()
                }
            })
            .collect();
        if !grown.is_empty() {
            let page = if rng.below(4) == 0 {
                format!("{}/next", b.page)
            } else {
                b.page.clone()
            };
            out.push(NewBeacon {
                page,
                received_at_ms: (b.received_at_ms + rng.below(3 * HOUR_MS as u64) as i64).min(now_ms() - 60_000),
                reports: grown,
                ..b.clone()
            });
        }
    }
    // Sent again (received now, after everything else: the later value
    // wins in both engines, stale as it is).
    out.extend(beacons.iter().skip(1).step_by(7).map(|b| NewBeacon {
        received_at_ms: now_ms() - 30_000,
        ..b.clone()
    }));
    // New page views (their own ids: `data`'s would be the earlier page
    // views of the same ids, received out of order).
    let mut fresh = data(seed, 60);
    for b in &mut fresh {
        b.page_view_id = b.page_view_id.take().map(|pv| format!("later-{pv}"));
        for r in &mut b.reports {
            r.report_id = format!("later-{}", r.report_id);
        }
    }
    out.extend(fresh);
    out.sort_by_key(|b| b.received_at_ms);
    out
}

/// Every read API gives the same answer on both engines (`full`: all
/// windows, form factors and views; else the aggregates and summaries).
async fn assert_agree(engines: &[(&str, Arc<dyn Store>); 2], full: bool) {
    let now = now_ms();
    {
        // Export: the same deduplicated reports.
        let (a, b) = (
            export_all(engines[0].1.as_ref()).await,
            export_all(engines[1].1.as_ref()).await,
        );
        assert_eq!(a.len(), b.len());
        if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
            panic!("export differs:\nsqlite:     {x:?}\nclickhouse: {y:?}");
        }
        // Aggregates: counts, ratings, sketches, exact p75 and interval.
        let today = Resolution::Day.bucket(now);
        let hour = Resolution::Hour.bucket(now);
        let ffs: &[Option<FormFactor>] = if full {
            &[None, Some(FormFactor::Phone), Some(FormFactor::Desktop)]
        } else {
            &[None, Some(FormFactor::Phone)]
        };
        for &ff in ffs {
            for (pages, spans) in [
                (
                    PageScope::SiteAndPages,
                    vec![Span {
                        resolution: Resolution::Day,
                        first: today - 28,
                        last: today,
                    }],
                ),
                (
                    PageScope::Site,
                    (today - 14..=today)
                        .map(|d| Span::bucket_at(Resolution::Day, d * DAY_MS))
                        .collect(),
                ),
                (
                    PageScope::Page("https://shop.example/p/1".into()),
                    (hour - 30..=hour)
                        .map(|h| Span::bucket_at(Resolution::Hour, h * HOUR_MS))
                        .collect(),
                ),
                (
                    PageScope::SiteAndPages,
                    vec![Span {
                        resolution: Resolution::Hour,
                        first: hour - 24 * 9,
                        last: hour,
                    }],
                ),
            ] {
                let q = AggregateQuery {
                    site: None,
                    pages: pages.clone(),
                    metrics: vec![],
                    form_factor: ff,
                    spans,
                    exact_p75: true,
                    p75_interval: true,
                };
                let a = sorted(engines[0].1.aggregates(q.clone()).await.unwrap());
                let b = sorted(engines[1].1.aggregates(q.clone()).await.unwrap());
                assert!(!a.is_empty(), "{q:?}");
                assert_eq!(a.len(), b.len(), "{q:?}");
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(x.key, y.key);
                    assert_eq!(x.cell.ratings, y.cell.ratings, "{:?} in {q:?}", x.key);
                    assert_eq!(x.p75, y.p75, "{:?}", x.key);
                    assert_eq!(x.p75_interval, y.p75_interval, "{:?}", x.key);
                    for p in [50.0, 95.0, 99.0] {
                        let (qx, qy) = (x.quantile(p).unwrap(), y.quantile(p).unwrap());
                        assert!((qx - qy).abs() <= qx.abs() * 0.01, "{:?} p{p}: {qx} vs {qy}", x.key);
                    }
                }
                assert_eq!(a, b, "{q:?}");
                // Counts at a threshold of their own.
                for x in a.iter().take(20) {
                    let t = x.p75.unwrap_or(1.0) * 0.9;
                    let ca = engines[0].1.count_at_or_below(x.key.clone(), x.span, t).await.unwrap();
                    let cb = engines[1].1.count_at_or_below(x.key.clone(), x.span, t).await.unwrap();
                    assert_eq!(ca, cb, "{:?}", x.key);
                }
            }
            // Page views.
            for pages in [
                PageScope::Site,
                PageScope::SiteAndPages,
                PageScope::Page("https://blog.example/p/2".into()),
            ] {
                for span in [
                    Span {
                        resolution: Resolution::Day,
                        first: today - 28,
                        last: today,
                    },
                    Span {
                        resolution: Resolution::Hour,
                        first: hour - 24,
                        last: hour,
                    },
                ] {
                    let q = ViewsQuery {
                        site: None,
                        pages: pages.clone(),
                        form_factor: ff,
                        span,
                    };
                    let a = engines[0].1.page_views(q.clone()).await.unwrap();
                    let b = engines[1].1.page_views(q.clone()).await.unwrap();
                    assert!(!a.is_empty());
                    assert_eq!(a, b, "{q:?}");
                }
            }
        }
        // The read APIs' answers, whole.
        let trust = Trust::default();
        let windows: &[WindowName] = if full {
            &[WindowName::Hour, WindowName::Day, WindowName::Week, WindowName::Days28]
        } else {
            &[WindowName::Day, WindowName::Days28]
        };
        for &window in windows {
            for ff in [None, Some(FormFactor::Tablet)] {
                for site in [None, Some("shop.example".to_string())] {
                    let a = crate::summary::summary(engines[0].1.as_ref(), site.clone(), window, ff, true, trust, now)
                        .await
                        .unwrap();
                    let b = crate::summary::summary(engines[1].1.as_ref(), site.clone(), window, ff, true, trust, now)
                        .await
                        .unwrap();
                    assert_eq!(a, b, "summary {window:?} {ff:?} {site:?}");
                    let list = PageList {
                        sort: PageSort::P75(MetricName::Lcp),
                        ..PageList::default()
                    };
                    let a = crate::summary::pages(engines[0].1.as_ref(), site.clone(), window, ff, &list, trust, now)
                        .await
                        .unwrap();
                    let b = crate::summary::pages(engines[1].1.as_ref(), site.clone(), window, ff, &list, trust, now)
                        .await
                        .unwrap();
                    assert_eq!(a, b, "pages {window:?}");
                }
                for page in [None, Some("https://app.example:8443/p/3".to_string())] {
                    let site = "app.example:8443".to_string();
                    let a = crate::summary::page_detail(
                        engines[0].1.as_ref(),
                        site.clone(),
                        page.clone(),
                        window,
                        ff,
                        trust,
                        now,
                    )
                    .await
                    .unwrap();
                    let b = crate::summary::page_detail(
                        engines[1].1.as_ref(),
                        site.clone(),
                        page.clone(),
                        window,
                        ff,
                        trust,
                        now,
                    )
                    .await
                    .unwrap();
                    assert_eq!(a, b, "page detail {window:?} {page:?}");
                    let a =
                        crate::fix_first::fix_first(engines[0].1.as_ref(), site.clone(), page.clone(), window, ff, now)
                            .await
                            .unwrap();
                    let b =
                        crate::fix_first::fix_first(engines[1].1.as_ref(), site.clone(), page.clone(), window, ff, now)
                            .await
                            .unwrap();
                    assert_eq!(a, b, "fix-first {window:?} {page:?}");
                    for metric in MetricName::ALL {
                        for step in [Resolution::Hour, Resolution::Day] {
                            let a = crate::summary::timeseries(
                                engines[0].1.as_ref(),
                                site.clone(),
                                page.clone(),
                                metric,
                                window,
                                step,
                                ff,
                                trust,
                                now,
                            )
                            .await;
                            let b = crate::summary::timeseries(
                                engines[1].1.as_ref(),
                                site.clone(),
                                page.clone(),
                                metric,
                                window,
                                step,
                                ff,
                                trust,
                                now,
                            )
                            .await;
                            match (a, b) {
                                (Ok(a), Ok(b)) => assert_eq!(a, b, "timeseries {metric:?} {window:?} {step:?}"),
                                (Err(_), Err(_)) => {}
                                (a, b) => panic!("{a:?} vs {b:?}"),
                            }
                        }
                    }
                }
            }
        }
        let a = crate::summary::sites(engines[0].1.as_ref(), None, now).await.unwrap();
        let b = crate::summary::sites(engines[1].1.as_ref(), None, now).await.unwrap();
        assert_eq!(a, b, "sites");
    }
}

#[test]
fn one_holder_of_the_alert_lease_under_races_and_a_takeover_when_it_dies() {
    use crate::alerts::lease::Lease;
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(options(&shim, dir.path()));
    let term = 10_000;
    let leases: Vec<lease::ClickHouseLease> = (0..4)
        .map(|i| store.lease("alerts", format!("collector-{i}"), term))
        .collect();
    let t0 = now_ms();
    let mut holders_seen = Vec::new();
    // Everyone asks at once, at the same moments; collector 0 dies (stops
    // asking) at round 6.
    for round in 0..14i64 {
        let now = t0 + round * term / 3;
        let held: Vec<(usize, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = leases
                .iter()
                .enumerate()
                // Collector 0 alone first (it takes the lease), then all.
                .filter(|(i, _)| if round == 0 { *i == 0 } else { !(round >= 6 && *i == 0) })
                .map(|(i, l)| s.spawn(move || (i, l.hold(now).unwrap())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let holding: Vec<usize> = held.iter().filter(|(_, h)| *h).map(|(i, _)| *i).collect();
        assert!(holding.len() <= 1, "round {round}: {holding:?} all hold the lease");
        holders_seen.push(holding.first().copied());
    }
    // Someone held it from the start, and after the holder died another
    // took over within a term (plus the safety margin).
    let died_at = 6;
    assert!(
        holders_seen[..died_at].iter().all(|h| *h == Some(0)),
        "{holders_seen:?}"
    );
    let taken = holders_seen[died_at..].iter().position(|h| h.is_some());
    assert!(taken.is_some_and(|r| r <= 4), "{holders_seen:?}");
    let next = holders_seen[died_at + taken.unwrap()];
    assert!(
        holders_seen[died_at + taken.unwrap()..].iter().all(|h| *h == next),
        "{holders_seen:?}"
    );
    store.close().unwrap();
}

#[test]
fn a_version_2_database_is_migrated_into_the_exact_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let o = options(&shim, dir.path());
    let beacons = data(5, 80);
    let rows = writer::rows_of(beacons.clone(), &AtomicU64::new(0));
    // The database as version 2 made it: no `inserted_ms`, the old rollup.
    block(async {
        client(&o, false)
            .query("CREATE DATABASE IF NOT EXISTS vs_test")
            .execute()
            .await
            .unwrap();
        let c = client(&o, true);
        c.query(schema::VERSION_TABLE).execute().await.unwrap();
        for (version, statements) in schema::migrations(o.retention_days).into_iter().take(2) {
            for s in statements {
                let v2 = s.replace(",\n    inserted_ms Int64 DEFAULT toUnixTimestamp64Milli(now64(3))", "");
                c.query(&v2).execute().await.unwrap();
            }
            c.query("INSERT INTO vitalsign_schema (version, applied_ms) VALUES (?, 0)")
                .bind(version)
                .execute()
                .await
                .unwrap();
        }
        let mut insert = c.insert::<RawRow>("reports").await.unwrap();
        for r in &rows {
            insert.write(r).await.unwrap();
        }
        insert.end().await.unwrap();
    });
    let ch = Arc::new(ready(o));
    let sqlite = Sqlite::start(dir.path().join("vitalsign.db"), SqliteOptions::default()).unwrap();
    sqlite.wait_ready().unwrap();
    let sqlite = Arc::new(sqlite);
    block(insert_all(sqlite.as_ref(), &beacons));
    let c = ch.client();
    ch.handle.block_on(async {
        let rolled: i64 = c
            .query("SELECT toInt64(sum(good + needs_improvement + poor)) FROM reports_rollup")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(
            rolled,
            rows.len() as i64,
            "the rows from before were copied into the rollup once"
        );
        let old: u64 = c
            .query("SELECT count() FROM system.tables WHERE database = 'vs_test' AND name = 'reports_hourly'")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(old, 0);
    });
    let today = Resolution::Day.bucket(now_ms());
    let q = AggregateQuery {
        site: None,
        pages: PageScope::SiteAndPages,
        metrics: vec![],
        form_factor: None,
        spans: vec![Span {
            resolution: Resolution::Day,
            first: today - 28,
            last: today,
        }],
        exact_p75: true,
        p75_interval: true,
    };
    let a = sorted(block(sqlite.aggregates(q.clone())).unwrap());
    let b = sorted(block(ch.aggregates(q.clone())).unwrap());
    assert!(!a.is_empty());
    assert_eq!(a, b, "before and after the first settle run");
    let until = now_ms() + rollup::SETTLE_MARGIN_MS;
    ch.handle.block_on(rollup::settle(&ch.shared, until)).unwrap().unwrap();
    let b = sorted(block(ch.aggregates(q)).unwrap());
    assert_eq!(a, b);
    ch.close().unwrap();
    sqlite.close().unwrap();
}

#[test]
fn a_beacon_sent_again_after_it_was_settled_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let ch = ready(options(&shim, dir.path()));
    let beacons = data(8, 60);
    block(insert_all(&ch, &beacons));
    let until = now_ms() + rollup::SETTLE_MARGIN_MS;
    ch.handle.block_on(rollup::settle(&ch.shared, until)).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let again: Vec<NewBeacon> = beacons
        .iter()
        .step_by(3)
        .map(|b| NewBeacon {
            received_at_ms: now_ms() - 30_000,
            ..b.clone()
        })
        .collect();
    block(insert_all(&ch, &again));
    let today = Resolution::Day.bucket(now_ms());
    let q = AggregateQuery {
        site: None,
        pages: PageScope::Site,
        metrics: vec![MetricName::Fcp],
        form_factor: None,
        spans: vec![Span {
            resolution: Resolution::Day,
            first: today - 28,
            last: today,
        }],
        exact_p75: false,
        p75_interval: false,
    };
    let expected = |site: &str| {
        let mut ids: Vec<&str> = beacons
            .iter()
            .filter(|b| b.site == site)
            .flat_map(|b| b.reports.iter().filter(|r| r.metric == MetricName::Fcp))
            .map(|r| r.report_id.as_str())
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() as u64
    };
    for pass in ["not settled", "settled"] {
        let got = block(ch.aggregates(q.clone())).unwrap();
        assert!(!got.is_empty());
        for a in &got {
            assert_eq!(a.cell.count(), expected(&a.key.site), "{pass}: {:?}", a.key);
        }
        let until = now_ms() + rollup::SETTLE_MARGIN_MS;
        ch.handle.block_on(rollup::settle(&ch.shared, until)).unwrap().unwrap();
    }
    ch.close().unwrap();
}

#[test]
fn alert_snapshots_are_fenced_by_the_lease_epoch() {
    use crate::alerts::lease::Lease;
    use crate::alerts::shared::{Command, SharedState, Snapshot, Submitted, Version};
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(options(&shim, dir.path()));
    let state = store.alert_state();
    assert_eq!(state.latest(None).unwrap(), None);
    let snap = |epoch, seq, holder: &str, data: &[u8]| Snapshot {
        version: Version { epoch, seq },
        holder: holder.into(),
        taken_ms: now_ms(),
        data: data.to_vec(),
    };
    // A holds the lease; B takes it over once A's term has run out.
    let term = 6_000;
    let (a, b) = (
        store.lease("alerts", "a".into(), term),
        store.lease("alerts", "b".into(), term),
    );
    let t0 = now_ms();
    assert!(a.hold(t0).unwrap());
    let ea = a.epoch().unwrap();
    state.save(&snap(ea, 1, "a", b"state 1 of a")).unwrap();
    assert_eq!(state.latest(None).unwrap().unwrap().data, b"state 1 of a");
    assert!(!b.hold(t0 + 1_000).unwrap());
    assert!(b.hold(t0 + term + 1).unwrap());
    let eb = b.epoch().unwrap();
    assert!(eb > ea);
    state.save(&snap(eb, 1, "b", b"state of b")).unwrap();
    // A, stale (it has not noticed), saves later and with a higher
    // sequence number: B's state stays the latest.
    state.save(&snap(ea, 99, "a", b"late state of a")).unwrap();
    let latest = state.latest(None).unwrap().unwrap();
    assert_eq!((latest.holder.as_str(), &latest.data[..]), ("b", &b"state of b"[..]));
    assert_eq!(state.latest(Some(latest.version)).unwrap(), None);
    assert_eq!(
        state
            .latest(Some(Version { epoch: ea, seq: 99 }))
            .unwrap()
            .map(|s| s.version),
        Some(latest.version)
    );
    // Merges keep the latest only.
    block(async {
        let c = store.client();
        c.query("OPTIMIZE TABLE alert_snapshots FINAL").execute().await.unwrap();
        let n: u64 = c
            .query("SELECT count() FROM alert_snapshots")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, 1);
    });
    assert_eq!(state.latest(None).unwrap().unwrap().data, b"state of b");
    // Any bytes, of some size, come back as they were.
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    state.save(&snap(eb, 2, "b", &big)).unwrap();
    assert_eq!(state.latest(None).unwrap().unwrap().data, big);
    // Commands, oldest first, from a time on.
    let now = now_ms();
    let first = Submitted::new(Command::ExpireSilence { silence: 3 }, now - 10);
    let second = Submitted::new(
        Command::Ack {
            alert: 1,
            by: "ops".into(),
            comment: "looking".into(),
        },
        now,
    );
    state.submit(&second).unwrap();
    state.submit(&first).unwrap();
    assert_eq!(state.commands(now - 1_000).unwrap(), vec![first, second.clone()]);
    assert_eq!(state.commands(now).unwrap(), vec![second]);
    store.close().unwrap();
}

/// Re-reports of settled reports, beacons sent again (days after their
/// first receipt) and new beacons, some settled by a run that ends
/// half-way through them: every read agrees with the SQLite engine's
/// before, between and after the settle runs.
#[test]
fn re_reports_of_settled_reports_count_as_in_the_sqlite_engine() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let ch = Arc::new(ready(options(&shim, dir.path())));
    let sqlite = Sqlite::start(dir.path().join("vitalsign.db"), SqliteOptions::default()).unwrap();
    sqlite.wait_ready().unwrap();
    let sqlite = Arc::new(sqlite);
    let beacons = data(42, 400);
    block(insert_all(ch.as_ref(), &beacons));
    block(insert_all(sqlite.as_ref(), &beacons));
    let settle = |until: i64| ch.handle.block_on(rollup::settle(&ch.shared, until)).unwrap().unwrap();
    settle(now_ms() + rollup::SETTLE_MARGIN_MS);
    std::thread::sleep(Duration::from_millis(5));
    let more = later_data(&beacons, 43);
    let (m1, m2) = more.split_at(more.len() / 2);
    block(insert_all(ch.as_ref(), m1));
    std::thread::sleep(Duration::from_millis(5));
    let mid = now_ms();
    std::thread::sleep(Duration::from_millis(5));
    block(insert_all(ch.as_ref(), m2));
    block(insert_all(sqlite.as_ref(), &more));
    let engines: [(&str, Arc<dyn Store>); 2] = [("sqlite", sqlite.clone()), ("clickhouse", ch.clone())];
    // Not settled, half settled, settled.
    block(assert_agree(&engines, false));
    settle(mid + rollup::SETTLE_MARGIN_MS);
    block(assert_agree(&engines, false));
    settle(now_ms() + rollup::SETTLE_MARGIN_MS);
    block(assert_agree(&engines, false));
    ch.close().unwrap();
    sqlite.close().unwrap();
}

// The page catalog: the caps as the SQLite engine applies them.

fn fcp(site: &str, page: &str, id: &str, value: f64, at: i64) -> NewBeacon {
    NewBeacon {
        site: site.to_string(),
        page: page.to_string(),
        form_factor: None,
        page_view_id: Some(format!("pv-{id}")),
        session_id: None,
        received_at_ms: at,
        reports: vec![NewReport {
            metric: MetricName::Fcp,
            report_id: id.to_string(),
            value,
            delta: value,
            navigation_type: NavigationType::Navigate,
            attribution: None,
        }],
    }
}

fn capped(shim: &Shim, dir: &std::path::Path, per_site: u32, all: u32, sites: u32) -> ClickHouseOptions {
    let mut o = options(shim, dir);
    o.max_pages_per_site = per_site;
    o.max_pages = all;
    o.max_sites = sites;
    o.catalog_refresh_ms = 3_600_000;
    o
}

fn sqlite_capped(dir: &std::path::Path, per_site: u32, all: u32, sites: u32) -> Sqlite {
    let s = Sqlite::start(
        dir.join("vitalsign.db"),
        SqliteOptions {
            max_pages_per_site: per_site,
            max_pages: all,
            max_sites: sites,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    s.wait_ready().unwrap();
    s
}

/// Inserts one call after the other (the order decides what is admitted);
/// each call's outcome.
async fn insert_each(store: &dyn Store, calls: &[Vec<NewBeacon>]) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for c in calls {
        out.push(store.insert(c.clone()).await.map(|_| ()).map_err(|e| match e {
            StoreError::TooManySites { site, limit } => format!("too many sites: {site} past {limit}"),
            e => panic!("{e}"),
        }));
    }
    out
}

/// Mirrors `pages_past_the_cap_count_under_other_and_sites_past_theirs_are_refused`
/// and `pages_past_the_cap_of_all_sites_count_under_other` of the SQLite
/// tests, on both engines.
#[test]
fn the_page_and_site_caps_apply_as_in_the_sqlite_engine() {
    let now = now_ms() - 60_000;
    let per_site_calls: Vec<Vec<NewBeacon>> = ["/1", "/2", "/3", "/4", "/1"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![fcp(
                "a.example",
                &format!("https://a.example{p}"),
                &format!("f{i}"),
                100.0 * (i + 1) as f64,
                now,
            )]
        })
        .chain([
            vec![fcp("b.example", "https://b.example/", "x", 1.0, now)],
            // A known site and a new one past the cap: all refused.
            vec![
                fcp("a.example", "https://a.example/9", "y", 1.0, now),
                fcp("c.example", "https://c.example/", "x", 1.0, now),
            ],
            vec![fcp("a.example", "https://a.example/5", "z", 1.0, now)],
        ])
        .collect();
    let all_calls: Vec<Vec<NewBeacon>> = [
        ("a.example", "/1"),
        ("a.example", "/2"),
        ("b.example", "/1"),
        ("b.example", "/2"),
        ("a.example", "/3"),
        ("a.example", "/1"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (site, p))| vec![fcp(site, &format!("https://{site}{p}"), &format!("f{i}"), 100.0, now)])
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    for (name, (per_site, all, sites), calls) in [
        ("per site and sites", (2, 0, 2), &per_site_calls),
        ("all sites", (10_000, 3, 0), &all_calls),
    ] {
        let sub = dir.path().join(name.replace(' ', "-"));
        std::fs::create_dir_all(&sub).unwrap();
        let mut o = capped(&shim, &sub, per_site, all, sites);
        o.database = format!("vs_caps_{}", all);
        let ch = ready(o);
        let sqlite = sqlite_capped(&sub, per_site, all, sites);
        let (oa, ob) = block(async { (insert_each(&sqlite, calls).await, insert_each(&ch, calls).await) });
        assert_eq!(oa, ob, "{name}: the calls' outcomes");
        let (a, b) = block(async { (export_all(&sqlite).await, export_all(&ch).await) });
        assert_eq!(a, b, "{name}: the stored reports");
        let w = crate::aggregate::Window::ending_at(WindowName::Hour, now_ms());
        let q = AggregateQuery {
            site: None,
            pages: PageScope::SiteAndPages,
            metrics: vec![],
            form_factor: None,
            spans: vec![w.span],
            exact_p75: true,
            p75_interval: false,
        };
        let (sa, sb) = block(async {
            (
                sorted(sqlite.aggregates(q.clone()).await.unwrap()),
                sorted(ch.aggregates(q).await.unwrap()),
            )
        });
        let keyed = |aggs: &[Aggregate]| -> Vec<(AggregateKey, u64, Option<f64>)> {
            aggs.iter().map(|a| (a.key.clone(), a.count(), a.p75)).collect()
        };
        assert_eq!(keyed(&sa), keyed(&sb), "{name}: the aggregates");
        if name == "per site and sites" {
            assert_eq!(ob[6], Err("too many sites: c.example past 2".into()));
            let other: Vec<&Report> = a.iter().filter(|r| r.page == OTHER_PAGE).collect();
            assert_eq!(other.len(), 3, "/3, /4 and /5 under (other)");
            assert!(a.iter().all(|r| r.report_id != "y"), "nothing of the refused call");
        } else {
            assert_eq!(a.iter().filter(|r| r.page == OTHER_PAGE).count(), 2);
        }
        sqlite.close().unwrap();
        ch.close().unwrap();
        std::fs::remove_file(sub.join("vitalsign.db")).ok();
    }
}

/// Two collectors on one database: the pages (and sites) one admits are
/// known to the other after its refresh, and the caps hold for both.
#[test]
fn a_page_admitted_by_one_collector_is_known_to_another_after_a_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let one = ready(capped(&shim, &da, 2, 0, 1));
    let mut o = capped(&shim, &db, 2, 0, 1);
    o.catalog_refresh_ms = 200;
    let two = ready(o);
    let now = now_ms() - 60_000;
    block(async {
        for (i, p) in ["/1", "/2"].iter().enumerate() {
            one.insert(vec![fcp("a.example", p, &format!("f{i}"), 1.0, now)])
                .await
                .unwrap();
        }
    });
    assert_eq!(one.catalog_size(), (1, 2));
    // The other's background refresh.
    let t0 = std::time::Instant::now();
    while two.catalog_size() != (1, 2) {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", two.catalog_size());
        std::thread::sleep(Duration::from_millis(50));
    }
    block(async {
        two.insert(vec![fcp("a.example", "/3", "f2", 1.0, now)]).await.unwrap();
        let err = two
            .insert(vec![fcp("b.example", "/1", "g", 1.0, now)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooManySites { limit: 1, .. }), "{err}");
    });
    // The first learns of the (other) page on an explicit refresh.
    one.refresh_catalog().unwrap();
    assert_eq!(one.catalog_size(), (1, 3));
    let rows = block(export_all(&one));
    let pages: Vec<&str> = rows.iter().map(|r| r.page.as_str()).collect();
    assert_eq!(pages, ["/1", "/2", OTHER_PAGE]);
    // A collector started later loads the catalog before it is ready.
    two.close().unwrap();
    let three = ready(capped(&shim, &db, 2, 0, 1));
    assert_eq!(three.catalog_size(), (1, 3));
    let err = block(three.insert(vec![fcp("c.example", "/1", "h", 1.0, now)])).unwrap_err();
    assert!(matches!(err, StoreError::TooManySites { .. }), "{err}");
    three.close().unwrap();
    one.close().unwrap();
}

/// A refused call stores nothing: no report, no page, not even those of
/// its beacons of known sites.
#[test]
fn a_new_site_past_max_sites_refuses_the_whole_call_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(capped(&shim, dir.path(), 10, 0, 1));
    let now = now_ms() - 60_000;
    block(async {
        store
            .insert(vec![fcp("a.example", "/1", "f0", 1.0, now)])
            .await
            .unwrap();
        let err = store
            .insert(vec![
                fcp("a.example", "/1", "f1", 2.0, now),
                fcp("a.example", "/new", "f2", 2.0, now),
                fcp("b.example", "/1", "f3", 2.0, now),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::TooManySites { site, limit: 1 } if site == "b.example"),
            "{err}"
        );
    });
    assert_eq!(store.catalog_size(), (1, 1));
    std::thread::sleep(Duration::from_millis(200));
    let rows = block(export_all(&store));
    assert_eq!(rows.iter().map(|r| r.report_id.as_str()).collect::<Vec<_>>(), ["f0"]);
    let client = store.client();
    let pages: Vec<(String, String)> = block(async {
        client
            .query("SELECT site, page FROM pages ORDER BY site, page")
            .fetch_all()
            .await
            .unwrap()
    });
    assert_eq!(pages, [("a.example".to_string(), "/1".to_string())]);
    store.close().unwrap();
}

/// Migrating to the page catalog fills it with the pages already stored.
#[test]
fn the_catalog_migration_fills_it_with_the_stored_pages() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("ch"));
    let store = ready(options(&shim, dir.path()));
    let beacons = data(5, 30);
    block(insert_all(&store, &beacons));
    let client = store.client();
    block(async {
        client.query("DROP TABLE pages").execute().await.unwrap();
        client
            .query("DELETE FROM vitalsign_schema WHERE version > 4")
            .execute()
            .await
            .unwrap();
    });
    store.close().unwrap();
    let store = ready(options(&shim, dir.path()));
    let mut expected: Vec<(&str, &str)> = beacons.iter().map(|b| (b.site.as_str(), b.page.as_str())).collect();
    expected.sort();
    expected.dedup();
    let sites = expected
        .iter()
        .map(|(s, _)| *s)
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(store.catalog_size(), (sites, expected.len()));
    store.close().unwrap();
}
