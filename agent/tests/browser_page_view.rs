//! `start_page_view()` in a real browser without the Soft Navigations API:
//! instances registered with `report_soft_navs` start anew for the new URL
//! (the old CLS is final at once), TTFB is 0 for the route, and instances
//! without `report_soft_navs` go on as one page.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{hide, page_errors, recorder, shift_layout, sleep, until, watch_page};
use vitalsign_agent::{on_cls, on_fcp, on_ttfb, start_page_view, NavigationType, ReportOpts};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
export function noSoftNavs() { delete window.PerformanceSoftNavigation; }
export function pushRoute(path) { history.pushState(null, '', path); }
")]
extern "C" {
    #[wasm_bindgen(js_name = noSoftNavs)]
    fn no_soft_navs();
    #[wasm_bindgen(js_name = pushRoute)]
    fn push_route(path: &str);
}

#[wasm_bindgen_test]
async fn start_page_view_restarts_metrics_for_the_new_url() {
    // As in a browser without soft-navigation entries (Firefox, Safari).
    no_soft_navs();
    watch_page();
    common::paint_text();
    let soft = ReportOpts {
        report_soft_navs: true,
        ..Default::default()
    };
    let (fcp, on_fcp_report) = recorder();
    let (cls, on_cls_report) = recorder();
    let (ttfb, on_ttfb_report) = recorder();
    let (whole, on_whole_report) = recorder();
    on_fcp(on_fcp_report, soft);
    on_cls(on_cls_report, soft);
    on_ttfb(on_ttfb_report, soft);
    on_cls(on_whole_report, ReportOpts::default());
    until("FCP", || !fcp.borrow().is_empty()).await;
    until("TTFB", || !ttfb.borrow().is_empty()).await;
    sleep(50).await; // CLS starts after FCP
    let first_url = ttfb.borrow()[0]
        .navigation_url
        .clone()
        .expect("the hard navigation's URL");
    assert_eq!(ttfb.borrow()[0].navigation_start_time, 0.0);
    JsFuture::from(shift_layout(3)).await.unwrap();
    sleep(50).await;
    assert!(cls.borrow().is_empty(), "nothing before the route change");

    push_route("/route-b?x=1");
    start_page_view();
    // The first page's CLS is final at the route change.
    assert_eq!(cls.borrow().len(), 1);
    let old = cls.borrow()[0].clone();
    assert_eq!(old.navigation_type, NavigationType::Navigate);
    assert!(old.value > 0.0, "{old:?}");
    assert_eq!(old.navigation_url.as_deref(), Some(first_url.as_str()));
    // TTFB is 0 for the route, reported at once.
    assert_eq!(ttfb.borrow().len(), 2);
    let route = ttfb.borrow()[1].clone();
    assert_eq!(
        (route.value, route.navigation_type),
        (0.0, NavigationType::SoftNavigation)
    );
    assert!(
        route
            .navigation_url
            .as_deref()
            .is_some_and(|u| u.ends_with("/route-b?x=1")),
        "{route:?}"
    );
    assert!(route.navigation_start_time > 0.0);
    assert_eq!(route.navigation_interaction_id, None);
    assert_ne!(route.id, ttfb.borrow()[0].id);
    assert_eq!(fcp.borrow().len(), 1, "no FCP for a route marked by hand");

    // The new CLS counts only the route's shifts.
    JsFuture::from(shift_layout(2)).await.unwrap();
    sleep(50).await;
    hide();
    assert_eq!(cls.borrow().len(), 2);
    let new = cls.borrow()[1].clone();
    assert_eq!(new.navigation_type, NavigationType::SoftNavigation);
    assert_ne!(new.id, old.id);
    assert_eq!(new.navigation_url, route.navigation_url);
    assert_eq!(new.navigation_start_time, route.navigation_start_time);
    assert!(new.value > 0.0 && new.value == new.delta, "{new:?}");
    // Without report_soft_navs: one instance for the page's whole life.
    assert_eq!(whole.borrow().len(), 1);
    let w = whole.borrow()[0].clone();
    assert_eq!(w.navigation_type, NavigationType::Navigate);
    assert!(w.value >= old.value, "{w:?} {old:?}");
    assert_eq!(page_errors(), Vec::<String>::new());
}
