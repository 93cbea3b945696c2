#!/usr/bin/env bash
# Runs every test: native cargo tests (the agent's decisions and its wasm
# interface, the collector), then the npm build and the end-to-end tests
# (real collector, real browser, web-vitals side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

step() { printf '\n\033[1m== %s\033[0m (at %ss)\n' "$*" "$SECONDS"; }

step "lint (cargo fmt --check, cargo clippy -D warnings)"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

step "native tests (cargo test --workspace)"
cargo test --workspace

step "build the npm package, the collector and gen_store (the dashboard tests' history)"
(cd npm && npm run --silent build)
cargo build -p vitalsign-collector --bin vitalsign-collector --example gen_store

step "end-to-end tests"
(cd tests && npm test)
echo "test.sh finished in ${SECONDS}s"
