//! Operating the collector: retention, API keys, export, `/metrics`,
//! readiness, configuration from the environment, and durability under
//! SIGKILL mid-load. All against the real binary and a real SQLite file.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use collector::beacon::{FormFactor, MetricName, NavigationType};
use collector::store::{NewBeacon, Report, Sqlite, SqliteOptions, Store};
use collector::time::{now_ms, Resolution, DAY_MS};
use common::{beacon_json, metric, Collector, BIN};
use serde_json::json;

const PAGE: &str = "https://a.example/";

fn report(id: &str, value: f64, at: i64) -> Report {
    Report {
        site: "a.example".into(),
        page: PAGE.into(),
        metric: MetricName::Lcp,
        report_id: id.into(),
        value,
        delta: value,
        rating: MetricName::Lcp.rate(value),
        navigation_type: NavigationType::Reload,
        form_factor: Some(FormFactor::Tablet),
        page_view_id: Some(format!("pv-{id}")),
        session_id: Some("s-1".into()),
        received_at_ms: at,
        attribution: None,
    }
}

fn seed(dir: &std::path::Path, reports: Vec<Report>) {
    let store = Sqlite::open_in_dir(
        dir,
        SqliteOptions {
            retention_days: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for chunk in reports.chunks(500) {
            store.insert(NewBeacon::group(chunk.to_vec())).await.unwrap();
        }
    });
    store.close().unwrap();
}

#[test]
fn retention_is_enforced() {
    common::away_from_hour_boundary();
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let today = Resolution::Day.floor(now);
    seed(
        dir.path(),
        vec![
            report("old", 1.0, now - 40 * DAY_MS),
            report("edge-out", 2.0, today - 34 * DAY_MS - 1),
            report("edge-in", 3.0, today - 34 * DAY_MS),
            report("new", 4.0, now),
        ],
    );
    // Default retention: 35 days, today included.
    let c = Collector::start(dir.path(), &[]);
    let ids: Vec<String> = c
        .get("/v1/export?format=json")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["edge-in", "new"]);
    drop(c);
    let c = Collector::start(dir.path(), &["--retention-days", "1"]);
    let e = c.get("/v1/export?format=json").json();
    assert_eq!(e.as_array().unwrap().len(), 1);
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 1, "p75": 4.0}));
}

fn config(dir: &std::path::Path) -> String {
    let path = dir.join("keys.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            listen = "127.0.0.1:0"
            data_dir = {:?}
            www_dir = "/nonexistent"
            agent_dir = "/nonexistent"
            api_keys = ["admin-0123456789"]
            [[sites]]
            host = "a.example"
            api_keys = ["key-for-a"]
            [[sites]]
            host = "b.example"
            [[sites]]
            host = "c.example"
            api_keys = ["key-for-c"]
            "#,
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn api_keys_guard_the_read_apis() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let c = Collector::start(dir.path(), &["--config", &cfg]);
    // Beacons need no key.
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "x", 100.0)).status, 204);
    assert_eq!(
        c.beacon(&beacon_json("https://b.example/", "LCP", "y", 100.0)).status,
        204
    );
    for path in [
        "/v1/summary",
        "/v1/pages",
        "/v1/timeseries?site=a.example&metric=LCP",
        "/v1/export",
        "/metrics",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(c.get_with(path, &[("X-API-Key", "wrong")]).status, 401, "{path}");
        let r = c.get_with(path, &[("X-API-Key", "admin-0123456789")]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let r = c.get_with(path, &[("Authorization", "Bearer admin-0123456789")]);
        assert_eq!(r.status, 200, "{path}");
    }
    // A site's key reads that site only.
    let a = [("X-API-Key", "key-for-a")];
    let r = c.get_with("/v1/summary", &a);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("site=a.example"));
    let r = c.get_with("/v1/summary?site=a.example", &a);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["pages"].as_array().unwrap().len(), 1);
    assert_eq!(c.get_with("/v1/summary?site=b.example", &a).status, 403);
    assert_eq!(c.get_with("/v1/export?site=a.example", &a).status, 200);
    assert_eq!(
        c.get_with("/v1/timeseries?page=https://a.example/&metric=LCP", &a)
            .status,
        200
    );
    assert_eq!(c.get_with("/metrics", &a).status, 403);
    // Health needs no key.
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/readyz").status, 200);
    // Finding 9: the scheme is matched in any case, as HTTP says; keys of
    // other lengths and near misses are refused.
    for auth in [
        "bearer admin-0123456789",
        "BEARER  admin-0123456789",
        "Bearer\tadmin-0123456789 ",
    ] {
        let r = c.get_with("/v1/summary", &[("Authorization", auth)]);
        let expected = if auth.contains('\t') { 401 } else { 200 };
        assert_eq!(r.status, expected, "{auth:?}: {}", r.body);
    }
    for wrong in ["admin-012345678", "admin-01234567890", "", "Admin-0123456789"] {
        let r = c.get_with("/v1/summary", &[("Authorization", &format!("Bearer {wrong}"))]);
        assert_eq!(r.status, 401, "{wrong:?}");
    }
    assert_eq!(
        c.get_with("/v1/summary", &[("Authorization", "Basic admin-0123456789")])
            .status,
        401
    );
}

