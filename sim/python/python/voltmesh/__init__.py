"""Voltmesh for researchers: the ``voltmesh`` CLI's simulation, power flow and clearing in Python.

Each function runs the same Rust code as its command, with the same defaults, and returns the
same numbers (to the bit) as pandas DataFrames and dicts:

- :func:`simulate` is ``voltmesh sim``: ``intervals.csv``, ``households.csv`` and
  ``summary.json`` as :class:`SimResult` (two DataFrames and a dict);
- :func:`powerflow` is ``voltmesh sim powerflow``: one moment's bus voltages and loadings;
- :func:`clear` is ``voltmesh clear``: one order book cleared, the printed report as a dict;
- :func:`sweep` is ``voltmesh sim sweep``: a grid of scenarios × seeds on all cores into one
  Parquet file of KPIs (and optionally every interval), returned as a DataFrame;
- :func:`dask_sweep` runs the same sweep's scenarios on a Dask cluster: the same Parquet bytes.

Every run is reproducible from its ``seed``. Errors are :class:`VoltmeshError` subclasses with
the messages the CLI prints (they name the CLI flag, e.g. ``--pv-share`` for ``pv_share=``).
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import json as _json
import os as _os
import sys as _sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as _pd

from . import _native
from .errors import ArgumentError, GridError, VoltmeshError

__all__ = [
    "simulate",
    "powerflow",
    "clear",
    "sweep",
    "dask_sweep",
    "SimResult",
    "PowerFlowResult",
    "VoltmeshError",
    "ArgumentError",
    "GridError",
]


class SimResult(NamedTuple):
    """What :func:`simulate` returns; unpacks as ``intervals, households, summary``."""

    intervals: _pd.DataFrame
    """One row per market interval: the columns of ``intervals.csv``, ``time`` as datetime64."""
    households: _pd.DataFrame
    """One row per household: the columns of ``households.csv``."""
    summary: dict[str, Any]
    """The KPIs and the scenario, as in ``summary.json``."""


class PowerFlowResult(NamedTuple):
    """What :func:`powerflow` returns (pandapower's ``res_bus`` / ``res_line`` / ``res_trafo``)."""

    time: _pd.Timestamp
    """Interval start (standard time, as the profiles count)."""
    step: int
    """Profile step of the interval (15-minute steps from 2016-01-01 00:00), the JSON's index."""
    buses: _pd.DataFrame
    """Column ``vm_pu``, indexed by bus name (in the CLI's order: sorted by name)."""
    lines: _pd.DataFrame
    """Column ``loading_percent``, indexed by line name."""
    trafos: _pd.DataFrame
    """Column ``loading_percent``, indexed by transformer name."""
    ext_grid_p_mw: float
    """Power drawn from the external grid, MW."""
    json: dict[str, Any]
    """Exactly what ``voltmesh sim powerflow`` prints, parsed."""


def _text(name: str, value: Any) -> str:
    """A keyword argument as the CLI flag's value; exact for ints, Decimals and strings, and the
    shortest round-trip repr for floats (so the CLI reads back the very same float)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a string, not a bool")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, _decimal.Decimal, str)):
        return str(value)
    raise TypeError(f"{name} must be a number or a string, not {type(value).__name__}")


def _time(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):  # also pandas.Timestamp
        if value.second or value.microsecond or getattr(value, "nanosecond", 0):
            return str(value)  # the CLI refuses it with its message
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, _dt.date):
        return value.strftime("%Y-%m-%d")
    raise TypeError(f"{name} must be a str, datetime or date, not {type(value).__name__}")


def _flags(**values: Any) -> list[str]:
    """``--flag value`` pairs for every argument that is not None (None: the CLI's default)."""
    argv: list[str] = []
    for name, value in values.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name in ("grid", "orders"):
            text = _os.fspath(value)
            if not isinstance(text, str):
                raise TypeError(f"{name} must be a str path, not bytes")
        elif name in ("from", "at"):
            text = _time(name, value)
        else:
            text = _text(name, value)
        # One `--flag=value` word: a value that starts with "-" stays a value.
        argv.append(f"{flag}={text}")
    return argv


def _series(kind: str, values: Sequence[Any]) -> _pd.Series:
    if kind == "int":
        return _pd.Series(values, dtype="int64")
    if kind == "float":
        return _pd.Series(values, dtype="float64")
    return _pd.Series(values, dtype=object)


def _frame(table: Sequence[tuple[str, str, Sequence[Any]]]) -> _pd.DataFrame:
    """A table of the extension (``(column, kind, values)``) as a DataFrame of those dtypes."""
    return _pd.DataFrame({name: _series(kind, values) for name, kind, values in table})


def simulate(
    grid: str | _os.PathLike[str] | None = None,
    start: str | _dt.date | None = None,
    days: float | None = None,
    *,
    pv_scale: float | None = None,
    pv_share: float | None = None,
    pv_kwp: float | None = None,
    battery_share: float | None = None,
    battery_kwh: float | None = None,
    battery_kw: float | None = None,
    retail: float | str | _decimal.Decimal | None = None,
    feed_in: float | str | _decimal.Decimal | None = None,
    network_fee: float | str | _decimal.Decimal | None = None,
    mechanism: str | None = None,
    k: float | str | _decimal.Decimal | None = None,
    interval_minutes: int | None = None,
    seed: int | None = None,
    vm_min: float | None = None,
    vm_max: float | None = None,
    flex_share: float | None = None,
    flex_kwh: float | None = None,
    flex_kw: float | None = None,
    flex_from_hour: int | None = None,
    flex_hours: int | None = None,
    flex_strategy: str | None = None,
    out: str | _os.PathLike[str] | None = None,
) -> SimResult:
    """Simulate a neighbourhood trading on a SimBench grid: ``voltmesh sim``.

    Every argument is the CLI flag of the same name (``pv_share`` is ``--pv-share``, ``start`` is
    ``--from``); None takes the CLI's default: the bundled grid ``1-LV-rural1--0-sw``, the
    profiles' start, 7 days, ``pv_scale=1``, ``pv_share=0``, ``pv_kwp=5``, ``battery_share=0``,
    ``battery_kwh=10``, ``battery_kw=5``, ``retail=0.30``, ``feed_in=0.08``,
    ``network_fee=0.02``, ``mechanism="uniform"`` (or ``"pay-as-bid"``, ``"cda"``), ``k=0.5``,
    ``interval_minutes=15``, ``seed=42``, ``vm_min=0.9``, ``vm_max=1.1``; flexible loads (a car
    or a heat pump with a tank, ``sim/README.md``): ``flex_share=0`` (none), ``flex_kwh=10`` a
    day, ``flex_kw=3.7``, ``flex_from_hour=18``, ``flex_hours=13``, ``flex_strategy="price"``
    (or ``"asap"``).

    Args:
        grid: A SimBench grid folder.
        start: First interval, ``"YYYY-MM-DD"``, ``"YYYY-MM-DD HH:MM"``, a date or a datetime
            (standard time, as the profiles count).
        days: Days to simulate (cut at the profiles' end).
        out: If given, also write ``intervals.csv``, ``households.csv`` and ``summary.json``
            there, byte for byte as the CLI does (no plots).

    Returns:
        ``SimResult(intervals, households, summary)``: the CLI's two CSV files as DataFrames
        (same columns; ``time`` parsed to datetime64, an interval without a price has NaN) and
        ``summary.json`` as a dict. Money of households is exact in the CSV; here it is the
        nearest float.

    Raises:
        ArgumentError: a value out of range, a bad time or one outside the profiles.
        GridError: the grid cannot be read or modelled.
    """
    argv = _flags(
        grid=grid,
        **{"from": start},
        days=days,
        pv_scale=pv_scale,
        pv_share=pv_share,
        pv_kwp=pv_kwp,
        battery_share=battery_share,
        battery_kwh=battery_kwh,
        battery_kw=battery_kw,
        retail=retail,
        feed_in=feed_in,
        network_fee=network_fee,
        mechanism=mechanism,
        k=k,
        interval_minutes=interval_minutes,
        seed=seed,
        vm_min=vm_min,
        vm_max=vm_max,
        flex_share=flex_share,
        flex_kwh=flex_kwh,
        flex_kw=flex_kw,
        flex_from_hour=flex_from_hour,
        flex_hours=flex_hours,
        flex_strategy=flex_strategy,
    )
    out_dir = None if out is None else _os.fspath(out)
    intervals, households, summary = _native.simulate(argv, out_dir)
    frame = _frame(intervals)
    frame["time"] = _pd.to_datetime(frame["time"], format="%Y-%m-%d %H:%M")
    return SimResult(frame, _frame(households), _json.loads(summary))


def powerflow(
    grid: str | _os.PathLike[str] | None = None,
    at: str | _dt.datetime | None = None,
) -> PowerFlowResult:
    """Solve the grid's power flow at one moment: ``voltmesh sim powerflow``.

    Args:
        grid: A SimBench grid folder (None: the bundled ``1-LV-rural1--0-sw``).
        at: Interval start, ``"YYYY-MM-DD HH:MM"`` or a datetime (standard time). Required.

    Returns:
        The voltages and loadings as DataFrames, and the CLI's JSON as ``json``.

    Raises:
        ArgumentError: no ``at``, a bad time or one outside the profiles.
        GridError: the grid cannot be read or modelled, or the power flow does not converge.
    """
    if at is None:
        raise ArgumentError("the following required arguments were not provided: --at <AT>")
    text = _native.powerflow(_flags(grid=grid, at=at))
    report = _json.loads(text)
    snap = report["snapshots"][0]

    def named(values: Mapping[str, float], column: str) -> _pd.DataFrame:
        frame = _pd.DataFrame({column: _pd.Series(values, dtype="float64")})
        frame.index.name = "name"
        return frame

    return PowerFlowResult(
        time=_pd.Timestamp(snap["time"]),
        step=snap["index"],
        buses=named(snap["bus_vm_pu"], "vm_pu"),
        lines=named(snap["line_loading_percent"], "loading_percent"),
        trafos=named(snap["trafo_loading_percent"], "loading_percent"),
        ext_grid_p_mw=snap["ext_grid_p_mw"],
        json=report,
    )


def _order(order: Mapping[Any, Any]) -> dict[Any, Any]:
    """An order for the book file: Decimal limit prices as exact decimal strings."""
    out = dict(order)
    if isinstance(out.get("limit_price"), _decimal.Decimal):
        out["limit_price"] = str(out["limit_price"])
    return out


def clear(
    orders: Sequence[Mapping[str, Any]] | _pd.DataFrame | str | _os.PathLike[str] | None = None,
    *,
    mechanism: str | None = None,
    k: float | str | _decimal.Decimal | None = None,
    tariffs: tuple[float | str | _decimal.Decimal, float | str | _decimal.Decimal] | None = None,
    pay_as_bid_price: str | None = None,
) -> dict[str, Any]:
    """Clear one order book: ``voltmesh clear``.

    Args:
        orders: The book: a list of orders (mappings), a DataFrame with one order per row, or
            the path of a JSON book file (``--orders``); None clears the bundled example book.
            An order is ``{"id", "participant", "side": "buy"|"sell", "quantity_wh": int,
            "limit_price": "0.25"}`` and an optional ``"seq"``; limit prices are decimal strings
            (or ``decimal.Decimal``), never floats, so prices stay exact.
        mechanism: ``"uniform"`` (default), ``"pay-as-bid"`` or ``"cda"``.
        k: Position of the uniform price in the clearing range, in [0, 1] (uniform only).
        tariffs: ``(feed_in, retail)`` per kWh: limits outside them are rejected.
        pay_as_bid_price: ``"midpoint"`` (default) or ``"bid"``.

    Returns:
        The report the CLI prints, as a dict: ``mechanism``, ``clearing_price`` and
        ``price_range`` (uniform only), ``volume_wh``, ``trades``, ``unfilled``, ``rejected``.
        Prices are decimal strings, exact.

    Raises:
        ArgumentError: a bad flag value or a malformed order (the message names it).
    """
    feed_in = retail = None
    if tariffs is not None:
        if isinstance(tariffs, (str, bytes)) or len(tariffs) != 2:
            raise TypeError("tariffs must be a pair (feed_in, retail)")
        feed_in, retail = tariffs
    path = None
    book = None
    if isinstance(orders, (str, _os.PathLike)):
        path = orders
    elif isinstance(orders, _pd.DataFrame):
        book = _json.dumps([_order(o) for o in orders.to_dict(orient="records")], default=int)
    elif orders is not None:
        book = _json.dumps([_order(o) for o in orders])
    argv = _flags(
        mechanism=mechanism,
        k=k,
        pay_as_bid_price=pay_as_bid_price,
        feed_in=feed_in,
        retail=retail,
        orders=path,
    )
    report: dict[str, Any] = _json.loads(_native.clear(argv, book))
    return report


# The keyword arguments of a sweep that are lists of run flags (`voltmesh sim sweep --pv-share …`),
# in the CLI's order of enumeration; `start` is `--from`.
_AXES = (
    "start",
    "days",
    "pv_scale",
    "pv_share",
    "pv_kwp",
    "battery_share",
    "battery_kwh",
    "battery_kw",
    "retail",
    "feed_in",
    "network_fee",
    "mechanism",
    "k",
    "interval_minutes",
    "vm_min",
    "vm_max",
)


def _list(name: str, value: Any) -> str:
    """A sweep axis as the CLI's comma-separated list: a string as is (``"0,0.3"``, or a seed
    spec such as ``"1..5"``), else one value or an iterable of values."""
    convert = _time if name == "from" else _text
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, _decimal.Decimal, _dt.date)) and not isinstance(value, bool):
        return convert(name, value)
    if isinstance(value, Iterable):
        items = [convert(name, v) for v in value]
        if not items:
            raise ArgumentError(f"--{name.replace('_', '-')}: no values")
        return ",".join(items)
    return convert(name, value)


