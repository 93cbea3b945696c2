#!/usr/bin/env bash
# Fuzzes the collector's beacon parser and validator (and gzip inflater)
# for a bounded time: `scripts/fuzz-collector.sh [SECONDS]` (default 60).
#
# cargo-fuzz (libFuzzer) on the stable toolchain: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its unstable flags, and --sanitizer none skips
# AddressSanitizer (which needs a nightly-built standard library). The
# invariants are assertions in collector::fuzzing::check_beacon, so a
# broken invariant is a crash either way. Inputs that crash are saved under
# collector/fuzz/artifacts/beacon/; the growing corpus under
# collector/fuzz/corpus/beacon/ (both ignored by git), starting from
# collector/fuzz/seeds/.
set -euo pipefail
cd "$(dirname "$0")/../collector/fuzz"
seconds=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz
fi
mkdir -p corpus/beacon
RUSTC_BOOTSTRAP=1 cargo fuzz run beacon --sanitizer none corpus/beacon seeds -- \
  -max_total_time="$seconds" -max_len=70000 -timeout=5 -rss_limit_mb=1024 -print_final_stats=1