fn site_names(r: &serde_json::Value) -> Vec<String> {
    r["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["site"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_site_list_shows_each_key_the_sites_it_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let c = Collector::start(dir.path(), &["--config", &cfg]);
    assert_eq!(
        c.beacon(&beacon_json("https://b.example/", "LCP", "y", 100.0)).status,
        204
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "x", 100.0)).status, 204);
    assert_eq!(c.get("/v1/sites").status, 401);
    assert_eq!(c.get_with("/v1/sites", &[("X-API-Key", "wrong")]).status, 401);
    // A global key: every site, the most recently heard from first.
    let all = c.get_with("/v1/sites", &[("X-API-Key", "admin-0123456789")]).json();
    assert_eq!(site_names(&all), ["a.example", "b.example"]);
    assert!(all["sites"][0]["lastBeaconAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all["sites"][0]["quiet"], false);
    // A site's key: its site, and nothing of the others.
    let a = c.get_with("/v1/sites", &[("X-API-Key", "key-for-a")]);
    assert_eq!(a.status, 200);
    assert_eq!(site_names(&a.json()), ["a.example"]);
    assert!(!a.body.contains("b.example"));
    // Its site before the first beacon, so a dashboard can open it.
    let c_sites = c.get_with("/v1/sites", &[("X-API-Key", "key-for-c")]).json();
    assert_eq!(
        c_sites,
        json!({"sites": [{"site": "c.example", "lastBeaconAt": null, "quiet": false}]})
    );
}

#[test]
fn the_summary_can_leave_the_pages_out() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    for (i, page) in ["https://a.example/", "https://a.example/x", "https://b.example/"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            c.beacon(&beacon_json(page, "LCP", &format!("r{i}"), 100.0 * (i + 1) as f64))
                .status,
            204
        );
    }
    let full = c.get("/v1/summary").json();
    assert_eq!(full["pages"].as_array().unwrap().len(), 3);
    let sites_only = c.get("/v1/summary?pages=false").json();
    assert_eq!(sites_only["pages"], json!([]));
    assert_eq!(sites_only["sites"], full["sites"]);
    assert_eq!(c.get("/v1/summary?pages=true").json()["pages"], full["pages"]);
    let one = c.get("/v1/summary?site=a.example&pages=false").json();
    assert_eq!(site_names(&one), ["a.example"]);
    assert_eq!(one["pages"], json!([]));
    for bad in ["no", "1", "FALSE", "%00"] {
        let r = c.get(&format!("/v1/summary?pages={bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains("use true or false"),
            "{}",
            r.body
        );
    }
}

#[test]
fn api_keys_and_limits_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::command(dir.path(), &[]);
    cmd.env("VITALSIGN_API_KEYS", "k1,k2")
        .env("VITALSIGN_MAX_PAGES_PER_SITE", "1");
    let c = Collector::spawn(cmd, dir.path());
    assert_eq!(c.get("/v1/summary").status, 401);
    assert_eq!(c.get_with("/v1/summary", &[("X-API-Key", "k2")]).status, 200);
    assert_eq!(
        c.beacon(&beacon_json("https://a.example/1", "LCP", "1", 1.0)).status,
        204
    );
    assert_eq!(
        c.beacon(&beacon_json("https://a.example/2", "LCP", "2", 1.0)).status,
        204
    );
    let s = c.get_with("/v1/summary", &[("X-API-Key", "k1")]).json();
    let pages: Vec<&str> = s["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["page"].as_str().unwrap())
        .collect();
    assert_eq!(pages, ["(other)", "https://a.example/1"]);
}

