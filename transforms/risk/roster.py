"""The county's roster frames the warning stage holds whole: its households with their incomes,
built in a process forked for the purpose and handed back, and its persons.

Building a frame allocates far more than it keeps (the fetched rows, the incomes' per-row
records and merges), and Python's allocator hands an arena of memory back only once nothing in
it lives: the objects a frame keeps, made among those that were freed, pin their arenas. At ten
times a county the households' frame left 760 MB resident in the task. Built in a process
forked while the task holds little (`Building`: beside the lists' workers, forked before the
households are in the task, transforms/risk/slice_workers.py), it comes back pickled, its
objects laid out side by side, and what the building left behind ends with that process.
Where this process may not fork (transforms.runlog.forked.can_fork), it builds them itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.risk.data import (
    HEAD,
    HEAD_COLUMNS,
    HOUSEHOLD_ATTRIBUTES,
    _frame,
    household_heads,
    roster_persons,
)
from transforms.risk.incomes import household_incomes, warehouse_incomes
from transforms.risk.slice_reading import valued_counts
from transforms.runlog.forked import Beside, can_fork
from transforms.warehouse.frames import SLICE_ROWS, fetch_slices, read_frame
from transforms.warehouse.tables import (
    dim_household,
    dim_person,
    make_engine,
    opens_in_another_process,
)

Build = Callable[[Connection], pd.DataFrame]
# what the forked process builds, set before the fork (inherited, never pickled)
_inherited: dict[str, Any] = {}


def households(conn: Connection, contracts: Mapping[str, Contract]) -> pd.DataFrame:
    """The roster's households with their incomes, for the whole county."""
    return built_apart(conn, lambda own: _households(own, contracts))


# what is read of the county's persons once the lists are: who is where and on which list (the
# indicators); the lifecycle's labels read each household's householder alone (`heads`). A rule
# evaluated over the whole county rather than a slice at a time reads the households alone (the
# income rules).
LATER_COLUMNS = ("person_key", "household_id")


def persons(conn: Connection, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The roster's persons, for the whole county, in `data.PERSON_ORDER`; only `columns`, if
    given. Read here, not apart: they are read once the lists are, when this process is at its
    largest, and a process forked then, building them and handing them back pickled, held more
    beside this one (1.6 GB at ten times a county) than building them here leaves behind."""
    query = roster_persons()
    if columns is not None:
        query = query.with_only_columns(*(dim_person.c[name] for name in columns))
    return read_frame(query, conn)


def heads(conn: Connection, slice_rows: int = SLICE_ROWS) -> pd.DataFrame:
    """`household_heads` of the roster's persons, read `slice_rows` persons at a time: of each
    slice only the candidates are kept, every 户主 and the first person of each run of one
    household (every household's first member among them), and `household_heads` of the
    candidates, in order, is that of all the persons. The county's masked IDs and names, which
    the labels read of the householders alone, are never held for every person (at ten times a
    county, 1.1 million of each)."""
    query = (
        roster_persons()
        .with_only_columns(*(dim_person.c[name] for name in HEAD_COLUMNS))
        .execution_options(stream_results=True)
    )
    household, relation = HEAD_COLUMNS.index("household_id"), HEAD_COLUMNS.index("relation")
    candidates = []
    for _, content in fetch_slices(query, conn, slice_rows):
        ids = content[:, household]
        starts = np.ones(len(ids), dtype=bool)
        starts[1:] = ids[1:] != ids[:-1]
        candidates.append(content[starts | (content[:, relation] == HEAD)])
    found = np.concatenate(candidates) if candidates else np.empty((0, len(HEAD_COLUMNS)), object)
    return household_heads(pd.DataFrame(found, columns=list(HEAD_COLUMNS)))


def persons_filled(conn: Connection) -> tuple[int, frozenset[str]]:
    """(rows, columns with a value) of the roster's persons, counted in the warehouse: what
    `inputs.Availability.of` finds in the county's persons frame, all its columns read."""
    total, valued_in, _ = valued_counts(conn, roster_persons())
    if not total:
        return 0, frozenset()
    return total, frozenset(name for name, n in valued_in.items() if n)


def members_float(conn: Connection) -> bool:
    """Whether the county's members' ages are floats in its frame: a birth date missing on one
    roster person and present on another (evidence shows the ages so)."""
    count, births = conn.execute(
        sa.select(sa.func.count(), sa.func.count(dim_person.c.birth_date))
    ).one()
    return bool(0 < births < count)


def _households(conn: Connection, contracts: Mapping[str, Contract]) -> pd.DataFrame:
    incomes = (
        warehouse_incomes(conn, contracts["roster"])
        if "roster" in contracts
        else household_incomes(pd.DataFrame())
    )
    attributes = _frame(conn, dim_household, ("household_id", *HOUSEHOLD_ATTRIBUTES))
    return attributes.merge(incomes, on="household_id", how="left")


def built_apart(conn: Connection, build: Build) -> pd.DataFrame:
    """`build(conn)`, run in a process forked from this one on a connection of its own (it
    reads what `conn`'s database has committed), or on `conn` where this process may not
    fork. A SQLite database in memory exists on `conn` alone: it is built here too."""
    with Building(conn, build) as building:
        return building.result()


def households_building(conn: Connection, contracts: Mapping[str, Contract]) -> Building:
    """`households(conn, contracts)` begun now, in a forked process, while this one goes on
    (forking the lists' workers before the households are in this process: they inherit none
    of its pages); `result()` waits for them."""
    return Building(conn, lambda own: _households(own, contracts))


class Building:
    """`build(conn)` begun in a process forked from this one (see `built_apart`); a context
    manager, whose `result()` waits for the frame. Where the process may not fork, or the
    database is a SQLite one in memory, `result()` builds it on `conn`."""

    def __init__(self, conn: Connection, build: Build) -> None:
        self._conn, self._build = conn, build
        url = conn.engine.url
        self._beside: Beside[None, pd.DataFrame] | None = None
        if can_fork() and opens_in_another_process(url):
            _inherited.update(build=build, url=url.render_as_string(hide_password=False))
            self._beside = Beside(_build, None)

    def result(self) -> pd.DataFrame:
        if self._beside is None:
            return self._build(self._conn)
        try:
            return self._beside.result()
        finally:
            _inherited.clear()
            # ended now, not when the lists are read: a worker process idle in its pool still
            # holds what building them left (360 MB at ten times a county)
            self._beside.close()

    def __enter__(self) -> Building:
        return self

    def __exit__(self, *exc: object) -> None:
        _inherited.clear()
        if self._beside is not None:
            self._beside.close()


def _build(_: None) -> pd.DataFrame:
    engine = make_engine(_inherited["url"])
    try:
        with engine.connect() as conn:
            return _inherited["build"](conn)  # type: ignore[no-any-return]
    finally:
        engine.dispose()
