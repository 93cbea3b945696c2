#!/usr/bin/env bash
# Builds everything and runs the collector on 127.0.0.1:8080 with its SQLite
# store under ./data, serving the dashboard at / and the demo page (which
# loads the agent) at /demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd npm && npm run --silent build)
cargo build --release -p vitalsign-collector
listen=127.0.0.1:8080
echo
echo "dashboard:  http://$listen/"
echo "demo page:  http://$listen/demo/   (click around, then open the dashboard: your visit is there)"
echo "summary:    http://$listen/v1/summary"
echo
exec target/release/vitalsign-collector --listen "$listen" --data-dir data --www-dir www --agent-dir npm/dist
