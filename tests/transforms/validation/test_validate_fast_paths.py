"""The validation's shortcuts give what the plain computations give, hostile cells included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from transforms.config.contracts import contract_by_dataset
from transforms.validation import validate
from transforms.validation.validate import usable_cells

HOSTILE = [
    None,
    "是",
    "否",
    "是",
    "=1+1",
    "@SUM(A1)",
    "+86",
    "-0",
    "1234.50",
    "1234.50",
    "1e5",
    "53269919780824865X",
    "a\x00b",
    "  ",
    "12",
    "12",
    "2026-02-30 (no such day)",
    "2026-01-31",
    "x" * 300,
    "镇",
]


@pytest.mark.parametrize("dataset", ["roster", "settlements", "students"])
def test_usable_cells_judged_per_distinct_value_as_cell_by_cell(dataset: str) -> None:
    contract = contract_by_dataset(dataset)
    values = pd.Series(HOSTILE * 3, index=range(5, 5 + 3 * len(HOSTILE)), dtype=object)
    for column in contract.columns:
        if column.type.value == "id":
            continue
        got = usable_cells(column, values)
        want = validate._usable(column, values)
        pd.testing.assert_series_equal(got, want.astype(bool), check_names=False)


def test_usable_cells_of_non_text_cells_take_the_plain_path() -> None:
    column = contract_by_dataset("roster").column("household_size")
    values = pd.Series([1, 1.0, True, "1", None, "1"], dtype=object)

    got = usable_cells(column, values)

    pd.testing.assert_series_equal(got, validate._usable(column, values), check_names=False)


def _pd_eval(expression: str, values: dict[str, float]) -> float | None:
    try:
        evaluated: Any = pd.eval(expression, local_dict=values)
        result = float(evaluated)
    except (ZeroDivisionError, ValueError, TypeError):
        return None
    return result if np.isfinite(result) else None


@pytest.mark.parametrize(
    "texts",
    [
        ("100", "20", "3", "4", "5", "2"),
        ("0", "0", "0", "0", "0", "0"),
        ("-0", "0", "0", "0", "1", "-0"),
        ("1e308", "1e308", "0", "0", "0", "1"),
        ("nan", "1", "1", "1", "1", "1"),
        ("1234.50", "0.1", "0.2", "0.3", "0.7", "3"),
        ("abc", "1", "1", "1", "1", "1"),
        ("=1+1", "1", "1", "1", "1", "1"),
    ],
)
def test_the_expected_value_is_what_pd_eval_gives(texts: tuple[str, ...]) -> None:
    check = next(c for c in contract_by_dataset("roster").checks if c.expected)
    assert check.expected is not None
    names = check.requires
    padded = (*texts, *("7",) * len(names))[: len(names)]
    pairs = tuple(zip(names, padded, strict=True))

    got = validate._evaluated.__wrapped__(check.expected, pairs)

    try:
        values = {name: float(text) for name, text in pairs}
    except ValueError:
        assert got is None
        return
    want = _pd_eval(check.expected, values)
    assert got == want


@pytest.mark.parametrize(
    "expression", ["abs(a) + b", "a ** 2", "a > b", "a.real", "__import__('os')", "a +"]
)
def test_anything_but_arithmetic_of_names_is_left_to_pd_eval(expression: str) -> None:
    assert validate._arithmetic(expression) is None


def test_arithmetic_of_names_and_numbers_is_compiled() -> None:
    assert validate._arithmetic("(a + b - c) / d * 2.5 + -e") is not None


NUMBER_TEXTS: list[Any] = [
    "12",
    "12",
    "-0",
    "0",
    "1234.50",
    "1e5",
    "1E+3",
    "nan",
    "inf",
    "-inf",
    "=1+1",
    "@SUM(A1)",
    "a\x00b",
    "",
    "9" * 30,
    "-" + "9" * 20,
    "18446744073709551616",
    "9223372036854775808",
    "53269919780824865X",
    " 12",
    "１２",
    "0x10",
    "1_000",
]


def _columns() -> list[list[Any]]:
    out: list[list[Any]] = []
    for n in range(len(NUMBER_TEXTS)):
        texts = NUMBER_TEXTS[n:] + NUMBER_TEXTS[:n]
        out.append(texts)
        out.append([*texts, None])
        out.append([texts[0]] * 5)
        out.append([texts[0], None, texts[0], float("nan")] * 3)
    out += [[], [None, None], ["1", "2", "1", "2", 3, 3, 3.5], [True, True, "1", "1"]]
    return out


@pytest.mark.parametrize("cells", _columns())
def test_numbers_parsed_per_distinct_text_are_what_to_numeric_gives(cells: list[Any]) -> None:
    values = pd.Series(cells, index=range(3, 3 + len(cells)), dtype=object, name="amount")

    pd.testing.assert_series_equal(
        validate._numbers(values), pd.to_numeric(values, errors="coerce")
    )
    want = values.astype("string").str.fullmatch(validate.INT_PATTERN).fillna(False)
    assert validate._integers(values).tolist() == want.astype(bool).tolist()
