//! What a `204` promises under ordinary operation: re-reports while the
//! alert engine writes, restarts, a full disk, slow clients. Each test
//! runs the real binary on a real data directory.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Collector;
use serde_json::json;

/// A client that sees every status (no error for 4xx/5xx).
fn client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Every report in `/v1/export`, by id: its value.
fn exported_values(c: &Collector) -> HashMap<String, f64> {
    let r = c.get("/v1/export?format=json");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["value"].as_f64().unwrap()))
        .collect()
}

/// Compares the last acknowledged value of each id with the export.
fn assert_exported(acked: &HashMap<String, f64>, stored: &HashMap<String, f64>) {
    let wrong: Vec<String> = acked
        .iter()
        .filter(|(id, v)| stored.get(*id) != Some(v))
        .map(|(id, v)| format!("{id}: acknowledged {v}, exported {:?}", stored.get(id)))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} ids differ, e.g. {wrong:?}",
        acked.iter().filter(|(id, v)| stored.get(*id) != Some(v)).count(),
        acked.len()
    );
}

/// A config file for a collector on a free port with its data in `dir`,
/// plus `extra` (TOML); its path.
fn config_file(dir: &std::path::Path, extra: &str) -> String {
    let path = dir.join("vitalsign.toml");
    let none = dir.join("none").display().to_string();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nwww_dir = {none:?}\nagent_dir = {none:?}\n{extra}",
        dir.join("data").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Alert rules that flip on every page as values go back and forth, and a
/// receiver that refuses connections (so the outbox records attempts too).
const FLIPPING_ALERTS: &str = r#"
[alerts]
evaluation_interval = "1s"

[[alerts.receivers]]
name = "nowhere"
type = "webhook"
url = "http://127.0.0.1:9/"
max_attempts = 1000
initial_backoff = "200ms"
max_backoff = "200ms"

[[alerts.rules]]
name = "cls"
metric = "CLS"
threshold = 0.1
min_samples = 1
for = "0"
resolve_margin_percent = 0

[[alerts.rules]]
name = "inp"
metric = "INP"
threshold = 200
min_samples = 1
for = "0"
resolve_margin_percent = 0

[[alerts.rules]]
name = "inp-pending"
metric = "INP"
threshold = 150
min_samples = 1
for = "1s"
resolve_margin_percent = 0
"#;

/// Finding 1: the alert engine's writes (a second writer of the metric
/// store's file) made re-reports fail with `500 database is locked`.
#[test]
fn re_reports_are_stored_while_alerts_flip_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), FLIPPING_ALERTS);
    let c = Collector::start(dir.path(), &["--config", &config, "--rate-per-ip", "0"]);
    let url = c.url("/v1/beacon");
    let acked = Mutex::new(HashMap::new());
    let failures = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, acked, failures, stop) = (&url, &acked, &failures, &stop);
            s.spawn(move || {
                let agent = client(Duration::from_secs(10));
                let mut mine: HashMap<String, f64> = HashMap::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // 8 page views per thread at a time, each re-reporting
                    // its CLS and INP as they grow, across good and poor.
                    let view = i % 8;
                    let round = i / 8;
                    let page = format!("https://a.example/p{}", (t * 8 + view) % 12);
                    let generation = round / 20; // a new page view every 20 rounds
                    let cls_id = format!("cls-{t}-{view}-{generation}");
                    let inp_id = format!("inp-{t}-{view}-{generation}");
                    let step = (round % 20) as f64;
                    let (cls, inp) = if (round / 3).is_multiple_of(2) {
                        (0.01 * (step + 1.0), 40.0 + step)
                    } else {
                        (0.3 + 0.01 * step, 600.0 + step)
                    };
                    let body = json!({"schemaVersion": 1, "page": page, "pageViewId": format!("pv-{t}-{view}-{generation}"),
                        "metrics": [
                            {"name": "CLS", "value": cls, "delta": 0.01, "id": cls_id, "rating": "good", "navigationType": "navigate"},
                            {"name": "INP", "value": inp, "delta": 1, "id": inp_id, "rating": "good", "navigationType": "navigate"},
                            {"name": "LCP", "value": 1000 + i, "delta": 1000 + i, "id": format!("lcp-{t}-{i}"), "rating": "good", "navigationType": "navigate"}
                        ]});
                    match agent
                        .post(url)
                        .header("Content-Type", "text/plain;charset=UTF-8")
                        .send(body.to_string().as_bytes())
                    {
                        Ok(r) if r.status() == 204 => {
                            mine.insert(cls_id, cls);
                            mine.insert(inp_id, inp);
                            mine.insert(format!("lcp-{t}-{i}"), (1000 + i) as f64);
                        }
                        Ok(mut r) => failures.lock().unwrap().push(format!(
                            "{}: {}",
                            r.status(),
                            r.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => failures.lock().unwrap().push(format!("request failed: {e}")),
                    }
                    i += 1;
                }
                acked.lock().unwrap().extend(mine);
            });
        }
        // Several evaluations, each flipping some series.
        std::thread::sleep(Duration::from_secs(6));
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    let acked = acked.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} beacons failed in {:?} (first: {:?})",
        failures.len(),
        started.elapsed(),
        &failures[..failures.len().min(3)]
    );
    assert!(acked.len() > 300, "the load ran: {} ids", acked.len());
    // The alerts did flip meanwhile (the test exercises what it claims).
    let alerts = c.get("/v1/alerts?state=all&history=50").json();
    let transitions: usize = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["history"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(transitions >= 6, "alert transitions: {transitions}: {alerts}");
    assert_exported(&acked, &exported_values(&c));
}
