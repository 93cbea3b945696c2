//! Several collectors on one ClickHouse (the real binary, `--store
//! clickhouse`, against the chDB HTTP front end `tests/clickhouse/shim.py`
//! as a real server process): ingestion through either gives one truth,
//! an alert is evaluated and notified once across them, a collector that
//! dies is taken over (the alert state it leaves: clickhouse_alert_state.rs); a beacon is refused with 503 and `Retry-After`
//! (never 204) when ClickHouse and the spill file are both unavailable,
//! and spilled beacons are replayed when ClickHouse is back.
//! `CLICKHOUSE_URL` set: the same ingestion test against that real server
//! too.

mod alerts_support;
mod common;

#[path = "../src/store/clickhouse/shim_process.rs"]
mod shim_process;

use std::time::Duration;

use alerts_support::{eventually, write_config, Sink};
use common::Collector;
use serde_json::{json, Value};
use shim_process::Shim;

const SITE: &str = "site.example";

fn beacon(page: &str, metric: &str, prefix: &str, n: usize, value: f64) -> String {
    let metrics: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": metric, "value": value, "delta": value, "id": format!("{prefix}-{i}"),
                   "rating": "good", "navigationType": "navigate"})
        })
        .collect();
    json!({"schemaVersion": 1, "page": page, "metrics": metrics}).to_string()
}

fn count(c: &Collector, page: &str, metric: &str) -> u64 {
    common::metric(&c.summary(), page, metric)["count"]
        .as_u64()
        .unwrap_or(0)
}

fn clickhouse_config(dir: &std::path::Path, url: &str, database: &str, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!("store = \"clickhouse\"\n[clickhouse]\nurl = \"{url}\"\ndatabase = \"{database}\"\n{extra}"),
    )
}

