#!/usr/bin/env bash
# Installs what building and testing vitalsign needs, only where missing.
# Idempotent. `setup.sh --test` also installs the browser and its driver for
# the tests. Assumes a Debian machine with rustup, Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# The toolchain rust-toolchain.toml pins. Where it is not installed but the
# stable toolchain is that release (no download possible), link it.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain-"; then
  if rustup run stable rustc --version | grep -q "^rustc $toolchain "; then
    say "linking toolchain $toolchain to the stable toolchain"
    rustup toolchain link "$toolchain" "$(rustup run stable rustc --print sysroot)"
  else
    say "installing toolchain $toolchain"
    rustup toolchain install "$toolchain" --profile minimal --component clippy,rustfmt
  fi
fi
# Components of a linked toolchain are those of the one it links to.
real=$(basename "$(rustup run "$toolchain" rustc --print sysroot)")
real=${real%-x86_64-unknown-linux-gnu}
if ! rustup target list --installed --toolchain "$real" | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add --toolchain "$real" wasm32-unknown-unknown
fi
# The npm build rebuilds std for the wasm with panics as plain traps
# (npm/build.mjs), which needs the standard library's sources.
if ! rustup component list --installed --toolchain "$real" | grep -qx rust-src; then
  say "adding the rust-src component"
  rustup component add --toolchain "$real" rust-src
fi

# wasm-bindgen's CLI must be exactly the version Cargo.lock pins (the npm
# build and the wasm tests check it).
wasm_bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen" ]; then
  say "installing wasm-bindgen-cli $wasm_bindgen (a few minutes)"
  cargo install wasm-bindgen-cli --version "$wasm_bindgen"
fi

for dir in npm tests; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "npm ci in $dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# The ClickHouse engine's tests run the collector against a ClickHouse HTTP
# front end over chDB (tests/clickhouse/shim.py): embedded ClickHouse from
# PyPI, as no ClickHouse server can be installed here.
if ! python3 -c 'import chdb' 2>/dev/null; then
  say "installing chdb-core (pip)"
  python3 -m pip install --quiet --disable-pip-version-check chdb-core \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages chdb-core
fi

if [ "${1:-}" = "--test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from apt"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
  fi
  # The alert delivery tests run a real Alertmanager.
  scripts/setup-alertmanager.sh
fi
