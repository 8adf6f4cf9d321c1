"""`voltmesh.simulate` against `voltmesh sim`: the same files, reproducible, clear errors."""

from __future__ import annotations

import csv
import json
import math
import pathlib

import pandas as pd
import pytest

import voltmesh

from conftest import GRID, Cli

# How the CLI writes each column (decimals of a float; "int", "str", "time"): written out here
# rather than taken from the package, so the test checks the package against the files.
INTERVAL_FORMATS = {
    "time": "time",
    "step": "int",
    "orders": "int",
    "price": 6,
    "volume_wh": "int",
    "demand_wh": 3,
    "pv_wh": 3,
    "from_utility_wh": "int",
    "to_utility_wh": "int",
    "baseline_import_wh": "int",
    "baseline_export_wh": "int",
    "market_cost": 9,
    "baseline_cost": 9,
    "vm_min_pu": 6,
    "vm_max_pu": 6,
    "max_line_loading_percent": 4,
    "max_trafo_loading_percent": 4,
    "ext_grid_p_mw": 6,
    "violations": "int",
    "baseline_vm_min_pu": 6,
    "baseline_vm_max_pu": 6,
    "baseline_violations": "int",
    "non_converged": "int",
    "baseline_non_converged": "int",
}
HOUSEHOLD_FORMATS = {
    "id": "str",
    "bus": "str",
    "pv_kwp": 3,
    "battery_kwh": 3,
    "load_wh": 3,
    "pv_wh": 3,
    "bought_wh": "int",
    "sold_wh": "int",
    "from_utility_wh": "int",
    "to_utility_wh": "int",
    "baseline_import_wh": "int",
    "baseline_export_wh": "int",
    "market_cost": 9,
    "baseline_cost": 9,
    "savings": 9,
}

# (Python keyword arguments, the same run's CLI flags)
SCENARIOS = [
    ({"start": "2016-06-20", "days": 1}, ["--from", "2016-06-20", "--days", "1"]),
    (
        {
            "grid": GRID,
            "start": "2016-06-21 06:00",
            "days": 2,
            "pv_share": 0.4,
            "battery_share": 0.5,
            "battery_kwh": 7.5,
            "seed": 7,
        },
        [
            "--grid", str(GRID), "--from", "2016-06-21 06:00", "--days", "2",
            "--pv-share", "0.4", "--battery-share", "0.5", "--battery-kwh", "7.5",
            "--seed", "7",
        ],
    ),
    (
        {
            "start": "2016-03-01",
            "days": 1.5,
            "mechanism": "pay-as-bid",
            "interval_minutes": 60,
            "retail": "0.35",
            "feed_in": 0.1,
            "network_fee": 0.01,
            "pv_scale": 2.5,
            "pv_share": 0.2,
            "seed": 123,
        },
        [
            "--from", "2016-03-01", "--days", "1.5", "--mechanism", "pay-as-bid",
            "--interval-minutes", "60", "--retail", "0.35", "--feed-in", "0.1",
            "--network-fee", "0.01", "--pv-scale", "2.5", "--pv-share", "0.2", "--seed", "123",
        ],
    ),
    (
        {
            "start": "2016-06-20",
            "days": 1,
            "pv_share": 0.5,
            "flex_share": 0.5,
            "flex_kwh": 8,
            "flex_from_hour": 0,
            "flex_hours": 24,
            "flex_strategy": "price",
        },
        [
            "--from", "2016-06-20", "--days", "1", "--pv-share", "0.5", "--flex-share", "0.5",
            "--flex-kwh", "8", "--flex-from-hour", "0", "--flex-hours", "24",
            "--flex-strategy", "price",
        ],
    ),
    (
        {"start": "2016-07-01 10:00", "days": 0.5, "mechanism": "cda", "vm_max": 1.02, "k": 0.5},
        ["--from", "2016-07-01 10:00", "--days", "0.5", "--mechanism", "cda", "--vm-max", "1.02"],
    ),
]


