//! `POST /v1/beacon`, `GET /v1/summary`, `GET /healthz` against the real
//! binary and a real SQLite file.

mod common;

use common::{beacon_json, metric, Collector};
use serde_json::json;

const PAGE: &str = "http://127.0.0.1:8080/";

fn start() -> (tempfile::TempDir, Collector) {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    (dir, c)
}

/// Asserts a 400 whose `field` is `field` and whose message mentions `mentions`.
fn assert_rejected(c: &Collector, body: &str, field: Option<&str>, mentions: &str) {
    let r = c.beacon(body);
    assert_eq!(r.status, 400, "{body} -> {}", r.body);
    let j = r.json();
    let error = j["error"].as_str().expect("error message");
    assert!(error.contains(mentions), "{error:?} should mention {mentions:?}");
    assert_eq!(j["field"].as_str(), field, "{j}");
    assert!(j["reason"].is_string(), "{j}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn healthz() {
    let (_dir, c) = start();
    let r = c.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[test]
fn send_beacon_and_json_are_accepted_and_summarised() {
    let (_dir, c) = start();
    assert_eq!(c.compact_summary(), json!({"pages": []}));

    let r = c.beacon(&beacon_json(PAGE, "FCP", "f1", 100.0));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        c.post("application/json", beacon_json(PAGE, "FCP", "f2", 300.0)).status,
        204
    );
    assert_eq!(c.post("text/plain", beacon_json(PAGE, "FCP", "f3", 200.0)).status, 204);
    assert_eq!(
        c.post("Application/JSON; charset=utf-8", beacon_json(PAGE, "FCP", "f4", 400.0))
            .status,
        204
    );
    assert_eq!(
        c.beacon(&beacon_json("https://other.example/a?q=1#x", "LCP", "l1", 2000.0))
            .status,
        204
    );

    // Nearest-rank p75 of [100, 200, 300, 400] is the 3rd value.
    assert_eq!(
        c.compact_summary(),
        json!({"pages": [
            {"site": "127.0.0.1:8080", "page": PAGE, "metrics": {"FCP": {"count": 4, "p75": 300.0}}},
            {"site": "other.example", "page": "https://other.example/a", "metrics": {"LCP": {"count": 1, "p75": 2000.0}}},
        ]})
    );
    let r = c.get("/v1/summary?site=other.example");
    assert_eq!(r.status, 200);
    let pages = r.json()["pages"].as_array().unwrap().clone();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["site"], "other.example");
}

#[test]
fn a_beacon_with_several_metrics_and_no_metrics() {
    let (_dir, c) = start();
    let body = json!({
        "schemaVersion": 1, "page": PAGE,
        "metrics": [
            {"name": "TTFB", "value": 50, "delta": 50, "id": "t", "rating": "good", "navigationType": "reload"},
            {"name": "CLS", "value": 0.05, "delta": 0.05, "id": "c", "rating": "good", "navigationType": "reload"},
            {"name": "INP", "value": 120, "delta": 120, "id": "i", "rating": "good", "navigationType": "reload"},
        ]
    });
    assert_eq!(c.beacon(&body.to_string()).status, 204);
    assert_eq!(
        c.beacon(r#"{"schemaVersion":1,"page":"https://e.example/","metrics":[]}"#)
            .status,
        204
    );
    let s = c.summary();
    assert_eq!(metric(&s, PAGE, "CLS"), json!({"count": 1, "p75": 0.05}));
    assert_eq!(metric(&s, PAGE, "INP"), json!({"count": 1, "p75": 120.0}));
    assert_eq!(metric(&s, PAGE, "TTFB"), json!({"count": 1, "p75": 50.0}));
    assert_eq!(
        s["pages"].as_array().unwrap().len(),
        1,
        "a beacon without metrics adds no page"
    );
}

#[test]
fn malformed_and_wrongly_typed_beacons_are_400() {
    let (_dir, c) = start();
    let good = beacon_json(PAGE, "FCP", "f1", 100.0);

    // Where the parser stopped is named when it is inside a field.
    assert_rejected(&c, "{\"schemaVersion\": 1, \"page\":", Some("page"), "malformed JSON");
    assert_rejected(&c, "not json", None, "malformed JSON");
    assert_rejected(&c, "", None, "malformed JSON");
    assert_rejected(
        &c,
        &good.replace("\"value\":100.0", "\"value\":\"fast\""),
        Some("metrics[0].value"),
        "metrics[0].value",
    );
    assert_rejected(&c, &good.replace("\"FCP\"", "\"FID\""), Some("metrics[0].name"), "FID");
    assert_rejected(
        &c,
        &good.replace("\"schemaVersion\":1", "\"schemaVersion\":2"),
        Some("schemaVersion"),
        "schemaVersion",
    );
    assert_rejected(&c, r#"{"schemaVersion":1,"metrics":[]}"#, Some("page"), "page");
    assert_rejected(&c, &beacon_json("", "FCP", "f", 1.0), Some("page"), "page");
    assert_rejected(
        &c,
        &beacon_json("/relative/path", "FCP", "f", 1.0),
        Some("page"),
        "page",
    );
    assert_rejected(&c, &beacon_json("not a url", "FCP", "f", 1.0), Some("page"), "page");
    assert_rejected(
        &c,
        &beacon_json("ftp://x.example/", "FCP", "f", 1.0),
        Some("page"),
        "page",
    );
    assert_rejected(&c, &beacon_json(PAGE, "FCP", "", 1.0), Some("metrics[0].id"), "id");
    assert_eq!(c.compact_summary(), json!({"pages": []}), "nothing rejected was stored");
}

#[test]
fn out_of_range_values_are_400_naming_the_field() {
    let (_dir, c) = start();
    for (name, value) in [
        ("FCP", -1.0),
        ("LCP", 120_000.5),
        ("INP", 60_001.0),
        ("CLS", 10.5),
        ("TTFB", -0.001),
    ] {
        assert_rejected(
            &c,
            &beacon_json(PAGE, name, "x", value),
            Some("metrics[0].value"),
            "value",
        );
    }
    // serde_json refuses a number that overflows f64 (it does not make inf).
    let huge = beacon_json(PAGE, "LCP", "x", 1.0).replace("\"value\":1.0", "\"value\":1e309");
    assert!(huge.contains("1e309"));
    assert_rejected(&c, &huge, Some("metrics[0].value"), "number out of range");
    // NaN and Infinity are not JSON at all.
    let nan = beacon_json(PAGE, "LCP", "x", 1.0).replace("\"value\":1.0", "\"value\":NaN");
    assert_rejected(&c, &nan, Some("metrics[0].value"), "malformed JSON");
    let bad_delta = beacon_json(PAGE, "LCP", "x", 1.0).replace("\"delta\":1.0", "\"delta\":-1e308");
    assert_rejected(&c, &bad_delta, Some("metrics[0].delta"), "delta");
    assert_eq!(c.compact_summary(), json!({"pages": []}));
}

#[test]
fn too_many_metrics_is_400() {
    let (_dir, c) = start();
    let m = json!({"name": "FCP", "value": 1, "delta": 1, "id": "a", "rating": "good", "navigationType": "navigate"});
    let body = json!({"schemaVersion": 1, "page": PAGE, "metrics": vec![m; 257]});
    assert_rejected(&c, &body.to_string(), Some("metrics"), "at most 256");
}

#[test]
fn body_size_limit_is_64_kib() {
    let (_dir, c) = start();
    let good = beacon_json(PAGE, "FCP", "f1", 100.0);
    // Exactly 64 KiB (JSON may be padded with whitespace) is accepted...
    let exact = format!("{good}{}", " ".repeat(64 * 1024 - good.len()));
    assert_eq!(exact.len(), 65536);
    assert_eq!(c.beacon(&exact).status, 204);
    // ...one byte more is not.
    let r = c.beacon(&format!("{exact} "));
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("65536"));
    let r = c.beacon(&"x".repeat(1 << 20));
    assert_eq!(r.status, 413);
    // Without a Content-Length the limit is enforced while reading.
    let r = c.post_chunked("text/plain", format!("{exact} ").as_bytes());
    assert_eq!(r.status, 413, "{}", r.body);
    let r = c.post_chunked("text/plain", beacon_json(PAGE, "FCP", "f2", 50.0).as_bytes());
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(metric(&c.summary(), PAGE, "FCP")["count"], 2);
}

#[test]
fn other_content_types_are_415() {
    let (_dir, c) = start();
    let good = beacon_json(PAGE, "FCP", "f1", 100.0);
    for ct in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/jsonx",
    ] {
        let r = c.post(ct, &good);
        assert_eq!(r.status, 415, "{ct}");
        assert!(
            r.json()["error"].as_str().unwrap().contains("content type"),
            "{}",
            r.body
        );
    }
    assert_eq!(c.compact_summary(), json!({"pages": []}));
}

#[test]
fn cors_preflight() {
    let (_dir, c) = start();
    let r = c.options("/v1/beacon");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, content-encoding")
    );
}

#[test]
fn a_bad_beacon_leaves_stored_data_unchanged() {
    let (_dir, c) = start();
    for (id, v) in [("a", 100.0), ("b", 200.0)] {
        assert_eq!(c.beacon(&beacon_json(PAGE, "FCP", id, v)).status, 204);
    }
    let before = c.summary();
    // First metric valid (and re-using a stored id), second invalid: all or nothing.
    let bad = json!({"schemaVersion": 1, "page": PAGE, "metrics": [
        {"name": "FCP", "value": 5000, "delta": 4900, "id": "a", "rating": "poor", "navigationType": "navigate"},
        {"name": "FCP", "value": -5, "delta": 1, "id": "c", "rating": "good", "navigationType": "navigate"},
    ]});
    assert_rejected(&c, &bad.to_string(), Some("metrics[1].value"), "value");
    assert_rejected(&c, "{", None, "malformed");
    let after = c.summary();
    assert_eq!(common::compact(&after), common::compact(&before));
    assert_eq!(after["sites"], before["sites"]);
    assert_eq!(metric(&before, PAGE, "FCP"), json!({"count": 2, "p75": 200.0}));
}

#[test]
fn a_re_sent_report_replaces_the_earlier_value() {
    let (_dir, c) = start();
    assert_eq!(c.beacon(&beacon_json(PAGE, "CLS", "cls-1", 0.05)).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "CLS"), json!({"count": 1, "p75": 0.05}));
    assert_eq!(c.beacon(&beacon_json(PAGE, "CLS", "cls-1", 0.3)).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "CLS"), json!({"count": 1, "p75": 0.3}));
    // Same id, other metric: a separate report.
    assert_eq!(c.beacon(&beacon_json(PAGE, "INP", "cls-1", 80.0)).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "INP"), json!({"count": 1, "p75": 80.0}));
    assert_eq!(metric(&c.summary(), PAGE, "CLS")["count"], 1);
}

#[test]
fn concurrent_beacons_are_all_committed() {
    let (_dir, c) = start();
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = &c;
            s.spawn(move || {
                for i in 0..50 {
                    let r = c.beacon(&beacon_json(PAGE, "LCP", &format!("{t}-{i}"), (t * 50 + i) as f64));
                    assert_eq!(r.status, 204, "{}", r.body);
                }
            });
        }
    });
    // Values 0..200: nearest-rank p75 is the 150th smallest, 149.
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 200, "p75": 149.0}));
}
