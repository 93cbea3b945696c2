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