def formatted(value: object, fmt: object) -> str:
    """A DataFrame value as the CLI's CSV writes it."""
    if fmt == "time":
        assert isinstance(value, pd.Timestamp)
        return value.strftime("%Y-%m-%d %H:%M")
    if fmt == "str":
        assert isinstance(value, str)
        return value
    if fmt == "int":
        return str(int(value))  # type: ignore[call-overload]
    assert isinstance(fmt, int)
    if math.isnan(value):  # type: ignore[arg-type]
        return ""
    return f"{value:.{fmt}f}"


def assert_frame_matches_csv(frame: pd.DataFrame, path: pathlib.Path, formats: dict) -> None:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(frame.columns) == list(formats)
    assert len(rows) - 1 == len(frame)
    for i, row in enumerate(rows[1:]):
        ours = [formatted(frame.iloc[i][c], formats[c]) for c in frame.columns]
        assert ours == row, f"{path.name} row {i}"


def run_cli(cli: Cli, flags: list[str], out: pathlib.Path) -> None:
    cli.run("sim", *flags, "--out", str(out), "--no-plots")


@pytest.mark.parametrize("kwargs,flags", SCENARIOS)
def test_results_equal_the_cli_files(cli: Cli, tmp_path: pathlib.Path, kwargs, flags) -> None:
    run_cli(cli, flags, tmp_path / "cli")
    intervals, households, summary = voltmesh.simulate(**kwargs)
    assert_frame_matches_csv(intervals, tmp_path / "cli" / "intervals.csv", INTERVAL_FORMATS)
    assert_frame_matches_csv(households, tmp_path / "cli" / "households.csv", HOUSEHOLD_FORMATS)
    # JSON numbers are the shortest text of the exact float: equal dicts are equal bits.
    assert summary == json.loads((tmp_path / "cli" / "summary.json").read_text())


