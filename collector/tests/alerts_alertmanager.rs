//! Alerts delivered to a real Alertmanager (Debian's
//! prometheus-alertmanager, installed by scripts/setup-alertmanager.sh),
//! started and stopped by this test on a loopback port.

mod alerts_support;
mod common;

use std::time::Duration;

use alerts_support::{eventually, write_config, Alertmanager};
use common::Collector;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn send(c: &Collector, page: &str, prefix: &str, n: usize, value: f64) {
    let rating = collector::beacon::MetricName::Lcp.rate(value).as_str();
    let metrics: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": "LCP", "value": value, "delta": value, "id": format!("{prefix}-{i}"),
                   "rating": rating, "navigationType": "navigate"})
        })
        .collect();
    let r = c.beacon(&json!({"schemaVersion": 1, "page": page, "metrics": metrics}).to_string());
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn alertmanager_receives_lists_and_resolves_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(dir.path());
    let config = write_config(
        dir.path(),
        &format!(
            "[alerts]\nevaluation_interval = \"200ms\"\n\
             [[alerts.receivers]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"{}\"\nresend_interval = \"500ms\"\n\
             [[alerts.rules]]\nname = \"lcp-slow\"\nmetric = \"LCP\"\nthreshold = 4000\nmin_samples = 20\n\
             for = \"0s\"\nseverity = \"critical\"\n",
            am.url
        ),
    );
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let page = "http://shop.example/cart";
    send(&c, page, "slow", 20, 6000.0);

    let ours = |am: &Alertmanager| am.alerts().into_iter().find(|a| a["labels"]["alertname"] == "lcp-slow");
    let alert = eventually("Alertmanager to list the alert", WAIT, || ours(&am));
    assert_eq!(alert["labels"]["page"], page);
    assert_eq!(alert["labels"]["site"], "shop.example");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["metric"], "LCP");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["annotations"]["value"], "6000 ms");
    assert_eq!(alert["annotations"]["threshold"], "4000 ms");
    assert_eq!(alert["annotations"]["sample_count"], "20");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/?view=page&site=shop.example"),
        "{alert}"
    );
    assert_eq!(alert["receivers"], json!([{"name": "blackhole"}]));

    // Alertmanager drops an alert not re-sent before its endsAt (4 resend
    // intervals, 2 s): still listed well after that, so the collector
    // re-sends.
    std::thread::sleep(Duration::from_millis(3500));
    let still = ours(&am).expect("the firing alert is kept alive by re-sends");
    assert_eq!(still["startsAt"], alert["startsAt"]);
    assert_eq!(still["fingerprint"], alert["fingerprint"]);

    // Good reports: the collector resolves it, and Alertmanager lists it no more.
    send(&c, page, "fast", 80, 900.0);
    eventually("Alertmanager to drop the resolved alert", WAIT, || {
        ours(&am).is_none().then_some(())
    });
    let (_, list) = {
        let r = c.get("/v1/alerts?state=resolved");
        (r.status, r.json())
    };
    assert_eq!(list["alerts"][0]["state"], "resolved");
    let d = &list["deliveries"][0];
    assert_eq!(
        (d["receiver"].as_str(), d["dead"].as_u64(), d["pending"].as_u64()),
        (Some("am"), Some(0), Some(0))
    );
    assert!(d["sent"].as_u64().unwrap() >= 3, "first, re-sends and resolved: {d}");
}
