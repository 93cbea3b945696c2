//! The Rust API in a real browser: every observer gets the browser's own
//! entries (paint, navigation, layout shifts caused by moving a DOM node),
//! and the metrics reach Rust closures.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{hide, page_errors, recorder, shift_layout, until, watch_page};
use vitalsign_agent::{on_cls, on_fcp, on_lcp, on_ttfb, MetricName, NavigationType, Rating, ReportOpts};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn paint_navigation_and_layout_shifts_reach_rust_closures() {
    watch_page();
    common::paint_text();
    let all = ReportOpts {
        report_all_changes: true,
        ..Default::default()
    };
    let (fcp, on_fcp_report) = recorder();
    let (ttfb, on_ttfb_report) = recorder();
    let (cls, on_cls_report) = recorder();
    let (lcp, on_lcp_report) = recorder();
    on_fcp(on_fcp_report, ReportOpts::default());
    on_ttfb(on_ttfb_report, ReportOpts::default());
    on_cls(on_cls_report, all);
    on_lcp(on_lcp_report, all);

    until("FCP", || !fcp.borrow().is_empty()).await;
    let m = fcp.borrow()[0].clone();
    assert_eq!(m.name, MetricName::Fcp);
    assert!(m.value > 0.0, "{m:?}");
    assert_eq!(m.delta, m.value, "the first report's delta is its value");
    assert_eq!(m.rating, MetricName::Fcp.rate(m.value));
    assert_eq!(m.navigation_type, NavigationType::Navigate);
    assert!(m.id.starts_with("vs-"), "{}", m.id);
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].name(), "first-contentful-paint");
    assert_eq!(m.entries[0].start_time(), m.value, "the paint entry's startTime");

    until("TTFB", || !ttfb.borrow().is_empty()).await;
    let m = ttfb.borrow()[0].clone();
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].entry_type(), "navigation");
    assert!(m.value > 0.0 && m.value <= m.entries[0].start_time() + m.entries[0].duration());

    until("an LCP candidate", || !lcp.borrow().is_empty()).await;
    assert_eq!(lcp.borrow()[0].entries[0].entry_type(), "largest-contentful-paint");

    // CLS 0 is reported right after FCP with every change reported...
    until("CLS 0", || !cls.borrow().is_empty()).await;
    assert_eq!(cls.borrow()[0].value, 0.0);
    // ...then the shifts of a box moved by the page, frame after frame.
    JsFuture::from(shift_layout(6)).await.unwrap();
    until("CLS from the shifts", || {
        cls.borrow().last().is_some_and(|m| m.value > 0.0)
    })
    .await;
    let last = cls.borrow().last().cloned().unwrap();
    assert!(!last.entries.is_empty());
    assert!(last.entries.iter().all(|e| e.entry_type() == "layout-shift"));
    let ids: Vec<_> = cls.borrow().iter().map(|m| m.id.clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one CLS instance: {ids:?}");
    let deltas: f64 = cls.borrow().iter().map(|m| m.delta).sum();
    assert!((deltas - last.value).abs() < 1e-9, "the deltas add up to the value");
    assert!(last.rating == Rating::Good || last.rating == MetricName::Cls.rate(last.value));

    // A hide reports what is final (LCP here) and nothing throws.
    let lcp_reports = lcp.borrow().len();
    hide();
    assert_eq!(
        lcp.borrow().len(),
        lcp_reports,
        "no new LCP value: nothing more to report"
    );
    assert_eq!(page_errors(), Vec::<String>::new());
}
