"""Reading the warehouse a slice of households at a time (transforms/risk/slices.py): which
slice each household is in, the person -> slice table the warehouse joins rows to, and each
query's rows taken a slice at a time as frames with the dtypes the county's frame would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.core.internals.construction import convert_object_array
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.risk.data import PERSON_ORDER, roster_persons, row_query
from transforms.warehouse.frames import fetch_slices
from transforms.warehouse.tables import dim_household, dim_person, staging_table

OFF_ROSTER = -1  # the slice of rows whose person is not on the roster
FETCH_ROWS = 5_000  # rows fetched at a time, per list read side by side with the others


def household_slices(conn: Connection, size: int) -> dict[Any, int]:
    """household id -> its slice: every household of the roster's households and persons, in
    Python's order of their ids, `size` to a slice."""
    ids = {r[0] for r in conn.execute(sa.select(dim_household.c.household_id))}
    ids |= {r[0] for r in conn.execute(sa.select(dim_person.c.household_id).distinct())}
    ordered = sorted(i for i in ids if i is not None)
    return {household_id: n // size for n, household_id in enumerate(ordered)}


def slice_table(conn: Connection, slice_of: Mapping[Any, int]) -> sa.Table:
    """The slices as a temporary table the warehouse joins each row to by its person key:
    person -> slice, for the roster's persons with a household (built from a household ->
    slice table, dropped once used)."""
    households = sa.Table(
        "risk_household_slice",
        sa.MetaData(),
        sa.Column("household_id", sa.String(64), primary_key=True),
        sa.Column("slice_no", sa.Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )
    households.create(conn)
    items = [{"household_id": h, "slice_no": n} for h, n in slice_of.items()]
    for start in range(0, len(items), 10_000):
        conn.execute(households.insert(), items[start : start + 10_000])
    # one lookup per row, of a key that holds its slice (SQLite: WITHOUT ROWID, the slice in
    # the key's own B-tree): the person and then the household's slice, two lookups and two
    # row fetches per row, were half the time of reading the lists
    persons = sa.Table(
        "risk_person_slice",
        sa.MetaData(),
        sa.Column("person_key", dim_person.c.person_key.type, primary_key=True),
        sa.Column("slice_no", sa.Integer, nullable=False),
        prefixes=["TEMPORARY"],
        sqlite_with_rowid=False,
    )
    persons.create(conn)
    conn.execute(
        persons.insert().from_select(
            ["person_key", "slice_no"],
            sa.select(dim_person.c.person_key, households.c.slice_no)
            .join(households, households.c.household_id == dim_person.c.household_id)
            .where(dim_person.c.person_key.is_not(None)),
        )
    )
    households.drop(conn)
    return persons


def positions_by_slice(frame: pd.DataFrame, slice_of: Mapping[Any, int]) -> dict[int, np.ndarray]:
    """slice -> the positions of the frame's rows (households or persons) in that slice, in
    the frame's order."""
    slices = frame["household_id"].map(slice_of)
    groups = slices.groupby(slices, sort=False).indices
    return {int(k): np.asarray(v) for k, v in groups.items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class Column:
    has_value: bool
    has_null: bool
    numeric: bool


def column_profile(conn: Connection, query: sa.Select[Any]) -> dict[str, Column]:
    """Per column of a dataset's current rows: whether any has a value, any has none. A slice's
    frame takes the dtype the county's frame would have (an integer column with a gap somewhere
    in the county is float in every slice, a yes/no column object), so values read alike."""
    sub = query.order_by(None).subquery()
    counts = conn.execute(sa.select(sa.func.count(), *(sa.func.count(c) for c in sub.c))).one()
    total = counts[0]
    out = {}
    for column, filled in zip(sub.c, counts[1:], strict=True):
        numeric = isinstance(column.type, sa.Integer | sa.Numeric) and not isinstance(
            column.type, sa.Boolean
        )
        out[column.name] = Column(filled > 0, filled < total, numeric)
    return out


def _harmonized(frame: pd.DataFrame, profile: Mapping[str, Column]) -> pd.DataFrame:
    for name, column in profile.items():
        if name not in frame.columns or not (column.has_value and column.has_null):
            continue
        cells = frame[name]
        if cells.dtype.kind in "iu":
            frame[name] = cells.astype("float64")
        elif cells.dtype.kind == "b":
            frame[name] = cells.astype(object)
        elif column.numeric and cells.dtype == object and bool(cells.isna().all()):
            frame[name] = cells.astype("float64")
    return frame


def _frame_of(pieces: list[np.ndarray], columns: list[str]) -> pd.DataFrame:
    content = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    arrays = convert_object_array(list(content.T), dtype=None, coerce_float=True)
    return pd.DataFrame(dict(zip(columns, arrays, strict=True)), copy=False)


class Slices:
    """A query's rows (ordered by its `_slice` column first) taken a slice at a time, as frames
    with the dtypes the county's frame would have (`profile`). A slice's rows are read when
    that slice is asked for, with one fetch read ahead at most: several lists read side by side
    hold no slice ahead of the one at hand."""

    def __init__(
        self, conn: Connection, ordered: sa.Select[Any], profile: Mapping[str, Column], what: str
    ) -> None:
        self._fetches = fetch_slices(ordered, conn, FETCH_ROWS)
        self._profile = profile
        self._what = what
        self._columns: list[str] = []
        self._rows: np.ndarray | None = None  # the fetch at hand, without its slice column
        self._slices: np.ndarray = np.empty(0, dtype=np.int64)
        self._at = 0  # its first row not taken

    def _ahead(self) -> int | None:
        """The slice of the next row not taken (None: no row is left)."""
        while self._rows is None or self._at >= len(self._slices):
            fetched = next(self._fetches, None)
            if fetched is None:
                self._rows = None
                return None
            names, content = fetched
            at = names.index("_slice")
            self._columns = names[:at] + names[at + 1 :]
            self._slices = content[:, at].astype(np.int64)
            self._rows = np.delete(content, at, axis=1)
            self._at = 0
        return int(self._slices[self._at])

    def take(self, number: int) -> pd.DataFrame | None:
        """The slice's rows (None: the query has none in it); slices are asked for in order."""
        ahead = self._ahead()
        if ahead is not None and ahead < number:
            raise RuntimeError(f"{self._what}: rows of an unknown slice {ahead}")
        if ahead != number:
            return None
        pieces: list[np.ndarray] = []
        while self._ahead() == number:
            assert self._rows is not None
            rest = np.flatnonzero(self._slices[self._at :] != number)
            stop = self._at + int(rest[0]) if len(rest) else len(self._slices)
            pieces.append(self._rows[self._at : stop])
            self._at = stop
        return _harmonized(_frame_of(pieces, self._columns), self._profile)

    def finish(self) -> None:
        """Check that no row is left of a slice never asked for."""
        ahead = self._ahead()
        if ahead is not None:
            raise RuntimeError(f"{self._what}: rows of an unknown slice {ahead}")


def dataset_slices(conn: Connection, contract: Contract, table: sa.Table) -> Slices:
    """The dataset's current-file rows as `current_frame` has them, a slice at a time, each
    slice's rows in load order; `table` is the person -> slice table."""
    query = row_query(contract)
    slice_no = sa.func.coalesce(table.c.slice_no, OFF_ROSTER).label("_slice")
    staging = staging_table(contract)
    ordered = (
        query.add_columns(slice_no)
        .outerjoin(table, table.c.person_key == staging.c.person_key)
        .order_by(None)
        .order_by(slice_no, staging.c.manifest_id, staging.c.id)
        .execution_options(stream_results=True)
    )
    return Slices(conn, ordered, column_profile(conn, query), contract.dataset)


def person_slices(conn: Connection, table: sa.Table, profile: Mapping[str, Column]) -> Slices:
    """The roster's persons as the county's frame has them, in its order, a slice at a time;
    `table` is the person -> slice table."""
    query = roster_persons()
    ordered = (
        query.add_columns(table.c.slice_no.label("_slice"))
        .join(table, table.c.person_key == dim_person.c.person_key)
        .order_by(None)
        .order_by(table.c.slice_no, *PERSON_ORDER)
        .execution_options(stream_results=True)
    )
    return Slices(conn, ordered, profile, "roster persons")


def no_rows(names: Iterable[str]) -> pd.DataFrame:
    """A slice without rows (of a dataset, or of roster persons): the columns, no row."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})


def valued_counts(
    conn: Connection,
    query: sa.Select[Any],
    more: Callable[[sa.Subquery], Sequence[sa.ColumnElement[Any]]] = lambda _: (),
) -> tuple[int, dict[str, int], list[Any]]:
    """(rows, column -> rows with a value, the aggregates `more(rows)`) of `query`'s rows,
    counted in the warehouse as pandas counts its frame's values (`notna`): a PostgreSQL NaN
    amount is a missing value to pandas, so it is not counted."""
    sub = query.order_by(None).subquery()
    postgres = conn.dialect.name == "postgresql"

    def valued(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if postgres and isinstance(column.type, sa.Numeric):
            return sa.func.nullif(column, sa.literal("NaN", column.type))
        return column

    total, *counts = conn.execute(
        sa.select(sa.func.count(), *(sa.func.count(valued(c)) for c in sub.c), *more(sub))
    ).one()
    width = len(sub.c)
    return total, dict(zip(sub.c.keys(), counts[:width], strict=True)), counts[width:]
