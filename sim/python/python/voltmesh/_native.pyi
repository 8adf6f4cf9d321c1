"""The Rust extension behind :mod:`voltmesh` (``sim/python/src/lib.rs``); use the package's
functions, which turn keyword arguments into these command lines and the results into
DataFrames.

Each function takes the flags of its CLI command, parses them with the CLI's own definitions
and raises :class:`voltmesh.errors.ArgumentError`, :class:`voltmesh.errors.GridError` or
:class:`voltmesh.errors.VoltmeshError` with the CLI's message.
"""

from typing import Literal

__all__ = ["simulate", "powerflow", "clear", "sweep", "sweep_plan", "sweep_scenario"]

# A table: (column, kind, values) in the CSV file's column order.
def simulate(
    argv: list[str], out: str | None = None
) -> tuple[
    list[tuple[str, Literal["str", "int", "float"], list[str] | list[int] | list[float]]],
    list[tuple[str, Literal["str", "int", "float"], list[str] | list[int] | list[float]]],
    str,
]:
    """``voltmesh sim ARGV``: the intervals and households tables and ``summary.json``'s text;
    with ``out``, also writes the CLI's three files there."""

def powerflow(argv: list[str]) -> str:
    """``voltmesh sim powerflow ARGV``: the JSON it prints."""

def clear(argv: list[str], book: str | None = None) -> str:
    """``voltmesh clear ARGV``, for the JSON book text ``book`` when given: the JSON it prints."""

# A sweep's table: (column, kind, values); "time" values are milliseconds since 1970 (naive).
def sweep(
    argv: list[str],
) -> tuple[
    list[
        tuple[
            str,
            Literal["str", "int", "float", "time"],
            list[str] | list[int] | list[float],
        ]
    ],
    int,
    int,
]:
    """``voltmesh sim sweep ARGV``: runs the scenarios still to run and merges the output; returns
    the KPI table, the number of scenarios run now and the number in the sweep."""

def sweep_plan(argv: list[str]) -> list[tuple[str, str | None, list[str]]]:
    """The scenarios of ``voltmesh sim sweep ARGV`` still to run: ``(kpi part path, intervals
    part path or None, the scenario's voltmesh sim command line)``."""

def sweep_scenario(argv: list[str], intervals: bool) -> tuple[bytes, bytes | None]:
    """One scenario from its ``voltmesh sim`` command line: its KPI part's bytes and, with
    ``intervals``, its intervals part's bytes."""
