//! The npm loader exports the rating thresholds as plain arrays (they must
//! be there before the wasm loads, and in server-side rendering): they must
//! be the Rust constants.
#![cfg(not(target_arch = "wasm32"))]

use vitalsign_agent::MetricName;

#[test]
fn the_loader_exports_the_rust_thresholds() {
    let loader = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/src/index.js")).unwrap();
    for name in MetricName::ALL {
        let t = name.thresholds();
        let line = format!("export const {}Thresholds = [{}, {}];", name.as_str(), t.good, t.poor);
        assert!(loader.contains(&line), "npm/src/index.js lacks `{line}`");
    }
}
