#!/usr/bin/env bash
# Collector benchmarks, all on loopback (see docs/benchmarks.md):
#  m. memory per new page key and per stored report (examples/bench_memory);
#  0. parse, validate and convert of a beacon body alone (examples/bench_parse),
#     against a serde_json pass that builds nothing;
#  1. throughput with wrk, keep-alive, 64 connections: 1-metric beacons
#     (~330 B) and 10-metric beacons into a real SQLite store, against a
#     no-op actix-web endpoint measured in the same run; server CPU time
#     per beacon;
#  2. GET /v1/summary latency over 1,000,000 stored reports and 1,000 pages;
#  3. (STARTUP_REPORTS=N) start-up time on a large store, clean and after
#     SIGKILL.
# Knobs (environment): DURATION (wrk run, default 15s), CONNECTIONS (64),
# THREADS (wrk threads, 2: one per core, wrk's usual setting; with one,
# the load generator's single thread left the cores idle ~10 % of a run), SUMMARY_REPORTS (1000000), SUMMARY_PAGES (1000),
# STARTUP_REPORTS (0: skip), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SUMMARY_REPORTS=${SUMMARY_REPORTS:-1000000}
SUMMARY_PAGES=${SUMMARY_PAGES:-1000}
STARTUP_REPORTS=${STARTUP_REPORTS:-0}
target=${CARGO_TARGET_DIR:-target}

if ! command -v wrk >/dev/null; then
  echo "wrk is missing: apt-get install -y wrk" >&2
  exit 1
fi
cargo build --release -p vitalsign-collector --bin vitalsign-collector --example noop_server --example gen_store \
  --example bench_parse --example bench_memory
bin=$target/release/vitalsign-collector
noop=$target/release/examples/noop_server
gen=$target/release/examples/gen_store

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME CMD...: starts it, waits for its "listening on" line,
# sets $pid and $url.
# (The collector listens at once and loads its store after: wait_ready.)
start_server() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  for _ in $(seq 1 600); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name did not start" >&2
  exit 1
}

# wait_ready: until the collector at $url answers /readyz with 200.
wait_ready() {
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the collector exited" >&2; exit 1; }
    sleep 0.02
  done
}

stop_server() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

# CPU seconds (user + system) the server has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$pid/stat"
}

# run_wrk LABEL SCRIPT: prints "requests/s p99_ms non2xx requests cpu_s".
run_wrk() {
  local label=$1 script=$2
  # A short warm-up, not measured.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$script" "$url" >/dev/null
  local cpu0; cpu0=$(cpu_seconds)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url" >"$work/$label.wrk"
  local cpu1; cpu1=$(cpu_seconds)
  awk -v cpu0="$cpu0" -v cpu1="$cpu1" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    / 99%/ { p99 = ms($2) }
    /requests in/ { n = $1 }
    /Non-2xx/ { bad = $5 }
    END { printf "%s %.2f %d %d %.3f\n", rps, p99, bad + 0, n, cpu1 - cpu0 }
  ' "$work/$label.wrk"
}

echo "== memory: per new page key and per stored report (live heap, same run's empty store as baseline)"
"$target/release/examples/bench_memory"
echo

echo "== parse, validate and convert a beacon body (one thread, no HTTP)"
"$target/release/examples/bench_parse" 10
"$target/release/examples/bench_parse" 1
echo

echo "== machine: $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk: $THREADS thread(s), $CONNECTIONS connections, keep-alive, $DURATION per run"
echo

start_server noop "$noop" 127.0.0.1:0
read -r noop_rps noop_p99 noop_bad noop_n noop_cpu < <(run_wrk noop collector/benches/beacon1.lua)
stop_server

start_server collector "$bin" --listen 127.0.0.1:0 --data-dir "$work/data" \
  --www-dir /nonexistent --agent-dir /nonexistent --rate-per-ip 0
wait_ready
read -r one_rps one_p99 one_bad one_n one_cpu < <(run_wrk one collector/benches/beacon1.lua)
read -r ten_rps ten_p99 ten_bad ten_n ten_cpu < <(run_wrk ten collector/benches/beacon10.lua)
stored=$(curl -s "$url/metrics" | awk '/^vitalsign_reports_stored_total/ { print $2 }')
stop_server
db_mb=$(du -sm "$work/data" | cut -f1)

