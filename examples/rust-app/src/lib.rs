//! A plain wasm-bindgen app that measures itself with the vitalsign
//! agent's Rust API: the five metrics to Rust closures (shown on the page
//! and recorded for the test), and `init()` beaconing them.

use vitalsign_agent::{init, on_cls, on_fcp, on_inp, on_lcp, on_ttfb, Metric, Options, ReportOpts};
use wasm_bindgen::prelude::*;

// The page's side: where the app shows and records what it measured.
#[wasm_bindgen(inline_js = r#"
export function show(name, value, delta, rating, navigationType, id, entries) {
  (window.__reports ||= { wv: [], vs: [] }).vs.push({ name, value, delta, rating, navigationType, id, entries });
  const row = document.getElementById(name);
  if (row) row.textContent = `${name}: ${name === 'CLS' ? value.toFixed(3) : Math.round(value) + ' ms'} (${rating})`;
}
export function endpoint() { return new URLSearchParams(location.search).get('beacon') || '/v1/beacon'; }
"#)]
extern "C" {
    fn show(name: &str, value: f64, delta: f64, rating: &str, navigation_type: &str, id: &str, entries: u32);
    fn endpoint() -> String;
}

fn report(m: &Metric) {
    show(
        m.name.as_str(),
        m.value,
        m.delta,
        m.rating.as_str(),
        m.navigation_type.as_str(),
        &m.id,
        m.entries.len() as u32,
    );
}

/// Runs when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    init(Options {
        endpoint: endpoint(),
        ..Default::default()
    });
    on_fcp(report, ReportOpts::default());
    on_lcp(report, ReportOpts::default());
    on_cls(report, ReportOpts::default());
    on_inp(report, ReportOpts::default());
    on_ttfb(report, ReportOpts::default());
}
