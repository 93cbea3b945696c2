#!/usr/bin/env bash
# Installs Prometheus Alertmanager (Debian's prometheus-alertmanager) for
# the collector's alert delivery tests, only if it is missing. Idempotent.
set -euo pipefail

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ -x /usr/bin/prometheus-alertmanager ]; then
  exit 0
fi
say "installing prometheus-alertmanager from apt"
sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
$sudo_ apt-get update -qq
# The package's postinst starts a system service on :9093 where an init
# system runs; the tests start their own instance on another port.
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus-alertmanager
