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

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.collection import cycles_uncollected
from transforms.config.contracts import Contract
from transforms.households.incomes import (
    PARTS_AND_EXPENSE,
    REPORTED_PER_CAPITA,
    amount,
    income_from,
    size_of,
)
from transforms.risk.data import (
    _SOURCE_COLUMNS,
    CENT,
    HEAD,
    INCOME_FIELDS,
    PREVIOUS,
    _money,
    _null,
    record_cells,
    row_query,
    source_of,
)
from transforms.warehouse.frames import read_frame
from transforms.warehouse.tables import file_manifest, staging_table

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


# what `_incomes_of` reads of the chosen rows
_READ = tuple(
    dict.fromkeys(
        ("household_id", "income_year", *INCOME_FIELDS, REPORTED_PER_CAPITA, *_SOURCE_COLUMNS)
    )
)


def _each(column: pd.Series, func: Callable[[Any], Any]) -> list[Any]:
    """`[func(v) for v in record_cells(column)]`, calling `func` once per distinct number of a
    numeric column: a county's amounts repeat (round figures, a village's typical wage), and
    equal results share one object. `func` must be pure."""
    dtype = column.dtype
    if not (isinstance(dtype, np.dtype) and (dtype.kind in "iu" or dtype == np.float64)):
        return [func(v) for v in record_cells(column)]
    values = column.to_numpy()
    # a float by its bits: 0.0 and -0.0 are equal, but not to str() (nor to a clerk: "-0.00");
    # every NaN is missing alike
    codes, uniques = pd.factorize(values.view(np.int64) if dtype == np.float64 else values)
    if dtype == np.float64:
        uniques = uniques.view(np.float64)
    pool = np.empty(len(uniques), dtype=object)
    pool[:] = [func(u) for u in uniques.tolist()]  # Python scalars, as the records held them
    return pool[codes].tolist()  # type: ignore[no-any-return]


def _amount(value: Any) -> Decimal | None:
    """`amount(value)`, without a call for the cells a frame read from the warehouse holds
    (floats, as pd.read_sql gives amounts; Decimals): the same Decimal, digits and exponent."""
    if type(value) is float:
        if value != value:  # NaN
            return None
        number = Decimal(repr(value))
    elif type(value) is Decimal:
        number = value
    else:
        return amount(value)
    return number if number.is_finite() else None


def _size(value: Any) -> int | None:
    """`size_of(value)`, a whole number at no call."""
    if type(value) is int:
        return value if value >= 1 else None
    return size_of(value)


def _part(value: Any) -> Decimal | None:
    """An income part as the frame holds it: None when missing, else `_money(value)`, the
    amount quantized to the cent (a float by its text, as `norm` reads it)."""
    if type(value) is float:
        return None if value != value else Decimal(repr(value)).quantize(CENT)
    if type(value) is Decimal:
        return value.quantize(CENT)
    return None if _null(value) else _money(value)


def _incomes_of(chosen: pd.DataFrame) -> pd.DataFrame:
    """The incomes from the chosen rows (one per household and income year).

    Column by column: each column's cells read once, as `to_dict("records")` would give them,
    and each figure computed as `household_income` computes it from a record of the row
    (tests/transforms/risk/incomes_reference.py, the record-per-row version, must give the
    same frame); a dict of records per row and `norm` per cell were most of the stage's start."""
    # Some hundred thousand new objects, none in a cycle: the collections they would set off
    # walk the objects the process holds again and again, for nothing (row_stream.py does the
    # same while the roster's rows are read)
    with cycles_uncollected():
        rows = _year_rows(chosen)
    # rows of Python objects, as the records were: pandas infers each column's dtype from them
    # as it did from the records (both reach it as one object array)
    years = pd.DataFrame.from_records(rows, columns=_YEAR_COLUMNS)
    latest = years.sort_values("income_year").drop_duplicates("household_id", keep="last")
    before = years.rename(columns={c: f"prev_{c}" for c in _COLUMNS if c != "household_id"})
    before["income_year"] = before["prev_income_year"] + 1
    merged = latest.merge(
        before[["household_id", "income_year", *PREVIOUS]],
        on=["household_id", "income_year"],
        how="left",
    )
    return merged.reset_index(drop=True)


