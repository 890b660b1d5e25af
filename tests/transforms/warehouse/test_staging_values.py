"""Staging values converted in resolve: the load inserts what it would have converted itself."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from transforms.config.contracts import ColumnType, contract_by_dataset
from transforms.pipeline import load_step
from transforms.privacy.masking import mask_id, mask_name
from transforms.runlog.workdir import save_frame_slices
from transforms.warehouse.staging_values import (
    AS_READ,
    STORED_MARK,
    as_read,
    is_stored,
    read_columns,
    stored_slice,
)

ID = "53262619800101001X"
# hostile cells: formula prefixes, NUL, an ID and a phone typed into free text, full-width
# digits, blanks of every kind, a number where text belongs
HOSTILE: dict[ColumnType, list[object]] = {
    ColumnType.TEXT: ["城关镇", "=1+1", f"身份证{ID}", "a\x00b", None, math.nan, "", "１２"],
    ColumnType.HH: ["0001", "@x", "0001", None, "0002", "0001", math.nan, "0003"],
    ColumnType.ID: [ID, ID.lower(), "11010519491231002X", None, ID, "-1", math.nan, ID],
    ColumnType.DATE: ["2026-01-02", None, "2026-01-02", "1980-02-29", None, "2026-01-03"] * 2,
    ColumnType.MONEY: ["1234.5", "0", None, "1234.5", "-3.25", "99999999.99", math.nan, "1"],
    ColumnType.INT: ["3", None, "3", "12", "0", math.nan, "7", "3"],
    ColumnType.YN: ["是", "否", None, "是", "是", math.nan, "否", "是"],
    ColumnType.PHONE: ["13987654321", None, "13987654321", "+8613987654321", "", None, "1", "2"],
}
ROWS = 8


def _nan_as_none(value: Any) -> Any:
    """Two NaN objects are never equal in a list: blanks compared as None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_as_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_nan_as_none(v) for v in value)
    return value


def _cells(column: Any) -> list[object]:
    if column.type is ColumnType.ENUM:
        return [None if r == 3 else column.values[r % len(column.values)] for r in range(ROWS)]
    return HOSTILE[column.type][:ROWS]


def _frame(dataset: str) -> tuple[Any, pd.DataFrame]:
    contract = contract_by_dataset(dataset)
    data: dict[str, list[object]] = {
        "_sheet": ["表1"] * ROWS,
        "_source_row": list(range(2, 2 + ROWS)),
        "_person_key": [f"{r:064d}" for r in range(ROWS)],
        "_birth_date": [dt.date(1980, 1, 1), None] * (ROWS // 2),
        "_sex": ["男", None] * (ROWS // 2),
        "_household_id": ["0001", None] * (ROWS // 2),
        "_flagged": [False, True] * (ROWS // 2),
    }
    for column in contract.columns:
        data[column.name] = _cells(column)
    frame = pd.DataFrame(data).astype({c.name: "object" for c in contract.columns})
    return contract, frame


@pytest.mark.parametrize("dataset", ["roster", "illness", "settlements", "employment"])
def test_the_load_inserts_what_it_converted_itself(dataset: str) -> None:
    contract, frame = _frame(dataset)
    stored = stored_slice(contract, frame)
    assert is_stored(stored) and not is_stored(frame)
    got = load_step.staging_columns(contract, stored, 7, "f" * 64)
    expected = load_step.staging_columns(contract, frame, 7, "f" * 64)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name] == expected[name], name
        # the same Python types too (Decimal stays Decimal, a date a date, a blank None)
        assert [type(v) for v in got[name]] == [type(v) for v in expected[name]], name


def test_the_masked_columns_are_stored_the_others_as_read() -> None:
    contract, frame = _frame("roster")
    stored = stored_slice(contract, frame)
    assert stored["id_number"].tolist()[0] == mask_id(ID)
    assert stored["name"].dtype == object
    assert stored["name"].tolist() == [
        mask_name(v) if isinstance(v, str) else None for v in frame["name"].tolist()
    ]
    assert "=1+1" not in stored["name"].tolist()
    # amounts, dates, counts stay as read: the load types them (cheaper than pickling them)
    money = next(c.name for c in contract.columns if c.type is ColumnType.MONEY)
    assert stored[money].tolist() == frame[money].tolist()
    assert Decimal("1234.5") in load_step.staging_columns(contract, stored, 1, "a" * 64)[money]
    # what the load reads as read is kept so, beside the stored values
    assert stored[AS_READ + "id_number"].tolist() == frame["id_number"].tolist()
    assert STORED_MARK in stored
    # the frame handed in is untouched
    assert frame["id_number"].tolist()[0] == ID


@pytest.mark.parametrize("dataset", ["roster", "illness", "housing_safety"])
def test_periods_and_identities_are_the_cells_as_read(dataset: str, tmp_path: Path) -> None:
    contract, frame = _frame(dataset)
    loaded = {}
    for label, part in (("raw", frame), ("stored", stored_slice(contract, frame))):
        path = tmp_path / f"{label}.pkl"
        save_frame_slices(part, path)
        slices = load_step._Slices(contract, path, 3, "a" * 64)
        columns = list(slices())
        loaded[label] = (
            columns,
            slices.periods,
            slices.identities() if contract.about_persons else None,
        )
    assert _nan_as_none(loaded["raw"]) == _nan_as_none(loaded["stored"])
    read = as_read(contract, stored_slice(contract, frame))
    assert list(read.columns) == read_columns(contract)
    pd.testing.assert_frame_equal(read, frame[read_columns(contract)])


def test_an_empty_slice_is_stored_with_its_columns() -> None:
    contract, frame = _frame("illness")
    stored = stored_slice(contract, frame.iloc[:0])
    assert len(stored) == 0 and is_stored(stored)
    assert all(stored[c.name].dtype == object for c in contract.columns)
    assert load_step.staging_columns(contract, stored, 1, "a" * 64)["manifest_id"] == []
