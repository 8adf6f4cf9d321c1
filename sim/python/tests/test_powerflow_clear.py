"""`voltmesh.powerflow` and `voltmesh.clear` against `voltmesh sim powerflow` and `voltmesh clear`."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import pathlib

import pandas as pd
import pytest

import voltmesh

from conftest import GRID, REPO, Cli

# --- power flow ---------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["2016-06-21 12:00", "2016-01-15 18:45", "2016-12-31 23:45"])
def test_powerflow_equals_the_cli(cli: Cli, at: str) -> None:
    printed = json.loads(cli.run("sim", "powerflow", "--at", at).stdout)
    result = voltmesh.powerflow(at=at)
    assert result.json == printed
    snap = printed["snapshots"][0]
    assert result.buses["vm_pu"].to_dict() == snap["bus_vm_pu"]
    assert list(result.buses.index) == list(snap["bus_vm_pu"])
    assert result.lines["loading_percent"].to_dict() == snap["line_loading_percent"]
    assert result.trafos["loading_percent"].to_dict() == snap["trafo_loading_percent"]
    assert result.ext_grid_p_mw == snap["ext_grid_p_mw"]
    assert result.time == pd.Timestamp(at) and result.step == snap["index"]


def test_powerflow_matches_the_reference_results() -> None:
    reference = json.loads(
        (REPO / "sim" / "data" / "reference" / "1-LV-rural1--0-sw.json").read_text()
    )["snapshots"][0]
    result = voltmesh.powerflow(GRID, dt.datetime(2016, 6, 21, 12, 0))
    assert result.step == reference["index"]
    # The reference is rounded to 6 (voltages) and 4 (loadings) decimals.
    for bus, vm in reference["bus_vm_pu"].items():
        assert abs(result.buses.loc[bus, "vm_pu"] - vm) < 1e-6, bus
    for line, loading in reference["line_loading_percent"].items():
        assert abs(result.lines.loc[line, "loading_percent"] - loading) < 1e-4, line


@pytest.mark.parametrize("at", ["2016-06-21 12:07", "2031-01-01 00:00", "noon"])
def test_powerflow_bad_times_raise_the_clis_message(cli: Cli, at: str) -> None:
    expected = cli.error("sim", "powerflow", "--at", at)
    with pytest.raises(voltmesh.ArgumentError) as raised:
        voltmesh.powerflow(at=at)
    assert str(raised.value) == expected


def test_powerflow_needs_a_time_and_a_grid(tmp_path: pathlib.Path) -> None:
    with pytest.raises(voltmesh.ArgumentError, match="--at"):
        voltmesh.powerflow()
    with pytest.raises(voltmesh.GridError, match="no-grid"):
        voltmesh.powerflow(tmp_path / "no-grid", at="2016-06-21 12:00")


# --- clearing -----------------------------------------------------------------------------------

BOOK = [
    {"id": "b1", "participant": "h1", "side": "buy", "quantity_wh": 500, "limit_price": "0.30"},
    {"id": "b2", "participant": "h2", "side": "buy", "quantity_wh": 300, "limit_price": "0.22"},
    {"id": "a1", "participant": "h3", "side": "sell", "quantity_wh": 400, "limit_price": "0.10"},
    {"id": "a2", "participant": "h4", "side": "sell", "quantity_wh": 600, "limit_price": "0.25"},
    {"id": "a3", "participant": "h5", "side": "sell", "quantity_wh": 100, "limit_price": "0.05"},
]


def write_book(tmp_path: pathlib.Path, orders: list) -> pathlib.Path:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(orders))
    return path


def test_clear_the_example_book_equals_the_cli(cli: Cli) -> None:
    assert voltmesh.clear() == json.loads(cli.run("clear").stdout)


@pytest.mark.parametrize(
    "kwargs,flags",
    [
        ({}, []),
        ({"k": 0.25}, ["--k", "0.25"]),
        ({"mechanism": "pay-as-bid"}, ["--mechanism", "pay-as-bid"]),
        (
            {"mechanism": "pay-as-bid", "pay_as_bid_price": "bid"},
            ["--mechanism", "pay-as-bid", "--pay-as-bid-price", "bid"],
        ),
        ({"mechanism": "cda"}, ["--mechanism", "cda"]),
        ({"tariffs": ("0.08", 0.28)}, ["--feed-in", "0.08", "--retail", "0.28"]),
    ],
)
def test_clear_equals_the_cli(cli: Cli, tmp_path: pathlib.Path, kwargs, flags) -> None:
    path = write_book(tmp_path, BOOK)
    expected = json.loads(cli.run("clear", "--orders", str(path), *flags).stdout)
    assert voltmesh.clear(BOOK, **kwargs) == expected
    assert voltmesh.clear(path, **kwargs) == expected
    assert voltmesh.clear(str(path), **kwargs) == expected
    assert voltmesh.clear(pd.DataFrame(BOOK), **kwargs) == expected
    assert expected["volume_wh"] > 0


def test_clear_takes_decimal_prices() -> None:
    book = [dict(o, limit_price=decimal.Decimal(o["limit_price"])) for o in BOOK]
    assert voltmesh.clear(book) == voltmesh.clear(BOOK)


def test_tariff_violations_are_listed_as_the_cli_lists_them(cli: Cli, tmp_path) -> None:
    path = write_book(tmp_path, BOOK)
    expected = json.loads(
        cli.run("clear", "--orders", str(path), "--feed-in", "0.08", "--retail", "0.25").stdout
    )
    result = voltmesh.clear(BOOK, tariffs=("0.08", "0.25"))
    assert result == expected
    assert [r["id"] for r in result["rejected"]] == ["b1", "a3"]


@pytest.mark.parametrize(
    "orders,kwargs,flags",
    [
        ([dict(BOOK[0], quantity_wh=0)], {}, []),
        ([dict(BOOK[0], limit_price=0.3)], {}, []),
        ([dict(BOOK[0], side="hold")], {}, []),
        ([BOOK[0], BOOK[0]], {}, []),
        ([{"id": "x"}], {}, []),
        (BOOK, {"k": 2}, ["--k", "2"]),
        (BOOK, {"mechanism": "cda", "k": 0.5}, ["--mechanism", "cda", "--k", "0.5"]),
        (BOOK, {"mechanism": "auction"}, ["--mechanism", "auction"]),
        (BOOK, {"tariffs": ("0.30", "0.08")}, ["--feed-in", "0.30", "--retail", "0.08"]),
    ],
)
def test_clear_bad_input_raises_the_clis_message(
    cli: Cli, tmp_path: pathlib.Path, orders, kwargs, flags
) -> None:
    path = write_book(tmp_path, orders)
    expected = cli.error("clear", "--orders", str(path), *flags)
    with pytest.raises(voltmesh.ArgumentError) as raised:
        voltmesh.clear(orders, **kwargs)
    assert str(raised.value) == expected


def test_clear_an_unreadable_file(cli: Cli, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.json"
    expected = cli.error("clear", "--orders", str(missing))
    with pytest.raises(voltmesh.ArgumentError) as raised:
        voltmesh.clear(missing)
    assert str(raised.value) == expected


def test_clear_wrong_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        voltmesh.clear(BOOK, tariffs="0.08,0.30")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        voltmesh.clear(BOOK, k=True)
    with pytest.raises(TypeError):
        voltmesh.clear([{"id": object()}])
