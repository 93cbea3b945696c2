//! Every rejection path of `POST /v1/beacon` against the real binary: what
//! it answers, that it is counted, and that nothing of it is stored.

mod common;

use std::time::Duration;

use common::{beacon_json, gzip, metric, Collector};
use serde_json::{json, Value};

const PAGE: &str = "http://127.0.0.1:8080/";

fn start(args: &[&str]) -> (tempfile::TempDir, Collector) {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), args);
    (dir, c)
}

fn rejected(c: &Collector, reason: &str) -> f64 {
    c.metric_sample(&format!("vitalsign_beacons_rejected_total{{reason=\"{reason}\"}}"))
        .unwrap_or_else(|| panic!("no counter for {reason}"))
}

fn assert_nothing_stored(c: &Collector) {
    assert_eq!(c.compact_summary(), json!({"pages": []}));
}

#[test]
fn gzip_bodies_are_inflated_and_limited_after_inflation() {
    let (_dir, c) = start(&[]);
    let gz = [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")];
    let r = c.post_with(&gz, gzip(beacon_json(PAGE, "LCP", "g1", 1500.0).as_bytes()));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 1, "p75": 1500.0}));

    // Exactly 64 KiB once inflated is fine; one byte more is 413, although
    // the compressed body is tiny.
    let good = beacon_json(PAGE, "LCP", "g2", 500.0);
    let exact = format!("{good}{}", " ".repeat(64 * 1024 - good.len()));
    let small = gzip(exact.as_bytes());
    assert!(small.len() < 2000);
    assert_eq!(c.post_with(&gz, &small).status, 204);
    let bomb = gzip(format!("{exact} ").as_bytes());
    let r = c.post_with(&gz, &bomb);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["reason"], "body_too_large");
    assert!(r.json()["error"].as_str().unwrap().contains("inflates"), "{}", r.body);
    let r = c.post_with(&gz, gzip(&vec![b' '; 8 << 20]));
    assert_eq!(r.status, 413);

    let r = c.post_with(&gz, b"this is not gzip");
    assert_eq!((r.status, r.json()["reason"].clone()), (400, json!("bad_encoding")));
    let r = c.post_with(
        &[("Content-Type", "application/json"), ("Content-Encoding", "br")],
        good.as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (415, json!("unsupported_encoding"))
    );

    assert_eq!(metric(&c.summary(), PAGE, "LCP")["count"], 2);
    assert_eq!(rejected(&c, "body_too_large"), 2.0);
    assert_eq!(rejected(&c, "bad_encoding"), 1.0);
    assert_eq!(rejected(&c, "unsupported_encoding"), 1.0);
    assert_eq!(c.metric_sample("vitalsign_beacons_accepted_total"), Some(2.0));
}

/// A valid beacon with one thing changed by `f`.
fn with(f: impl FnOnce(&mut Value)) -> String {
    let mut b: Value = serde_json::from_str(&beacon_json(PAGE, "LCP", "x", 1000.0)).unwrap();
    f(&mut b);
    b.to_string()
}

