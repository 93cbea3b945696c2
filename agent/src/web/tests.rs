//! The bindings, run in headless Chromium by wasm-bindgen-test.

use alloc::rc::Rc;
use core::cell::RefCell;

use beacon::{Beacon, FormFactor, MetricName, MetricReport, NavigationType, Rating, SCHEMA_VERSION};
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

use super::bindings::{self, Entry};
use super::json::to_json;
use super::lifecycle;
use super::metric::{js_sink, Metric, Options};
use super::observe::{observe, supports};

wasm_bindgen_test_configure!(run_in_browser);

fn object(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        bindings::set(&o, k, v);
    }
    o
}

#[wasm_bindgen_test]
fn entry_getters_read_the_subtype_fields() {
    let e: Entry = object(&[
        ("startTime", 12.5.into()),
        ("duration", 48.0.into()),
        ("name", "pointerdown".into()),
        ("value", 0.25.into()),
        ("hadRecentInput", true.into()),
        ("interactionId", 7021.0.into()),
        ("activationStart", 3.0.into()),
        ("type", "back_forward".into()),
    ])
    .unchecked_into();
    assert_eq!(e.start_time(), 12.5);
    assert_eq!(e.duration(), 48.0);
    assert_eq!(e.name(), "pointerdown");
    assert_eq!(e.value(), 0.25);
    assert_eq!(e.had_recent_input(), Some(true));
    assert_eq!(e.interaction_id(), Some(7021.0));
    assert_eq!(e.activation_start(), Some(3.0));
    assert_eq!(e.nav_type().as_deref(), Some("back_forward"));

    let bare: Entry = Object::new().unchecked_into();
    assert_eq!(bare.interaction_id(), None, "missing fields read as absent");
    assert_eq!(bare.activation_start(), None);
    assert_eq!(bare.had_recent_input(), None);
}

#[wasm_bindgen_test]
fn supported_entry_types_come_from_the_browser() {
    assert!(supports("paint"));
    assert!(supports("layout-shift"));
    assert!(supports("largest-contentful-paint"));
    assert!(supports("event"));
    assert!(!supports("no-such-entry-type"));
    assert!(observe(&["no-such-entry-type"], None, |_, _| {}).is_none());
}

#[wasm_bindgen_test]
async fn buffered_observer_delivers_past_entries() {
    // A mark made before observing arrives through `buffered: true`.
    let perf = bindings::global("performance");
    let mark: Function = bindings::get(&perf, "mark").unchecked_into();
    mark.call1(&perf, &"vitalsign-test-mark".into()).unwrap();
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = seen.clone();
    let po = observe(&["mark"], None, move |entries, _| {
        s.borrow_mut().extend(entries.iter().map(|e| e.name()));
    })
    .expect("mark is observable");
    for _ in 0..50 {
        if !seen.borrow().is_empty() {
            break;
        }
        sleep(20).await;
    }
    po.disconnect();
    assert!(
        seen.borrow().iter().any(|n| n == "vitalsign-test-mark"),
        "{:?}",
        seen.borrow()
    );
}

#[wasm_bindgen_test]
fn navigation_entry_and_visibility_of_the_test_page() {
    let nav = lifecycle::navigation_entry().expect("the test page has a valid navigation entry");
    assert!(nav.response_start() > 0.0);
    assert_eq!(lifecycle::activation_start(), 0.0);
    assert!(!bindings::prerendering());
    assert_eq!(
        lifecycle::first_hidden_time(),
        f64::INFINITY,
        "the test page is visible"
    );
    assert!(lifecycle::bfcache_restore_time() < 0.0);
}

#[wasm_bindgen_test]
fn options_are_read_from_the_js_object() {
    let o = Options::from_js(&object(&[
        ("reportAllChanges", true.into()),
        ("durationThreshold", 16.0.into()),
    ]));
    assert!(o.report_all_changes);
    assert_eq!(o.duration_threshold, Some(16.0));
    let o = Options::from_js(&JsValue::UNDEFINED);
    assert!(!o.report_all_changes);
    assert_eq!(o.duration_threshold, None);
}

#[wasm_bindgen_test]
fn js_sink_builds_the_reference_metric_object() {
    let got = Rc::new(RefCell::new(JsValue::UNDEFINED));
    let g = got.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |m: JsValue| *g.borrow_mut() = m);
    let sink = js_sink(cb.as_ref().unchecked_ref::<Function>().clone());
    let mut m = Metric::new(MetricName::Lcp, 2600.0, None, Options::default(), sink);
    m.entries = Array::of1(&JsValue::from_str("entry"));
    m.report(true);
    let o = got.borrow().clone();
    assert_eq!(bindings::get(&o, "name"), "LCP");
    assert_eq!(bindings::get(&o, "value"), 2600.0);
    assert_eq!(bindings::get(&o, "delta"), 2600.0);
    assert_eq!(bindings::get(&o, "rating"), "needs-improvement");
    assert_eq!(bindings::get(&o, "navigationType"), "navigate");
    assert_eq!(bindings::get(&o, "id").as_string().unwrap(), m.id);
    assert_eq!(bindings::get(&o, "entries").unchecked_into::<Array>().length(), 1);
}

#[wasm_bindgen_test]
fn a_throwing_callback_does_not_escape() {
    let thrower = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| wasm_bindgen::throw_str("page bug"));
    let f: Function = thrower.as_ref().unchecked_ref::<Function>().clone();
    let mut m = Metric::new(MetricName::Fcp, 10.0, None, Options::default(), js_sink(f));
    m.report(true); // must not panic or throw
}

#[wasm_bindgen_test]
fn beacon_json_is_what_the_collector_parses() {
    let b = Beacon {
        schema_version: SCHEMA_VERSION,
        page: "https://shop.example/p/:id".into(),
        page_view_id: Some("pv".into()),
        session_id: Some("s".into()),
        navigation_type: Some(NavigationType::BackForwardCache),
        form_factor: Some(FormFactor::Tablet),
        effective_type: Some("4g".into()),
        device_memory: Some(0.5),
        metrics: vec![
            MetricReport {
                name: MetricName::Cls,
                value: 0.123456789,
                delta: 0.1,
                id: "a".into(),
                rating: Rating::NeedsImprovement,
                navigation_type: NavigationType::Prerender,
            },
            MetricReport {
                name: MetricName::Ttfb,
                value: 26.800000000046566,
                delta: 26.800000000046566,
                id: "b".into(),
                rating: Rating::Good,
                navigation_type: NavigationType::Restore,
            },
        ],
    };
    let json = to_json(&b);
    let parsed: Beacon = serde_json::from_str(&json).expect(&json);
    assert_eq!(parsed, b);
    let minimal = Beacon {
        page_view_id: None,
        session_id: None,
        navigation_type: None,
        form_factor: None,
        effective_type: None,
        device_memory: None,
        metrics: vec![],
        ..b
    };
    assert_eq!(serde_json::from_str::<Beacon>(&to_json(&minimal)).unwrap(), minimal);
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        bindings::set_timeout(&resolve, ms as f64);
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}
