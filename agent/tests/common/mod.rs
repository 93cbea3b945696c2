//! Helpers of the in-browser tests (wasm-bindgen-test in headless Chromium):
//! page stubs written in JS, since they stand in for the page and the
//! browser, and a wait.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use vitalsign_agent::Metric;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function hide() {
  Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}
export function show() {
  Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}
// Records what the agent sends instead of sending it.
export function recordBeacons() {
  window.__sent = [];
  navigator.sendBeacon = (url, body) => { window.__sent.push({ how: 'beacon', url, body }); return true; };
  window.fetch = (url, init) => {
    window.__sent.push({ how: init.keepalive ? 'keepalive' : 'fetch', url, body: init.body });
    return Promise.resolve(new Response(null, { status: 204 }));
  };
}
export function sentBodies() { return (window.__sent || []).map((s) => s.body); }
export function sentHow() { return (window.__sent || []).map((s) => s.how); }
export function sentUrls() { return (window.__sent || []).map((s) => s.url); }
// Uncaught errors and unhandled rejections on the page, and console.warn calls.
export function watchPage() {
  window.__errors = [];
  window.__warnings = [];
  addEventListener('error', (e) => window.__errors.push(String(e.message)));
  addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));
  const warn = console.warn;
  console.warn = (...a) => { window.__warnings.push(a.join(' ')); warn.apply(console, a); };
}
export function pageErrors() { return window.__errors || []; }
export function warnings() { return window.__warnings || []; }
// Moves a box down and back every frame, `n` times: one layout shift each.
export function shiftLayout(n) {
  const box = document.createElement('div');
  box.style.cssText = 'position: relative; width: 300px; height: 80px; background: #8ac';
  box.textContent = 'shifting';
  document.body.prepend(box);
  return new Promise((resolve) => {
    let i = 0;
    const step = () => {
      box.style.top = (i % 2 ? 0 : 40) + 'px';
      if (++i < n) requestAnimationFrame(step); else requestAnimationFrame(() => resolve());
    };
    requestAnimationFrame(step);
  });
}
export function removeApis(names) {
  for (const name of names) {
    if (name === 'PerformanceObserver') delete window.PerformanceObserver;
    if (name === 'sendBeacon') { delete navigator.sendBeacon; delete Navigator.prototype.sendBeacon; }
    if (name === 'localStorage') Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('blocked', 'SecurityError'); } });
  }
}
// The test runner's page shows nothing: some text to paint (FCP, LCP).
export function paintText() {
  const p = document.createElement('p');
  p.textContent = 'vitalsign in-browser test: some contentful text';
  p.style.cssText = 'font-size: 24px';
  document.body.append(p);
}
export function layoutShiftEntries() { return performance.getEntriesByType('layout-shift').length; }
"#)]
extern "C" {
    pub fn hide();
    pub fn show();
    #[wasm_bindgen(js_name = recordBeacons)]
    pub fn record_beacons();
    #[wasm_bindgen(js_name = sentBodies)]
    pub fn sent_bodies() -> Vec<String>;
    #[wasm_bindgen(js_name = sentHow)]
    pub fn sent_how() -> Vec<String>;
    #[wasm_bindgen(js_name = sentUrls)]
    pub fn sent_urls() -> Vec<String>;
    #[wasm_bindgen(js_name = watchPage)]
    pub fn watch_page();
    #[wasm_bindgen(js_name = pageErrors)]
    pub fn page_errors() -> Vec<String>;
    pub fn warnings() -> Vec<String>;
    #[wasm_bindgen(js_name = shiftLayout)]
    pub fn shift_layout(n: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = paintText)]
    pub fn paint_text();
    #[wasm_bindgen(js_name = removeApis)]
    pub fn remove_apis(names: Vec<String>);
}

/// Polls `done` every 20 ms for up to 10 s.
pub async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        TimeoutFuture::new(20).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

/// A callback that keeps every metric it is given.
pub fn recorder() -> (Rc<RefCell<Vec<Metric>>>, impl FnMut(&Metric) + Clone + 'static) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |m: &Metric| sink.borrow_mut().push(m.clone()))
}
