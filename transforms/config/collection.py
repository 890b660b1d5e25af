"""Python's cycle collector paused while many new objects are made that form no cycle.

Reading a county's rows (lists and tuples), unpickling them, building its incomes: hundreds of
thousands of new containers, none in a cycle. The collector sets off a collection every few
thousand of them, and each walks every object the process holds: several times the cost of the
work itself. Paused around such work only (the caller's own objects, GX's, do make cycles),
and restored as it was, whatever happens.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycles_uncollected() -> Iterator[None]:
    """No cycle collection within the block; the collector as it was after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