#[test]
fn two_collectors_share_one_truth_and_send_one_notification() {
    let root = tempfile::tempdir().unwrap();
    let shim = Shim::start(&root.path().join("ch"));
    let hook = Sink::ok();
    let alerts = format!(
        "[alerts]\nevaluation_interval = \"300ms\"\n\
         [[alerts.receivers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[alerts.rules]]\nname = \"lcp-slow\"\nmetric = \"LCP\"\nthreshold = 4000\nmin_samples = 20\n\
         for = \"0s\"\nrepeat_interval = \"1h\"\nseverity = \"critical\"\n",
        hook.url
    );
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let a = Collector::start(
        &da,
        &[
            "--config",
            clickhouse_config(&da, &shim.url(), "shared", &alerts).to_str().unwrap(),
        ],
    );
    let b = Collector::start(
        &db,
        &[
            "--config",
            clickhouse_config(&db, &shim.url(), "shared", &alerts).to_str().unwrap(),
        ],
    );
    let page = format!("http://{SITE}/checkout");
    // Half the slow reports through each collector (a load balancer).
    for i in 0..4 {
        let c = if i % 2 == 0 { &a } else { &b };
        let r = c.beacon(&beacon(&page, "LCP", &format!("slow{i}"), 10, 6000.0));
        assert_eq!(r.status, 204, "{}", r.body);
    }
    // One truth: both read all 40.
    assert_eq!(count(&a, &page, "LCP"), 40);
    assert_eq!(count(&b, &page, "LCP"), 40);
    // The same re-report through the other collector counts once.
    let r = b.beacon(&beacon(&page, "LCP", "slow0", 10, 6000.0));
    assert_eq!(r.status, 204);
    assert_eq!(count(&a, &page, "LCP"), 40);
    let firing = hook.wait_for("a firing notification", Duration::from_secs(30), |r| {
        r.iter().any(|x| x.alert_status() == "firing")
    });
    // Several more evaluation rounds on both collectors: still one.
    std::thread::sleep(Duration::from_secs(3));
    let all = hook.requests();
    let fired: Vec<_> = all.iter().filter(|x| x.alert_status() == "firing").collect();
    assert_eq!(
        fired.len(),
        1,
        "{} notifications: {:?}",
        all.len(),
        all.iter().map(|r| r.alert_status()).collect::<Vec<_>>()
    );
    drop(firing);
    // Exactly one of the two evaluates; both list the alert (the other
    // from the holder's shared state).
    let holds = |c: &Collector| c.metric_sample("vitalsign_alert_lease_held") == Some(1.0);
    let listed = |c: &Collector| {
        c.get("/v1/alerts?state=firing").json()["alerts"]
            .as_array()
            .unwrap()
            .len()
    };
    eventually("the other to load the holder's state", Duration::from_secs(30), || {
        (listed(&a) == 1 && listed(&b) == 1).then_some(())
    });
    let (ha, hb) = (holds(&a), holds(&b));
    assert!(ha != hb, "a holds: {ha}, b holds: {hb}");
    // The evaluator dies: the other takes the lease over within its term
    // and goes on from the shared state (tests/clickhouse_alert_state.rs).
    let (survivor, dead) = if ha { (b, a) } else { (a, b) };
    dead.kill();
    let r = survivor.beacon(&beacon(&page, "LCP", "slow-late", 10, 6000.0));
    assert_eq!(r.status, 204);
    eventually("the survivor to evaluate", Duration::from_secs(40), || {
        (survivor.get("/v1/alerts?state=all").json()["alerts"]
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });
    survivor.terminate();
}

#[test]
fn refused_with_503_when_clickhouse_and_the_spill_both_fail_then_replayed() {
    let root = tempfile::tempdir().unwrap();
    let mut shim = Shim::start(&root.path().join("ch"));
    let dir = root.path().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let config = clickhouse_config(&dir, &shim.url(), "spilltest", "");
    let c = Collector::start(&dir, &["--config", config.to_str().unwrap()]);
    let page = format!("http://{SITE}/");
    assert_eq!(c.beacon(&beacon(&page, "LCP", "before", 3, 1000.0)).status, 204);
    shim.stop();
    // ClickHouse down, spill file blocked (a directory in its place).
    let spill = dir.join("data").join("clickhouse-spill.jsonl");
    std::fs::create_dir_all(&spill).unwrap();
    let r = c.beacon(&beacon(&page, "LCP", "refused", 3, 1000.0));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "store_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    // The spill file writable again: acknowledged (durable on disk).
    std::fs::remove_dir(&spill).unwrap();
    let r = c.beacon(&beacon(&page, "LCP", "spilled", 3, 1000.0));
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(spill.exists());
    shim.restart();
    eventually("the spilled beacon replayed", Duration::from_secs(60), || {
        (count(&c, &page, "LCP") == 6).then_some(())
    });
    eventually("the spill file emptied", Duration::from_secs(10), || {
        (!spill.exists()).then_some(())
    });
    c.terminate();
}

/// Against a real ClickHouse server when `CLICKHOUSE_URL` is set
/// (`CLICKHOUSE_USER`, `CLICKHOUSE_PASSWORD` optional); skipped otherwise.
#[test]
fn a_real_clickhouse_server_when_clickhouse_url_is_set() {
    let Ok(url) = std::env::var("CLICKHOUSE_URL") else {
        eprintln!("CLICKHOUSE_URL not set: skipping the test against a real ClickHouse server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("vitalsign_test_{}", std::process::id());
    let mut extra = String::new();
    if let Ok(u) = std::env::var("CLICKHOUSE_USER") {
        extra.push_str(&format!("user = \"{u}\"\n"));
    }
    if let Ok(p) = std::env::var("CLICKHOUSE_PASSWORD") {
        extra.push_str(&format!("password = \"{p}\"\n"));
    }
    let config = clickhouse_config(dir.path(), &url, &database, &extra);
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let page = format!("http://{SITE}/real");
    assert_eq!(c.beacon(&beacon(&page, "LCP", "r", 5, 1234.0)).status, 204);
    assert_eq!(c.beacon(&beacon(&page, "CLS", "c", 5, 0.05)).status, 204);
    assert_eq!(c.beacon(&beacon(&page, "CLS", "c", 5, 0.2)).status, 204);
    assert_eq!(count(&c, &page, "LCP"), 5);
    assert_eq!(count(&c, &page, "CLS"), 5);
    let cls = common::metric(&c.summary(), &page, "CLS");
    assert_eq!(cls["p75"], 0.2, "the re-reports' value");
    c.terminate();
}
