"""Python's cycle collector paused while many new objects are made that form no cycle.

Reading a county's rows (lists and tuples), unpickling them, building its incomes: hundreds of
thousands of new containers, none in a cycle. The collector sets off a collection every few
thousand of them, and each walks every object the process holds: several times the cost of the
work itself. Paused around such work only (the caller's own objects, GX's, do make cycles),
and restored as it was, whatever happens.
"""

from __future__ import annotations

import gc


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
