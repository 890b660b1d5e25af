"""The lists the warning rules read, read and evaluated side by side in worker processes.

Each dataset's rows are read a slice at a time and its rules evaluated on each slice
(`slices.read_datasets`); no dataset's reading depends on another's. So the datasets are split
into as many groups as there are workers, of about equal work (largest first, each to the
lightest group): the task reads the first group itself, on its reading connection, while
processes forked from it (transforms.runlog.forked) read the others. What each gave comes back
to the task, which puts them together in the contracts' order exactly as when it reads them all
itself: the findings, candidates and reconciliations of a rule are all of one dataset, in slice
order either way.

A worker inherits the county's households through the fork (`Slicing`, never pickled) and
takes its slice's rows of them as the task would; it reads its slices' roster persons itself,
as the task does, since no process holds the county's persons while the lists are read (a
worker touching inherited objects copies their pages: reference counts). What it sends back is
its datasets' findings and facts, not their rows. It reads on a connection of its own (the
task's are never used in a worker), with its own person -> slice table, closed when it ends.
The task reads a group itself rather than wait: one worker fewer is that much memory less.
"""

from __future__ import annotations

import pickle
from contextlib import ExitStack
from multiprocessing.util import Finalize
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.risk.data import ListFacts
from transforms.risk.slice_reading import slice_table
from transforms.risk.slices import Slicing, _Part, read_datasets
from transforms.runlog.forked import Beside
from transforms.warehouse.tables import make_engine, staging_table

# set by the task before the fork, read by the workers
_inherited: dict[str, Any] = {}
# a worker's own connection and person -> slice table, for every dataset it reads
_opened: dict[str, Any] = {}


def _close() -> None:
    conn = _opened.pop("conn", None)
    if conn is not None:
        conn.close()  # a read-only connection: its temporary table goes with it
        _opened.pop("engine").dispose()


def _read_in_worker(datasets: list[str]) -> dict[str, _Part]:
    slicing: Slicing = _inherited["slicing"]
    engine = make_engine(_inherited["url"])
    conn = engine.connect()
    Finalize(None, _close, exitpriority=10)  # run when the worker ends, whatever happened
    _opened.update(engine=engine, conn=conn)
    table = slice_table(conn, slicing.slice_of)
    parts = read_datasets(conn, table, slicing, datasets)
    for part in parts.values():
        for found in part.found.values():
            if found.error is not None and not _picklable(found.error):
                # what a rule raised comes back to be raised by the task (unless 数据不足)
                found.error = RuntimeError(f"{type(found.error).__name__}: {found.error}")
    return parts


def _picklable(error: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True


def _weights(conn: Connection, slicing: Slicing) -> dict[str, int]:
    """How much reading each dataset costs, roughly: its staged rows if a rule or the
    indicators read them (the others are only counted in the warehouse)."""
    weights = {}
    for dataset, contract in slicing.contracts.items():
        read = bool(slicing.readers.get(dataset)) or dataset in ListFacts.READS
        count = sa.select(sa.func.count()).select_from(staging_table(contract))
        weights[dataset] = int(conn.execute(count).scalar() or 0) if read else 0
    return weights


def _groups(weights: dict[str, int], count: int) -> list[list[str]]:
    """The datasets in `count` groups of about equal weight: the heaviest first, each to the
    lightest group so far (the first group on a tie); each group in the contracts' order."""
    groups: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for dataset in sorted(weights, key=lambda d: -weights[d]):
        lightest = loads.index(min(loads))
        groups[lightest].append(dataset)
        loads[lightest] += weights[dataset]
    order = list(weights)
    return [sorted(group, key=order.index) for group in groups]


def read_side_by_side(conn: Connection, slicing: Slicing, workers: int) -> dict[str, _Part]:
    """`read_dataset` of every dataset of the county: the task reads one group of them on
    `conn` while `workers` - 1 forked processes read the others; dataset -> what it gave.
    Raises what a dataset raised."""
    own, *others = _groups(_weights(conn, slicing), workers)
    _inherited.update(slicing=slicing, url=conn.engine.url.render_as_string(hide_password=False))
    try:
        with ExitStack() as stack:
            beside = [
                stack.enter_context(Beside(_read_in_worker, group)) for group in others if group
            ]
            table = slice_table(conn, slicing.slice_of)
            parts = read_datasets(conn, table, slicing, own)
            # dropped here, not in a `finally`: after a failed statement PostgreSQL refuses
            # every other until the rollback, which drops the temporary table with the rest
            table.drop(conn)
            for worker in beside:
                parts.update(worker.result())
    finally:
        _inherited.clear()
    return parts