#[test]
fn each_bad_field_is_400_naming_the_field_and_reason() {
    let (_dir, c) = start(&["--rate-per-ip", "0"]);
    let long = |n: usize| Value::String("x".repeat(n));
    let m = |f: &dyn Fn(&mut Value)| with(|b| f(&mut b["metrics"][0]));
    let value = |name: &str, v: f64| {
        with(|b| {
            b["metrics"][0]["name"] = json!(name);
            b["metrics"][0]["value"] = json!(v);
        })
    };
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        ("nope".into(), None, "malformed_json"),
        ("42".into(), None, "invalid_field"),
        // Nested deeper than JSON parsers go, in a known or an unknown field.
        (
            with(|b| b["metrics"][0]["value"] = json!("DEEP"))
                .replace("\"DEEP\"", &format!("{}{}", "[".repeat(200), "]".repeat(200))),
            None,
            "malformed_json",
        ),
        (
            format!(
                "{{\"schemaVersion\":1,\"deep\":{}1{}}}",
                "{\"a\":".repeat(300),
                "}".repeat(300)
            ),
            None,
            "malformed_json",
        ),
        (
            with(|b| b["schemaVersion"] = json!(2)),
            Some("schemaVersion"),
            "unsupported_schema_version",
        ),
        (
            with(|b| {
                b.as_object_mut().unwrap().remove("page");
            }),
            Some("page"),
            "invalid_field",
        ),
        (
            with(|b| b["page"] = json!("ftp://x.example/")),
            Some("page"),
            "invalid_page",
        ),
        (with(|b| b["page"] = json!(7)), Some("page"), "invalid_field"),
        (
            with(|b| b["page"] = json!(format!("https://x.example/{}", "a".repeat(2048)))),
            Some("page"),
            "string_too_long",
        ),
        (
            with(|b| b["pageViewId"] = json!("")),
            Some("pageViewId"),
            "invalid_field",
        ),
        (
            with(|b| b["pageViewId"] = long(129)),
            Some("pageViewId"),
            "string_too_long",
        ),
        (
            with(|b| b["sessionId"] = long(129)),
            Some("sessionId"),
            "string_too_long",
        ),
        (
            with(|b| b["navigationType"] = json!("teleport")),
            Some("navigationType"),
            "invalid_field",
        ),
        (
            with(|b| b["formFactor"] = json!("watch")),
            Some("formFactor"),
            "invalid_field",
        ),
        (
            with(|b| b["effectiveType"] = long(17)),
            Some("effectiveType"),
            "string_too_long",
        ),
        (
            with(|b| b["deviceMemory"] = json!(-1)),
            Some("deviceMemory"),
            "value_out_of_range",
        ),
        (
            with(|b| b["deviceMemory"] = json!("8")),
            Some("deviceMemory"),
            "invalid_field",
        ),
        (with(|b| b["metrics"] = json!({})), Some("metrics"), "invalid_field"),
        (
            with(|b| {
                let one = b["metrics"][0].clone();
                b["metrics"] = json!(vec![one; 257]);
            }),
            Some("metrics"),
            "too_many_metrics",
        ),
        (
            m(&|x| x["name"] = json!("FID")),
            Some("metrics[0].name"),
            "unknown_metric",
        ),
        (m(&|x| x["name"] = json!(3)), Some("metrics[0].name"), "invalid_field"),
        (
            m(&|x| x["value"] = json!("fast")),
            Some("metrics[0].value"),
            "invalid_field",
        ),
        (
            m(&|x| x["value"] = json!(null)),
            Some("metrics[0].value"),
            "invalid_field",
        ),
        (
            with(|b| b["metrics"][0]["value"] = json!(1)).replace("\"value\":1", "\"value\":1e309"),
            Some("metrics[0].value"),
            "value_out_of_range",
        ),
        (
            with(|b| b["metrics"][0]["value"] = json!(1)).replace("\"value\":1", "\"value\":NaN"),
            Some("metrics[0].value"),
            "malformed_json",
        ),
        (value("FCP", -1.0), Some("metrics[0].value"), "value_out_of_range"),
        (value("LCP", 120_000.5), Some("metrics[0].value"), "value_out_of_range"),
        (value("TTFB", -0.001), Some("metrics[0].value"), "value_out_of_range"),
        (value("INP", 60_001.0), Some("metrics[0].value"), "value_out_of_range"),
        (value("CLS", 10.01), Some("metrics[0].value"), "value_out_of_range"),
        (
            m(&|x| x["delta"] = json!(-1e308)),
            Some("metrics[0].delta"),
            "value_out_of_range",
        ),
        (
            m(&|x| x["delta"] = json!("x")),
            Some("metrics[0].delta"),
            "invalid_field",
        ),
        (m(&|x| x["id"] = json!("")), Some("metrics[0].id"), "invalid_field"),
        (m(&|x| x["id"] = long(129)), Some("metrics[0].id"), "string_too_long"),
        (
            m(&|x| x["rating"] = json!("great")),
            Some("metrics[0].rating"),
            "invalid_field",
        ),
        (
            m(&|x| {
                x.as_object_mut().unwrap().remove("navigationType");
            }),
            Some("metrics[0].navigationType"),
            "invalid_field",
        ),
        (
            with(|b| {
                let mut bad = b["metrics"][0].clone();
                bad["value"] = json!(-5);
                b["metrics"].as_array_mut().unwrap().push(bad);
            }),
            Some("metrics[1].value"),
            "value_out_of_range",
        ),
    ];
    let mut expected: std::collections::HashMap<&str, f64> = Default::default();
    for (body, field, reason) in &cases {
        let r = c.beacon(body);
        assert_eq!(r.status, 400, "{reason} {field:?}: {}", r.body);
        let j = r.json();
        assert_eq!(j["field"].as_str(), *field, "{body}: {j}");
        assert_eq!(j["reason"], *reason, "{body}: {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()));
        *expected.entry(reason).or_default() += 1.0;
    }
    for (reason, n) in expected {
        assert_eq!(rejected(&c, reason), n, "{reason}");
    }
    assert_nothing_stored(&c);
}

