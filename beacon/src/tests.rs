use super::*;
use serde_json::{json, Value};

fn schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn sample() -> Beacon {
    Beacon {
        schema_version: SCHEMA_VERSION,
        page: "https://shop.example/cart".into(),
        page_view_id: Some("pv-1".into()),
        session_id: Some("s-1".into()),
        navigation_type: Some(NavigationType::Reload),
        form_factor: Some(FormFactor::Phone),
        effective_type: Some("4g".into()),
        device_memory: Some(8.0),
        metrics: MetricName::ALL
            .iter()
            .enumerate()
            .map(|(i, &name)| MetricReport {
                name,
                value: i as f64 * 100.5,
                delta: i as f64,
                id: "v1-1-2".into(),
                rating: name.rate(i as f64 * 100.5),
                navigation_type: NavigationType::ALL[i],
                attribution: None,
            })
            .collect(),
    }
}

/// A beacon of agents that collect attribution, every field set.
fn attributed() -> Beacon<Attribution> {
    let full = Attribution {
        target: Some("main > img.hero".into()),
        url: Some("https://cdn.example/hero.jpg".into()),
        time_to_first_byte: Some(120.0),
        resource_load_delay: Some(30.5),
        resource_load_duration: Some(400.0),
        element_render_delay: Some(50.0),
        largest_shift_target: Some("#ad".into()),
        largest_shift_time: Some(1234.5),
        largest_shift_value: Some(0.12),
        interaction_target: Some("button.buy".into()),
        interaction_type: Some(InteractionType::Pointer),
        input_delay: Some(12.0),
        processing_duration: Some(180.0),
        presentation_delay: Some(20.0),
        longest_script: Some(LongestScript {
            url: Some("https://cdn.example/app.js".into()),
            function: Some("onClick".into()),
            duration: 170.0,
        }),
        total_script_duration: Some(175.0),
        total_style_and_layout_duration: Some(10.0),
        total_paint_duration: Some(4.0),
        total_unattributed_duration: Some(1.0),
        first_byte_to_fcp: Some(600.0),
        load_state: Some(LoadState::DomContentLoaded),
        waiting_duration: Some(5.0),
        cache_duration: Some(1.0),
        dns_duration: Some(2.0),
        connection_duration: Some(3.0),
        request_duration: Some(100.0),
    };
    let plain = sample();
    Beacon {
        schema_version: plain.schema_version,
        page: plain.page,
        page_view_id: plain.page_view_id,
        session_id: plain.session_id,
        navigation_type: plain.navigation_type,
        form_factor: plain.form_factor,
        effective_type: plain.effective_type,
        device_memory: plain.device_memory,
        metrics: plain
            .metrics
            .into_iter()
            .enumerate()
            .map(|(i, m)| MetricReport {
                name: m.name,
                value: m.value,
                delta: m.delta,
                id: m.id,
                rating: m.rating,
                navigation_type: m.navigation_type,
                attribution: (i % 2 == 0).then(|| full.clone()),
            })
            .collect(),
    }
}

#[test]
fn attribution_matches_schema_and_round_trips() {
    let b = attributed();
    let v = serde_json::to_value(&b).unwrap();
    let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(v["metrics"][0]["attribution"]["longestScript"]["function"], "onClick");
    assert_eq!(v["metrics"][0]["attribution"]["loadState"], "dom-content-loaded");
    assert!(
        v["metrics"][0]["attribution"]["firstByteToFCP"].is_number(),
        "the schema's and the reference's spelling: {}",
        v["metrics"][0]["attribution"]
    );
    assert!(v["metrics"][1].get("attribution").is_none(), "absent, not null");
    assert_eq!(serde_json::from_value::<Beacon<Attribution>>(v.clone()).unwrap(), b);
    // The core agent's type reads beacons without attribution, and refuses
    // none of its fields.
    let plain = serde_json::to_value(sample()).unwrap();
    assert!(plain["metrics"][0].get("attribution").is_none());
    assert!(serde_json::from_value::<Beacon>(plain).is_ok());
    // Empty attribution is valid; a wrong type is not.
    let s = schema();
    let mut empty = v.clone();
    empty["metrics"][0]["attribution"] = json!({});
    assert!(s.is_valid(&empty));
    let mut bad = v;
    bad["metrics"][0]["attribution"]["loadState"] = json!("done");
    assert!(!s.is_valid(&bad));
    assert!(serde_json::from_value::<Beacon<Attribution>>(bad).is_err());
}

