#!/usr/bin/env bash
# The ClickHouse engine's benchmarks, on loopback (see docs/benchmarks.md,
# "ClickHouse engine"). No ClickHouse server can be installed here: the
# collector talks to tests/clickhouse/shim.py, the chDB HTTP front end of
# the tests (embedded ClickHouse in a Python process, one query at a time),
# so the figures measure the collector's side and a stand-in server.
#  1. beacons/s and the collector's CPU per beacon with wrk, 1-metric
#     beacons, the SQLite engine and the ClickHouse engine in the same run,
#     with the same connections (a beacon is answered once its batch is
#     durable: with 1 s batches a connection waits for its batch);
#  2. GET /v1/summary latency over SUMMARY_REPORTS reports (1,000 pages,
#     28 days) generated in ClickHouse with one INSERT ... SELECT, once the
#     collector's settle run has covered them (aggregates from the rollup;
#     the exact p75 and the page views from raw rows);
#  3. the raw table's compressed bytes per row.
# Knobs: DURATION (10s), CONNECTIONS (512), THREADS (2), SUMMARY_REPORTS
# (10000000), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-512}
THREADS=${THREADS:-2}
SUMMARY_REPORTS=${SUMMARY_REPORTS:-10000000}
target=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
python3 -c 'import chdb' 2>/dev/null || { echo "chdb-core is missing: scripts/setup.sh" >&2; exit 1; }
cargo build --release -p vitalsign-collector --bin vitalsign-collector
bin=$target/release/vitalsign-collector

work=$(mktemp -d)
pid="" shim=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$shim" ] && { kill "$shim" 2>/dev/null || true; wait "$shim" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

python3 tests/clickhouse/shim.py --port 0 --path "$work/ch" >"$work/shim.out" 2>"$work/shim.err" &
shim=$!
for _ in $(seq 1 300); do
  ch=$(grep -o 'http://[0-9.:]*' "$work/shim.out" 2>/dev/null | head -1 || true)
  [ -n "$ch" ] && break
  sleep 0.1
done
[ -n "$ch" ] || { cat "$work/shim.err" >&2; exit 1; }

start_collector() {
  local name=$1; shift
  "$bin" --listen 127.0.0.1:0 --www-dir /nonexistent --agent-dir /nonexistent --rate-per-ip 0 \
    --queue-len 65536 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  url=""
  for _ in $(seq 1 600); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.05
  done
}

stop_collector() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# run_wrk LABEL: "requests/s p50_ms p99_ms non2xx requests collector_cpu_s shim_cpu_s"
run_wrk() {
  local label=$1
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s collector/benches/beacon1.lua "$url" >/dev/null
  local c0 s0 c1 s1
  c0=$(cpu_of "$pid"); s0=$(cpu_of "$shim")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s collector/benches/beacon1.lua "$url" >"$work/$label.wrk"
  c1=$(cpu_of "$pid"); s1=$(cpu_of "$shim")
  awk -v c="$(echo "$c1 - $c0" | bc)" -v s="$(echo "$s1 - $s0" | bc)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    / 50%/ { p50 = ms($2) }
    / 99%/ { p99 = ms($2) }
    /requests in/ { n = $1 }
    /Non-2xx/ { bad = $5 }
    END { printf "%s %.2f %.2f %d %d %.3f %.3f\n", rps, p50, p99, bad + 0, n, c, s }
  ' "$work/$label.wrk"
}

echo "== machine: $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk: $THREADS thread(s), $CONNECTIONS connections, keep-alive, $DURATION per run, 1-metric beacons"
start_collector sqlite --data-dir "$work/sqlite"
read -r s_rps s_p50 s_p99 s_bad s_n s_cpu _ < <(run_wrk sqlite)
stop_collector
start_collector clickhouse --data-dir "$work/chdata" --store clickhouse --clickhouse-url "$ch" --clickhouse-database ingest
read -r c_rps c_p50 c_p99 c_bad c_n c_cpu c_shim < <(run_wrk clickhouse)
batches=$(curl -s "$url/metrics" | awk '/^vitalsign_clickhouse_batches_total\{outcome="inserted"\}/ { print $2 }')
spilled=$(curl -s "$url/metrics" | awk '/^vitalsign_clickhouse_batches_total\{outcome="spilled"\}/ { print $2 }')
stop_collector
stored=$(curl -s --data-binary "SELECT count() FROM ingest.reports" "$ch/")
awk -v r1="$s_rps" -v a1="$s_p50" -v p1="$s_p99" -v b1="$s_bad" -v n1="$s_n" -v c1="$s_cpu" \
    -v r2="$c_rps" -v a2="$c_p50" -v p2="$c_p99" -v b2="$c_bad" -v n2="$c_n" -v c2="$c_cpu" -v sh="$c_shim" 'BEGIN {
  printf "| engine | beacons/s | p50 latency | p99 latency | non-2xx | collector CPU per beacon | chDB front end CPU per beacon |\n"
  printf "|---|---:|---:|---:|---:|---:|---:|\n"
  printf "| SQLite | %.0f | %.2f ms | %.2f ms | %d | %.1f us | - |\n", r1, a1, p1, b1, c1 / n1 * 1e6
  printf "| ClickHouse (chDB front end) | %.0f | %.2f ms | %.2f ms | %d | %.1f us | %.1f us |\n", r2, a2, p2, b2, c2 / n2 * 1e6, sh / n2 * 1e6
}'
echo "ClickHouse run: $batches batches inserted, ${spilled:-0} spilled; rows in ClickHouse after shutdown: $stored"

echo
echo "== GET /v1/summary over $SUMMARY_REPORTS reports, 1,000 pages, 28 days (ClickHouse engine)"
start_collector summary --data-dir "$work/summarydata" --store clickhouse --clickhouse-url "$ch" --clickhouse-database bench
t0=$(date +%s.%N)
curl -sf --data-binary "INSERT INTO bench.reports (site, page, metric, report_id, value, delta, navigation_type, form_factor, page_view_id, session_id, received_ms, seq, attribution, inserted_ms)
SELECT 'bench.example', concat('https://bench.example/p/', toString(number % 1000)),
  ['FCP','LCP','CLS','INP','TTFB'][(number % 5) + 1] AS m, concat('v5-', toString(number)),
  multiIf(m = 'CLS', round(randExponential(12), 4), m = 'INP', round(16 + randExponential(0.008)), round(150 + randExponential(0.0006), 1)) AS v, v,
  'navigate', ['phone', 'tablet', 'desktop', ''][(intHash32(number) % 4) + 1], concat('pv-', toString(intDiv(number, 5))), '',
  toUnixTimestamp64Milli(now64(3)) - 60000 - toInt64(cityHash64(number) % (28 * 86400000)), number, '',
  toUnixTimestamp64Milli(now64(3)) - 600000
FROM numbers($SUMMARY_REPORTS)" "$ch/" 
t1=$(date +%s.%N)
echo "generated in $(echo "$t1 - $t0" | bc) s"
# Stamped as inserted 10 minutes ago: the next settle run (once a minute)
# covers them, and the summaries read the rollup alone.
inserted=$(curl -s --data-binary "SELECT max(inserted_ms) FROM bench.reports" "$ch/")
for _ in $(seq 1 60); do
  settled=$(curl -s --data-binary "SELECT max(to_ms) FROM bench.rollup_runs WHERE done = 1" "$ch/")
  [ "${settled:-0}" -gt "$inserted" ] && break
  sleep 5
done
t2=$(date +%s.%N)
echo "settled by the collector's settle run $(echo "$t2 - $t1" | bc) s after the insert (runs once a minute)"
curl -s --data-binary "SELECT count(), sum(good + needs_improvement + poor) FROM bench.reports_rollup" "$ch/" \
  | awk '{ printf "rollup: %d rows for %d reports\n", $1, $2 }'
curl -s --data-binary "SELECT round(sum(data_compressed_bytes) / sum(rows), 1), round(sum(data_uncompressed_bytes) / sum(rows), 1) FROM system.parts WHERE database = 'bench' AND table = 'reports' AND active" "$ch/" \
  | awk '{ printf "raw table: %s compressed bytes per row (%s uncompressed)\n", $1, $2 }'
for q in "pages=false" "" ; do
  : >"$work/times"
  curl -s -o /dev/null "$url/v1/summary?site=bench.example&$q"
  for _ in 1 2 3; do
    curl -s -o "$work/summary.json" -w '%{time_total}\n' "$url/v1/summary?site=bench.example&$q" >>"$work/times"
  done
  if ! grep -q '"sites"' "$work/summary.json"; then
    echo "summary $q failed: $(head -c 600 "$work/summary.json")"; tail -5 "$work/summary.err" || true; continue
  fi
  pages=$(grep -o '"page":' "$work/summary.json" | wc -l || true)
  count=$( (grep -o '"count":[0-9]*' "$work/summary.json" || true) | head -5 | cut -d: -f2 | paste -sd+ | bc)
  sort -n "$work/times" | awk -v q="${q:-pages=true}" -v pages="$pages" -v count="$count" '
    { t[NR] = $1 * 1000 }
    END { printf "summary %s (%d page records; site counts of the five metrics add up to %d): median %.0f ms, max %.0f ms over %d requests\n",
          q, pages, count, t[int(NR / 2) + 1], t[NR], NR }'
done
for w in 1h 24h 7d; do
  curl -s -o /dev/null -w "summary pages=false window=$w: %{time_total}s\n" "$url/v1/summary?site=bench.example&pages=false&window=$w"
done
stop_collector
