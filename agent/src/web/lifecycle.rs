//! Page lifecycle shared by all metrics: when the page was first hidden,
//! hide and bfcache-restore hooks, prerender activation, and scheduling
//! helpers (the reference's `getVisibilityWatcher`, `onBFCacheRestore`,
//! `whenActivated`, `whenIdleOrHidden`, `doubleRAF`).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::bindings::{self, Entry, Event};
use super::global::Global;

type Hook = Rc<dyn Fn()>;

struct Visibility {
    /// -1 until the watcher starts.
    first_hidden_time: f64,
    on_hidden: Vec<Hook>,
}

static VISIBILITY: Global<RefCell<Visibility>> = Global::new(RefCell::new(Visibility {
    first_hidden_time: -1.0,
    on_hidden: Vec::new(),
}));
static BFCACHE_RESTORE_TIME: Global<Cell<f64>> = Global::new(Cell::new(-1.0));

/// Registers `f` as a window event listener for the page's life.
pub fn listen(event_type: &str, capture: bool, f: impl FnMut(Event) + 'static) -> Function {
    let f: Function = Closure::<dyn FnMut(Event)>::new(f).into_js_value().unchecked_into();
    bindings::add_event_listener(event_type, &f, capture);
    f
}

pub fn once(f: impl FnOnce() + 'static) -> JsValue {
    Closure::once_into_js(f)
}

pub fn set_timeout(f: impl FnOnce() + 'static) {
    bindings::set_timeout(&once(f), 0.0);
}

pub fn double_raf(f: impl FnOnce() + 'static) {
    bindings::request_animation_frame(&once(move || {
        bindings::request_animation_frame(&once(f));
    }));
}

/// The navigation entry's `activationStart` (prerendered pages), else 0.
pub fn activation_start() -> f64 {
    navigation_entry().and_then(|e| e.activation_start()).unwrap_or(0.0)
}

/// The navigation entry, if its `responseStart` is valid.
pub fn navigation_entry() -> Option<Entry> {
    let entry: Entry = bindings::entries_by_type("navigation")
        .ok()?
        .get(0)
        .dyn_into::<Object>()
        .ok()?
        .unchecked_into();
    crate::ttfb::entry_is_valid(entry.response_start(), bindings::now()).then_some(entry)
}

fn initial_hidden_time() -> f64 {
    if bindings::document_hidden() && !bindings::prerendering() {
        0.0
    } else {
        f64::INFINITY
    }
}

/// When the page was first hidden (0 if it loaded in the background,
/// infinity if it has not been hidden). Starts the watcher on first use.
pub fn first_hidden_time() -> f64 {
    let started = VISIBILITY.with(|v| v.borrow().first_hidden_time >= 0.0);
    if !started {
        start_visibility_watcher();
    }
    VISIBILITY.with(|v| v.borrow().first_hidden_time)
}

fn start_visibility_watcher() {
    // A `visibility-state` entry tells when the page was hidden even before
    // the agent loaded.
    let from_entries = if bindings::prerendering() {
        None
    } else {
        let activation = activation_start();
        bindings::entries_by_type("visibility-state").ok().and_then(|list| {
            list.iter()
                .map(|e| e.unchecked_into::<Entry>())
                .find(|e| e.name() == "hidden" && e.start_time() >= activation)
                .map(|e| e.start_time())
        })
    };
    let t = from_entries.unwrap_or_else(initial_hidden_time);
    VISIBILITY.with(|v| v.borrow_mut().first_hidden_time = t);

    let update = |event: Event| {
        if !bindings::document_hidden() {
            return;
        }
        let is_visibilitychange = event.event_type() == "visibilitychange";
        if is_visibilitychange {
            fire_hidden();
        }
        VISIBILITY.with(|v| {
            let mut v = v.borrow_mut();
            if !v.first_hidden_time.is_finite() {
                // After `prerenderingchange` and still hidden: activated in
                // the background, so hidden all along.
                v.first_hidden_time = if is_visibilitychange { event.time_stamp() } else { 0.0 };
            }
        });
    };
    listen("visibilitychange", true, update);
    listen("prerenderingchange", true, update);
    on_bfcache_restore(|_| {
        set_timeout(|| VISIBILITY.with(|v| v.borrow_mut().first_hidden_time = initial_hidden_time()));
    });
}

/// Runs the hooks registered with `on_hidden`.
pub fn fire_hidden() {
    // Clone the hooks: they may register more hooks.
    let hooks: Vec<Hook> = VISIBILITY.with(|v| v.borrow().on_hidden.clone());
    for hook in hooks {
        hook();
    }
}

/// Runs `f` on every change to hidden (after the watcher started).
pub fn on_hidden(f: impl Fn() + 'static) {
    first_hidden_time();
    VISIBILITY.with(|v| v.borrow_mut().on_hidden.push(Rc::new(f)));
}

pub fn bfcache_restore_time() -> f64 {
    BFCACHE_RESTORE_TIME.with(Cell::get)
}

/// Runs `f` on every restore from the back/forward cache.
pub fn on_bfcache_restore(f: impl Fn(&Event) + 'static) {
    listen("pageshow", true, move |event: Event| {
        if event.persisted() == Some(true) {
            BFCACHE_RESTORE_TIME.with(|t| t.set(event.time_stamp()));
            f(&event);
        }
    });
}

/// Runs `f` now, or once a prerendered page is activated.
pub fn when_activated(f: impl FnOnce() + 'static) {
    if bindings::prerendering() {
        let f = Cell::new(Some(f));
        listen("prerenderingchange", true, move |_| {
            if let Some(f) = f.take() {
                f();
            }
        });
    } else {
        f();
    }
}

/// Runs `f` in an idle callback (at most 1 s later), or at once if the page
/// is or becomes hidden first: keeps work off the interaction's frame.
pub fn when_idle_or_hidden(f: impl FnOnce() + 'static) {
    if bindings::document_hidden() {
        f();
        return;
    }
    type Once = Cell<Option<Box<dyn FnOnce()>>>;
    let f: Rc<Once> = Rc::new(Cell::new(Some(Box::new(f))));
    let handle = Rc::new(Cell::new(-1.0));
    let run = {
        let f = f.clone();
        move || {
            if let Some(f) = f.take() {
                f();
            }
        }
    };
    let on_hidden: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
    let hidden_listener: Function = {
        let run = run.clone();
        let handle = handle.clone();
        Closure::once_into_js(move || {
            let _ = bindings::cancel_idle_callback(handle.get());
            run();
        })
        .unchecked_into()
    };
    *on_hidden.borrow_mut() = Some(hidden_listener.clone());
    let opts = Object::new();
    // `once` so the listener leaves by itself when the page hides first.
    bindings::set(&opts, "once", &JsValue::TRUE);
    bindings::set(&opts, "capture", &JsValue::TRUE);
    add_listener_with_options("visibilitychange", &hidden_listener, &opts);
    let idle = once(move || {
        if let Some(l) = on_hidden.borrow_mut().take() {
            bindings::remove_event_listener("visibilitychange", &l, true);
        }
        run();
    });
    let timeout = Object::new();
    bindings::set(&timeout, "timeout", &JsValue::from_f64(1000.0));
    match bindings::request_idle_callback(&idle, &timeout) {
        Ok(h) => handle.set(h),
        Err(_) => {
            bindings::set_timeout(&idle, 0.0);
        }
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = addEventListener)]
    fn add_listener_with_options(event_type: &str, listener: &Function, options: &Object);
}
