#!/usr/bin/env bash
# Takes the README's Home Assistant screenshot: runs the process test
# sim/stack/tests/home_assistant.rs with VOLTMESH_HA_SCREENSHOT set, so that it also photographs
# a household's device page in Chromium. Not part of CI: it needs Debian's chromium (installed
# here with apt-get when missing) and playwright-core (package-lock.json beside this script,
# installed with `npm ci` into <target dir>/home-assistant-screenshot, kept while the lock file
# is unchanged), besides Home Assistant itself (install.sh).
#
#   bash sim/stack/tests/home-assistant/screenshot.sh [out.png]   # default meter-bridge/docs/home-assistant.png
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
out=$(realpath -m "${1:-$root/meter-bridge/docs/home-assistant.png}")

target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi

playwright=$target/home-assistant-screenshot
if ! cmp -s "$here/package-lock.json" "$playwright/package-lock.json"; then
    rm -rf "$playwright"
    mkdir -p "$playwright"
    cp "$here/package.json" "$here/package-lock.json" "$playwright/"
    (cd "$playwright" && npm ci --no-audit --no-fund --loglevel=error)
fi

VOLTMESH_HASS=$(bash "$here/install.sh")
export VOLTMESH_HASS
export VOLTMESH_PLAYWRIGHT_DIR=$playwright
export VOLTMESH_CHROMIUM=${VOLTMESH_CHROMIUM:-$(command -v chromium)}
export VOLTMESH_HA_SCREENSHOT=$out
mkdir -p "$(dirname "$out")"

cd "$root"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p voltmesh --test home_assistant --no-capture
else
    cargo test -p voltmesh --test home_assistant -- --nocapture
fi
echo "screenshot: $out"