#[test]
fn unknown_fields_are_ignored_but_counted() {
    let (_dir, c) = start(&[]);
    let body = with(|b| {
        b["future"] = json!({"a": [1, 2]});
        b["metrics"][0]["attribution"] = json!({"element": "img"});
    });
    assert_eq!(c.beacon(&body).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "LCP")["count"], 1);
    assert_eq!(c.metric_sample("vitalsign_unknown_fields_total"), Some(2.0));
}

#[test]
fn bots_are_dropped_and_counted() {
    let (_dir, c) = start(&[]);
    let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let r = c.post_with(
        &[("Content-Type", "text/plain"), ("User-Agent", bot)],
        beacon_json(PAGE, "LCP", "b1", 100.0),
    );
    assert_eq!(r.status, 204, "bots get no error to retry on");
    assert!(r.body.is_empty());
    let browser =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    let r = c.post_with(
        &[("Content-Type", "text/plain"), ("User-Agent", browser)],
        beacon_json(PAGE, "LCP", "b2", 200.0),
    );
    assert_eq!(r.status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "LCP"), json!({"count": 1, "p75": 200.0}));
    assert_eq!(rejected(&c, "bot"), 1.0);
}

fn config_with_sites(dir: &std::path::Path, extra: &str) -> String {
    let path = dir.join("vitalsign.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            listen = "127.0.0.1:0"
            data_dir = {data:?}
            www_dir = "/nonexistent"
            agent_dir = "/nonexistent"
            {extra}
            [[sites]]
            host = "shop.example"
            [[sites]]
            host = "app.example:8443"
            origins = ["https://app.example", "https://www.app.example"]
            "#,
            data = dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn origins_and_sites_are_checked_against_the_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_sites(dir.path(), "");
    let c = Collector::start(dir.path(), &["--config", &config]);
    let shop = beacon_json("https://shop.example/cart", "LCP", "s1", 1000.0);
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut h = vec![("Content-Type", "text/plain;charset=UTF-8")];
        h.extend_from_slice(headers);
        c.post_with(&h, body)
    };

    let r = post(&[("Origin", "https://shop.example")], &shop);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://shop.example"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));

    for headers in [
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
        vec![("Origin", "https://app.example")], // allowed, but for the other site
        vec![("Referer", "https://evil.example/page")],
    ] {
        let r = post(&headers, &beacon_json("https://shop.example/cart", "LCP", "bad", 9.0));
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert_eq!(r.json()["reason"], "origin_not_allowed");
    }
    let r = post(&[("Origin", "https://evil.example")], &shop);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // A Referer on the list, or no browser headers at all (a server), pass.
    let r = post(
        &[("Referer", "https://shop.example/cart?x=1")],
        &beacon_json("https://shop.example/a", "LCP", "s2", 2000.0),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        post(&[], &beacon_json("https://shop.example/a", "LCP", "s3", 3000.0)).status,
        204
    );
    let r = post(
        &[("Origin", "https://www.app.example")],
        &beacon_json("https://app.example:8443/x", "CLS", "a1", 0.01),
    );
    assert_eq!(r.status, 204, "{}", r.body);

    let r = post(&[], &beacon_json("https://other.example/", "LCP", "o1", 1.0));
    assert_eq!((r.status, r.json()["reason"].clone()), (403, json!("unknown_site")));

    // Preflights: echo an allowed origin with credentials, refuse others.
    let r = c.options_with(
        "/v1/beacon",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    let r = c.options_with("/v1/beacon", &[("Origin", "https://evil.example")]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let s = c.summary();
    let pages: Vec<&str> = s["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["page"].as_str().unwrap())
        .collect();
    assert_eq!(
        pages,
        [
            "https://app.example:8443/x",
            "https://shop.example/a",
            "https://shop.example/cart"
        ]
    );
    assert_eq!(rejected(&c, "origin_not_allowed"), 6.0, "5 beacons and a preflight");
    assert_eq!(rejected(&c, "unknown_site"), 1.0);
}

#[test]
fn any_origin_is_echoed_when_no_sites_are_configured() {
    let (_dir, c) = start(&[]);
    let r = c.post_with(
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://anything.example"),
        ],
        beacon_json("https://anything.example/", "LCP", "x", 1.0),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://anything.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = c.options_with("/v1/beacon", &[("Origin", "https://anything.example")]);
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://anything.example")
    );
}

#[test]
fn per_ip_rate_limit_answers_429_with_retry_after() {
    let (_dir, c) = start(&["--rate-per-ip", "1", "--burst-per-ip", "2"]);
    for i in 0..2 {
        assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", &format!("r{i}"), 1.0)).status, 204);
    }
    let r = c.beacon(&beacon_json(PAGE, "LCP", "r2", 1.0));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["reason"], "rate_limited_ip");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(c.beacon(&beacon_json(PAGE, "LCP", "r3", 1.0)).status, 204);
    assert_eq!(metric(&c.summary(), PAGE, "LCP")["count"], 3);
    assert_eq!(rejected(&c, "rate_limited_ip"), 1.0);
}

#[test]
fn forwarded_addresses_are_limited_separately_when_trusted() {
    let (_dir, c) = start(&["--rate-per-ip", "1", "--burst-per-ip", "1", "--trust-forwarded-for"]);
    let from = |ip: &str, id: &str| {
        c.post_with(
            &[("Content-Type", "text/plain"), ("X-Forwarded-For", ip)],
            beacon_json(PAGE, "LCP", id, 1.0),
        )
        .status
    };
    assert_eq!(from("203.0.113.1", "a"), 204);
    assert_eq!(from("203.0.113.1", "b"), 429);
    assert_eq!(from("203.0.113.2", "c"), 204);
}

#[test]
fn per_site_rate_limit_answers_429_with_retry_after() {
    let (_dir, c) = start(&["--rate-per-ip", "0", "--rate-per-site", "1", "--burst-per-site", "2"]);
    let a = |id: &str| c.beacon(&beacon_json("https://a.example/", "LCP", id, 1.0));
    assert_eq!(a("1").status, 204);
    assert_eq!(a("2").status, 204);
    let r = a("3");
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (429, json!("rate_limited_site"))
    );
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(
        c.beacon(&beacon_json("https://b.example/", "LCP", "1", 1.0)).status,
        204
    );
    assert_eq!(rejected(&c, "rate_limited_site"), 1.0);
}

