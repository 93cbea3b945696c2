//! Summaries, windows, time series, page lists and the page cap, against
//! the real binary and a real SQLite file. Where a test needs reports at
//! chosen times it writes them through the library into the data directory
//! first, then starts the binary on it.

mod common;

use std::collections::HashMap;

use collector::beacon::{FormFactor, MetricName, NavigationType};
use collector::store::{NewBeacon, Report, Sqlite, SqliteOptions, Store};
use collector::time::{now_ms, Resolution, DAY_MS, HOUR_MS};
use common::{beacon_json, metric, Collector, Rng};
use serde_json::{json, Value};

fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

fn rate(metric: &str, v: f64) -> usize {
    let (good, poor) = match metric {
        "FCP" => (1800.0, 3000.0),
        "LCP" => (2500.0, 4000.0),
        "CLS" => (0.1, 0.25),
        "INP" => (200.0, 500.0),
        _ => (800.0, 1800.0),
    };
    if v <= good {
        0
    } else if v <= poor {
        1
    } else {
        2
    }
}

/// Checks one summary metric object against the values a user would
/// compute by hand.
fn check_metric(what: &str, got: &Value, metric: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    assert_eq!(got["count"], values.len(), "{what}");
    let p75 = nearest_rank(values, 75.0);
    assert_eq!(got["p75"].as_f64(), Some(p75), "{what}: exact p75");
    for p in [50.0, 95.0, 99.0] {
        let exact = nearest_rank(values, p);
        let est = got[format!("p{p}")].as_f64().unwrap();
        assert!((est - exact).abs() <= exact * 0.01, "{what} p{p}: {est} vs {exact}");
    }
    let mut counts = [0.0; 3];
    values.iter().for_each(|&v| counts[rate(metric, v)] += 1.0);
    for (i, bin) in got["histogram"].as_array().unwrap().iter().enumerate() {
        assert_eq!(bin["density"].as_f64(), Some(counts[i] / n), "{what} bin {i}");
    }
    let rating = ["good", "needs-improvement", "poor"][rate(metric, p75)];
    assert_eq!(got["rating"], rating, "{what}");
}

