"""The roster's frames built in a forked process are the frames built in the task: the same
rows in the same order, the same values and dtypes, hostile text and gaps included."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.risk import roster
from transforms.risk.data import roster_persons
from transforms.warehouse.frames import read_frame
from transforms.warehouse.tables import create_schema, dim_household, dim_person, make_engine

HOSTILE = ('=HYPERLINK("x")', "+1", "-2", "@A1", "532699199001010011", "𠀀\u202e", "e\u0301", "")


@pytest.fixture
def engine(warehouse_url: str) -> Iterator[Engine]:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    households = [
        {"household_id": f"H{n:03d}", "township": HOSTILE[n % len(HOSTILE)], "village": None}
        for n in range(40)
    ]
    persons = [
        {
            "person_key": f"{n:064x}",
            "household_id": f"H{(n * 7) % 40:03d}",
            "id_masked": HOSTILE[n % len(HOSTILE)],
            "name_masked": None if n % 5 == 0 else HOSTILE[(n + 3) % len(HOSTILE)],
            "relation": "户主" if n % 4 == 0 else "之子",
            "birth_date": None if n % 6 == 0 else dt.date(1950 + n % 60, 1 + n % 12, 1),
            "source_row": None if n % 9 == 0 else 200 - n,  # a gap: floats in the frame
        }
        for n in range(150)
    ]
    with engine.begin() as conn:
        conn.execute(dim_household.insert(), households)
        conn.execute(dim_person.insert(), persons)
    yield engine
    engine.dispose()


def test_the_persons_built_apart_are_the_persons_read_here(engine: Engine) -> None:
    with engine.connect() as conn:
        here = roster.persons(conn)
        apart = roster.built_apart(conn, lambda own: read_frame(roster_persons(), own))
    pd.testing.assert_frame_equal(apart, here)
    assert len(apart) == 150
    # each household's members together, whatever order the rows were stored in
    assert apart["household_id"].is_monotonic_increasing


def test_the_households_built_apart_are_the_households_built_here(engine: Engine) -> None:
    with engine.connect() as conn:
        here = roster._households(conn, {})
        apart = roster.households(conn, {})
    pd.testing.assert_frame_equal(apart, here)
    assert len(apart) == 40


def _pid(conn: Any) -> pd.DataFrame:
    return pd.DataFrame({"pid": [os.getpid()]})


def test_built_in_a_process_of_its_own_unless_this_one_may_not_fork(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.connect() as conn:
        assert roster.built_apart(conn, _pid)["pid"].iloc[0] != os.getpid()
        monkeypatch.setattr(roster, "can_fork", lambda: False)
        assert roster.built_apart(conn, _pid)["pid"].iloc[0] == os.getpid()


def _broken(conn: Any) -> pd.DataFrame:
    conn.execute(sa.text("SELECT * FROM no_such_table"))
    raise AssertionError("unreachable")


def test_what_the_build_raises_is_raised_here(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        roster.built_apart(conn, _broken)
