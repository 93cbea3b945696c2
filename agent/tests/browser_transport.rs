//! `init()` in a real browser: a hide flushes a body that deserialises into
//! the `beacon` types the collector parses, with a page key that carries no
//! user info whatever the `page_key` callback returned.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{hide, page_errors, record_beacons, recorder, sent_bodies, sent_how, sleep, until, watch_page};
use vitalsign_agent::{init, on_fcp, Beacon, MetricName, Options, ReportOpts};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_hide_flushes_a_beacon_of_the_beacon_types() {
    watch_page();
    common::paint_text();
    record_beacons();
    let (fcp, on_fcp_report) = recorder();
    on_fcp(on_fcp_report, ReportOpts::default());
    init(Options {
        endpoint: "/collect".into(),
        page_key: Some(Box::new(|url: &str| {
            assert!(url.starts_with("http"), "{url}");
            "https://jane:s3cret@shop.example/cart".into()
        })),
        before_send: Some(Box::new(|b: &mut Beacon| {
            b.effective_type = Some("tagged".into());
            true
        })),
        ..Default::default()
    });
    until("FCP", || !fcp.borrow().is_empty()).await;
    sleep(300).await; // TTFB is reported in a task after load
    assert!(
        sent_bodies().is_empty(),
        "nothing sent while visible before the flush interval"
    );
    hide();
    until("a beacon", || !sent_bodies().is_empty()).await;
    assert_eq!(sent_how()[0], "beacon", "sendBeacon on hide");
    let body = &sent_bodies()[0];
    let beacon: Beacon = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(beacon.schema_version, 1);
    assert_eq!(beacon.page, "https://shop.example/cart", "no user info in the page key");
    assert!(!body.contains("s3cret") && !body.contains("jane"), "{body}");
    assert_eq!(
        beacon.effective_type.as_deref(),
        Some("tagged"),
        "before_send edited it"
    );
    assert!(beacon.page_view_id.as_deref().is_some_and(|id| id.starts_with("vs-")));
    assert!(beacon.session_id.is_some());
    let names: Vec<MetricName> = beacon.metrics.iter().map(|m| m.name).collect();
    assert!(
        names.contains(&MetricName::Fcp) && names.contains(&MetricName::Ttfb),
        "{names:?}"
    );
    let sent_fcp = beacon.metrics.iter().find(|m| m.name == MetricName::Fcp).unwrap();
    assert_eq!(
        sent_fcp.value,
        fcp.borrow()[0].value,
        "the beacon carries what the callback was given"
    );
    assert_eq!(page_errors(), Vec::<String>::new());
}