#[test]
fn summary_p75_and_densities_match_a_hand_computation_on_random_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    let pages = [
        "https://a.example/",
        "https://a.example/cart",
        "https://a.example/p/:id",
    ];
    let metrics = ["FCP", "LCP", "CLS", "INP", "TTFB"];
    let ffs = [None, Some("phone"), Some("desktop"), Some("tablet")];
    let mut rng = Rng::new(0xC0FFEE);
    // (metric, id) -> (page, ff, value): what a hand computation keeps.
    let mut truth: HashMap<(String, String), (String, Option<&str>, f64)> = HashMap::new();
    let mut sent = Vec::new();
    for i in 0..300 {
        let page = pages[rng.below(3) as usize];
        let ff = ffs[rng.below(4) as usize];
        let mut ms = Vec::new();
        for j in 0..1 + rng.below(3) {
            let metric = metrics[rng.below(5) as usize];
            // Few distinct values: ties; thresholds themselves; zeros.
            let value = match metric {
                "CLS" => [0.0, 0.0, 0.05, 0.1, 0.1, 0.25, 0.3, 0.5][rng.below(8) as usize],
                "INP" => (8 * rng.below(80)) as f64,
                _ => (rng.below(60) * 100) as f64 + [0.0, 0.5][rng.below(2) as usize],
            };
            let (id, page, ff) = if rng.below(6) == 0 && !sent.is_empty() {
                // The agent re-reports an id with a grown value, from the
                // same page view.
                let (m, id, p, f): &(String, String, String, Option<&str>) =
                    &sent[rng.below(sent.len() as u64) as usize];
                if m != metric {
                    continue;
                }
                (id.clone(), p.clone(), *f)
            } else {
                (format!("v5-{i}-{j}"), page.to_string(), ff)
            };
            if ms.iter().any(|m: &Value| m["id"] == id.as_str() && m["name"] == metric) {
                continue;
            }
            truth.insert((metric.into(), id.clone()), (page.clone(), ff, value));
            sent.push((metric.to_string(), id.clone(), page.clone(), ff));
            ms.push(json!({"name": metric, "value": value, "delta": value, "id": id,
                           "rating": "good", "navigationType": "navigate"}));
            // One beacon per page view: a re-report goes in its own.
            let mut b = json!({"schemaVersion": 1, "page": page, "metrics": [ms.pop().unwrap()]});
            if let Some(ff) = ff {
                b["formFactor"] = json!(ff);
            }
            let r = c.beacon(&b.to_string());
            assert_eq!(r.status, 204, "{}", r.body);
        }
    }

    // The export is what a user would compute from: it holds exactly the
    // deduplicated reports.
    let exported: Vec<Value> = c.get("/v1/export?format=json").json().as_array().unwrap().clone();
    assert_eq!(exported.len(), truth.len());
    for row in &exported {
        let key = (
            row["metric"].as_str().unwrap().to_string(),
            row["id"].as_str().unwrap().to_string(),
        );
        assert_eq!(row["value"].as_f64(), Some(truth[&key].2), "{row}");
    }

    for ff in [None, Some("phone"), Some("desktop")] {
        let path = match ff {
            None => "/v1/summary?site=a.example".to_string(),
            Some(f) => format!("/v1/summary?site=a.example&formFactor={f}"),
        };
        let s = c.get(&path).json();
        assert_eq!(s["formFactor"], ff.unwrap_or("all"));
        for metric in metrics {
            let values = |page: Option<&str>| -> Vec<f64> {
                truth
                    .iter()
                    .filter(|((m, _), (p, f, _))| {
                        m == metric && page.is_none_or(|page| page == p) && (ff.is_none() || *f == ff)
                    })
                    .map(|(_, v)| v.2)
                    .collect()
            };
            let mut all = values(None);
            if !all.is_empty() {
                check_metric(
                    &format!("{ff:?} site {metric}"),
                    &s["sites"][0]["metrics"][metric],
                    metric,
                    &mut all,
                );
            }
            for page in pages {
                let mut v = values(Some(page));
                let record = s["pages"].as_array().unwrap().iter().find(|p| p["page"] == page);
                match record.map(|r| &r["metrics"][metric]) {
                    Some(got) if !got.is_null() => {
                        check_metric(&format!("{ff:?} {page} {metric}"), got, metric, &mut v)
                    }
                    _ => assert!(v.is_empty(), "{ff:?} {page} {metric} missing"),
                }
            }
        }
    }
}

