//! Alerts end to end: the real collector binary evaluating rules against
//! its SQLite store every 200 ms, delivering to real HTTP receivers on
//! loopback that fail as told and record what they get.

mod alerts_support;
mod common;

use std::time::Duration;

use alerts_support::{agent, eventually, expected_signature, write_config, Recorded, Sink};
use common::Collector;
use serde_json::{json, Value};

const SECRET: &str = "s3cret-for-hmac";
const SITE: &str = "site.example";
const WAIT: Duration = Duration::from_secs(20);

/// One beacon with `n` reports of `metric` (distinct ids `prefix-i`).
fn beacon(page: &str, metric: &str, prefix: &str, n: usize, value: f64) -> String {
    let rating = collector::beacon::MetricName::parse(metric)
        .unwrap()
        .rate(value)
        .as_str();
    let metrics: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": metric, "value": value, "delta": value, "id": format!("{prefix}-{i}"),
                   "rating": rating, "navigationType": "navigate"})
        })
        .collect();
    json!({"schemaVersion": 1, "page": page, "metrics": metrics}).to_string()
}

fn send(c: &Collector, page: &str, metric: &str, prefix: &str, n: usize, value: f64) {
    let r = c.beacon(&beacon(page, metric, prefix, n, value));
    assert_eq!(r.status, 204, "{}", r.body);
}

/// `(status, body)` of an API call with the given key.
fn call(c: &Collector, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let url = c.url(path);
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(&url);
            if let Some(k) = key {
                r = r.header("X-API-Key", k);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(&url);
            if let Some(k) = key {
                r = r.header("X-API-Key", k);
            }
            r.call()
        }
        (_, body) => {
            let mut r = a.post(&url).header("Content-Type", "application/json");
            if let Some(k) = key {
                r = r.header("X-API-Key", k);
            }
            r.send(body.unwrap_or(json!({})).to_string().as_str())
        }
    }
    .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn alerts(c: &Collector, query: &str) -> Vec<Value> {
    let (status, body) = call(c, "GET", &format!("/v1/alerts{query}"), None, None);
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

fn with_status<'a>(requests: &'a [Recorded], status: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|r| r.alert_status() == status).collect()
}

fn accepted(requests: &[Recorded], status: &str) -> usize {
    with_status(requests, status).iter().filter(|r| r.accepted()).count()
}

fn webhook(name: &str, url: &str, extra: &str) -> String {
    format!("[[alerts.receivers]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"{url}\"\n{extra}\n")
}

