//! Hostile attribution the agent never sends (it keeps its beacons within
//! these limits, `agent/src/attribution/mod.rs`), refused by the real
//! binary field by field, the ones `hardening.rs` does not cover: every
//! selector and text field, URL lengths and schemes, the shift value's
//! range, the longest script's parts, and `firstByteToFCP` by the name
//! the schema and the reference give it.

mod common;

use common::Collector;
use serde_json::{json, Value};

fn beacon(name: &str, value: f64, attribution: Value) -> String {
    json!({"schemaVersion": 1, "page": "https://a.example/", "pageViewId": "pv", "metrics": [
        {"name": name, "value": value, "delta": value, "id": format!("{name}-1"), "rating": "good",
         "navigationType": "navigate", "attribution": attribution}]})
    .to_string()
}

#[test]
fn hostile_attribution_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--rate-per-ip", "0"]);
    let long_url = format!("https://cdn.example/{}", "a".repeat(1100));
    for (name, bad, field, reason) in [
        ("LCP", json!({"target": ""}), "target", "invalid_field"),
        ("LCP", json!({"target": "é".repeat(257)}), "target", "string_too_long"),
        (
            "CLS",
            json!({"largestShiftTarget": "x".repeat(257)}),
            "largestShiftTarget",
            "string_too_long",
        ),
        (
            "CLS",
            json!({"largestShiftTarget": ""}),
            "largestShiftTarget",
            "invalid_field",
        ),
        ("LCP", json!({"url": long_url}), "url", "string_too_long"),
        ("LCP", json!({"url": "ftp://cdn.example/a.png"}), "url", "invalid_field"),
        ("LCP", json!({"url": "/relative.png"}), "url", "invalid_field"),
        ("LCP", json!({"url": 42}), "url", "invalid_field"),
        (
            "LCP",
            json!({"elementRenderDelay": -0.5}),
            "elementRenderDelay",
            "value_out_of_range",
        ),
        (
            "CLS",
            json!({"largestShiftValue": 11}),
            "largestShiftValue",
            "value_out_of_range",
        ),
        (
            "CLS",
            json!({"largestShiftValue": -0.1}),
            "largestShiftValue",
            "value_out_of_range",
        ),
        (
            "FCP",
            json!({"firstByteToFCP": -3}),
            "firstByteToFCP",
            "value_out_of_range",
        ),
        (
            "TTFB",
            json!({"requestDuration": 1e12}),
            "requestDuration",
            "value_out_of_range",
        ),
        (
            "INP",
            json!({"longestScript": {"function": "f".repeat(300), "duration": 1}}),
            "longestScript.function",
            "string_too_long",
        ),
        (
            "INP",
            json!({"longestScript": {"url": "https://cdn.example/a.js", "duration": -1}}),
            "longestScript.duration",
            "value_out_of_range",
        ),
        (
            "INP",
            json!({"longestScript": {"url": "https://cdn.example/a.js"}}),
            "longestScript.duration",
            "invalid_field",
        ),
        (
            "INP",
            json!({"totalUnattributedDuration": "5"}),
            "totalUnattributedDuration",
            "invalid_field",
        ),
    ] {
        let value = if name == "CLS" { 0.1 } else { 100.0 };
        let r = c.beacon(&beacon(name, value, bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(
            (r.json()["field"].clone(), r.json()["reason"].clone()),
            (json!(format!("metrics[0].attribution.{field}")), json!(reason)),
            "{bad}: {}",
            r.body
        );
    }
    assert_eq!(c.get("/v1/export?format=json").json(), json!([]), "nothing stored");
}
