//! A page without `PerformanceObserver`, `sendBeacon` and `localStorage`:
//! nothing throws, and what does not need them still works (TTFB from the
//! navigation entry, a beacon by `fetch` with `keepalive`, a session in
//! memory).
#![cfg(target_arch = "wasm32")]

mod common;

use common::{
    hide, page_errors, record_beacons, recorder, remove_apis, sent_bodies, sent_how, sleep, until, watch_page,
};
use vitalsign_agent::{init, on_cls, on_fcp, on_inp, on_lcp, on_ttfb, Beacon, MetricName, Options, ReportOpts};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn without_observers_beacons_or_storage_nothing_throws_and_the_rest_works() {
    watch_page();
    common::paint_text();
    record_beacons(); // records fetch; sendBeacon is removed below
    remove_apis(vec![
        "PerformanceObserver".into(),
        "sendBeacon".into(),
        "localStorage".into(),
    ]);
    let (fcp, on_fcp_report) = recorder();
    let (ttfb, on_ttfb_report) = recorder();
    let (others, on_other_report) = recorder();
    let all = ReportOpts {
        report_all_changes: true,
        ..Default::default()
    };
    on_fcp(on_fcp_report, all);
    on_ttfb(on_ttfb_report, all);
    on_lcp(on_other_report.clone(), all);
    on_cls(on_other_report.clone(), all);
    on_inp(on_other_report, all);
    init(Options {
        endpoint: "/collect".into(),
        ..Default::default()
    });
    until("TTFB", || !ttfb.borrow().is_empty()).await;
    sleep(200).await;
    assert!(
        fcp.borrow().is_empty() && others.borrow().is_empty(),
        "no observers, no paint metrics"
    );
    hide();
    until("a beacon", || !sent_bodies().is_empty()).await;
    assert_eq!(
        sent_how()[0],
        "keepalive",
        "fetch with keepalive where sendBeacon is missing"
    );
    let beacon: Beacon = serde_json::from_str(&sent_bodies()[0]).unwrap();
    assert!(beacon.session_id.is_some(), "a session in memory");
    let names: Vec<MetricName> = beacon.metrics.iter().map(|m| m.name).collect();
    assert_eq!(names, [MetricName::Ttfb]);
    assert_eq!(page_errors(), Vec::<String>::new());
}