fn history(alert: &Value) -> Vec<String> {
    alert["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fires_once_through_retries_signed_then_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    // 429 with Retry-After, then two 5xx, then accepted.
    let hook = Sink::start(Box::new(|i| match i {
        0 => (429, vec![("Retry-After".into(), "1".into())]),
        1 => (503, vec![]),
        2 => (500, vec![]),
        _ => (200, vec![]),
    }));
    let slack = Sink::ok();
    let config = write_config(
        dir.path(),
        &format!(
            "[alerts]\nevaluation_interval = \"200ms\"\n{}{}\n\
             [[alerts.rules]]\nname = \"lcp-slow\"\nmetric = \"LCP\"\nthreshold = 4000\nmin_samples = 20\n\
             for = \"600ms\"\nrepeat_interval = \"1h\"\nseverity = \"critical\"\n",
            webhook(
                "hook",
                &hook.url,
                &format!(
                    "secret = \"{SECRET}\"\ninitial_backoff = \"100ms\"\nmax_backoff = \"400ms\"\nmax_attempts = 6"
                )
            ),
            format_args!(
                "[[alerts.receivers]]\nname = \"chat\"\ntype = \"slack\"\nurl = \"{}\"\n",
                slack.url
            ),
        ),
    );
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let page = format!("http://{SITE}/checkout");

    // 19 poor reports: one short of the rule's minimum. Nothing happens.
    send(&c, &page, "LCP", "slow", 19, 5000.0);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(hook.requests().is_empty(), "{:?}", hook.requests());
    assert!(alerts(&c, "?state=all").is_empty());

    // The 20th: p75 = 5000 > 4000 with enough samples. Pending, then firing.
    send(&c, &page, "LCP", "slow-last", 1, 5000.0);
    let pending = eventually("the alert to be pending or firing", WAIT, || {
        alerts(&c, "").into_iter().next()
    });
    assert!(
        ["pending", "firing"].contains(&pending["state"].as_str().unwrap()),
        "{pending}"
    );
    let got = hook.wait_for("an accepted firing notification", WAIT, |r| accepted(r, "firing") == 1);
    let firing = with_status(&got, "firing");
    assert_eq!(
        firing.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 503, 500, 200]
    );
    let key = firing[0]
        .header("idempotency-key")
        .expect("an Idempotency-Key")
        .to_string();
    for r in &firing {
        assert_eq!(
            r.header("idempotency-key"),
            Some(key.as_str()),
            "one key across retries"
        );
        assert_eq!(
            r.header("x-vitalsign-signature"),
            Some(expected_signature(SECRET, &r.body).as_str())
        );
        assert_eq!(r.path, "/hook");
    }
    assert!(
        firing[1].at - firing[0].at >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured: {:?}",
        firing[1].at - firing[0].at
    );
    let body = firing[3].json();
    assert_eq!(
        (
            body["version"].as_str(),
            body["status"].as_str(),
            body["receiver"].as_str()
        ),
        (Some("4"), Some("firing"), Some("hook"))
    );
    let a = &body["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "lcp-slow");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["site"], SITE);
    assert_eq!(a["labels"]["page"], page.as_str());
    assert_eq!(a["labels"]["form_factor"], "all");
    assert_eq!(
        (a["value"].as_f64(), a["threshold"].as_f64(), a["sampleCount"].as_u64()),
        (Some(5000.0), Some(4000.0), Some(20))
    );
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    let link = a["dashboardURL"].as_str().unwrap();
    assert!(
        link.starts_with(&format!(
            // The dashboard's detail view of the page (`/dashboard` was a 404).
            "http://{}/?view=page&site={SITE}&page=http%3A%2F%2F{SITE}%2Fcheckout&metric=LCP&window=",
            c.addr
        )),
        "{link}"
    );
    assert!(a["annotations"]["summary"].as_str().unwrap().contains("5000 ms"), "{a}");
    let chat = slack.wait_for("a Slack message", WAIT, |r| r.len() == 1);
    let text = chat[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("[FIRING] lcp-slow (critical)"), "{text}");

    let listed = alerts(&c, "");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let alert = &listed[0];
    assert_eq!(alert["state"], "firing");
    assert_eq!(
        (alert["value"].as_f64(), alert["sampleCount"].as_u64()),
        (Some(5000.0), Some(20))
    );
    assert_eq!(alert["fingerprint"], a["fingerprint"]);
    assert_eq!(history(alert), ["pending", "firing"]);

    // Still firing for many more evaluations: not a word more.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(hook.requests().len(), 4);
    assert_eq!(slack.requests().len(), 1);

    // 60 good reports: p75 = 1000, well under 4000 - 5 %.
    send(&c, &page, "LCP", "fast", 60, 1000.0);
    let got = hook.wait_for("a resolved notification", WAIT, |r| accepted(r, "resolved") == 1);
    let resolved = with_status(&got, "resolved");
    assert_eq!(resolved.len(), 1);
    let body = resolved[0].json();
    let r = &body["alerts"][0];
    assert_eq!(r["fingerprint"], a["fingerprint"]);
    assert_eq!(r["startsAt"], a["startsAt"]);
    assert_ne!(r["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        (r["value"].as_f64(), r["sampleCount"].as_u64()),
        (Some(1000.0), Some(80))
    );
    assert_ne!(resolved[0].header("idempotency-key"), Some(key.as_str()));
    assert_eq!(
        resolved[0].header("x-vitalsign-signature"),
        Some(expected_signature(SECRET, &resolved[0].body).as_str())
    );
    slack.wait_for("a resolved Slack message", WAIT, |r| r.len() == 2);

    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        hook.requests().len(),
        5,
        "exactly one firing (4 attempts) and one resolved"
    );
    assert_eq!(slack.requests().len(), 2);
    let done = alerts(&c, "?state=resolved");
    assert_eq!(done.len(), 1);
    assert_eq!(history(&done[0]), ["pending", "firing", "resolved"]);
    let (_, list) = call(&c, "GET", "/v1/alerts?state=all", None, None);
    assert_eq!(
        list["deliveries"],
        json!([
            {"receiver": "chat", "pending": 0, "sent": 2, "dead": 0},
            {"receiver": "hook", "pending": 0, "sent": 2, "dead": 0},
        ])
    );
}

#[test]
fn too_few_samples_never_fire_with_the_default_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::ok();
    let config = write_config(
        dir.path(),
        &format!(
            "[alerts]\nevaluation_interval = \"200ms\"\n{}\n\
             [[alerts.rules]]\nname = \"inp-slow\"\nmetric = \"INP\"\nthreshold = 500\nfor = \"0s\"\n",
            webhook("hook", &hook.url, "")
        ),
    );
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let page = format!("http://{SITE}/search");
    // 199 terrible reports: below the default minimum of 200.
    send(&c, &page, "INP", "a", 199, 2000.0);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(hook.requests().is_empty());
    assert!(alerts(&c, "?state=all").is_empty());
    let (_, rules) = call(&c, "GET", "/v1/alerts/rules", None, None);
    assert_eq!(rules["rules"][0]["minSamples"], 200);
    // The 200th.
    send(&c, &page, "INP", "b", 1, 2000.0);
    let got = hook.wait_for("the firing notification", WAIT, |r| r.len() == 1);
    assert_eq!(got[0].json()["alerts"][0]["sampleCount"], 200);
}

