"""A household's net income from one roster row, whichever layout the roster came in.

The agreed layout carries the income parts (工资性, 生产经营性, 财产性, 转移性 income and
生产经营性支出) and 家庭人口数: net income = parts - expense, per capita = net / size. The
national monitoring system's export carries only the reported 人均纯收入 and 人数: there the
reported figure is the household's per-capita net income and net income = per capita x size.
Where neither is complete the income is unknown (None), never zero: a zero would put every such
household below the monitoring line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

CENT = Decimal("0.01")
INCOME_PARTS = ("wage_income", "business_income", "property_income", "transfer_income")
PARTS_AND_EXPENSE = (*INCOME_PARTS, "business_expense")
REPORTED_PER_CAPITA = "per_capita_income"

Basis = Literal["parts", "reported"]
BASIS_ZH: Mapping[str, str] = {
    "parts": "按收入分项计算",
    "reported": "按名册填报的人均纯收入",
}


def amount(value: object) -> Decimal | None:
    """A money cell as an exact Decimal; None for a missing or unreadable one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = str(value)
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return None if not result.is_finite() else result


def size_of(value: object) -> int | None:
    """家庭人口数 as a positive int; None when missing or not a positive whole number."""
    number = amount(value)
    if number is None or number != number.to_integral_value() or number < 1:
        return None
    return int(number)


@dataclass(frozen=True)
class Income:
    net_income: Decimal
    per_capita: Decimal
    household_size: int
    basis: Basis


def household_income(row: Mapping[str, Any]) -> Income | None:
    """The income of the household a roster row describes; None when it cannot be known.

    The parts win when all of them are there (the reported figure is then only checked against
    them, by the contract's per_capita_mismatch check)."""
    return income_of_cells(
        row.get("household_size"),
        [row.get(f) for f in PARTS_AND_EXPENSE],
        row.get(REPORTED_PER_CAPITA),
    )


def income_of_cells(size: object, parts: Sequence[object], reported: object) -> Income | None:
    """`household_income` of a row given as its cells: 家庭人口数, each of PARTS_AND_EXPENSE (in
    that order) and the reported 人均纯收入 (None when the layout has none). For callers that
    read a batch's columns rather than a row's mapping."""
    household_size = size_of(size)
    if household_size is None:
        return None
    return income_from(household_size, [amount(p) for p in parts], amount(reported))


def income_from(
    size: int, parts: Sequence[Decimal | None], reported: Decimal | None
) -> Income | None:
    """`household_income` from a row's figures already read: `size_of` its 家庭人口数, `amount`
    of each of PARTS_AND_EXPENSE (in that order) and of its reported 人均纯收入. For callers
    that read a column's cells at once (transforms/risk/incomes.py) rather than a row's."""
    if all(v is not None for v in parts):
        wage, business, property_, transfer, expense = parts
        net = sum((p or Decimal(0) for p in (wage, business, property_, transfer)), Decimal(0))
        net = (net - (expense or Decimal(0))).quantize(CENT)
        per_capita = (net / size).quantize(CENT, ROUND_HALF_UP)
        return Income(net, per_capita, size, "parts")
    if reported is None:
        return None
    per_capita = reported.quantize(CENT, ROUND_HALF_UP)
    return Income((per_capita * size).quantize(CENT), per_capita, size, "reported")
