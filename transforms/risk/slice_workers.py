"""The lists the warning rules read, read and evaluated side by side in worker processes.

Each dataset's rows are read a slice at a time and its rules evaluated on each slice
(`slices.read_dataset`); no dataset's reading depends on another's. So the datasets are spread
over worker processes forked from the task (transforms.runlog.forked), the largest started
first, and what each gave comes back to the task, which puts them together in the contracts'
order exactly as when it reads them itself: the findings, candidates and reconciliations of a
rule are all of one dataset, in slice order either way.

A worker inherits the county's persons and households through the fork (`Slicing`, never
pickled) and takes its slice's rows of them as the task would; what it sends back is the
dataset's findings and facts, not its rows. It reads on a connection of its own (the task's
are never used in a worker), with its own person -> slice table, kept for every dataset it
reads and closed when the worker ends.
"""

from __future__ import annotations

import pickle
from multiprocessing.util import Finalize
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.risk.data import ListFacts
from transforms.risk.slices import Slicing, _Part, _slice_table, read_dataset
from transforms.runlog.forked import side_by_side
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


def _read_in_worker(dataset: str) -> _Part:
    slicing: Slicing = _inherited["slicing"]
    if "conn" not in _opened:
        engine = make_engine(_inherited["url"])
        _opened.update(engine=engine, conn=engine.connect())
        Finalize(None, _close, exitpriority=10)  # run when the worker ends
        _opened["table"] = _slice_table(_opened["conn"], slicing.slice_of)
    part = read_dataset(_opened["conn"], _opened["table"], slicing, dataset)
    for found in part.found.values():
        if found.error is not None and not _picklable(found.error):
            # what a rule raised comes back to be raised by the task (unless 数据不足)
            found.error = RuntimeError(f"{type(found.error).__name__}: {found.error}")
    return part


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
    for dataset, contract in slicing.county.contracts.items():
        read = bool(slicing.readers.get(dataset)) or dataset in ListFacts.READS
        count = sa.select(sa.func.count()).select_from(staging_table(contract))
        weights[dataset] = int(conn.execute(count).scalar() or 0) if read else 0
    return weights


def read_side_by_side(conn: Connection, slicing: Slicing, workers: int) -> dict[str, _Part]:
    """`read_dataset` of every dataset of the county, `workers` at a time in worker processes;
    dataset -> what it gave. Raises what the first dataset (in the contracts' order) that
    failed raised."""
    datasets = list(slicing.county.contracts)
    weights = _weights(conn, slicing)
    order = sorted(range(len(datasets)), key=lambda n: -weights[datasets[n]])
    _inherited.update(slicing=slicing, url=conn.engine.url.render_as_string(hide_password=False))
    try:
        outcomes = side_by_side(_read_in_worker, datasets, workers, order)
    finally:
        _inherited.clear()
    parts = {}
    for dataset, outcome in zip(datasets, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        parts[dataset] = outcome
    return parts