#[test]
fn summary_is_shaped_like_the_chrome_ux_report() {
    common::away_from_hour_boundary();
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let page = "https://a.example/";
    let body = json!({"schemaVersion": 1, "page": page, "formFactor": "phone", "metrics": [
        {"name": "LCP", "value": 1200, "delta": 1200, "id": "l", "rating": "good", "navigationType": "navigate"},
        {"name": "INP", "value": 80, "delta": 80, "id": "i", "rating": "good", "navigationType": "navigate"},
        {"name": "CLS", "value": 0, "delta": 0, "id": "c", "rating": "good", "navigationType": "navigate"},
    ]});
    assert_eq!(c.beacon(&body.to_string()).status, 204);
    assert_eq!(
        c.beacon(&beacon_json("https://a.example/slow", "LCP", "s", 9000.0))
            .status,
        204
    );
    let s = c.get("/v1/summary?site=a.example").json();
    assert_eq!(s["window"], "28d");
    let today = collector::time::Date::of_ms(now_ms());
    let first = collector::time::Date::of_ms(now_ms() - 28 * DAY_MS);
    assert_eq!(
        s["collectionPeriod"]["lastDate"],
        json!({"year": today.year, "month": today.month, "day": today.day})
    );
    assert_eq!(
        s["collectionPeriod"]["firstDate"],
        json!({"year": first.year, "month": first.month, "day": first.day})
    );
    let pages = s["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["coreWebVitals"], "passed");
    assert_eq!(pages[1]["coreWebVitals"], "failed");
    assert_eq!(s["sites"][0]["site"], "a.example");
    assert_eq!(s["sites"][0]["coreWebVitals"], "failed", "site LCP p75 is 9000");
    assert_eq!(
        pages[0]["metrics"]["CLS"],
        json!({"count": 1, "p50": 0.0, "p75": 0.0, "p95": 0.0, "p99": 0.0, "rating": "good",
               "histogram": [{"start": 0.0, "end": 0.1, "density": 1.0},
                             {"start": 0.1, "end": 0.25, "density": 0.0},
                             {"start": 0.25, "density": 0.0}],
               // One sample: the interval is that sample, far below the
               // 200 of a trusted p75; the beacon named no page view.
               "p75Interval": {"low": 0.0, "high": 0.0, "confidence": 0.95},
               "lowSample": true, "pageViews": 0, "coverage": null})
    );
    let desktop = c.get("/v1/summary?site=a.example&formFactor=desktop").json();
    assert_eq!(desktop["pages"].as_array().unwrap().len(), 1);
    assert_eq!(desktop["pages"][0]["page"], "https://a.example/slow");
    assert_eq!(
        c.get("/v1/summary?site=a.example&formFactor=tablet").json()["pages"],
        json!([])
    );
    // One report: every percentile is that report, exactly.
    let slow = &desktop["pages"][0]["metrics"]["LCP"];
    for p in ["p50", "p75", "p95", "p99"] {
        assert_eq!(slow[p], 9000.0, "{p}");
    }
    let phone = c.get("/v1/summary?site=a.example&formFactor=PHONE").json();
    assert_eq!(phone["pages"].as_array().unwrap().len(), 1);
    assert_eq!(c.get("/v1/summary?site=nobody.example").json()["sites"], json!([]));
    for bad in ["/v1/summary?window=2d", "/v1/summary?formFactor=watch"] {
        let r = c.get(bad);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"].is_string());
    }
}

fn report(page: &str, metric: MetricName, id: &str, value: f64, at: i64) -> Report {
    Report {
        site: "a.example".into(),
        page: page.into(),
        metric,
        report_id: id.into(),
        value,
        delta: value,
        rating: metric.rate(value),
        navigation_type: NavigationType::Navigate,
        form_factor: Some(FormFactor::Desktop),
        page_view_id: None,
        session_id: None,
        received_at_ms: at,
        attribution: None,
    }
}

/// Writes reports with chosen times into `dir` through the library.
fn seed(dir: &std::path::Path, reports: Vec<Report>) {
    let store = Sqlite::open_in_dir(
        dir,
        SqliteOptions {
            retention_days: 100,
            ..Default::default()
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.insert(NewBeacon::group(reports))).unwrap();
    store.close().unwrap();
}

#[test]
fn windows_merge_hourly_and_daily_aggregates() {
    common::away_from_hour_boundary();
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let hour = Resolution::Hour.floor(now);
    let day = Resolution::Day.floor(now);
    let page = "https://a.example/";
    // (time, the windows it is in)
    let times = [
        (hour, "1h 24h 7d 28d"),
        (hour - 30 * 60_000, "1h 24h 7d 28d"),
        (hour - 90 * 60_000, "24h 7d 28d"),
        (hour - 23 * HOUR_MS - 30 * 60_000, "24h 7d 28d"),
        (hour - 25 * HOUR_MS, "7d 28d"),
        (day - 6 * DAY_MS - 12 * HOUR_MS, "7d 28d"),
        (day - 7 * DAY_MS - HOUR_MS, "28d"),
        (day - 27 * DAY_MS - 12 * HOUR_MS, "28d"),
        (day - 29 * DAY_MS, ""),
        (now - 40 * DAY_MS, "gone"),
    ];
    seed(
        dir.path(),
        times
            .iter()
            .enumerate()
            .map(|(i, &(at, _))| report(page, MetricName::Lcp, &format!("r{i}"), 1000.0 + i as f64, at))
            .collect(),
    );
    let c = Collector::start(dir.path(), &[]);
    for window in ["1h", "24h", "7d", "28d"] {
        let values: Vec<f64> = times
            .iter()
            .enumerate()
            .filter(|(_, (_, w))| w.split(' ').any(|x| x == window))
            .map(|(i, _)| 1000.0 + i as f64)
            .collect();
        let s = c.get(&format!("/v1/summary?window={window}")).json();
        let lcp = &s["pages"][0]["metrics"]["LCP"];
        assert_eq!(lcp["count"], values.len(), "{window}: {s}");
        assert_eq!(lcp["p75"].as_f64(), Some(nearest_rank(&values, 75.0)), "{window}");
        assert_eq!(s["sites"][0]["metrics"]["LCP"]["count"], values.len(), "{window}");
    }
    // Past the 28-day window but kept (retention is 35 days).
    let e = c.get("/v1/export?format=json").json();
    assert_eq!(
        e.as_array().unwrap().len(),
        9,
        "the 40-day-old report is past the retention"
    );

    // Time series: counts per step, exact p75 per step.
    let t = c
        .get(&format!("/v1/timeseries?page={page}&metric=LCP&window=24h&step=1h"))
        .json();
    let points = t["points"].as_array().unwrap();
    assert_eq!(points.len(), 25);
    assert_eq!(t["site"], "a.example");
    assert_eq!(points[24]["start"], collector::time::rfc3339(hour));
    assert_eq!(points[24]["count"], 1);
    assert_eq!(points[24]["p75"], 1000.0);
    assert_eq!(points[23]["count"], 1);
    assert_eq!(points[22]["count"], 1);
    assert_eq!(points[0]["count"], 1, "23.5 h before the current hour");
    assert_eq!(points[1]["p75"], Value::Null);
    let total: u64 = points.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 4);
    let t = c.get("/v1/timeseries?site=a.example&metric=lcp&window=7d").json();
    assert_eq!(t["step"], "1d");
    let counts: Vec<u64> = t["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 8);
    assert_eq!(counts.iter().sum::<u64>(), 6);
    assert_eq!(counts[0], 1, "6.5 days before today");
    let t = c
        .get("/v1/timeseries?site=a.example&metric=LCP&window=7d&step=1h")
        .json();
    assert_eq!(
        t["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum::<u64>(),
        6
    );
    for bad in [
        "/v1/timeseries?site=a.example&metric=LCP&window=24h&step=1d",
        "/v1/timeseries?site=a.example&metric=LCP&window=28d&step=1h",
        "/v1/timeseries?site=a.example&metric=FID",
        "/v1/timeseries?metric=LCP",
        "/v1/timeseries?site=a.example&metric=LCP&step=1w",
    ] {
        assert_eq!(c.get(bad).status, 400, "{bad}");
    }

    // The same after a crash: the aggregates are rebuilt from raw reports.
    assert_eq!(c.beacon(&beacon_json(page, "LCP", "new", 5.0)).status, 204);
    c.kill();
    let c = Collector::start(dir.path(), &[]);
    let s = c.get("/v1/summary?window=28d").json();
    assert_eq!(s["pages"][0]["metrics"]["LCP"]["count"], 9);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(log.contains("rebuilt aggregates"), "{log}");
}

#[test]
fn pages_past_the_cap_count_under_other() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-pages-per-site", "2"]);
    for (i, p) in ["/a", "/b", "/c", "/d", "/a"].iter().enumerate() {
        let page = format!("https://a.example{p}");
        assert_eq!(
            c.beacon(&beacon_json(&page, "TTFB", &format!("t{i}"), 100.0 * (i + 1) as f64))
                .status,
            204
        );
    }
    let p = c.get("/v1/pages?site=a.example").json();
    assert_eq!(
        p["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["page"].as_str().unwrap(), p["count"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        vec![("(other)", 2), ("https://a.example/a", 2), ("https://a.example/b", 1)]
    );
    assert_eq!(p["pages"][0]["metrics"], json!({"TTFB": 2}));
    let s = c.get("/v1/summary").json();
    let other = s["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["page"] == "(other)")
        .unwrap();
    assert_eq!(other["metrics"]["TTFB"]["p75"], 400.0);
    assert_eq!(s["sites"][0]["metrics"]["TTFB"]["count"], 5);
    let t = c
        .get("/v1/timeseries?site=a.example&page=(other)&metric=TTFB&window=1h")
        .json();
    assert_eq!(
        t["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum::<u64>(),
        2
    );
}

/// A read after a 204 sees the beacon: the writer acknowledges a group
/// before adding it to the aggregates, holding the lock reads wait for.
#[test]
fn a_read_after_the_acknowledgement_sees_the_beacon() {
    common::away_from_hour_boundary();
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let page = "https://a.example/";
    for i in 1..=150u32 {
        let body = beacon_json(page, "LCP", &format!("id-{i}"), 1000.0 + f64::from(i));
        assert_eq!(c.beacon(&body).status, 204);
        let s = c.get("/v1/summary?site=a.example&window=1h").json();
        assert_eq!(metric(&s, page, "LCP")["count"], i, "after beacon {i}");
    }
}

/// The ranks of the 95 % interval, as docs/collector.md defines them.
fn interval_ranks(n: usize) -> (usize, usize) {
    let nf = n as f64;
    let spread = 1.959_963_984_540_054 * (nf * 0.75 * 0.25).sqrt();
    let low = ((nf * 0.75 - spread).floor() as i64).clamp(1, n as i64) as usize;
    let high = (((nf * 0.75 + spread).ceil() + 1.0) as i64).clamp(1, n as i64) as usize;
    (low, high)
}

/// One page view as the test sends it: its page, form factor, navigation
/// type, and the final value of each metric it reported.
struct View {
    page: &'static str,
    ff: Option<&'static str>,
    nav: &'static str,
    values: HashMap<&'static str, f64>,
}

/// The dashboard's figures (page views, coverage, the p75's interval, the
/// page list's order and filter, one page's distribution, navigation types
/// and form factors, the time series' bands) against a hand computation
/// over random page views that send several beacons each.
#[test]
fn dashboard_figures_match_a_hand_computation_on_random_data() {
    common::away_from_hour_boundary();
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    let pages = [
        "https://a.example/",
        "https://a.example/cart",
        "https://a.example/search",
        "https://a.example/help",
    ];
    let metrics = ["FCP", "LCP", "CLS", "INP", "TTFB"];
    let ffs = [None, Some("phone"), Some("desktop"), Some("tablet")];
    let navs = ["navigate", "reload", "back-forward", "prerender"];
    let mut rng = Rng::new(0xDA5B);
    let mut views: Vec<View> = Vec::new();
    for v in 0..400 {
        let page = pages[(rng.below(10) as usize).min(3)]; // skewed: the first page most
        let ff = ffs[rng.below(4) as usize];
        let nav = navs[rng.below(4) as usize];
        let mut view = View {
            page,
            ff,
            nav,
            values: HashMap::new(),
        };
        // Two or three beacons (hides): metrics come, CLS and INP grow.
        for _ in 0..2 + rng.below(2) {
            let mut ms = Vec::new();
            for metric in metrics {
                let present = match metric {
                    "INP" => rng.below(3) == 0,
                    "CLS" => rng.below(10) < 9,
                    _ => rng.below(4) < 3,
                };
                if !present || (view.values.contains_key(metric) && !matches!(metric, "CLS" | "INP")) {
                    continue;
                }
                let prev = view.values.get(metric).copied().unwrap_or(0.0);
                let value = match metric {
                    "CLS" => prev + [0.0, 0.01, 0.05, 0.1][rng.below(4) as usize],
                    "INP" => prev + (8 * rng.below(60)) as f64,
                    _ => (rng.below(80) * 100) as f64 + [0.0, 0.5][rng.below(2) as usize],
                };
                view.values.insert(metric, value);
                ms.push(
                    json!({"name": metric, "value": value, "delta": value - prev, "id": format!("v5-{v}-{metric}"),
                               "rating": "good", "navigationType": nav}),
                );
            }
            if ms.is_empty() {
                continue;
            }
            let mut b = json!({"schemaVersion": 1, "page": page, "pageViewId": format!("pv-{v}"),
                               "navigationType": nav, "metrics": ms});
            if let Some(ff) = ff {
                b["formFactor"] = json!(ff);
            }
            assert_eq!(c.beacon(&b.to_string()).status, 204);
        }
        views.push(view);
    }
    // The views that reported anything count; the agent sends nothing else.
    views.retain(|v| !v.values.is_empty());
    let pick = |page: Option<&str>, ff: Option<&str>| -> Vec<&View> {
        views
            .iter()
            .filter(|v| page.is_none_or(|p| p == v.page) && (ff.is_none() || v.ff == ff))
            .collect()
    };
    let sorted = |vs: &[&View], metric: &str| -> Vec<f64> {
        let mut values: Vec<f64> = vs.iter().filter_map(|v| v.values.get(metric).copied()).collect();
        values.sort_by(f64::total_cmp);
        values
    };

    for ff in [None, Some("phone")] {
        let q = ff.map_or(String::new(), |f| format!("&formFactor={f}"));
        let s = c.get(&format!("/v1/summary?site=a.example{q}")).json();
        assert_eq!(s["lowSampleBelow"], 200);
        let mut records: Vec<(Option<&str>, &Value)> = vec![(None, &s["sites"][0])];
        for p in pages {
            if let Some(r) = s["pages"].as_array().unwrap().iter().find(|r| r["page"] == p) {
                records.push((Some(p), r));
            }
        }
        for (page, record) in records {
            let vs = pick(page, ff);
            let what = format!("{ff:?} {page:?}");
            assert_eq!(record["pageViews"], vs.len(), "{what}");
            assert!(record["lastBeaconAt"].is_string(), "{what}");
            for metric in metrics {
                let values = sorted(&vs, metric);
                let got = &record["metrics"][metric];
                if values.is_empty() {
                    assert!(got.is_null(), "{what} {metric}");
                    continue;
                }
                let n = values.len();
                assert_eq!(got["count"], n, "{what} {metric}");
                assert_eq!(got["pageViews"], vs.len(), "{what} {metric}");
                let coverage = got["coverage"].as_f64().unwrap();
                assert!((coverage - n as f64 / vs.len() as f64).abs() < 1e-12, "{what} {metric}");
                let (lo, hi) = interval_ranks(n);
                assert_eq!(
                    (got["p75Interval"]["low"].as_f64(), got["p75Interval"]["high"].as_f64()),
                    (Some(values[lo - 1]), Some(values[hi - 1])),
                    "{what} {metric}: interval ranks {lo}..{hi} of {n}"
                );
                assert_eq!(got["lowSample"], n < 200, "{what} {metric}");
            }
        }
        assert_eq!(s["sites"][0]["quiet"], false);
    }

    // Pages: every order and filter the API offers, against a sort by hand.
    let all = c.get("/v1/pages?site=a.example").json();
    let entries = all["pages"].as_array().unwrap().clone();
    assert_eq!(all["total"], entries.len());
    let p75 = |e: &Value, m: &str| e["p75"][m].as_f64();
    for e in &entries {
        let vs = pick(Some(e["page"].as_str().unwrap()), None);
        assert_eq!(e["pageViews"], vs.len());
        for m in metrics {
            let values = sorted(&vs, m);
            assert_eq!(
                p75(e, m),
                (!values.is_empty()).then(|| nearest_rank(&values, 75.0)),
                "{m}"
            );
        }
    }
    let rank = |r: &Value| match r.as_str() {
        Some("poor") => 0,
        Some("needs-improvement") => 1,
        Some("good") => 2,
        _ => 3,
    };
    let worst = |e: &Value| {
        ["LCP", "INP", "CLS"]
            .iter()
            .map(|m| rank(&e["rating"][m]))
            .min()
            .unwrap()
    };
    let mut by_hand = entries.clone();
    by_hand.sort_by(|a, b| {
        worst(a)
            .cmp(&worst(b))
            .then_with(|| b["pageViews"].as_u64().cmp(&a["pageViews"].as_u64()))
            .then_with(|| a["page"].as_str().cmp(&b["page"].as_str()))
    });
    let order = |path: &str| -> Vec<String> {
        c.get(path).json()["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["page"].as_str().unwrap().to_string())
            .collect()
    };
    let names = |es: &[Value]| -> Vec<String> { es.iter().map(|e| e["page"].as_str().unwrap().to_string()).collect() };
    assert_eq!(order("/v1/pages?site=a.example&sort=worst"), names(&by_hand));
    let mut reversed = names(&by_hand);
    reversed.reverse();
    assert_eq!(order("/v1/pages?site=a.example&sort=worst&order=asc"), reversed);
    let mut by_lcp = entries.clone();
    by_lcp.sort_by(|a, b| p75(b, "LCP").unwrap().total_cmp(&p75(a, "LCP").unwrap()));
    assert_eq!(order("/v1/pages?site=a.example&sort=LCP"), names(&by_lcp));
    let mut by_page = names(&entries);
    by_page.sort();
    assert_eq!(order("/v1/pages?site=a.example&sort=page"), by_page);
    let window = order("/v1/pages?site=a.example&sort=page&offset=1&limit=2");
    assert_eq!(window, by_page[1..3]);
    let filtered = c.get("/v1/pages?site=a.example&q=CaRt").json();
    assert_eq!(filtered["total"], 1);
    assert_eq!(filtered["pages"][0]["page"], "https://a.example/cart");
    for bad in ["sort=slowest", "order=up", "limit=0", "limit=5000", "offset=-1"] {
        assert_eq!(c.get(&format!("/v1/pages?site=a.example&{bad}")).status, 400, "{bad}");
    }

    // One page in detail.
    let page = pages[0];
    let d = c.get(&format!("/v1/page?page={page}")).json();
    let vs = pick(Some(page), None);
    assert_eq!(d["pageViews"], vs.len());
    for nav in navs {
        let n = vs.iter().filter(|v| v.nav == nav).count();
        assert_eq!(d["navigationTypes"][nav], n, "{nav}");
    }
    assert_eq!(d["navigationTypes"]["soft-navigation"], 0);
    for metric in metrics {
        let values = sorted(&vs, metric);
        let m = &d["metrics"][metric];
        assert_eq!(m["count"], values.len(), "{metric}");
        assert_eq!(m["unit"], if metric == "CLS" { "score" } else { "ms" });
        let buckets = m["distribution"].as_array().unwrap();
        let mut total = 0;
        for (i, b) in buckets.iter().enumerate() {
            let start = b["start"].as_f64().unwrap();
            let inside = |v: f64| (v > start || (i == 0 && v >= start)) && b["end"].as_f64().is_none_or(|end| v <= end);
            let n = values.iter().filter(|&&v| inside(v)).count();
            assert_eq!(b["count"], n, "{metric} bucket {b}");
            total += n;
        }
        assert_eq!(total, values.len(), "{metric}: every value in one bucket");
        assert!(buckets.last().unwrap()["end"].is_null());
        for ff in ["phone", "tablet", "desktop"] {
            let values = sorted(&pick(Some(page), Some(ff)), metric);
            let split = &m["formFactors"][ff];
            if values.is_empty() {
                assert!(split.is_null(), "{metric} {ff}");
            } else {
                assert_eq!(split["count"], values.len(), "{metric} {ff}");
                assert_eq!(
                    split["p75"].as_f64(),
                    Some(nearest_rank(&values, 75.0)),
                    "{metric} {ff}"
                );
            }
        }
    }
    assert_eq!(c.get("/v1/page?page=https://a.example/nowhere").status, 404);
    assert_eq!(c.get("/v1/page?site=nobody.example").status, 404);
    let site = c.get("/v1/page?site=a.example").json();
    assert_eq!(site["pageViews"], views.len());

    // The time series: today's point has the p75's interval and the bands.
    let t = c.get("/v1/timeseries?site=a.example&metric=LCP&window=24h").json();
    assert_eq!(t["thresholds"], json!({"good": 2500.0, "poor": 4000.0}));
    assert_eq!(t["unit"], "ms");
    let point = t["points"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p["count"].as_u64() > Some(0))
        .unwrap();
    let values = sorted(&pick(None, None), "LCP");
    assert_eq!(point["count"], values.len());
    let (lo, hi) = interval_ranks(values.len());
    assert_eq!(point["p75Interval"]["low"].as_f64(), Some(values[lo - 1]));
    assert_eq!(point["p75Interval"]["high"].as_f64(), Some(values[hi - 1]));
    for (p, key) in [(50.0, "p50"), (95.0, "p95")] {
        let exact = nearest_rank(&values, p);
        let got = point[key].as_f64().unwrap();
        assert!((got - exact).abs() <= exact * 0.01, "{key}: {got} vs {exact}");
    }
}