#[test]
fn builtin_rules_apply_when_none_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let (status, body) = call(&c, "GET", "/v1/alerts/rules", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evaluationInterval"], "30s");
    let rules: Vec<(String, String, f64, String, String, u64, bool)> = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].as_str().unwrap().into(),
                r["percentile"].to_string(),
                r["threshold"].as_f64().unwrap(),
                r["severity"].as_str().unwrap().into(),
                r["window"].as_str().unwrap().into(),
                r["minSamples"].as_u64().unwrap(),
                r["builtin"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = |m: &str, t: f64, s: &str| {
        (
            m.to_string(),
            "75.0".to_string(),
            t,
            s.to_string(),
            "1h".to_string(),
            200,
            true,
        )
    };
    assert_eq!(
        rules,
        vec![
            want("LCP", 4000.0, "critical"),
            want("INP", 500.0, "critical"),
            want("CLS", 0.25, "warning"),
            want("FCP", 3000.0, "warning"),
            want("TTFB", 1800.0, "warning"),
        ]
    );
}

#[test]
fn a_restart_mid_firing_neither_duplicates_nor_loses() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::failing_first(2, 503);
    let config = write_config(
        dir.path(),
        &format!(
            "[alerts]\nevaluation_interval = \"200ms\"\n{}\n\
             [[alerts.rules]]\nname = \"cls-shift\"\nmetric = \"CLS\"\nthreshold = 0.25\nmin_samples = 20\n\
             for = \"0s\"\nrepeat_interval = \"1h\"\n",
            webhook(
                "hook",
                &hook.url,
                "initial_backoff = \"1500ms\"\nmax_backoff = \"1500ms\""
            )
        ),
    );
    let args = ["--config", config.to_str().unwrap()];
    let c = Collector::start(dir.path(), &args);
    let page = format!("http://{SITE}/article");
    send(&c, &page, "CLS", "shift", 20, 0.5);
    // The first attempt failed; the retry is due in about a second.
    hook.wait_for("the first attempt", WAIT, |r| r.len() == 1);
    let before = alerts(&c, "");
    assert_eq!(before[0]["state"], "firing");
    c.kill(); // SIGKILL: no chance to tidy up

    let c = Collector::start(dir.path(), &args);
    let got = hook.wait_for("the firing notification after the restart", WAIT, |r| {
        accepted(r, "firing") == 1
    });
    let after = alerts(&c, "");
    assert_eq!(after.len(), 1);
    for k in ["id", "fingerprint", "firedAt", "state"] {
        assert_eq!(after[0][k], before[0][k], "{k}");
    }
    std::thread::sleep(Duration::from_millis(1000));
    let got2 = hook.requests();
    assert_eq!(got2.len(), got.len(), "nothing more after delivery");
    assert_eq!(got2.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 503, 200]);
    let keys: std::collections::HashSet<_> = got2
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 1, "the same notification, retried: {keys:?}");

    // A clean restart too: still firing, still silent.
    assert!(c.terminate().success());
    let c = Collector::start(dir.path(), &args);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(hook.requests().len(), 3);
    assert_eq!(alerts(&c, "")[0]["state"], "firing");
    send(&c, &page, "CLS", "steady", 60, 0.01);
    hook.wait_for("the resolved notification", WAIT, |r| accepted(r, "resolved") == 1);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(hook.requests().len(), 4);
}

