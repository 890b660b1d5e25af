"""The households' incomes as built before they were built column by column (commit 752fb93):
a dict of records per chosen row, `household_income` per row, the rows picked in the warehouse
by two window functions over every roster column. The reference the lean code must equal:
values, their Python types, dtypes and row order."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.risk.data import (
    _SOURCE_COLUMNS,
    CENT,
    HEAD,
    INCOME_FIELDS,
    PREVIOUS,
    _money,
    _null,
    _records,
    _source,
    row_query,
)
from transforms.warehouse.frames import read_frame
from transforms.warehouse.tables import staging_table

INCOME_PARTS = ("wage_income", "business_income", "property_income", "transfer_income")
PARTS_AND_EXPENSE = (*INCOME_PARTS, "business_expense")
REPORTED_PER_CAPITA = "per_capita_income"
_COLUMNS = ["household_id", "income_year", *INCOME_FIELDS, "net_income", "source"]
_YEAR_COLUMNS = [*_COLUMNS, "per_capita_net_income", "income_basis"]
_INCOME_READ = frozenset(
    {
        "manifest_id",
        "_row",
        "person_key",
        "relation",
        "household_id",
        "income_year",
        *INCOME_FIELDS,
        REPORTED_PER_CAPITA,
        *_SOURCE_COLUMNS,
    }
)
_PICKED_BY = ("manifest_id", "_row", "person_key", "relation", "household_id", "income_year")


def _amount(value: object) -> Decimal | None:
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


def _size_of(value: object) -> int | None:
    number = _amount(value)
    if number is None or number != number.to_integral_value() or number < 1:
        return None
    return int(number)


def household_income(row: Mapping[str, Any]) -> tuple[Decimal, Decimal, int, str] | None:
    """(net income, per capita, household size, basis), as `Income` held them."""
    size = _size_of(row.get("household_size"))
    if size is None:
        return None
    parts = {f: _amount(row.get(f)) for f in PARTS_AND_EXPENSE}
    if all(v is not None for v in parts.values()):
        net = sum((parts[f] or Decimal(0) for f in INCOME_PARTS), Decimal(0))
        net = (net - (parts["business_expense"] or Decimal(0))).quantize(CENT)
        per_capita = (net / size).quantize(CENT, ROUND_HALF_UP)
        return net, per_capita, size, "parts"
    reported = _amount(row.get(REPORTED_PER_CAPITA))
    if reported is None:
        return None
    per_capita = reported.quantize(CENT, ROUND_HALF_UP)
    return (per_capita * size).quantize(CENT), per_capita, size, "reported"


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[*_YEAR_COLUMNS, *PREVIOUS])


def household_incomes(roster: pd.DataFrame) -> pd.DataFrame:
    if roster.empty:
        return _empty()
    keys = ("manifest_id", "_row", "person_key", "relation")
    kept = (
        *keys,
        "household_id",
        "income_year",
        *INCOME_FIELDS,
        REPORTED_PER_CAPITA,
        *_SOURCE_COLUMNS,
    )
    rows = roster[[c for c in dict.fromkeys(kept) if c in roster.columns]]
    rows = rows.sort_values(["manifest_id", "_row"], kind="stable")
    rows = rows.drop_duplicates(["income_year", "person_key"], keep="last").copy()
    rows["_head"] = rows["relation"] == HEAD
    chosen = rows.sort_values(
        ["household_id", "income_year", "_head"], ascending=[True, True, False], kind="stable"
    ).drop_duplicates(["household_id", "income_year"], keep="first")
    return incomes_of(chosen)


def incomes_of(chosen: pd.DataFrame) -> pd.DataFrame:
    records = []
    read = ("household_id", "income_year", *INCOME_FIELDS, REPORTED_PER_CAPITA, *_SOURCE_COLUMNS)
    for r in _records(chosen, read):
        if _null(r["income_year"]):
            continue
        income = household_income(r)
        parts = {
            f: None if _null(r[f]) else _money(r[f]) for f in (*INCOME_PARTS, "business_expense")
        }
        records.append(
            {
                "household_id": r["household_id"],
                "income_year": int(r["income_year"]),
                **parts,
                "household_size": None if income is None else income[2],
                "net_income": None if income is None else income[0],
                "per_capita_net_income": None if income is None else income[1],
                "income_basis": None if income is None else income[3],
                "source": _source(r, "roster"),
            }
        )
    years = pd.DataFrame.from_records(records, columns=_YEAR_COLUMNS)
    latest = years.sort_values("income_year").drop_duplicates("household_id", keep="last")
    before = years.rename(columns={c: f"prev_{c}" for c in _COLUMNS if c != "household_id"})
    before["income_year"] = before["prev_income_year"] + 1
    merged = latest.merge(
        before[["household_id", "income_year", *PREVIOUS]],
        on=["household_id", "income_year"],
        how="left",
    )
    return merged.reset_index(drop=True)


def chosen_query(contract: Contract) -> sa.Select[Any] | None:
    base = row_query(contract)
    kept = [c for c in base.selected_columns if c.name in _INCOME_READ]
    if not set(_PICKED_BY) <= {c.name for c in kept}:
        return None
    staging = staging_table(contract)
    latest_first = (
        sa.func.row_number()
        .over(
            partition_by=(staging.c.income_year, staging.c.person_key),
            order_by=(staging.c.manifest_id.desc(), staging.c.id.desc()),
        )
        .label("_latest")
    )
    per_person = base.with_only_columns(*kept, latest_first).order_by(None).subquery("per_person")
    head_first = sa.case((per_person.c.relation == HEAD, 0), else_=1)
    pick = (
        sa.func.row_number()
        .over(
            partition_by=(per_person.c.household_id, per_person.c.income_year),
            order_by=(head_first, per_person.c.manifest_id, per_person.c["_row"]),
        )
        .label("_pick")
    )
    names = [c.name for c in kept]
    chosen = (
        sa.select(*(per_person.c[n] for n in names), pick)
        .where(per_person.c["_latest"] == 1)
        .subquery("chosen")
    )
    return sa.select(*(chosen.c[n] for n in names)).where(chosen.c["_pick"] == 1)


def warehouse_incomes(conn: Connection, contract: Contract) -> pd.DataFrame:
    query = chosen_query(contract)
    assert query is not None
    chosen = read_frame(query, conn)
    return _empty() if chosen.empty else incomes_of(chosen)
