//! The alert state shared by collectors on one ClickHouse (the real
//! binary, `--store clickhouse`, against the chDB HTTP front end
//! `tests/clickhouse/shim.py` as a real server process): the lease holder
//! is killed and the next one goes on from its state (no second firing
//! notification, the resolved one once; a notification it could not
//! deliver is delivered once by the next), and acknowledgements and
//! silences posted to a collector that does not hold the lease take
//! effect.

mod alerts_support;
mod common;

#[path = "../src/store/clickhouse/shim_process.rs"]
mod shim_process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alerts_support::{agent, eventually, write_config, Recorded, Sink};
use common::Collector;
use serde_json::{json, Value};
use shim_process::Shim;

const SITE: &str = "site.example";
const WAIT: Duration = Duration::from_secs(60);

fn beacon(page: &str, prefix: &str, n: usize, value: f64) -> String {
    let metrics: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": "LCP", "value": value, "delta": value, "id": format!("{prefix}-{i}"),
                   "rating": "good", "navigationType": "navigate"})
        })
        .collect();
    json!({"schemaVersion": 1, "page": page, "metrics": metrics}).to_string()
}

/// Two collectors on one database, each with its own data directory; the
/// lease's term is 6 s (the shortest), evaluations every 300 ms.
struct Pair {
    root: tempfile::TempDir,
    /// Kept running while the pair is.
    _shim: Shim,
    config: String,
}

impl Pair {
    fn new(hook_url: &str) -> Pair {
        let root = tempfile::tempdir().unwrap();
        let shim = Shim::start(&root.path().join("ch"));
        let config = format!(
            "store = \"clickhouse\"\n[clickhouse]\nurl = \"{}\"\ndatabase = \"alertstate\"\nlease_term = \"6s\"\n\
             [alerts]\nevaluation_interval = \"300ms\"\n\
             [[alerts.receivers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\n\
             initial_backoff = \"100ms\"\nmax_backoff = \"300ms\"\nmax_attempts = 1000\n\
             [[alerts.rules]]\nname = \"lcp-slow\"\nmetric = \"LCP\"\nthreshold = 4000\nmin_samples = 20\n\
             for = \"0s\"\nrepeat_interval = \"1h\"\nseverity = \"critical\"\n",
            shim.url()
        );
        Pair {
            root,
            _shim: shim,
            config,
        }
    }

    fn start(&self, name: &str) -> Collector {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = write_config(&dir, &self.config);
        Collector::start(&dir, &["--config", config.to_str().unwrap()])
    }

    /// Starts `a`, waits until it holds the lease, then starts `b`.
    fn start_holder_first(&self) -> (Collector, Collector) {
        let a = self.start("a");
        eventually("a to take the lease", WAIT, || holds(&a).then_some(()));
        let b = self.start("b");
        (a, b)
    }
}

fn holds(c: &Collector) -> bool {
    c.metric_sample("vitalsign_alert_lease_held") == Some(1.0)
}

/// Notifications of `receiver="hook"` in `delivery` state in the collector's
/// copy of the state.
fn outbox(c: &Collector, delivery: &str) -> f64 {
    c.metric_sample(&format!(
        "vitalsign_alert_notifications{{receiver=\"hook\",delivery=\"{delivery}\"}}"
    ))
    .unwrap_or(0.0)
}

fn with_status<'a>(requests: &'a [Recorded], status: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|r| r.alert_status() == status).collect()
}

fn accepted(requests: &[Recorded], status: &str) -> usize {
    with_status(requests, status).iter().filter(|r| r.accepted()).count()
}

fn alerts(c: &Collector) -> Vec<Value> {
    let r = c.get("/v1/alerts?state=all");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["alerts"].as_array().unwrap().clone()
}

