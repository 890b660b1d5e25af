"""Each roster household's incomes: those of its latest income year on the roster and of the
year before.

Within an income year each person's latest row (file, then row) counts; a household's figures
come from its householder's row (户主), else from its member whose row came first. The roster's
current files hold every year's row of every person, so the warehouse picks those rows
(`chosen_query`, two window functions) and only one row per household and year leaves it:
`household_incomes` does the same picking in pandas for a county already in memory, and the
tests hold the two equal.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.households.incomes import INCOME_PARTS, REPORTED_PER_CAPITA, household_income
from transforms.risk.data import (
    _SOURCE_COLUMNS,
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

_COLUMNS = ["household_id", "income_year", *INCOME_FIELDS, "net_income", "source"]
_YEAR_COLUMNS = [*_COLUMNS, "per_capita_net_income", "income_basis"]

# what the incomes read of the roster's rows
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
# the columns the picking orders and groups by: without one of them the warehouse cannot pick
_PICKED_BY = ("manifest_id", "_row", "person_key", "relation", "household_id", "income_year")


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[*_YEAR_COLUMNS, *PREVIOUS])


def household_incomes(roster: pd.DataFrame) -> pd.DataFrame:
    """Per household, the incomes of its latest income year on the roster and the year before,
    from the roster's current-file rows (every file's, not only the current view).

    Per-capita income uses 家庭人口数."""
    if roster.empty:
        return _empty()
    # the columns read below: the sorts and de-duplications copy the rows they keep
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
    return _incomes_of(chosen)


def _incomes_of(chosen: pd.DataFrame) -> pd.DataFrame:
    """The incomes from the chosen rows (one per household and income year)."""
    records = []
    read = ("household_id", "income_year", *INCOME_FIELDS, REPORTED_PER_CAPITA, *_SOURCE_COLUMNS)
    for r in _records(chosen, read):
        if _null(r["income_year"]):
            continue
        # the parts, or the reported 人均纯收入 where the roster has no parts (national layout);
        # None when neither is there: an unknown income, never a zero one
        income = household_income(r)
        parts = {
            f: None if _null(r[f]) else _money(r[f]) for f in (*INCOME_PARTS, "business_expense")
        }
        records.append(
            {
                "household_id": r["household_id"],
                "income_year": int(r["income_year"]),
                **parts,
                "household_size": None if income is None else income.household_size,
                "net_income": None if income is None else income.net_income,
                "per_capita_net_income": None if income is None else income.per_capita,
                "income_basis": None if income is None else income.basis,
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


def income_frame(conn: Connection, contract: Contract) -> pd.DataFrame:
    """The roster's current-file rows (every file's, not only the current view), with only the
    columns `household_incomes` reads."""
    query = row_query(contract)
    kept = [c for c in query.selected_columns if c.name in _INCOME_READ]
    return read_frame(query.with_only_columns(*kept), conn)


def chosen_query(contract: Contract) -> sa.Select[Any] | None:
    """The roster rows `household_incomes` takes its figures from, picked in the warehouse:
    per income year and person the latest row (file, then row), then per household and income
    year the householder's, else the first in load order. None when the roster lacks a column
    the picking needs (`household_incomes` then says what it always said about it)."""
    base = row_query(contract)
    kept = [c for c in base.selected_columns if c.name in _INCOME_READ]
    if not set(_PICKED_BY) <= {c.name for c in kept}:
        return None
    staging = staging_table(contract)
    # NULLs form one partition, as pandas' drop_duplicates treats missing keys as equal
    latest_first = (
        sa.func.row_number()
        .over(
            partition_by=(staging.c.income_year, staging.c.person_key),
            order_by=(staging.c.manifest_id.desc(), staging.c.id.desc()),
        )
        .label("_latest")
    )
    per_person = base.with_only_columns(*kept, latest_first).order_by(None).subquery("per_person")
    # a missing relation is not the householder (pandas: NaN == "户主" is False)
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
    """`household_incomes(income_frame(conn, contract))`, one row per household and income
    year read rather than every roster row of every year."""
    query = chosen_query(contract)
    if query is None:
        return household_incomes(income_frame(conn, contract))
    chosen = read_frame(query, conn)
    return _empty() if chosen.empty else _incomes_of(chosen)
