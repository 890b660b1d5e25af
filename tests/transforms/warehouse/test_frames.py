"""read_frame: the frame pd.read_sql gives, read a slice at a time with repeated text held once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from transforms.warehouse.frames import read_frame

metadata = sa.MetaData()
cells = sa.Table(
    "cells",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bureau", sa.String),  # repeated text
    sa.Column("person", sa.String),  # distinct text
    sa.Column("count", sa.Integer),  # with missing cells in some slices only
    sa.Column("amount", sa.Numeric(12, 2)),  # Decimal objects
    sa.Column("born", sa.Date),
    sa.Column("born_repeated", sa.Date),
    sa.Column("flag", sa.Boolean),
    sa.Column("stamped", sa.DateTime(timezone=True)),  # timestamptz on PostgreSQL
    sa.Column("blank_everywhere", sa.String),  # missing everywhere
    sa.Column("mixed", sa.String),  # text in some slices, missing in others
)

HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1",
    "@SUM(A1)",
    "110101199003071234",  # ID-shaped text in an ordinary column
    "卫健局 ",
    "",
    "\u202e反向",
    "a\u0000b",  # NUL inside text (SQLite keeps it; PostgreSQL refuses it, see below)
]


def _rows(n: int, nul: bool) -> list[dict[str, object]]:
    texts = HOSTILE if nul else [t for t in HOSTILE if "\x00" not in t]
    return [
        {
            "id": i + 1,
            "bureau": texts[i % len(texts)] if i % 7 else None,
            "person": f"P{i:06d}",
            "count": None if 3 <= i < 5 else i,
            "amount": Decimal("1.10") if i % 2 else Decimal("1.1"),
            "born": dt.date(1990, 1, 1) + dt.timedelta(days=i),
            "born_repeated": dt.date(2000, 2, 29) + dt.timedelta(days=i % 3),
            "flag": None if i % 5 == 0 else bool(i % 2),
            "stamped": dt.datetime(2026, 11, 28, 8, i % 60, tzinfo=dt.UTC),
            "blank_everywhere": None,
            "mixed": "有" if i < 4 else None,
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("warehouse_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("n, slice_rows", [(0, 4), (1, 4), (9, 4), (40, 4), (40, 1000)])
def test_the_frame_is_read_sqls_frame(warehouse_url: str, n: int, slice_rows: int) -> None:
    engine = sa.create_engine(warehouse_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        rows = _rows(n, nul=engine.dialect.name == "sqlite")
        if rows:
            conn.execute(cells.insert(), rows)
    query = sa.select(cells).order_by(cells.c.id)
    with engine.connect() as conn:
        expected = pd.read_sql(query, conn)
        got = read_frame(query, conn, slice_rows=slice_rows)
    engine.dispose()
    assert list(got.columns) == list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # the same missing values, object for object (None is not NaN in an object column)
    for column in got.columns:
        assert [type(v) for v in got[column].tolist()] == [
            type(v) for v in expected[column].tolist()
        ], column
    # a Decimal keeps its own exponent (1.1 is not 1.10 in what a clerk reads)
    assert [str(v) for v in got["amount"]] == [str(v) for v in expected["amount"]]


def test_repeated_text_is_one_object_per_value(tmp_path: object) -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(cells.insert(), _rows(60, nul=True))
    with engine.connect() as conn:
        frame = read_frame(sa.select(cells).order_by(cells.c.id), conn, slice_rows=30)
    bureaus = [v for v in frame["bureau"].tolist() if isinstance(v, str)]
    assert len({id(v) for v in bureaus}) == len(set(bureaus)) < len(bureaus)
    # dates repeat too (a birth date, a settlement date): one object per day
    born = frame["born_repeated"].tolist()
    assert len({id(v) for v in born}) == len(set(born)) == 3
    # a distinct column is left as the driver gave it
    persons = frame["person"].tolist()
    assert len(set(persons)) == 60
