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

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
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


def _processed(cells: np.ndarray, process: Callable[[Any], Any]) -> np.ndarray:
    """`[process(v) for v in cells]`, once per distinct value (a date column repeats its dates),
    a missing cell staying None as SQLAlchemy's processors keep it. The type is part of the key:
    1, 1.0 and True are equal in Python, not to every processor."""
    kind = pd.api.types.infer_dtype(cells, skipna=True)
    if kind in ("string", "integer", "boolean", "date"):
        # one Python type (and None): equal values are interchangeable, a factorize is exact
        codes, uniques = pd.factorize(cells)
        pool = np.empty(len(uniques) + 1, dtype=object)
        pool[:-1] = [process(u) for u in uniques.tolist()]
        pool[-1] = None  # code -1, a missing cell
        return pool[codes]
    known: dict[tuple[type, Any], Any] = {}
    out: list[Any] = []
    for value in cells.tolist():
        if value is None:
            out.append(None)
            continue
        # 0.0 and -0.0 are equal and hash alike, but a processor may tell them apart
        key = (type(value), value if value or type(value) is not float else repr(value))
        if key not in known:
            known[key] = process(value)
        out.append(known[key])
    result = np.empty(len(out), dtype=object)
    result[:] = out
    return result


def fetch_slices(
    query: sa.Select[Any], conn: Connection, slice_rows: int = SLICE_ROWS
) -> Iterator[tuple[list[str], np.ndarray]]:
    """The query's rows, `slice_rows` at a time, as 2-d object arrays of the values
    `conn.execute(query)` gives (with the column labels).

    The query runs with its columns' types set aside, so the driver's values come back as they
    are, and each column's SQLAlchemy result processor (SQLite's text to date, number to
    Decimal, 0/1 to bool) is applied once per distinct value rather than once per cell:
    building a Row per row and calling the processors per cell was half the time of reading a
    county's rows. A statement executed with `stream_results` streams (server-side cursor)."""
    columns = list(query.selected_columns)
    raw = query.with_only_columns(
        *(sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in columns)
    )
    compiled = raw.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = dict(compiled.params)
    for key, bind in compiled._bind_processors.items():  # what execute would bind
        if key in params and params[key] is not None and callable(bind):
            params[key] = bind(params[key])
    arguments: Any = params
    if compiled.positiontup is not None:
        arguments = tuple(params[k] for k in compiled.positiontup)
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        # a frame is built from a dict of columns: a repeated label would lose one silently
        raise ValueError(f"read_frame: duplicate column labels in {names}")
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    streamed = bool(query.get_execution_options().get("stream_results"))
    if streamed and conn.dialect.name == "postgresql":
        # a server-side cursor: the rows stay in the server until fetched
        cursor = dbapi.cursor(name=f"fetch_{uuid.uuid4().hex[:12]}")
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(str(compiled), arguments)
        description = cursor.description
        processors = [
            # what CursorResult itself calls for each column
            c.type._cached_result_processor(
                conn.dialect, description[j][1] if description else None
            )
            for j, c in enumerate(columns)
        ]
        while rows := cursor.fetchmany(slice_rows):
            content = lib.to_object_array_tuples(rows)  # type: ignore[attr-defined]
            del rows
            for j, process in enumerate(processors):
                if process is not None:
                    content[:, j] = _processed(content[:, j], process)
            # handed over, not kept: a reader holding several streams open at once (the
            # warnings' lists, slice by slice) would otherwise keep one whole slice of rows
            # alive per stream, in this generator, while it waits to be resumed
            handed = [content]
            del content
            yield names, handed.pop()
    finally:
        cursor.close()


def read_frame(query: Any, conn: Connection, slice_rows: int = SLICE_ROWS) -> pd.DataFrame:
    """`pd.read_sql(query, conn)`, reading `slice_rows` rows at a time, with repeated text held
    once."""
    # (fetch_slices refuses repeated labels before it runs the query)
    columns = [c.name for c in query.selected_columns]
    # per column: its texts seen so far, or None once a slice showed it mostly distinct
    known: list[dict[Any, Any] | None] = [{} for _ in columns]
    slices: list[np.ndarray] = []
    # streamed: on PostgreSQL a server-side cursor, not the whole result held by the driver
    streamed = query.execution_options(stream_results=True)
    for _, content in fetch_slices(streamed, conn, slice_rows):
        for j, known_j in enumerate(known):
            if known_j is None:
                continue
            shared = _share(content[:, j], known_j)
            if shared is None:
                known[j] = None
            else:
                content[:, j] = shared
        slices.append(content)
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