#[test]
fn sites_past_the_cap_are_refused() {
    let (_dir, c) = start(&["--max-sites", "1"]);
    assert_eq!(
        c.beacon(&beacon_json("https://a.example/", "LCP", "1", 1.0)).status,
        204
    );
    let r = c.beacon(&beacon_json("https://b.example/", "LCP", "1", 1.0));
    assert_eq!((r.status, r.json()["reason"].clone()), (403, json!("too_many_sites")));
    assert_eq!(
        c.beacon(&beacon_json("https://a.example/x", "LCP", "2", 1.0)).status,
        204
    );
}

/// Attribution (what to fix first) is validated like every field, stored
/// with the report, replaced by a re-report's, exported in JSON, and its
/// URLs never keep a query string, fragment or user info.
#[test]
fn attribution_is_checked_stored_replaced_and_kept_private() {
    let (_dir, c) = start(&["--rate-per-ip", "0"]);
    let beacon = |value: f64, attribution: Value| {
        json!({"schemaVersion": 1, "page": "https://a.example/", "pageViewId": "pv", "metrics": [
            {"name": "INP", "value": value, "delta": value, "id": "inp-1", "rating": "good",
             "navigationType": "navigate", "attribution": attribution}]})
        .to_string()
    };
    let first = json!({"interactionTarget": "button.buy", "interactionType": "pointer", "inputDelay": 10,
        "processingDuration": 100, "presentationDelay": 10, "loadState": "complete",
        "longestScript": {"url": "https://u:p@cdn.example/app.js?v=3#x", "function": "onBuy", "duration": 90}});
    assert_eq!(c.beacon(&beacon(120.0, first)).status, 204);
    let rows = c.get("/v1/export?format=json").json();
    let a = &rows[0]["attribution"];
    assert_eq!(a["interactionTarget"], "button.buy");
    assert_eq!(a["longestScript"]["url"], "https://cdn.example/app.js", "{a}");
    assert_eq!(a["longestScript"]["function"], "onBuy");
    // The re-report's attribution replaces the first's.
    let second = json!({"interactionTarget": "input#q", "interactionType": "keyboard", "inputDelay": 300});
    assert_eq!(c.beacon(&beacon(400.0, second)).status, 204);
    let rows = c.get("/v1/export?format=json").json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["value"], 400.0);
    assert_eq!(rows[0]["attribution"]["interactionTarget"], "input#q");
    assert!(rows[0]["attribution"].get("longestScript").is_none());
    // Bad attribution: 400 naming the field, nothing stored.
    for (bad, field, reason) in [
        (
            json!({"inputDelay": -1}),
            "metrics[0].attribution.inputDelay",
            "value_out_of_range",
        ),
        (
            json!({"inputDelay": 1e9}),
            "metrics[0].attribution.inputDelay",
            "value_out_of_range",
        ),
        (
            json!({"interactionTarget": "x".repeat(300)}),
            "metrics[0].attribution.interactionTarget",
            "string_too_long",
        ),
        (
            json!({"interactionTarget": ""}),
            "metrics[0].attribution.interactionTarget",
            "invalid_field",
        ),
        (
            json!({"url": "javascript:alert(1)"}),
            "metrics[0].attribution.url",
            "invalid_field",
        ),
        (
            json!({"longestScript": {"url": "data:text/js,x", "duration": 1}}),
            "metrics[0].attribution.longestScript.url",
            "invalid_field",
        ),
        (
            json!({"loadState": "done"}),
            "metrics[0].attribution.loadState",
            "invalid_field",
        ),
        (
            json!({"interactionType": 3}),
            "metrics[0].attribution.interactionType",
            "invalid_field",
        ),
        (json!("button"), "metrics[0].attribution", "invalid_field"),
    ] {
        let r = c.beacon(&beacon(500.0, bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(
            (r.json()["field"].clone(), r.json()["reason"].clone()),
            (json!(field), json!(reason)),
            "{bad}: {}",
            r.body
        );
    }
    assert_eq!(
        c.get("/v1/export?format=json").json()[0]["value"],
        400.0,
        "nothing of the bad beacons stored"
    );
}
