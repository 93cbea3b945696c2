#!/usr/bin/env bash
# Runs every test: formatting and lints, native cargo tests (the agent's
# decisions, the collector), the agent's wasm-bindgen tests in headless
# Chromium, then the npm build, the Rust example app and the end-to-end
# tests (real collector, real browser, web-vitals side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

step() { printf '\n\033[1m== %s\033[0m (at %ss)\n' "$*" "$SECONDS"; }

step "formatting and lints (cargo fmt --check, cargo clippy -D warnings, native and wasm32)"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p vitalsign-agent -p vitalsign-example-app --target wasm32-unknown-unknown --all-targets --features vitalsign-agent/js -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p vitalsign-agent --no-deps --target wasm32-unknown-unknown --features js
# The attribution build (vitalsign/attribution, Metric::attribution).
cargo clippy -p vitalsign-agent --target wasm32-unknown-unknown --all-targets --features js,attribution -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p vitalsign-agent --no-deps --target wasm32-unknown-unknown --features js,attribution

step "native tests (cargo test --workspace)"
cargo test --workspace

step "the agent's wasm-bindgen tests in headless Chromium"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
  cargo test -p vitalsign-agent --target wasm32-unknown-unknown --features js
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
  cargo test -p vitalsign-agent --target wasm32-unknown-unknown --features js,attribution --test browser_attribution

step "build the npm package, the Rust example app, the collector and gen_store (the dashboard tests' history)"
(cd npm && npm run --silent build)
cargo build -p vitalsign-example-app --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir tests/.out/rust-app target/wasm32-unknown-unknown/debug/vitalsign_example_app.wasm
cargo build -p vitalsign-collector --bin vitalsign-collector --example gen_store

step "end-to-end tests"
(cd tests && npm test)
echo "test.sh finished in ${SECONDS}s"
