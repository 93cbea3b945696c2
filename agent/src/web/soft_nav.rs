//! Soft navigations in the page (web-vitals 6 `reportSoftNavs`): whether
//! the browser reports them, the navigation of a `soft-navigation` entry,
//! and the routes an app marks by hand with `start_page_view()` where the
//! browser does not. The decisions are `crate::soft_nav`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::JsValue;

use super::bindings::{window, Observer, SoftNavigationEntry, SOFT_NAVIGATION_CLASS};
use super::page::{hard_navigation, now};
use crate::soft_nav::Navigation;

type PageViewHook = Rc<dyn Fn(&Navigation)>;

thread_local! {
    /// The instances that follow `start_page_view()`.
    static PAGE_VIEW_HOOKS: RefCell<Vec<PageViewHook>> = const { RefCell::new(Vec::new()) };
}

/// Whether the browser reports soft navigations as web-vitals 6.2 requires:
/// `soft-navigation` is a supported entry type and
/// `PerformanceSoftNavigation.prototype.getLargestInteractionContentfulPaint`
/// is a function (older implementations had an attribute).
pub fn supported() -> bool {
    let has_type = Observer::supported_entry_types()
        .ok()
        .flatten()
        .is_some_and(|t: Array| t.includes(&JsValue::from_str("soft-navigation"), 0));
    has_type
        && SOFT_NAVIGATION_CLASS.with(|c| {
            c.as_ref()
                .and_then(|c| c.prototype())
                .is_some_and(|p| p.largest_interaction_contentful_paint_member().is_function())
        })
}

/// How an instance follows routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// It does not (the default): the page's whole life is one navigation.
    No,
    /// From the browser's `soft-navigation` entries.
    Entries,
    /// From `start_page_view()` (asked for, but the browser has no entries).
    Manual,
}

/// What `reportSoftNavs` means in this browser.
pub fn routes(report_soft_navs: bool) -> Routes {
    if !report_soft_navs {
        Routes::No
    } else if supported() {
        Routes::Entries
    } else {
        Routes::Manual
    }
}

/// The navigation of a `soft-navigation` entry.
pub fn navigation_of(e: &SoftNavigationEntry) -> Navigation {
    Navigation::new(
        e.navigation_id(),
        e.interaction_id(),
        Some(e.name()),
        Some(e.start_time()),
        &hard_navigation(),
    )
}

/// Calls `f` with the new navigation at each `start_page_view()`.
pub fn on_page_view(f: impl Fn(&Navigation) + 'static) {
    PAGE_VIEW_HOOKS.with(|h| h.borrow_mut().push(Rc::new(f)));
}

/// `start_page_view()`: the app changed route (by hand, without the
/// browser's soft-navigation entries); the instances that follow routes
/// start anew for the current URL. Nothing happens where the browser
/// reports soft navigations itself (no hook is registered there).
pub fn start_page_view() {
    let hooks = PAGE_VIEW_HOOKS.with(|h| h.borrow().clone());
    if hooks.is_empty() {
        return;
    }
    let navigation = Navigation::new(
        None,
        None,
        window().location().href().ok(),
        Some(now()),
        &hard_navigation(),
    );
    for hook in hooks {
        hook(&navigation);
    }
}
