"""Shared helpers: the `voltmesh` CLI the Python results are compared with."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
GRID = REPO / "sim" / "data" / "1-LV-rural1--0-sw"


def _command() -> list[str]:
    binary = os.environ.get("VOLTMESH_BIN")
    if binary:
        return [binary]
    return ["cargo", "run", "--quiet", "--locked", "-p", "voltmesh", "--bin", "voltmesh", "--"]


class Cli:
    """Runs `voltmesh ARGS...` from the repository root."""

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*_command(), *args], cwd=REPO, capture_output=True, text=True, check=False
        )
        if ok and done.returncode != 0:
            raise AssertionError(f"voltmesh {' '.join(args)} failed:\n{done.stderr}")
        return done

    def error(self, *args: str) -> str:
        """The message of a failing command: from `error: ` (not included) to the first blank
        line (clap's hint after it is left out)."""
        done = self.run(*args, ok=False)
        assert done.returncode != 0, f"voltmesh {' '.join(args)} succeeded"
        _, found, rest = done.stderr.partition("error: ")
        assert found, done.stderr
        return rest.split("\n\n")[0].rstrip()


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli()
