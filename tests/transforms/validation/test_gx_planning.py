"""GX's planning shortcuts: the same results and ids as GX's own, each configuration built once."""

from __future__ import annotations

import contextlib
import enum
import math
from typing import Any

import numpy as np
import pytest
from gx_results import comparable
from test_gx_batches import _frame

from transforms.validation import gx_batches, gx_planning, validate


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """GX's own configuration getter, counted (each call is one configuration built)."""
    with gx_planning.planning_shortcuts():
        pass  # installed
    build = gx_planning._GX["configuration"]
    builds: list[int] = []

    def counted(expectation: Any) -> Any:
        builds.append(id(expectation))
        return build(expectation)

    monkeypatch.setitem(gx_planning._GX, "configuration", counted)
    return builds


@pytest.mark.parametrize("batch_cells", [gx_batches.BATCH_CELLS, 1])
def test_the_shortcuts_give_what_gx_gives(
    monkeypatch: pytest.MonkeyPatch, batch_cells: int
) -> None:
    contract, frame = _frame(240)
    monkeypatch.setattr(gx_batches, "BATCH_CELLS", batch_cells)
    data = validate.gx_data(contract, frame)
    builds = _counting_builds(monkeypatch)

    shortcut = validate.outcome_of(contract, validate.gx_result(contract, data))
    shortcut_builds = len(builds)
    builds.clear()
    monkeypatch.setattr(gx_batches, "planning_shortcuts", contextlib.nullcontext)
    plain = validate.outcome_of(contract, validate.gx_result(contract, data))

    assert shortcut.issues == plain.issues and plain.issues
    assert shortcut.statistics == plain.statistics
    assert comparable(shortcut.results_json) == comparable(plain.results_json)
    # each expectation instance's configuration was built once, not once per keyword read
    assert 0 < shortcut_builds * 5 < len(builds)


def _expectation() -> Any:
    import great_expectations as gx

    return gx.expectations.ExpectColumnValuesToNotBeNull(column="姓名")


def test_a_configuration_is_remembered_only_inside_the_shortcuts() -> None:
    with gx_planning.planning_shortcuts(), gx_planning.planning_shortcuts():
        pass  # installing twice keeps GX's own getter to call
    assert gx_planning._GX["configuration"] is not gx_planning._configuration
    expectation = _expectation()
    # outside: GX's own getter, a new configuration each read
    assert expectation.configuration is not expectation.configuration
    with gx_planning.planning_shortcuts():
        inside = expectation.configuration
        assert expectation.configuration is inside
        assert _expectation().configuration is not inside
    assert expectation.configuration is not inside
    assert expectation.configuration.to_json_dict() == inside.to_json_dict()


class _Kind(enum.StrEnum):
    COLUMN = "column"


# keyword dicts as GX's planning makes them, and hostile ones that must take GX's own path
ID_DICTS: list[dict[Any, Any]] = [
    {},
    {"column": "姓名"},
    {"column": "身份证号", "batch_id": "b-1", "row_condition": None, "condition_parser": None},
    {
        "result_format": {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": ["_row_id", "excel_row"],
            "partial_unexpected_count": 20,
            "return_unexpected_index_query": False,
        },
        "regex": r"^\d{17}[\dX]$",
        "mostly": 1.0,
    },
    {"value_set": ("是", "否"), "parse_strings_as_datetimes": False, "n": -3},
    {"value_set": {"是", "否"}, "column": "x"},  # a set: GX's path
    {"min_value": math.nan, "max_value": 3.5},  # NaN: GX writes null
    {"min_value": math.inf, "max_value": -math.inf},
    {"column": _Kind.COLUMN, "batch_id": "b"},  # a text enum
    {"count": np.int64(3), "share": np.float64(0.5)},  # numpy scalars
    {"nested": {1: "a", "b": [None, {"c": '=HYPERLINK("x")'}]}, "d": "\x00"},  # a number key
    {"nested": {True: "a"}, "e": "11010519491231002X"},  # a bool key: str(True) in GX
    {"when": np.datetime64("2026-01-05"), "f": b"bytes"},
]


@pytest.mark.parametrize("values", ID_DICTS)
def test_an_id_is_gxs_own(values: dict[Any, Any]) -> None:
    from great_expectations.core.id_dict import IDDict

    with gx_planning.planning_shortcuts():
        pass
    gx_to_id = gx_planning._GX["to_id"]
    expected = gx_to_id(IDDict(values))
    with gx_planning.planning_shortcuts():
        assert IDDict(values).to_id() == expected
        assert hash(IDDict(values)) == hash(expected)
    assert IDDict(values).to_id() == expected


def test_plain_values_skip_gxs_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.core import id_dict
    from great_expectations.core.id_dict import IDDict

    walked: list[object] = []
    convert = id_dict.convert_to_json_serializable

    def counted(data: Any) -> Any:
        walked.append(data)
        return convert(data)

    monkeypatch.setattr(id_dict, "convert_to_json_serializable", counted)
    with gx_planning.planning_shortcuts():
        IDDict(ID_DICTS[2]).to_id()
        IDDict(ID_DICTS[3]).to_id()
        assert not walked
        IDDict(ID_DICTS[5]).to_id()  # a set
        assert walked
