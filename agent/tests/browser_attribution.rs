//! The Rust API's attribution (feature `attribution`) in a real browser:
//! `Metric::attribution` by metric, subparts summing to the value, the
//! beacon's compact attribution with `Options::attribution`.
//! `cargo test -p vitalsign-agent --target wasm32-unknown-unknown --features js,attribution`
#![cfg(all(target_arch = "wasm32", feature = "attribution"))]

mod common;

use common::{hide, paint_text, record_beacons, recorder, sent_bodies, until, watch_page};
use vitalsign_agent::attribution::Attribution;
use vitalsign_agent::{init, on_fcp, on_ttfb, Beacon, MetricName, Options, ReportOpts};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn fcp_and_ttfb_carry_their_subparts_in_callbacks_and_beacons() {
    watch_page();
    paint_text();
    record_beacons();
    let (fcp, on_fcp_report) = recorder();
    let (ttfb, on_ttfb_report) = recorder();
    on_fcp(on_fcp_report, ReportOpts::default());
    on_ttfb(on_ttfb_report, ReportOpts::default());
    init(Options {
        endpoint: "/collect".into(),
        attribution: true,
        ..Default::default()
    });
    until("FCP and TTFB", || !fcp.borrow().is_empty() && !ttfb.borrow().is_empty()).await;
    let f = fcp.borrow()[0].clone();
    let Some(Attribution::Fcp(a)) = &f.attribution else {
        panic!("FCP attribution: {:?}", f.attribution)
    };
    assert_eq!(a.time_to_first_byte + a.first_byte_to_fcp, f.value);
    assert!(a.fcp_entry.is_some() && a.navigation_entry.is_some());
    let fcp_ttfb = a.time_to_first_byte;
    let t = ttfb.borrow()[0].clone();
    let Some(Attribution::Ttfb(a)) = &t.attribution else {
        panic!("TTFB attribution: {:?}", t.attribution)
    };
    let sum = a.waiting_duration + a.cache_duration + a.dns_duration + a.connection_duration + a.request_duration;
    assert!((sum - t.value).abs() < 1e-9, "{sum} vs {}", t.value);
    hide();
    until("a beacon", || !sent_bodies().is_empty()).await;
    let beacon: Beacon = serde_json::from_str(&sent_bodies()[0]).expect("a beacon");
    let sent = beacon
        .metrics
        .iter()
        .find(|m| m.name == MetricName::Fcp)
        .expect("FCP sent");
    let b = sent.attribution.as_ref().expect("with attribution");
    assert_eq!(b.time_to_first_byte, Some(fcp_ttfb));
    assert!(b.load_state.is_some());
    assert!(b.target.is_none() && b.longest_script.is_none());
}
