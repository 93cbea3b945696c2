#!/usr/bin/env bash
# Benchmarks (not part of the tests): agent size, agent main-thread cost
# against web-vitals, the dashboard's render time over 1,000 pages and 28
# days, and the collector's throughput when its script exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
(cd npm && npm run --silent build)
echo "== agent size"
node tests/bench/size.mjs
echo
echo "== agent main-thread cost"
node tests/bench/main-thread.mjs
echo
echo "== dashboard render (1,000,000 reports, 1,000 pages, 28 days)"
cargo build --release -p vitalsign-collector --bin vitalsign-collector --example gen_store
VITALSIGN_COLLECTOR=${CARGO_TARGET_DIR:-target}/release/vitalsign-collector \
VITALSIGN_GEN_STORE=${CARGO_TARGET_DIR:-target}/release/examples/gen_store \
  node tests/bench/dashboard.mjs
if [ -x scripts/bench-collector.sh ]; then
  echo
  echo "== collector"
  scripts/bench-collector.sh
fi