def test_out_writes_the_cli_files_byte_for_byte(cli: Cli, tmp_path: pathlib.Path) -> None:
    kwargs, flags = SCENARIOS[1]
    run_cli(cli, flags, tmp_path / "cli")
    voltmesh.simulate(**kwargs, out=tmp_path / "py")
    for name in ("intervals.csv", "households.csv", "summary.json"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


def test_dataframes_load_the_cli_files_in_one_line(tmp_path: pathlib.Path) -> None:
    result = voltmesh.simulate(start="2016-06-20", days=1, out=tmp_path)
    again = pd.read_csv(tmp_path / "intervals.csv", parse_dates=["time"])
    assert list(again.columns) == list(result.intervals.columns)
    assert (again["volume_wh"] == result.intervals["volume_wh"]).all()
    assert (again["time"] == result.intervals["time"]).all()
    assert result.intervals["time"].dtype.kind == "M"


def test_a_seed_reproduces_its_run() -> None:
    kwargs = {"start": "2016-06-20", "days": 1, "pv_share": 0.5, "battery_share": 0.5}
    first = voltmesh.simulate(**kwargs, seed=11)
    second = voltmesh.simulate(**kwargs, seed=11)
    pd.testing.assert_frame_equal(first.intervals, second.intervals)
    pd.testing.assert_frame_equal(first.households, second.households)
    assert first.summary == second.summary
    other = voltmesh.simulate(**kwargs, seed=12)
    assert not first.households["pv_kwp"].equals(other.households["pv_kwp"]) or not (
        first.households["battery_kwh"].equals(other.households["battery_kwh"])
    )
    assert first.summary["seed"] == 11 and other.summary["seed"] == 12


def test_defaults_are_the_clis(cli: Cli, tmp_path: pathlib.Path) -> None:
    run_cli(cli, ["--days", "0.25"], tmp_path)
    result = voltmesh.simulate(days=0.25)
    assert result.summary == json.loads((tmp_path / "summary.json").read_text())
    assert result.summary["scenario"]["seed"] == 42
    assert result.intervals["time"].iloc[0] == pd.Timestamp("2016-01-01 00:00")


# (Python keyword arguments, the same CLI flags): each is refused with the CLI's message.
BAD = [
    ({"pv_share": 1.5}, ["--pv-share", "1.5"]),
    ({"battery_kwh": -1.0}, ["--battery-kwh=-1.0"]),
    ({"retail": "0.05", "feed_in": "0.08"}, ["--retail", "0.05", "--feed-in", "0.08"]),
    ({"start": "2030-01-01"}, ["--from", "2030-01-01"]),
    ({"start": "June"}, ["--from", "June"]),
    ({"days": 0}, ["--days", "0"]),
    ({"mechanism": "barter"}, ["--mechanism", "barter"]),
    ({"k": 1.5}, ["--k", "1.5"]),
    ({"interval_minutes": 20}, ["--interval-minutes", "20"]),
    ({"seed": -1}, ["--seed=-1"]),
    ({"retail": "0.1234567"}, ["--retail", "0.1234567"]),
    (
        {"flex_share": 0.5, "flex_strategy": "later"},
        ["--flex-share", "0.5", "--flex-strategy", "later"],
    ),
    ({"flex_share": 0.5, "flex_hours": 25}, ["--flex-share", "0.5", "--flex-hours", "25"]),
]


@pytest.mark.parametrize("kwargs,flags", BAD)
def test_bad_arguments_raise_the_clis_message(cli: Cli, tmp_path, kwargs, flags) -> None:
    if "days" not in kwargs:
        kwargs = {"days": 0.25, **kwargs}
        flags = ["--days", "0.25", *flags]
    expected = cli.error("sim", *flags, "--out", str(tmp_path), "--no-plots")
    with pytest.raises(voltmesh.ArgumentError) as raised:
        voltmesh.simulate(**kwargs)
    assert str(raised.value) == expected
    assert isinstance(raised.value, ValueError)


def test_a_missing_grid_is_a_grid_error(cli: Cli, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "no-such-grid"
    expected = cli.error("sim", "--grid", str(missing), "--out", str(tmp_path), "--no-plots")
    with pytest.raises(voltmesh.GridError) as raised:
        voltmesh.simulate(missing)
    assert str(raised.value) == expected
    assert str(missing) in expected


def test_a_malformed_grid_is_a_grid_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "Node.csv").write_text("not;a;simbench;table\n")
    with pytest.raises(voltmesh.GridError, match="Node.csv"):
        voltmesh.simulate(tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [{"pv_share": True}, {"seed": 1.5j}, {"days": [1]}, {"start": 20160620}, {"grid": 3}],
)
def test_wrong_types_raise_type_error(kwargs) -> None:
    with pytest.raises(TypeError):
        voltmesh.simulate(**kwargs)


def test_unknown_keywords_raise_type_error() -> None:
    with pytest.raises(TypeError, match="pv_shares"):
        voltmesh.simulate(pv_shares=0.1)  # type: ignore[call-arg]


# Extreme values: each call returns or raises a VoltmeshError; none may panic (PyO3 would raise
# PanicException, a BaseException that `except Exception` does not catch) or crash.
EXTREME = [
    {"days": float("inf")},
    {"days": float("nan")},
    {"interval_minutes": 2**40},
    {"interval_minutes": 2**31 + 15 - 2**31 % 15},
    {"pv_kwp": float("inf")},
    {"vm_min": float("nan")},
    {"vm_min": 2.0, "vm_max": -1.0},
    {"seed": 2**64 - 1},
    {"seed": 2**64},
    {"battery_kw": 1e300, "battery_share": 1},
    {"retail": "1e3"},
    {"retail": "99999999999999"},
    {"k": "nan"},
    {"start": "2016-12-31 23:45", "interval_minutes": 30},
    {"start": "\x00"},
    {"grid": "\x00"},
    {"grid": ""},
]


@pytest.mark.parametrize("kwargs", EXTREME)
def test_extreme_values_never_crash(kwargs) -> None:
    try:
        result = voltmesh.simulate(**{"days": 0.1, **kwargs})
    except voltmesh.VoltmeshError as error:
        assert str(error)
    else:
        assert len(result.intervals) > 0