#[test]
fn client_errors_are_dead_lettered_without_retry() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::start(Box::new(|_| (400, vec![])));
    let config = write_config(
        dir.path(),
        &format!(
            "[alerts]\nevaluation_interval = \"200ms\"\n{}\n\
             [[alerts.rules]]\nname = \"ttfb\"\nmetric = \"TTFB\"\nthreshold = 1800\nmin_samples = 5\nfor = \"0s\"\n",
            webhook("hook", &hook.url, "initial_backoff = \"50ms\"")
        ),
    );
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    send(&c, &format!("http://{SITE}/"), "TTFB", "t", 5, 3000.0);
    hook.wait_for("the attempt", WAIT, |r| r.len() == 1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(hook.requests().len(), 1, "a 400 is not retried");
    let (_, list) = call(&c, "GET", "/v1/alerts", None, None);
    assert_eq!(
        list["deliveries"],
        json!([{"receiver": "hook", "pending": 0, "sent": 0, "dead": 1}])
    );
    let dead = c.metric_sample("vitalsign_alert_notifications{receiver=\"hook\",delivery=\"dead\"}");
    assert_eq!(dead, Some(1.0));
    assert_eq!(c.metric_sample("vitalsign_alerts{state=\"firing\"}"), Some(1.0));
}

#[test]
fn acknowledge_and_silence_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::ok();
    let config = write_config(
        dir.path(),
        &format!(
            "api_keys = [\"admin-key\"]\n\n\
             [[sites]]\nhost = \"{SITE}\"\napi_keys = [\"site-key\"]\n\
             [[sites]]\nhost = \"other.example\"\napi_keys = [\"other-key\"]\n\n\
             [alerts]\nevaluation_interval = \"200ms\"\n{}\n\
             [[alerts.rules]]\nname = \"lcp\"\nmetric = \"LCP\"\nthreshold = 4000\nmin_samples = 5\nfor = \"0s\"\n\
             repeat_interval = \"1s\"\n",
            webhook("hook", &hook.url, "")
        ),
    )
    .to_str()
    .unwrap()
    .to_string();
    let c = Collector::start(dir.path(), &["--config", &config]);
    let key = Some("admin-key");
    let (a, b) = (format!("http://{SITE}/a"), format!("http://{SITE}/b"));
    for path in ["/v1/alerts", "/v1/alerts/rules", "/v1/silences"] {
        assert_eq!(call(&c, "GET", path, None, None).0, 401, "{path}");
        assert_eq!(call(&c, "GET", path, Some("wrong"), None).0, 401, "{path}");
    }
    assert_eq!(call(&c, "POST", "/v1/silences", None, Some(json!({}))).0, 401);

    // Silence page b before it goes bad.
    let (status, silence) = call(
        &c,
        "POST",
        "/v1/silences",
        key,
        Some(
            json!({"matchers": {"page": "*/b", "alertname": "lcp"}, "duration": "1h",
                    "createdBy": "carol", "comment": "deploying b"}),
        ),
    );
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["active"], true);
    let bad = call(
        &c,
        "POST",
        "/v1/silences",
        key,
        Some(json!({"matchers": {"colour": "red"}, "duration": "1h", "createdBy": "x"})),
    );
    assert_eq!(bad.0, 400, "{}", bad.1);

    send(&c, &a, "LCP", "a", 5, 9000.0);
    send(&c, &b, "LCP", "b", 5, 9000.0);
    let page_of = |r: &Recorded| r.json()["alerts"][0]["labels"]["page"].as_str().unwrap().to_string();
    // a: the first notification and a repeat a second later.
    hook.wait_for("a first and repeated notification for a", WAIT, |r| {
        r.iter().filter(|x| page_of(x) == a).count() >= 2
    });
    let listed = |c: &Collector| -> Vec<Value> {
        let (status, body) = call(c, "GET", "/v1/alerts", key, None);
        assert_eq!(status, 200, "{body}");
        body["alerts"].as_array().unwrap().clone()
    };
    let find = |list: &[Value], page: &str| list.iter().find(|x| x["page"] == page).cloned().unwrap();
    let list = listed(&c);
    let (alert_a, alert_b) = (find(&list, &a), find(&list, &b));
    assert_eq!(
        (alert_a["state"].as_str(), alert_b["state"].as_str()),
        (Some("firing"), Some("firing"))
    );
    assert_eq!(alert_b["silencedBy"], json!([silence["id"]]));
    assert_eq!(alert_a["silencedBy"], json!([]));

    let id = alert_a["id"].as_i64().unwrap();
    let (status, acked) = call(
        &c,
        "POST",
        &format!("/v1/alerts/{id}/ack"),
        key,
        Some(json!({"by": "alice", "comment": "on it"})),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["acknowledged"]["by"], "alice");
    assert_eq!(history(&acked).last().unwrap(), "acknowledged");
    // A repeat the evaluator wrote just before the ack may still arrive.
    std::thread::sleep(Duration::from_millis(500));
    let sent_a = hook.requests().iter().filter(|x| page_of(x) == a).count();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        hook.requests().iter().filter(|x| page_of(x) == a).count(),
        sent_a,
        "acknowledged: no repeats"
    );
    assert!(hook.requests().iter().all(|x| page_of(x) != b), "b is silenced");

    assert_eq!(
        call(&c, "POST", "/v1/alerts/999999/ack", key, Some(json!({"by": "x"}))).0,
        404
    );
    // A site's key sees its own site's alerts only, and acts on them only.
    let (status, mine) = call(&c, "GET", "/v1/alerts", Some("site-key"), None);
    assert_eq!((status, mine["alerts"].as_array().unwrap().len()), (200, 2), "{mine}");
    let (status, theirs) = call(&c, "GET", "/v1/alerts", Some("other-key"), None);
    assert_eq!(
        (status, theirs["alerts"].as_array().unwrap().len()),
        (200, 0),
        "{theirs}"
    );
    assert_eq!(
        call(&c, "GET", &format!("/v1/alerts?site={SITE}"), Some("other-key"), None).0,
        403
    );
    assert_eq!(
        call(&c, "GET", &format!("/v1/alerts/{id}"), Some("other-key"), None).0,
        404
    );
    let eve = Some(json!({"by": "eve"}));
    assert_eq!(
        call(&c, "POST", &format!("/v1/alerts/{id}/ack"), Some("other-key"), eve).0,
        404
    );
    let no_site = json!({"matchers": {"page": "*"}, "duration": "1h", "createdBy": "eve"});
    assert_eq!(
        call(&c, "POST", "/v1/silences", Some("other-key"), Some(no_site)).0,
        403
    );
    let (_, visible) = call(&c, "GET", "/v1/silences", Some("other-key"), None);
    assert_eq!(visible["silences"], json!([]));
    let (status, one) = call(&c, "GET", &format!("/v1/alerts/{id}"), Some("site-key"), None);
    assert_eq!((status, one["acknowledged"]["by"].as_str()), (200, Some("alice")));
    assert_eq!(
        call(
            &c,
            "POST",
            &format!("/v1/alerts/{id}/ack"),
            key,
            Some(json!({"comment": "who?"}))
        )
        .0,
        400
    );
    let (status, listed_silences) = call(&c, "GET", "/v1/silences", key, None);
    assert_eq!(status, 200);
    assert_eq!(listed_silences["silences"][0]["createdBy"], "carol");

    // Ending the silence lets b's notification through.
    let (status, ended) = call(&c, "DELETE", &format!("/v1/silences/{}", silence["id"]), key, None);
    assert_eq!((status, ended["active"].as_bool()), (200, Some(false)));
    hook.wait_for("b's notification", WAIT, |r| r.iter().any(|x| page_of(x) == b));

    // A resolved alert cannot be acknowledged.
    send(&c, &a, "LCP", "a-good", 30, 100.0);
    eventually("a to resolve", WAIT, || {
        (find(&listed(&c), &a)["state"] == "resolved").then_some(())
    });
    let (status, body) = call(
        &c,
        "POST",
        &format!("/v1/alerts/{id}/ack"),
        key,
        Some(json!({"by": "bob"})),
    );
    assert_eq!(status, 409, "{body}");
}
