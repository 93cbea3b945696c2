//! The page lifecycle as the reference sees it (web-vitals `src/lib/`):
//! visibility and the first hidden time, bfcache restores, prerendering,
//! idle callbacks, double animation frames, the navigation entry.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use beacon::NavigationType;
use gloo_timers::callback::Timeout;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, IdleRequestOptions, PageTransitionEvent, VisibilityState};

use super::bindings::{document, performance, window, NavigationEntry};
use crate::navigation::{navigation_type as decide_navigation_type, PageState};

type Hook = Rc<dyn Fn()>;
type Pending = Rc<Cell<Option<Box<dyn FnOnce()>>>>;
type RestoreHook = Rc<dyn Fn(f64)>;

#[derive(Default)]
struct Lifecycle {
    /// `timeStamp` of the last bfcache restore; `None` before any.
    restored_at: Option<f64>,
    /// `None` until the visibility watcher starts.
    first_hidden: Option<f64>,
    hidden_hooks: Vec<Hook>,
    /// Work of [`when_idle_or_hidden`] waiting for its idle period.
    idle_pending: Vec<Pending>,
    restore_hooks: Vec<RestoreHook>,
    watching_restores: bool,
}

thread_local! {
    static LIFECYCLE: RefCell<Lifecycle> = RefCell::default();
}

fn with<R>(f: impl FnOnce(&mut Lifecycle) -> R) -> R {
    LIFECYCLE.with(|l| f(&mut l.borrow_mut()))
}

// The helpers below box their closures before they reach wasm-bindgen or
// gloo-timers, so that each kind of closure has one shim in the wasm
// instead of one per call site.

/// A JS function that calls `f` once.
pub fn once(f: Box<dyn FnOnce()>) -> js_sys::Function {
    Closure::once_into_js(f).unchecked_into()
}

/// A JS function that calls `f` with each event, for the page's life.
pub fn event_handler(f: Box<dyn FnMut(Event)>) -> js_sys::Function {
    Closure::wrap(f).into_js_value().unchecked_into()
}

/// Adds a capturing listener on the window for the page's life.
pub fn listen(event_type: &str, f: impl FnMut(Event) + 'static) {
    let f = event_handler(Box::new(f));
    let _ = window().add_event_listener_with_callback_and_bool(event_type, &f, true);
}

/// Runs `f` after `ms` (a task even for 0).
pub fn later(ms: u32, f: impl FnOnce() + 'static) {
    let f: Box<dyn FnOnce()> = Box::new(f);
    Timeout::new(ms, f).forget();
}

pub fn hidden() -> bool {
    document().visibility_state() == VisibilityState::Hidden
}

pub fn prerendering() -> bool {
    document().prerendering()
}

pub fn now() -> f64 {
    performance().now()
}

/// The navigation entry, if its `responseStart` can be trusted.
pub fn navigation_entry() -> Option<NavigationEntry> {
    let entry = performance().get_entries_by_type("navigation").get(0);
    if !entry.is_object() {
        return None;
    }
    let entry: NavigationEntry = entry.unchecked_into();
    crate::ttfb::entry_is_valid(entry.response_start(), now()).then_some(entry)
}

pub fn activation_start() -> f64 {
    navigation_entry().and_then(|e| e.activation_start()).unwrap_or(0.0)
}

/// A metric instance's `navigationType`, decided when it starts.
pub fn navigation_type() -> NavigationType {
    let entry = navigation_entry();
    let entry_type = entry.as_ref().and_then(NavigationEntry::navigation_type);
    decide_navigation_type(&PageState {
        restored_from_bfcache: with(|l| l.restored_at.is_some()),
        has_navigation_entry: entry.is_some(),
        prerendering: prerendering(),
        activation_start: entry
            .as_ref()
            .and_then(NavigationEntry::activation_start)
            .unwrap_or(0.0),
        was_discarded: document().was_discarded(),
        entry_type: entry_type.as_deref(),
    })
}

/// The `timeStamp` of the last bfcache restore, if any.
pub fn restored_at() -> Option<f64> {
    with(|l| l.restored_at)
}

/// The hard navigation's `navigationId` and URL, for a metric instance.
pub fn hard_navigation() -> crate::soft_nav::Navigation {
    let entry = navigation_entry();
    crate::soft_nav::Navigation::hard(
        entry
            .as_ref()
            .and_then(|e| e.unchecked_ref::<super::bindings::NavigatedEntry>().navigation_id()),
        entry.map(|e| e.name()),
    )
}

/// A soft navigation's LCP starts a new visibility watch: the page counts
/// as never hidden again (web-vitals `getVisibilityWatcher(true)`, which
/// every metric shares).
pub fn reset_first_hidden() {
    first_hidden_time();
    with(|l| l.first_hidden = Some(f64::INFINITY));
}

