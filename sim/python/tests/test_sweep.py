"""`voltmesh.sweep` and `voltmesh.dask_sweep` against each other, the CLI and `simulate`: the same
Parquet bytes for 1 and 2 workers and on Dask, a resumed sweep runs only what is missing, and bad
specs raise the CLI's messages."""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any

import pandas as pd
import pytest
from conftest import GRID, Cli

import voltmesh

# 2 × 2 scenarios × 2 seeds of one summer day: 8 short runs.
SPEC: dict[str, Any] = {
    "grid": GRID,
    "start": "2016-06-20",
    "days": 1,
    "pv_share": [0, 0.5],
    "battery_share": [0, 0.5],
    "seeds": range(1, 3),
}
CLI_SPEC = [
    "--grid", str(GRID), "--from", "2016-06-20", "--days", "1",
    "--pv-share", "0,0.5", "--battery-share", "0,0.5", "--seeds", "1..3",
]  # fmt: skip


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pd.DataFrame]:
    """The sweep on one worker, with intervals."""
    dir = tmp_path_factory.mktemp("local")
    frame = voltmesh.sweep(
        dir / "kpis.parquet", workers=1, intervals_out=dir / "intervals.parquet", **SPEC
    )
    return dir, frame


def _parts(dir: pathlib.Path) -> dict[str, int]:
    """Part file name -> modification time (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in dir.iterdir() if p.suffix == ".parquet"}


def test_sweep_is_the_same_bytes_on_1_and_2_workers_and_the_cli(
    local: tuple[pathlib.Path, pd.DataFrame], tmp_path: pathlib.Path, cli: Cli
) -> None:
    dir, frame = local
    two = voltmesh.sweep(
        tmp_path / "kpis.parquet", workers=2, intervals_out=tmp_path / "intervals.parquet", **SPEC
    )
    for name in ("kpis.parquet", "intervals.parquet"):
        assert (dir / name).read_bytes() == (tmp_path / name).read_bytes(), name
    pd.testing.assert_frame_equal(frame, two)
    cli.run(
        "sim", "sweep", "--quiet", "--workers", "2", *CLI_SPEC,
        "--out", str(tmp_path / "cli.parquet"),
    )  # fmt: skip
    assert (tmp_path / "cli.parquet").read_bytes() == (dir / "kpis.parquet").read_bytes()


def test_the_frame_is_the_file_and_the_rows_are_simulate(
    local: tuple[pathlib.Path, pd.DataFrame],
) -> None:
    dir, frame = local
    pd.testing.assert_frame_equal(frame, pd.read_parquet(dir / "kpis.parquet"))
    assert list(frame["scenario"]) == list(range(8))
    assert list(frame["seed"]) == [1, 2] * 4
    assert list(frame["pv_share"]) == [0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5]
    assert list(frame["battery_share"]) == [0, 0, 0.5, 0.5] * 2
    assert (frame["from"] == pd.Timestamp("2016-06-20")).all()
    assert frame["k"].eq(0.5).all() and (frame["mechanism"] == "uniform").all()

    # The last scenario, run by simulate: the same KPIs to the bit, the same intervals.
    row = frame.iloc[7]
    intervals, _, summary = voltmesh.simulate(
        GRID, "2016-06-20", 1, pv_share=0.5, battery_share=0.5, seed=2
    )
    for name, value in summary.items():
        if name in ("grid", "scenario"):
            continue
        if name == "non_converged":
            assert [row["non_converged"], row["baseline_non_converged"]] == value
        elif value is None:
            assert math.isnan(row[name]), name
        else:
            assert row[name] == value, name
    rows = pd.read_parquet(dir / "intervals.parquet")
    assert len(rows) == 8 * 96
    ours = rows[rows["scenario"] == 7].drop(columns="scenario").reset_index(drop=True)
    assert list(ours.columns) == list(intervals.columns)
    for column in intervals.columns:
        if column == "time":
            assert (ours["time"] == intervals["time"]).all()
        else:
            pd.testing.assert_series_equal(
                ours[column], intervals[column], check_dtype=False, check_names=False
            )


def test_a_rerun_runs_only_the_missing_scenarios(
    local: tuple[pathlib.Path, pd.DataFrame], tmp_path: pathlib.Path
) -> None:
    dir, frame = local
    out = tmp_path / "kpis.parquet"
    voltmesh.sweep(out, workers=2, progress=False, **SPEC)
    parts = out.parent / "kpis.parquet.parts"
    before = _parts(parts)
    assert len(before) == 8
    lost = sorted(before)[5]
    (parts / lost).unlink()  # an interrupted sweep: one scenario never finished
    out.unlink()
    again = voltmesh.sweep(out, workers=2, progress=False, **SPEC)
    after = _parts(parts)
    assert set(after) == set(before)
    assert {n: t for n, t in after.items() if n != lost} == {
        n: t for n, t in before.items() if n != lost
    }, "a finished scenario ran again"
    assert out.read_bytes() == (dir / "kpis.parquet").read_bytes()
    pd.testing.assert_frame_equal(again, frame)

    # A wider sweep reuses the scenarios it shares with this one.
    wider = voltmesh.sweep(out, workers=2, progress=False, **{**SPEC, "seeds": [1, 2, 3]})
    assert len(wider) == 12 and len(_parts(parts)) == 12
    assert {n: t for n, t in _parts(parts).items() if n in after} == after


def test_dask_sweep_equals_the_local_sweep(
    local: tuple[pathlib.Path, pd.DataFrame], tmp_path: pathlib.Path
) -> None:
    distributed = pytest.importorskip("distributed")
    dir, frame = local
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        on_dask = voltmesh.dask_sweep(
            client,
            tmp_path / "kpis.parquet",
            intervals_out=tmp_path / "intervals.parquet",
            progress=False,
            **SPEC,
        )
    for name in ("kpis.parquet", "intervals.parquet"):
        assert (tmp_path / name).read_bytes() == (dir / name).read_bytes(), name
    pd.testing.assert_frame_equal(on_dask, frame)


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({"pv_share": [0, 1.5]}, ["--pv-share", "0,1.5"]),
        ({"battery_share": "0,x"}, ["--battery-share", "0,x"]),
        ({"mechanism": ["uniform", "dutch"]}, ["--mechanism", "uniform,dutch"]),
        ({"seeds": "3..1"}, ["--seeds", "3..1"]),
        ({"pv_kwp": "5,"}, ["--pv-kwp", "5,"]),
        ({"workers": 0}, ["--workers", "0"]),
        ({"start": "2031-01-01"}, ["--from", "2031-01-01"]),
    ],
)
def test_bad_specs_raise_the_cli_message(
    kwargs: dict[str, Any], flags: list[str], tmp_path: pathlib.Path, cli: Cli
) -> None:
    out = tmp_path / "x.parquet"
    with pytest.raises(voltmesh.ArgumentError) as raised:
        voltmesh.sweep(out, **{"days": 1, **kwargs})
    done = cli.run("sim", "sweep", "--days", "1", *flags, "--out", str(out), ok=False)
    assert done.returncode == 2
    assert done.stderr == f"error: {raised.value}\n"
    assert not out.exists() and not os.path.exists(str(out) + ".parts")


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError, match="pv_shar"):
        voltmesh.dask_sweep(None, "x.parquet", pv_shar=[0.1])
    with pytest.raises(voltmesh.GridError):
        voltmesh.sweep("x.parquet", grid="/nonexistent/grid")
