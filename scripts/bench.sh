#!/usr/bin/env bash
# Benchmarks (not part of the tests): agent size, agent main-thread cost
# against web-vitals, and the collector's throughput when its script exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
(cd npm && npm run --silent build)
echo "== agent size"
node tests/bench/size.mjs
echo
echo "== agent main-thread cost"
node tests/bench/main-thread.mjs
if [ -x scripts/bench-collector.sh ]; then
  echo
  echo "== collector"
  scripts/bench-collector.sh
fi
