//! The JavaScript API's options (feature `js`): JS objects deserialised
//! with serde-wasm-bindgen into Rust structs; an option of the wrong type
//! gets one `console.warn` naming it, and its default is used.
#![cfg(all(target_arch = "wasm32", feature = "js"))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{hide, page_errors, record_beacons, sent_bodies, sent_urls, until, warnings, watch_page};
use js_sys::JSON;
use vitalsign_agent::js;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn object(json: &str) -> JsValue {
    JSON::parse(json).unwrap()
}

#[wasm_bindgen_test]
async fn options_of_the_wrong_type_warn_once_each_and_fall_back() {
    watch_page();
    common::paint_text();
    record_beacons();
    let seen = Rc::new(RefCell::new(Vec::<JsValue>::new()));
    let callback = {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |m: JsValue| seen.borrow_mut().push(m)).into_js_value()
    };
    js::on_fcp(
        callback,
        object(r#"{"reportAllChanges": "yes", "durationThreshold": 16}"#),
    );
    let w = warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("reportAllChanges"), "{w:?}");
    until("FCP with the default options", || !seen.borrow().is_empty()).await;
    let metric = seen.borrow()[0].clone();
    let name = js_sys::Reflect::get(&metric, &"name".into()).unwrap();
    assert_eq!(name.as_string().as_deref(), Some("FCP"));

    js::on_lcp(JsValue::from_str("not a function"), JsValue::UNDEFINED);
    assert_eq!(warnings().len(), 2, "a callback that is no function: {:?}", warnings());

    js::start(object(
        r#"{"endpoint": 7, "sampleRate": "all", "flushInterval": 60000, "routes": ["/a", 3]}"#,
    ));
    let w = warnings();
    assert_eq!(w.len(), 5, "{w:?}");
    for option in ["endpoint", "sampleRate", "routes"] {
        assert_eq!(w.iter().filter(|m| m.contains(option)).count(), 1, "{option}: {w:?}");
    }
    hide();
    until("a beacon", || !sent_bodies().is_empty()).await;
    assert_eq!(sent_urls()[0], "/v1/beacon", "the default endpoint");
    assert_eq!(page_errors(), Vec::<String>::new());
}