def _year_rows(chosen: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The rows of `_incomes_of`'s years (`_YEAR_COLUMNS`), one per chosen row with an income
    year, as tuples of what its records held."""
    if len(chosen):
        if "income_year" not in chosen.columns:
            raise KeyError("income_year")
        year_cells = record_cells(chosen["income_year"])
        kept = [i for i, y in enumerate(year_cells) if type(y) is int or not _null(y)]
        if kept:
            # what a record of a row with an income year had to hold
            for required in (*PARTS_AND_EXPENSE, "household_id", "source_row"):
                if required not in chosen.columns:
                    raise KeyError(required)
        if len(kept) < len(chosen):
            chosen = chosen.iloc[kept]
    n = len(chosen)

    def each(column: str, func: Callable[[Any], Any]) -> list[Any]:
        # a column the frame lacks: what `record.get` gave, None
        return _each(chosen[column], func) if column in chosen.columns else [func(None)] * n

    def cells(column: str) -> list[Any]:
        return record_cells(chosen[column]) if column in chosen.columns else [None] * n

    # the parts, or the reported 人均纯收入 where the roster has no parts (national layout);
    # None when neither is there: an unknown income, never a zero one
    incomes = [
        None if size is None else income_from(size, parts, reported)
        for size, reported, *parts in zip(
            each("household_size", _size),
            each(REPORTED_PER_CAPITA, _amount),
            *(each(f, _amount) for f in PARTS_AND_EXPENSE),
            strict=True,
        )
    ]
    columns = {
        "household_id": cells("household_id"),
        "income_year": each("income_year", int),
        **{f: each(f, _part) for f in PARTS_AND_EXPENSE},
        "household_size": [None if i is None else i.household_size for i in incomes],
        "net_income": [None if i is None else i.net_income for i in incomes],
        "source": [
            source_of(bureau, file, sheet, row, "roster")
            for bureau, file, sheet, row in zip(
                cells("bureau"),
                cells("file_name"),
                cells("sheet"),
                cells("source_row"),
                strict=True,
            )
        ],
        "per_capita_net_income": [None if i is None else i.per_capita for i in incomes],
        "income_basis": [None if i is None else i.basis for i in incomes],
    }
    return list(zip(*(columns[c] for c in _YEAR_COLUMNS), strict=True))


def income_frame(conn: Connection, contract: Contract) -> pd.DataFrame:
    """The roster's current-file rows (every file's, not only the current view), with only the
    columns `household_incomes` reads."""
    query = row_query(contract)
    kept = [c for c in query.selected_columns if c.name in _INCOME_READ]
    return read_frame(query.with_only_columns(*kept), conn)


def chosen_query(contract: Contract) -> sa.Select[Any] | None:
    """The roster rows `household_incomes` takes its figures from, picked in the warehouse:
    per income year and person the latest row (file, then row), then per household and income
    year the householder's, else the first in load order; with the columns `_incomes_of` reads,
    by household and income year. None when the roster lacks a column the picking needs
    (`household_incomes` then says what it always said about it)."""
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
    # The two pickings sort every roster row of every year: only the keys they order by go
    # through the sorts (carrying every income column through both was half the query's time),
    # and the chosen rows' figures are read by their id afterwards.
    keys = [c for c in kept if c.name in ("_row", "manifest_id", "relation", "household_id")]
    keys.append(staging.c.income_year)
    per_person = base.with_only_columns(*keys, latest_first).order_by(None).subquery("per_person")
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
    chosen = (
        sa.select(per_person.c["_row"], pick).where(per_person.c["_latest"] == 1).subquery("chosen")
    )
    read = [c for c in kept if c.name in _READ]
    return (
        sa.select(*read)
        .select_from(
            chosen.join(staging, staging.c.id == chosen.c["_row"]).join(
                file_manifest, file_manifest.c.id == staging.c.manifest_id
            )
        )
        .where(chosen.c["_pick"] == 1)
        # the order the second picking's sort gave the rows when they left it (and so the
        # order `warehouse_incomes` has always given the households in)
        .order_by(staging.c.household_id, staging.c.income_year)
    )


def warehouse_incomes(conn: Connection, contract: Contract) -> pd.DataFrame:
    """`household_incomes(income_frame(conn, contract))`, one row per household and income
    year read rather than every roster row of every year."""
    query = chosen_query(contract)
    if query is None:
        return household_incomes(income_frame(conn, contract))
    chosen = read_frame(query, conn)
    return _empty() if chosen.empty else _incomes_of(chosen)