def _sweep_argv(out: str | _os.PathLike[str], **spec: Any) -> list[str]:
    """The command line of ``voltmesh sim sweep`` for :func:`sweep`'s arguments."""
    known = {*_AXES, "grid", "seeds", "workers", "intervals_out", "parts", "progress"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    argv = [f"--out={_os.fspath(out)}"]
    for name in ("grid", "intervals_out", "parts"):
        if spec.get(name) is not None:
            argv.append(f"--{name.replace('_', '-')}={_os.fspath(spec[name])}")
    for name in (*_AXES, "seeds"):
        value = spec.get(name)
        if value is not None:
            flag = "from" if name == "start" else name
            argv.append(f"--{flag.replace('_', '-')}={_list(flag, value)}")
    if spec.get("workers") is not None:
        argv.append(f"--workers={_text('workers', spec['workers'])}")
    if not spec.get("progress", True):
        argv.append("--quiet")
    return argv


def _sweep_frame(table: Sequence[tuple[str, str, Sequence[Any]]]) -> _pd.DataFrame:
    """The KPI table of the extension as the DataFrame ``pandas.read_parquet`` gives for the file."""
    columns: dict[str, _pd.Series] = {}
    for name, kind, values in table:
        if kind == "time":
            columns[name] = _pd.Series(_pd.to_datetime(list(values), unit="ms")).astype(
                "datetime64[ms]"
            )
        elif kind == "str":
            columns[name] = _pd.Series(values, dtype="str")
        else:
            columns[name] = _series(kind, values)
    return _pd.DataFrame(columns)


Values = Any
"""A sweep axis: one value, an iterable of values, or the CLI's comma-separated text."""


def sweep(
    out: str | _os.PathLike[str],
    *,
    grid: str | _os.PathLike[str] | None = None,
    start: Values = None,
    days: Values = None,
    pv_scale: Values = None,
    pv_share: Values = None,
    pv_kwp: Values = None,
    battery_share: Values = None,
    battery_kwh: Values = None,
    battery_kw: Values = None,
    retail: Values = None,
    feed_in: Values = None,
    network_fee: Values = None,
    mechanism: Values = None,
    k: Values = None,
    interval_minutes: Values = None,
    vm_min: Values = None,
    vm_max: Values = None,
    seeds: int | Iterable[int] | str | None = None,
    workers: int | None = None,
    intervals_out: str | _os.PathLike[str] | None = None,
    parts: str | _os.PathLike[str] | None = None,
    progress: bool = True,
) -> _pd.DataFrame:
    """Run a grid of scenarios × seeds on all cores: ``voltmesh sim sweep``.

    Every scenario argument of :func:`simulate` takes one value or a list here
    (``pv_share=[0, 0.3, 0.6]``, ``mechanism=["uniform", "pay-as-bid"]``); the scenarios are
    their Cartesian product in this signature's order, ``seeds`` innermost. Each scenario runs
    exactly as :func:`simulate` with its values, and its KPIs are ``summary``'s.

    Args:
        out: The Parquet file of KPIs, one row per scenario (written whole at the end).
        seeds: Seeds: an int, an iterable such as ``range(1, 5)``, or the CLI's text
            (``"1..5"`` is 1 to 4, ``"1..=4"``, ``"1,2,10..12"``). Default: 42.
        workers: Scenarios run at once (default: the machine's available parallelism). The
            results do not depend on it: the files are the same bytes for any number.
        intervals_out: Also write every market interval of every scenario to this Parquet file
            (column ``scenario`` joins it to the KPIs).
        parts: The folder of finished scenarios' parts (default: ``out`` + ``.parts``). A rerun
            with the same parts folder runs only the scenarios whose parts are missing.
        progress: Print a progress line on stderr.

    Returns:
        The KPI table, as ``pandas.read_parquet(out)`` reads it: ``scenario`` (the row's index in
        the spec), the parameters (``grid``, ``from``, ``days``, ``pv_scale`` … ``k`` (NaN unless
        uniform), ``interval_minutes``, ``band_vm_min``, ``band_vm_max``), ``seed``, then the KPIs
        under ``summary.json``'s names.

    Raises:
        ArgumentError: a bad list, seed, value or scenario (the message names its flags), before
            any scenario runs.
        GridError: the grid cannot be read or modelled.
    """
    argv = _sweep_argv(
        out,
        grid=grid,
        start=start,
        days=days,
        pv_scale=pv_scale,
        pv_share=pv_share,
        pv_kwp=pv_kwp,
        battery_share=battery_share,
        battery_kwh=battery_kwh,
        battery_kw=battery_kw,
        retail=retail,
        feed_in=feed_in,
        network_fee=network_fee,
        mechanism=mechanism,
        k=k,
        interval_minutes=interval_minutes,
        vm_min=vm_min,
        vm_max=vm_max,
        seeds=seeds,
        workers=workers,
        intervals_out=intervals_out,
        parts=parts,
        progress=progress,
    )
    table, _ran, _scenarios = _native.sweep(argv)
    return _sweep_frame(table)


def _scenario_parts(argv: list[str], intervals: bool) -> tuple[bytes, bytes | None]:
    """One scenario of a sweep, on a Dask worker: its parts' bytes (a pure function)."""
    return _native.sweep_scenario(argv, intervals)


def _write_part(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    _os.replace(tmp, path)


def dask_sweep(client: Any, out: str | _os.PathLike[str], **spec: Any) -> _pd.DataFrame:
    """Run :func:`sweep`'s scenarios on a Dask cluster; the same files and result as :func:`sweep`.

    Plans the sweep here (a bad spec raises before anything is submitted), maps each scenario
    still to run over ``client`` (a ``distributed.Client``), writes each result's parts here as
    it arrives, then merges exactly as :func:`sweep` does. So an interrupted Dask sweep resumes
    (locally or on Dask), and the Parquet is byte for byte the local sweep's.

    Each worker needs this package installed and the grid at the same path as here (the bundled
    grid, or ``grid=`` on a shared file system); results travel back as Parquet bytes.

    Args:
        client: A ``distributed.Client`` connected to the cluster.
        out: As :func:`sweep`.
        **spec: :func:`sweep`'s keyword arguments (``workers`` is ignored: Dask schedules).

    Returns:
        As :func:`sweep`.
    """
    import distributed

    # distributed is partly untyped: its results are checked here instead.
    as_completed: Any = distributed.as_completed
    spec = {**spec, "workers": None}
    progress = bool(spec.get("progress", True))
    todo = _native.sweep_plan(_sweep_argv(out, **spec))
    futures = client.map(
        _scenario_parts,
        [argv for _, _, argv in todo],
        intervals=any(rows is not None for _, rows, _ in todo),
        key=[f"voltmesh-scenario-{_os.path.basename(kpi).split('.')[0]}" for kpi, _, _ in todo],
    )
    where = {f.key: (kpi, rows) for f, (kpi, rows, _) in zip(futures, todo)}
    for done, (future, (kpi_bytes, rows_bytes)) in enumerate(
        as_completed(futures, with_results=True), 1
    ):
        kpi, rows = where[future.key]
        if rows is not None and rows_bytes is not None:
            _write_part(rows, rows_bytes)
        _write_part(kpi, kpi_bytes)
        if progress:
            print(f"\r  {done}/{len(todo)} scenarios run on Dask", end="", file=_sys.stderr)
    if progress and todo:
        print(file=_sys.stderr)
    spec["progress"] = False
    return sweep(out, **spec)
