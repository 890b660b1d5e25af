"""Work of one task done side by side, in worker processes forked from the task.

A county day's steps are plain Python: one process keeps one core busy. Where a step's work
falls into independent parts (the datasets parsed and validated, the lists the warning rules
read), the task fans them out itself over worker processes forked from it: Airflow 3.3 cannot
map a task again inside the mapped county group.

Forked once the task has imported what it needs and read what the parts share, a worker
starts in milliseconds and shares those pages with the task (the state a part reads is
inherited through the fork, never pickled). A worker opens its own warehouse connections: it
never uses one of the task's. Its log lines travel back with its result and the task writes
them, so that one process alone writes the task's log. The results come back in the parts'
order, whatever order they were started in.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Generic, TypeVar

from transforms.config.collection import forked_child, forking

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
_LogLine = tuple[str, int, str]  # logger name, level, message
# a worker's log lines of the part it runs now
_lines: list[_LogLine] = []


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _lines.append((record.name, record.levelno, record.getMessage()))


def can_fork() -> bool:
    """Whether this process may start workers: a daemonic process (some executors' workers)
    may not start processes of its own."""
    return not multiprocessing.current_process().daemon


def worker_count(wanted: int | None = None) -> int:
    """How many processes a task's independent parts run in: `wanted` (the PARSE_WORKERS
    setting), by default one per core; 1, in the task itself, where it may not fork."""
    if not can_fork():
        return 1
    return max(1, wanted or os.cpu_count() or 1)


def _worker_start(collecting: bool) -> None:
    """Freeze what the worker inherited (transforms.config.collection) and keep its log lines for
    the task instead of writing to the task's log."""
    forked_child(collecting)
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger().addHandler(_Collector())


def _forking_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose `workers` processes are forked from this one at its first submit (which the
    caller makes under `forking()`); each freezes what it inherited, then collects as this
    process did when the pool was made."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_start,
        initargs=(gc.isenabled(),),
    )


def _run(
    work: Callable[[Item], Result], item: Item
) -> tuple[Result | None, BaseException | None, list[_LogLine]]:
    _lines.clear()
    try:
        return work(item), None, list(_lines)
    except Exception as exc:  # returned: the task decides what a failed part means
        return None, exc, list(_lines)


def side_by_side(
    work: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    order: Sequence[int] | None = None,
) -> list[Result | BaseException]:
    """`work(item)` for every item, in `workers` processes forked from this one, the items
    started in `order` (positions; default: the items' order). Per item, in the items' order:
    its result, or what it raised (also when its worker died: killed, out of memory). The
    workers' log lines are written here, each part's in the items' order. `work` must be a
    module's function (or a partial of one): it is sent to the workers by name."""
    if not items:
        return []
    workers = max(1, min(workers, len(items)))
    started = list(order) if order is not None else list(range(len(items)))
    outcomes: list[Result | BaseException] = []
    with _forking_pool(workers) as pool:
        submitted: dict[
            int, Future[tuple[Result | None, BaseException | None, list[_LogLine]]]
        ] = {}
        # The workers freeze what they inherit before they collect: no finaliser of the task's
        # garbage (a dropped connection, say) runs there (transforms.config.collection).
        with forking():  # the workers are forked by the first submit
            for position in started:
                submitted[position] = pool.submit(_run, work, items[position])
        for position in range(len(items)):
            try:
                value, error, lines = submitted[position].result()
            except Exception as exc:  # the worker died, or its result could not come back
                outcomes.append(exc)
                continue
            for name, level, text in lines:
                logging.getLogger(name).log(level, "%s", text)
            outcomes.append(error if error is not None else value)  # type: ignore[arg-type]
    return outcomes


class Beside(Generic[Item, Result]):
    """`work(item)` in one process forked from this one now, while this one goes on with
    something else; `result()` waits for it. A context manager: leaving it ends the process."""

    def __init__(self, work: Callable[[Item], Result], item: Item) -> None:
        self._pool = _forking_pool(1)
        with forking():  # as in side_by_side
            self._future = self._pool.submit(_run, work, item)

    def result(self) -> Result:
        """What `work` returned; raises what it raised (or why its process died)."""
        value, error, lines = self._future.result()
        for name, level, text in lines:
            logging.getLogger(name).log(level, "%s", text)
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def __enter__(self) -> Beside[Item, Result]:
        return self

    def close(self) -> None:
        """End the process (waiting for it), whether or not its result was taken; again is a
        no-op."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
