"""Reading warehouse rows into frames without holding the county twice.

`pd.read_sql` fetches every row of a query as driver objects before it builds the frame, and a
driver hands back a new string object for every cell: a county's 470,000 current rows carry the
same file name, bureau, sheet, township and status text hundreds of thousands of times over,
each a separate object of 60-100 bytes. `read_frame` fetches a slice of rows at a time, points
every cell of a text column at one object per distinct value, and builds the frame once at the
end the way `pd.read_sql` does (the same values, dtypes and missing values), so the rows are
never held as driver objects and as a frame at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas._libs import lib

# pandas' own conversion of fetched rows (what pd.read_sql calls): the frame comes out as
# read_sql would build it (tests/transforms/warehouse/test_frames.py holds the two equal)
from pandas.core.internals.construction import convert_object_array
from pandas.io.sql import _parse_date_columns  # type: ignore[attr-defined]
from sqlalchemy.engine import Connection

SLICE_ROWS = 20_000  # rows fetched at a time: a few MB of driver objects
# a slice's text column is shared when at most this share of its cells is distinct: an ID or
# name column (distinct per person) would gain nothing and cost a factorize
_SHARED_AT_MOST = 0.5
_SHAREABLE = frozenset({"string", "date"})


def _share(cells: np.ndarray, known: dict[Any, Any]) -> np.ndarray | None:
    """A column slice of text (or dates) and missing cells with every value pointing at one
    object per distinct value (`known`, across slices); other columns as they are. None when
    the column is mostly distinct: not worth sharing in later slices either.

    Only values whose equal objects are interchangeable are shared: texts and dates. Not
    amounts: Decimal("1.1") == Decimal("1.10"), but a clerk reads them differently."""
    if pd.api.types.infer_dtype(cells, skipna=True) not in _SHAREABLE:
        return cells
    codes, uniques = pd.factorize(cells)
    if len(uniques) > _SHARED_AT_MOST * len(cells):
        return None
    pool = np.array([known.setdefault(u, u) for u in uniques.tolist()] + [None], dtype=object)
    # code -1 (a missing cell) picks the None at the end: a driver's missing cell is None
    return pool[codes]


def read_frame(query: Any, conn: Connection, slice_rows: int = SLICE_ROWS) -> pd.DataFrame:
    """`pd.read_sql(query, conn)`, reading `slice_rows` rows at a time, with repeated text held
    once."""
    result = conn.execute(query)
    columns = list(result.keys())
    if len(set(columns)) != len(columns):
        # the frame is built from a dict of columns: a repeated label would lose one silently
        result.close()
        raise ValueError(f"read_frame: duplicate column labels in {columns}")
    # per column: its texts seen so far, or None once a slice showed it mostly distinct
    known: list[dict[Any, Any] | None] = [{} for _ in columns]
    slices: list[np.ndarray] = []
    for rows in result.partitions(slice_rows):
        content = lib.to_object_array_tuples(rows)  # type: ignore[attr-defined]
        for j, known_j in enumerate(known):
            if known_j is None:
                continue
            shared = _share(content[:, j], known_j)
            if shared is None:
                known[j] = None
            else:
                content[:, j] = shared
        slices.append(content)
        del rows
    if not slices:
        return pd.DataFrame(columns=columns)
    content = slices[0] if len(slices) == 1 else np.concatenate(slices)
    slices.clear()
    arrays = convert_object_array(list(content.T), dtype=None, coerce_float=True)
    del content
    frame = pd.DataFrame(dict(zip(columns, arrays, strict=True)), copy=False)
    # what pd.read_sql does last: time zone-aware timestamps (PostgreSQL's timestamptz) in UTC
    parsed: pd.DataFrame = _parse_date_columns(frame, None)
    return parsed