#[test]
fn serialized_beacon_matches_schema_and_round_trips() {
    let b = sample();
    let v = serde_json::to_value(&b).unwrap();
    let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(serde_json::from_value::<Beacon>(v).unwrap(), b);
}

#[test]
fn minimal_beacon_matches_schema() {
    let v = json!({"schemaVersion": 1, "page": "https://a.example/", "metrics": []});
    assert!(schema().is_valid(&v));
    let b: Beacon = serde_json::from_value(v).unwrap();
    assert_eq!(b.page_view_id, None);
}

#[test]
fn schema_rejects_what_serde_rejects() {
    let s = schema();
    for bad in [
        json!({"page": "x", "metrics": []}),
        json!({"schemaVersion": 1, "metrics": []}),
        json!({"schemaVersion": 1, "page": "x", "metrics": [{"name": "FID", "value": 1, "delta": 1, "id": "a", "rating": "good", "navigationType": "navigate"}]}),
        json!({"schemaVersion": 1, "page": "x", "metrics": [{"name": "LCP", "value": 1, "delta": 1, "id": "a", "rating": "great", "navigationType": "navigate"}]}),
        json!({"schemaVersion": 1, "page": "x", "metrics": [{"name": "LCP", "value": "1", "delta": 1, "id": "a", "rating": "good", "navigationType": "navigate"}]}),
    ] {
        assert!(!s.is_valid(&bad), "schema accepted {bad}");
        assert!(
            serde_json::from_value::<Beacon>(bad.clone()).is_err() || bad.get("schemaVersion").is_none(),
            "serde accepted {bad}"
        );
    }
}

#[test]
fn enum_strings_agree_with_serde() {
    for m in MetricName::ALL {
        assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
        assert_eq!(MetricName::parse(m.as_str()), Some(m));
    }
    for r in Rating::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    for n in NavigationType::ALL {
        assert_eq!(serde_json::to_value(n).unwrap(), json!(n.as_str()));
    }
    for f in FormFactor::ALL {
        assert_eq!(serde_json::to_value(f).unwrap(), json!(f.as_str()));
    }
}

#[test]
fn ratings_follow_the_reference_boundaries() {
    // value <= good is good; value <= poor needs improvement; above is poor.
    assert_eq!(MetricName::Lcp.rate(2500.0), Rating::Good);
    assert_eq!(MetricName::Lcp.rate(2500.1), Rating::NeedsImprovement);
    assert_eq!(MetricName::Lcp.rate(4000.0), Rating::NeedsImprovement);
    assert_eq!(MetricName::Lcp.rate(4000.1), Rating::Poor);
    assert_eq!(MetricName::Cls.rate(0.1), Rating::Good);
    assert_eq!(MetricName::Cls.rate(0.25), Rating::NeedsImprovement);
    assert_eq!(MetricName::Cls.rate(0.2501), Rating::Poor);
    assert_eq!(MetricName::Fcp.rate(0.0), Rating::Good);
    assert_eq!(MetricName::Inp.rate(200.0), Rating::Good);
    assert_eq!(MetricName::Inp.rate(500.0), Rating::NeedsImprovement);
    assert_eq!(MetricName::Ttfb.rate(1800.0), Rating::NeedsImprovement);
    assert_eq!(MetricName::Ttfb.rate(1801.0), Rating::Poor);
}

#[test]
fn navigation_entry_types_map_like_the_reference() {
    assert_eq!(
        NavigationType::from_entry_type("back_forward"),
        Some(NavigationType::BackForward)
    );
    assert_eq!(
        NavigationType::from_entry_type("navigate"),
        Some(NavigationType::Navigate)
    );
    assert_eq!(NavigationType::from_entry_type("reload"), Some(NavigationType::Reload));
    assert_eq!(NavigationType::from_entry_type("bogus"), None);
}

#[test]
fn schema_limits_match_the_constants() {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(
        schema["properties"]["metrics"]["maxItems"],
        json!(MAX_METRICS_PER_BEACON)
    );
}
