#!/usr/bin/env bash
# Installs Home Assistant for the process test sim/stack/tests/home_assistant.rs: a virtual
# environment with exactly the packages of requirements.txt beside this script, in cargo's target
# dir (<target dir>/home-assistant-venv, where the test looks). Kept while requirements.txt is
# unchanged (a copy in the venv is the stamp), so only the first run pays (about 2 minutes).
# Prints the path of `hass` on stdout, and nothing else; pip's output goes to stderr.
#
#   VOLTMESH_HASS=$(bash sim/stack/tests/home-assistant/install.sh)
#
# Needs python3 (3.11 or 3.12) with venv (Debian: python3-venv, which .ci/test.sh installs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)

target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=$target/home-assistant-venv
stamp=$venv/requirements.txt

if ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "installing Home Assistant into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # --no-deps: requirements.txt is the whole environment, every version pinned; pip check
    # then proves it complete and consistent.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        -r "$here/requirements.txt" >&2
    "$venv/bin/python" -m pip check >&2
    cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/hass"