#[test]
fn export_streams_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // Enough rows for several chunks of the stream.
    let mut reports: Vec<Report> = (0..2500)
        .map(|i| report(&format!("r{i:04}"), i as f64, now - 1000 + (i % 7)))
        .collect();
    reports.push(Report {
        report_id: "needs,\"quoting\"".into(),
        ..report("q", 1.5, now - 2 * DAY_MS)
    });
    seed(dir.path(), reports);
    let c = Collector::start(dir.path(), &[]);

    let r = c.get("/v1/export?format=csv");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(
        lines[0],
        "site,page,metric,id,value,delta,rating,navigationType,formFactor,pageViewId,sessionId,receivedAt"
    );
    assert_eq!(lines.len(), 2502);
    // Oldest first.
    assert!(
        lines[1].starts_with(
            "a.example,https://a.example/,LCP,\"needs,\"\"quoting\"\"\",1.5,1.5,good,reload,tablet,pv-q,s-1,"
        ),
        "{}",
        lines[1]
    );

    let j = c.get("/v1/export?format=json").json();
    let rows = j.as_array().unwrap();
    assert_eq!(rows.len(), 2501);
    let ids: HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2501);
    let last = rows.iter().find(|r| r["id"] == "r2499").unwrap();
    assert_eq!(last["value"], 2499.0);
    assert_eq!(last["rating"], "good");
    assert_eq!(last["formFactor"], "tablet");
    assert_eq!(
        last["receivedAt"],
        collector::time::rfc3339(now - 1000) /* 2499 % 7 == 0 */
    );

    let day = Resolution::Day.floor(now - 2 * DAY_MS);
    let from = collector::time::rfc3339(day);
    let to = collector::time::rfc3339(day + DAY_MS);
    let j = c.get(&format!("/v1/export?format=json&from={from}&to={to}")).json();
    assert_eq!(j.as_array().unwrap().len(), 1);
    let j = c.get(&format!("/v1/export?format=json&from={}", now + 1)).json();
    assert_eq!(j, json!([]));
    assert_eq!(c.get("/v1/export?format=json&site=nobody.example").json(), json!([]));
    assert_eq!(c.get("/v1/export?format=xml").status, 400);
    assert_eq!(c.get("/v1/export?from=yesterday").status, 400);
}

/// Finding 7: ids, `pageViewId` and `sessionId` that start like a formula
/// were exported as they are, and a spreadsheet runs them. CSV gets a
/// leading `'` (OWASP); JSON keeps the exact text.
#[test]
fn csv_export_neutralises_formulas_and_json_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let hostile = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)", "\t=1", "\r=1"];
    for (i, text) in hostile.iter().enumerate() {
        let body = json!({"schemaVersion": 1, "page": PAGE, "pageViewId": text, "sessionId": text,
            "metrics": [{"name": "LCP", "value": 100 + i, "delta": 1, "id": text, "rating": "good",
                         "navigationType": "navigate"}]});
        assert_eq!(c.beacon(&body.to_string()).status, 204, "{text:?}");
    }
    let csv = c.get("/v1/export?format=csv").body;
    for text in hostile {
        let cell = format!("\"'{}\"", text.replace('"', "\"\""));
        assert_eq!(
            csv.matches(&cell).count(),
            3,
            "{text:?} as {cell:?} in id, pageViewId, sessionId:\n{csv}"
        );
    }
    // No cell of a row starts with a formula character unquoted.
    for line in csv.lines().skip(1) {
        assert!(!line.split(',').any(|f| f.starts_with(['=', '+', '@'])), "{line}");
    }
    let rows = c.get("/v1/export?format=json").json();
    let ids: HashSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, hostile.into_iter().collect());
}

/// Findings 6 and 9: credentials in page URLs were stored and exported
/// (`https://user:pass@...`), and `-0` was stored as `-0`.
#[test]
fn user_info_is_never_stored_and_negative_zero_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let body = json!({"schemaVersion": 1, "page": "https://user:pass@a.example/cart?x=1#y",
        "metrics": [{"name": "CLS", "value": -0.0, "delta": -0.0, "id": "c", "rating": "good",
                     "navigationType": "navigate"}]});
    assert!(body.to_string().contains("-0.0"), "{body}");
    assert_eq!(c.beacon(&body.to_string()).status, 204);
    let csv = c.get("/v1/export?format=csv").body;
    let json = c.get("/v1/export?format=json").body;
    let summary = c.get("/v1/summary").body;
    for text in [&csv, &json, &summary] {
        assert!(!text.contains("user") && !text.contains("pass"), "{text}");
    }
    assert!(csv.contains("a.example,https://a.example/cart,CLS,c,0,0,good"), "{csv}");
    assert!(json.contains(r#""value":0.0,"delta":0.0"#), "{json}");
}

#[test]
fn metrics_report_health_latency_and_site_p75() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    for (i, v) in [100.0, 200.0, 300.0, 400.0].into_iter().enumerate() {
        assert_eq!(c.beacon(&beacon_json(PAGE, "FCP", &format!("f{i}"), v)).status, 204);
    }
    assert_eq!(c.beacon("{").status, 400);
    let text = c.get("/metrics").body;
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(sample("vitalsign_beacons_accepted_total"), 4.0);
    assert_eq!(sample("vitalsign_reports_stored_total"), 4.0);
    assert_eq!(
        sample("vitalsign_beacons_rejected_total{reason=\"malformed_json\"}"),
        1.0
    );
    assert_eq!(
        sample("vitalsign_http_request_duration_seconds_count{route=\"beacon\"}"),
        5.0
    );
    assert!(sample("vitalsign_store_size_bytes") > 0.0);
    assert_eq!(sample("vitalsign_store_queue_depth"), 0.0);
    assert_eq!(sample("vitalsign_ready"), 1.0);
    assert_eq!(
        sample("vitalsign_site_p75{site=\"a.example\",metric=\"FCP\",window=\"28d\"}"),
        300.0
    );
    assert_eq!(
        sample("vitalsign_site_reports{site=\"a.example\",metric=\"FCP\",window=\"1h\"}"),
        4.0
    );
    assert!(text.contains("# TYPE vitalsign_http_request_duration_seconds histogram"));
    let r = c.get("/readyz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ready"}));
}

/// Posts until stopped or the collector goes away; returns the acked ids.
fn load(c_url: &str, thread: usize, stop: &AtomicBool) -> Vec<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut acked = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("t{thread}-{i}");
        let body = json!({"schemaVersion": 1, "page": format!("https://a.example/{}", i % 5), "metrics": [
            {"name": "LCP", "value": i as f64, "delta": 1, "id": id, "rating": "good", "navigationType": "navigate"},
            {"name": "CLS", "value": 0.01, "delta": 0.01, "id": format!("{id}-c"), "rating": "good", "navigationType": "navigate"},
        ]});
        match agent
            .post(&format!("{c_url}/v1/beacon"))
            .header("Content-Type", "text/plain")
            .send(body.to_string().as_bytes())
        {
            Ok(r) if r.status() == 204 => acked.push(id),
            Ok(r) => panic!("unexpected status {}", r.status()),
            Err(_) => break, // killed
        }
        i += 1;
    }
    acked
}

#[test]
fn sigkill_mid_load_loses_no_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    let url = c.url("");
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, stop, acked) = (&url, &stop, &acked);
            s.spawn(move || {
                let ids = load(url, t, stop);
                acked.lock().unwrap().extend(ids);
            });
        }
        // Let the load run, then kill the collector under it.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(800) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let ok = Command::new("kill")
            .args(["-KILL", &c.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    drop(c);
    let acked = acked.into_inner().unwrap();
    assert!(acked.len() > 50, "the load ran: {} beacons", acked.len());

    let c = Collector::start(dir.path(), &[]);
    let rows = c.get("/v1/export?format=json").json();
    let stored: HashSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(*id) || !stored.contains(&format!("{id}-c")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged beacons lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // Both reports of a beacon or neither, and the aggregates agree.
    let lcp = stored.iter().filter(|id| !id.ends_with("-c")).count();
    assert_eq!(stored.len(), 2 * lcp);
    let s = c.get("/v1/summary").json();
    assert_eq!(s["sites"][0]["metrics"]["LCP"]["count"], lcp);
    assert_eq!(s["sites"][0]["metrics"]["CLS"]["count"], lcp);
}

#[test]
fn the_help_documents_every_flag_with_its_variable() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--config",
        "--retention-days",
        "--max-pages-per-site",
        "--max-sites",
        "--max-body-bytes",
        "--max-metrics",
        "--rate-per-ip",
        "--burst-per-ip",
        "--rate-per-site",
        "--burst-per-site",
        "--api-key",
        "--trust-forwarded-for",
        "--fsync",
        "--log-format",
        "--workers",
        "--queue-len",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("VITALSIGN_API_KEYS"), "{help}");
}

#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--log-format", "json"]);
    drop(c);
    let log = std::fs::read_to_string(dir.path().join(format!("collector-{}.log", std::process::id()))).unwrap();
    let line = log.lines().find(|l| l.contains("listening")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO");
}