awk -v nr="$noop_rps" -v np="$noop_p99" -v nc="$noop_cpu" -v nn="$noop_n" \
    -v r1="$one_rps" -v p1="$one_p99" -v b1="$one_bad" -v n1="$one_n" -v c1="$one_cpu" \
    -v r10="$ten_rps" -v p10="$ten_p99" -v b10="$ten_bad" -v n10="$ten_n" -v c10="$ten_cpu" \
    -v stored="$stored" -v mb="$db_mb" 'BEGIN {
  printf "| run | beacons/s | metrics/s | p99 latency | non-2xx | server CPU per beacon |\n"
  printf "|---|---:|---:|---:|---:|---:|\n"
  printf "| no-op actix-web endpoint, 1-metric body | %.0f | - | %.2f ms | - | %.1f us |\n", nr, np, nc / nn * 1e6
  printf "| collector, 1-metric beacons | %.0f | %.0f | %.2f ms | %d | %.1f us |\n", r1, r1, p1, b1, c1 / n1 * 1e6
  printf "| collector, 10-metric beacons | %.0f | %.0f | %.2f ms | %d | %.1f us |\n", r10, r10 * 10, p10, b10, c10 / n10 * 1e6
  printf "\ncollector / no-op throughput (1-metric): %.2f\n", r1 / nr
  printf "target 1-metric >= 40000 beacons/s with p99 < 10 ms: %s\n", (r1 >= 40000 && p1 < 10) ? "met" : "missed"
  printf "target 10-metric >= 300000 metrics/s: %s\n", (r10 * 10 >= 300000) ? "met" : "missed"
  printf "reports stored: %d (database %d MB)\n", stored, mb
}'

echo
echo "== GET /v1/summary over $SUMMARY_REPORTS reports, $SUMMARY_PAGES pages, 28 days"
"$gen" "$work/summary" "$SUMMARY_REPORTS" "$SUMMARY_PAGES" 28
start_server summary "$bin" --listen 127.0.0.1:0 --data-dir "$work/summary" \
  --www-dir /nonexistent --agent-dir /nonexistent
wait_ready
for _ in 1 2 3; do curl -s -o /dev/null "$url/v1/summary?site=bench.example"; done
: >"$work/times"
for _ in $(seq 1 30); do
  curl -s -o "$work/summary.json" -w '%{time_total}\n' "$url/v1/summary?site=bench.example" >>"$work/times"
done
pages=$(grep -o '"page":' "$work/summary.json" | wc -l)
bytes=$(wc -c <"$work/summary.json")
sort -n "$work/times" | awk -v pages="$pages" -v bytes="$bytes" '
  { t[NR] = $1 * 1000 }
  END { printf "summary: %d pages, %d bytes; over %d requests: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
        pages, bytes, NR, t[int(NR / 2) + 1], t[int(NR * 0.9)], t[NR] }'
for w in 1h 24h 7d; do
  curl -s -o /dev/null -w "summary window=$w: %{time_total}s\n" "$url/v1/summary?site=bench.example&window=$w"
done
stop_server

if [ "$STARTUP_REPORTS" -gt 0 ]; then
  echo
  echo "== start-up on a store of $STARTUP_REPORTS reports"
  "$gen" "$work/big" "$STARTUP_REPORTS" 10000 35
  echo "store size: $(du -sh "$work/big" | cut -f1)"
  # The first start migrates the schema; the figures are from the second.
  start_server big0 "$bin" --listen 127.0.0.1:0 --data-dir "$work/big" --www-dir /nonexistent --agent-dir /nonexistent
  wait_ready
  stop_server
  t0=$(date +%s.%N)
  start_server big "$bin" --listen 127.0.0.1:0 --data-dir "$work/big" --www-dir /nonexistent --agent-dir /nonexistent
  t1=$(date +%s.%N)
  wait_ready
  t2=$(date +%s.%N)
  echo "clean start (saved aggregates loaded): listening after $(echo "$t1 - $t0" | bc) s (beacons taken from then on), ready after $(echo "$t2 - $t0" | bc) s"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  t0=$(date +%s.%N)
  start_server big2 "$bin" --listen 127.0.0.1:0 --data-dir "$work/big" --www-dir /nonexistent --agent-dir /nonexistent
  t1=$(date +%s.%N)
  wait_ready
  t2=$(date +%s.%N)
  echo "start after SIGKILL (aggregates rebuilt from raw reports): listening after $(echo "$t1 - $t0" | bc) s, ready after $(echo "$t2 - $t0" | bc) s"
  stop_server
fi
