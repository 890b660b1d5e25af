"""The lists the warning rules read, read and evaluated side by side in worker processes.

Each dataset's rows are read a slice at a time and its rules evaluated on each slice
(`slices.read_datasets`); no dataset's reading depends on another's. So the datasets are split
into as many groups as there are workers, of about equal work (largest first, each to the
lightest group): the task reads the first group itself, on its reading connection, while
processes forked from it (transforms.runlog.forked) read the others. What each gave comes back
to the task, which puts them together in the contracts' order exactly as when it reads them all
itself: the findings, candidates and reconciliations of a rule are all of one dataset, in slice
order either way.

The workers are forked before the county's households are in the task: the households are
built in a process of their own meanwhile (transforms/risk/roster.py), and each worker is sent
its slices' households through a pipe, a slice at a time, as it reads. A worker forked after
them inherited the task's pages of them (a forked process's resident memory counts every page
it shares with the task), and touching them copied them: at ten times a county the worker
held 1.5 GB. It reads its slices' roster persons itself, as the task does (no process holds
the county's persons while the lists are read). What it sends back is its datasets' findings
and facts, not their rows. It reads on a connection of its own (the task's are never used in a
worker), with its own person -> slice table, closed when it ends. The task reads a group
itself rather than wait: one worker fewer is that much memory less.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from multiprocessing.connection import Connection as Connection_
from multiprocessing.util import Finalize
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.risk import roster
from transforms.risk.data import ListFacts
from transforms.risk.slice_reading import slice_table
from transforms.risk.slices import Slicing, _Part, households_by_slice, read_datasets
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


def _received(receiver: Connection_) -> Callable[[int], pd.DataFrame]:
    """The households of each slice, as the task sends them, in the slices' order."""

    def households_of(number: int) -> pd.DataFrame:
        sent_number, households = pickle.loads(receiver.recv_bytes())
        if sent_number != number:  # the two sides disagree on the slices: never guess
            raise RuntimeError(f"slice {number} expected, the households of {sent_number} sent")
        return households  # type: ignore[no-any-return]

    return households_of


def _read_in_worker(datasets: list[str]) -> dict[str, _Part]:
    slicing: Slicing = _inherited["slicing"]
    mine = _inherited["mine"]
    # only this worker's end of its own pipe stays open here: the task's ends closing (or
    # the task ending) then ends the reading at once (EOFError), never a wait for nothing
    for n, (receiver, sender) in enumerate(_inherited["pipes"]):
        sender.close()
        if n != mine:
            receiver.close()
    receiver = _inherited["pipes"][mine][0]
    engine = make_engine(_inherited["url"])
    conn = engine.connect()
    Finalize(None, _close, exitpriority=10)  # run when the worker ends, whatever happened
    _opened.update(engine=engine, conn=conn)
    table = slice_table(conn, slicing.slice_of)
    parts = read_datasets(conn, table, slicing, datasets, _received(receiver))
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


class _Sending:
    """Each slice's households sent to one worker, in the slices' order, by a thread of the
    task (a pipe holds little: each send waits for the worker to take the one before)."""

    def __init__(
        self,
        sender: Connection_,
        households_of: Callable[[int], pd.DataFrame],
        numbers: Sequence[int],
    ) -> None:
        self._sender = sender
        self._of = households_of
        self._numbers = list(numbers)
        self._thread = threading.Thread(target=self._send, name="slice-households", daemon=True)
        self._thread.start()

    def _send(self) -> None:
        try:
            for number in self._numbers:
                sent = pickle.dumps((number, self._of(number)), pickle.HIGHEST_PROTOCOL)
                self._sender.send_bytes(sent)
        except OSError:
            # the worker ended (its own error comes back with its result) or the task closed
            # the pipe to stop it: nothing left to send
            return

    def close(self) -> None:
        self._sender.close()  # a worker still waiting for a slice reads the end (EOFError)
        self._thread.join()


def read_side_by_side(
    conn: Connection, slicing: Slicing, workers: int
) -> tuple[dict[str, _Part], pd.DataFrame]:
    """`read_dataset` of every dataset of the county: the task reads one group of them on
    `conn` while `workers` - 1 forked processes read the others, the households built in a
    process of their own meanwhile; (dataset -> what it gave, the county's households).
    Raises what a dataset raised."""
    own, *others = _groups(_weights(conn, slicing), workers)
    others = [group for group in others if group]
    url = conn.engine.url.render_as_string(hide_password=False)
    pipes: list[tuple[Connection_, Connection_]] = []
    try:
        with ExitStack() as stack:
            building = stack.enter_context(roster.households_building(conn, slicing.contracts))
            # made once the households' process is forked: it must hold no end of them (a
            # worker waiting for a slice would never see the pipe end while it lives)
            pipes += [multiprocessing.Pipe(duplex=False) for _ in others]
            _inherited.update(slicing=slicing, url=url, pipes=pipes)
            beside = []
            for mine, group in enumerate(others):
                _inherited["mine"] = mine
                beside.append(stack.enter_context(Beside(_read_in_worker, group)))
            for receiver, sender in pipes:
                receiver.close()  # the workers' ends: the task reads from none of them
                # whatever stops the task (the households failing too), a worker waiting for a
                # slice then reads the end and stops: leaving the workers waits for them
                stack.callback(sender.close)
            households = building.result()
            # each slice's positions found once, for the task's reading and every sending
            households_of = households_by_slice(households, slicing)
            for _, sender in pipes:
                stack.callback(_Sending(sender, households_of, slicing.numbers).close)
            table = slice_table(conn, slicing.slice_of)
            parts = read_datasets(conn, table, slicing, own, households_of)
            # dropped here, not in a `finally`: after a failed statement PostgreSQL refuses
            # every other until the rollback, which drops the temporary table with the rest
            table.drop(conn)
            for worker in beside:
                parts.update(worker.result())
    finally:
        _inherited.clear()
        for receiver, sender in pipes:
            receiver.close()
            sender.close()
    return parts, households