/// Calls `f(event.timeStamp)` after every bfcache restore (`pageshow` with
/// `persisted`), in the order the hooks were added.
pub fn on_restore(f: impl Fn(f64) + 'static) {
    let start = with(|l| {
        l.restore_hooks.push(Rc::new(f));
        !std::mem::replace(&mut l.watching_restores, true)
    });
    if start {
        listen("pageshow", |e| {
            let e: &PageTransitionEvent = e.unchecked_ref();
            if !e.persisted() {
                return;
            }
            let at = e.time_stamp();
            let hooks = with(|l| {
                l.restored_at = Some(at);
                l.restore_hooks.clone()
            });
            for hook in hooks {
                hook(at);
            }
        });
    }
}

fn initial_hidden_time() -> f64 {
    if hidden() && !prerendering() {
        0.0
    } else {
        f64::INFINITY
    }
}

/// When the page was first hidden (infinity while it has not been); starts
/// the visibility watcher on first use.
pub fn first_hidden_time() -> f64 {
    if let Some(t) = with(|l| l.first_hidden) {
        return t;
    }
    // A visibility-state entry tells when the page was hidden even before
    // the agent ran.
    let t = if prerendering() {
        None
    } else {
        let since = activation_start();
        super::observe::entries(&performance().get_entries_by_type("visibility-state"))
            .into_iter()
            .find(|e| e.name() == "hidden" && e.start_time() >= since)
            .map(|e| e.start_time())
    };
    let t = t.unwrap_or_else(initial_hidden_time);
    with(|l| l.first_hidden = Some(t));
    let update = |changed: bool, at: f64| {
        if !hidden() {
            return;
        }
        if changed {
            fire_hidden();
        }
        // Still hidden after prerenderingchange: hidden all along.
        with(|l| {
            if l.first_hidden == Some(f64::INFINITY) {
                l.first_hidden = Some(if changed { at } else { 0.0 });
            }
        });
    };
    listen("visibilitychange", move |e| update(true, e.time_stamp()));
    listen("prerenderingchange", move |e| update(false, e.time_stamp()));
    on_restore(|_| later(0, || with(|l| l.first_hidden = Some(initial_hidden_time()))));
    t
}

/// Runs every hook added with [`on_hidden`] (on `visibilitychange` to
/// hidden, and once the agent starts if the loader saw the page hidden).
pub fn fire_hidden() {
    // Work waiting for an idle period runs first, so that what the hooks
    // report includes it (entries the agent replayed just before the page
    // was hidden, whose idle callback had not come yet).
    let pending = with(|l| std::mem::take(&mut l.idle_pending));
    for f in pending {
        if let Some(f) = f.take() {
            f();
        }
    }
    let hooks = with(|l| l.hidden_hooks.clone());
    for hook in hooks {
        hook();
    }
}

pub fn on_hidden(f: impl Fn() + 'static) {
    first_hidden_time();
    with(|l| l.hidden_hooks.push(Rc::new(f)));
}

/// Runs `f` now, or after `prerenderingchange` while the page prerenders.
pub fn when_activated(f: impl FnOnce() + 'static) {
    if !prerendering() {
        return f();
    }
    once_on("prerenderingchange", Box::new(f));
}

/// Runs `f` on the first `event_type` event.
fn once_on(event_type: &str, f: Box<dyn FnOnce()>) {
    let f = Cell::new(Some(f));
    listen(event_type, move |_| {
        if let Some(f) = f.take() {
            f();
        }
    });
}

/// Runs `f` in an idle period (at most 1 s later), or at once if the page is
/// or becomes hidden first.
pub fn when_idle_or_hidden(f: impl FnOnce() + 'static) {
    idle_or_hidden(Box::new(f));
}

fn idle_or_hidden(f: Box<dyn FnOnce()>) {
    if hidden() {
        return f();
    }
    // The visibility watcher runs it if the page is hidden first.
    first_hidden_time();
    let f: Pending = Rc::new(Cell::new(Some(f)));
    with(|l| l.idle_pending.push(f.clone()));
    let idle = once(Box::new(move || {
        with(|l| l.idle_pending.retain(|p| !Rc::ptr_eq(p, &f)));
        if let Some(f) = f.take() {
            f();
        }
    }));
    let options = IdleRequestOptions::new();
    options.set_timeout(1000);
    if window().request_idle_callback_with_options(&idle, &options).is_err() {
        later(0, move || {
            let _ = idle.call0(&JsValue::UNDEFINED);
        });
    }
}

/// Runs `f` after two animation frames (the reference's doubleRAF).
pub fn double_raf(f: impl FnOnce() + 'static) {
    let f: Box<dyn FnOnce()> = Box::new(f);
    let outer = once(Box::new(move || {
        let _ = window().request_animation_frame(&once(f));
    }));
    let _ = window().request_animation_frame(&outer);
}

/// Runs `f` once the page has loaded (and is activated), in a task after
/// the `load` event.
pub fn when_ready(f: impl FnOnce() + 'static) {
    ready(Box::new(f));
}

fn ready(f: Box<dyn FnOnce()>) {
    if prerendering() {
        return when_activated(move || ready(f));
    }
    if document().ready_state() != "complete" {
        return once_on("load", Box::new(move || ready(f)));
    }
    later(0, f);
}