fn send(c: &Collector, body: impl AsRef<[u8]>, method: &str, path: &str) -> (u16, Value) {
    let url = c.url(path);
    let a = agent();
    let resp = match method {
        "POST" => a
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.as_ref()),
        "DELETE" => a.delete(&url).call(),
        _ => a.get(&url).call(),
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// 40 slow reports: p75 = 6000, over the 4000 threshold.
fn make_it_fire(c: &Collector, page: &str) {
    for i in 0..4 {
        let r = c.beacon(&beacon(page, &format!("slow{i}"), 10, 6000.0));
        assert_eq!(r.status, 204, "{}", r.body);
    }
}

#[test]
fn the_next_holder_goes_on_from_the_state_no_second_firing_and_one_resolved() {
    let hook = Sink::ok();
    let pair = Pair::new(&hook.url);
    let (a, b) = pair.start_holder_first();
    let page = format!("http://{SITE}/checkout");
    make_it_fire(&b, &page);
    hook.wait_for("a firing notification", WAIT, |r| accepted(r, "firing") == 1);
    // B follows: its copy shows the alert and the notification sent.
    eventually("b to load the state with the delivery", WAIT, || {
        (outbox(&b, "sent") == 1.0).then_some(())
    });
    assert!(!holds(&b));
    let listed = alerts(&b);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "firing");
    a.kill();
    eventually("b to take the lease over", WAIT, || holds(&b).then_some(()));
    // Many evaluations by the new holder: the alert still firing, no new
    // notification.
    std::thread::sleep(Duration::from_secs(2));
    let all = hook.requests();
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|r| r.alert_status()).collect::<Vec<_>>()
    );
    assert_eq!(alerts(&b)[0]["state"], "firing");
    // 200 fast reports: p75 = 1000, resolved, notified once.
    let r = b.beacon(&beacon(&page, "fast", 200, 1000.0));
    assert_eq!(r.status, 204, "{}", r.body);
    hook.wait_for("a resolved notification", WAIT, |r| accepted(r, "resolved") == 1);
    std::thread::sleep(Duration::from_secs(2));
    let all = hook.requests();
    assert_eq!(
        (accepted(&all, "firing"), accepted(&all, "resolved"), all.len()),
        (1, 1, 2)
    );
    // A comes back: it follows B's state and sends nothing.
    let a = pair.start("a");
    eventually("a to load b's state", WAIT, || {
        (outbox(&a, "sent") == 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(alerts(&a)[0]["state"], "resolved");
    b.terminate();
    a.terminate();
}

#[test]
fn a_notification_the_dead_holder_could_not_deliver_is_delivered_once_by_the_next() {
    let down = Arc::new(AtomicBool::new(true));
    let hook = {
        let down = down.clone();
        Sink::start(Box::new(move |_| {
            if down.load(Ordering::SeqCst) {
                (500, vec![])
            } else {
                (200, vec![])
            }
        }))
    };
    let pair = Pair::new(&hook.url);
    let (a, b) = pair.start_holder_first();
    let page = format!("http://{SITE}/checkout");
    make_it_fire(&a, &page);
    hook.wait_for("a few failed attempts", WAIT, |r| with_status(r, "firing").len() >= 3);
    // B's copy of the state has it, pending.
    eventually("b to load the pending notification", WAIT, || {
        (outbox(&b, "pending") == 1.0).then_some(())
    });
    a.kill();
    // A request A had in flight is answered (500) and recorded first.
    std::thread::sleep(Duration::from_millis(300));
    let failed = hook.requests().len();
    down.store(false, Ordering::SeqCst);
    let got = hook.wait_for("the notification delivered", WAIT, |r| accepted(r, "firing") == 1);
    assert!(holds(&b));
    std::thread::sleep(Duration::from_secs(2));
    let all = hook.requests();
    assert_eq!(accepted(&all, "firing"), 1, "{} requests", all.len());
    assert_eq!(all.len(), failed + 1, "attempts after the takeover: one");
    // The same notification: the same idempotency key throughout.
    let key = got[0].header("idempotency-key").unwrap().to_string();
    assert!(all.iter().all(|r| r.header("idempotency-key") == Some(key.as_str())));
    eventually("b's outbox to show it sent", WAIT, || {
        (outbox(&b, "sent") == 1.0 && outbox(&b, "pending") == 0.0).then_some(())
    });
    b.terminate();
}

#[test]
fn acknowledgements_and_silences_posted_to_a_collector_without_the_lease_take_effect() {
    let hook = Sink::ok();
    let pair = Pair::new(&hook.url);
    let (a, b) = pair.start_holder_first();
    let page = format!("http://{SITE}/checkout");
    make_it_fire(&a, &page);
    hook.wait_for("a firing notification", WAIT, |r| accepted(r, "firing") == 1);
    let id = eventually("b to list the alert", WAIT, || {
        alerts(&b).first().and_then(|x| x["id"].as_i64())
    });
    // Acknowledged through B: handed to A, visible on both.
    let (status, body) = send(
        &b,
        json!({"by": "oncall", "comment": "on it"}).to_string(),
        "POST",
        &format!("/v1/alerts/{id}/ack"),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], true);
    for c in [&a, &b] {
        eventually("the acknowledgement everywhere", WAIT, || {
            let (_, alert) = send(c, "", "GET", &format!("/v1/alerts/{id}"));
            (alert["acknowledged"]["by"] == "oncall").then_some(())
        });
    }
    // Not firing alerts, unknown ids: refused by B as by A.
    let (status, _) = send(&b, json!({"by": "x"}).to_string(), "POST", "/v1/alerts/999/ack");
    assert_eq!(status, 404);
    // A silence through B, then expired through B.
    let (status, body) = send(
        &b,
        json!({"matchers": {"site": SITE}, "duration": "2h", "createdBy": "oncall", "comment": "deploy"}).to_string(),
        "POST",
        "/v1/silences",
    );
    assert_eq!(status, 202, "{body}");
    let mut silence = 0;
    for c in [&a, &b] {
        silence = eventually("the silence everywhere", WAIT, || {
            let (_, list) = send(c, "", "GET", "/v1/silences");
            list["silences"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["createdBy"] == "oncall" && s["active"] == true)
                .and_then(|s| s["id"].as_i64())
        });
        eventually("the alert silenced everywhere", WAIT, || {
            let (_, alert) = send(c, "", "GET", &format!("/v1/alerts/{id}"));
            (alert["silencedBy"] == json!([silence])).then_some(())
        });
    }
    let (status, body) = send(&b, "", "DELETE", &format!("/v1/silences/{silence}"));
    assert_eq!(status, 202, "{body}");
    for c in [&a, &b] {
        eventually("the silence expired everywhere", WAIT, || {
            let (_, list) = send(c, "", "GET", "/v1/silences");
            list["silences"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["active"] == false)
                .then_some(())
        });
    }
    // Through the holder: applied at once, answered as alone.
    let (status, body) = send(
        &a,
        json!({"matchers": {"page": "*"}, "duration": "1h", "createdBy": "ops"}).to_string(),
        "POST",
        "/v1/silences",
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["active"], true);
    eventually("the holder's silence on b", WAIT, || {
        let (_, list) = send(&b, "", "GET", "/v1/silences");
        list["silences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["createdBy"] == "ops")
            .then_some(())
    });
    a.terminate();
    b.terminate();
}
