#!/usr/bin/env bash
# The Python package's tests (.ci/test.sh runs this after the Rust tests): a virtual environment
# with the pinned packages of requirements-test.txt, the wheel built by maturin in the dev profile
# (quicker than release, build and tests together), installed, then type checks and pytest. The
# tests compare Python's results with the `voltmesh` binary's files, so the binary is built first.
# Warm runs reuse the venv (kept while requirements-test.txt is unchanged) and cargo's cache. The
# venv, the wheel and mypy's cache live in cargo's target dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=$target/python-venv
stamp=$venv/requirements-test.txt

if ! cmp -s sim/python/requirements-test.txt "$stamp"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r sim/python/requirements-test.txt
    cp sim/python/requirements-test.txt "$stamp"
fi

# The CLI the tests compare with: built as the workspace's tests build it (a no-op after them),
# unless VOLTMESH_BIN names one.
if [ -z "${VOLTMESH_BIN:-}" ]; then
    cargo test --workspace --locked --no-run --quiet
    export VOLTMESH_BIN=$target/debug/voltmesh
fi

wheels=$target/python-wheels
rm -rf "$wheels"
(
    cd sim/python
    "$venv/bin/maturin" build --quiet --locked --profile dev --out "$wheels" \
        --interpreter "$venv/bin/python"
)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --force-reinstall "$wheels"/voltmesh-*.whl

# The types: the package strictly, and the extension's stub against the installed module.
"$venv/bin/python" -m mypy --strict --cache-dir "$target/python-mypy-cache" sim/python/python/voltmesh
(cd sim/python/tests && "$venv/bin/python" -m mypy.stubtest voltmesh._native)

# Run from the tests' folder so `import voltmesh` is the installed wheel, not the source tree.
cd sim/python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider
