#!/usr/bin/env bash
# Installs what the tests need and runs every test. This is the README's test command and
# `.ci/run` calls it. Works on a fresh Debian machine with only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests start themselves (each on a free port on 127.0.0.1).
# Add a package here in the same commit as the test that needs it.
PACKAGES=(mosquitto mosquitto-clients victoria-metrics python3-venv)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The dashboard type-check needs node and npm; take Debian's only when none is on the PATH.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Home Assistant for sim/stack/tests/home_assistant.rs: a venv with the pinned packages of
# sim/stack/tests/home-assistant/requirements.txt in the target dir, kept while that file is
# unchanged (about 2 minutes the first time). The test fails under CI=true without it.
if [ -z "${VOLTMESH_HASS:-}" ]; then
    VOLTMESH_HASS=$(bash sim/stack/tests/home-assistant/install.sh)
fi
export VOLTMESH_HASS

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast --lib --bins --tests
fi
cargo test --workspace --locked --doc

# Dashboards (grafana/): type-check every dashboard JSON against Grafana's published schema
# (@grafana/schema and typescript pinned in grafana/schema-check/package-lock.json). Needs node
# and npm; `npm ci` installs exactly the locked versions.
(
    cd grafana/schema-check
    npm ci --no-audit --no-fund --loglevel=error
    npm run --silent check
    echo "dashboards type-check against @grafana/schema: ok"
)

# Python package (sim/python): a venv with pinned packages, the wheel built by maturin and
# installed, then pytest, comparing Python's results with the `voltmesh` binary's files.
bash sim/python/test.sh
