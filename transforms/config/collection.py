"""Python's cycle collector: paused where it only costs, and kept off what never becomes garbage.

Reading a county's rows (lists and tuples), unpickling them, building its incomes: hundreds of
thousands of new containers, none in a cycle. The collector sets off a collection every few
thousand of them, and each full one walks every object the process holds: several times the
cost of the work itself. Paused around such work only (the caller's own objects, GX's, do make
cycles), and restored as it was, whatever happens (`cycles_uncollected`).

What a task has imported (pandas, SQLAlchemy, Great Expectations: modules, classes, functions,
several hundred thousand objects) lives as long as the process; a full collection walks them all
the same. Frozen once imported (`freeze_imported`), they are never walked again.

A process forked from a task (a worker, the isolated reader) freezes all it inherited before its
first collection (`forking` in the task, `forked_child` in the child): no finaliser of the
task's garbage (a dropped warehouse connection, say) runs in the child, and the child's
collections never write to the pages it shares with the task (which would copy them). The task
only pauses its collector across the fork: a freeze of its own imports stays as it is.
"""

from __future__ import annotations

import gc
import os


class cycles_uncollected:  # lower case: it reads as a function, `with cycles_uncollected():`
    """No cycle collection within the block; the collector as it was after it.

    A class, not a contextlib generator: an exception leaving the block passes through as it
    is (contextlib assigns the traceback of what it re-raises, which a frozen dataclass
    exception, the parser's FileRejection, refuses)."""

    def __enter__(self) -> None:
        self._enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            gc.enable()


def freeze_imported() -> int:
    """Move every object the process now holds out of the collector's reach for good; how many
    objects are frozen. Call it once a task has imported what it needs and before it reads any
    data: what is frozen is never collected (a cycle among a task's rows would never be freed),
    and imports live as long as the process anyway. No collection first: a full one costs a
    task ~0.3 s with Great Expectations imported, for the few cycles its imports left behind.
    Once per process: a second call (tasks run one after the other in one process, `airflow
    dags test`) freezes nothing more, since the first task's data may be held by then."""
    global _frozen_in
    if _frozen_in != os.getpid():
        _frozen_in = os.getpid()
        gc.freeze()
    return gc.get_freeze_count()


_frozen_in: int | None = None  # the process that froze its imports


class forking(cycles_uncollected):
    """Around a fork, in the forking process: no collection between the fork and the child's
    `forked_child`. `with forking() as collecting:` gives what the child is to pass it: whether
    the collector ran before (the child inherits it paused)."""

    def __enter__(self) -> bool:  # type: ignore[override]
        super().__enter__()
        return self._enabled


def forked_child(enabled: bool) -> None:
    """First thing in a forked child: freeze all it inherited, then the collector as the parent
    had it before `forking`."""
    gc.freeze()
    if enabled:
        gc.enable()
