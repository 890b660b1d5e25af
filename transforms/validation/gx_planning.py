"""GX's planning of a validation made cheaper, with the same plan: two of its pure functions
remembered or short-cut while a suite is validated here (`planning_shortcuts`).

Before GX reads a row it plans each expectation's metrics, and that planning costs the same
whatever the rows: about 8 ms per expectation (0.85-0.89 s for the roster's 76 on a frame of
1,000 rows), paid once per validation, so again for every chunk of a large file. Most of it went
to rebuilding values GX had just built:

- `Expectation.configuration` makes a new ExpectationConfiguration from the model's fields
  (pydantic's dict(), a regex on the class name) each time it is read, and the planning reads
  it once per keyword: about 130 times per expectation. Inside the shortcuts an instance's
  configuration is built once and the same object returned after. GX changes no expectation's
  fields while it validates (it copies a configuration before it adds the batch to it).
- `IDDict.to_id` names each metric's keyword dicts by an md5 of their JSON form, first walking
  them through `convert_to_json_serializable` (a chain of isinstance checks per value). Inside
  the shortcuts a dict of plain JSON values (str, int, bool, None, finite floats; lists, tuples
  and dicts with text keys of them) skips that walk, which returns such values unchanged; any
  other dict takes GX's own path.

Outside the shortcuts (other threads, other callers) both are GX's own. Tests compare the
results with and without them, and the ids with GX's on hostile values.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Expectation instance (by id) -> it and its configuration, while the shortcuts are active
_CONFIGURATIONS: ContextVar[dict[int, tuple[Any, Any]] | None] = ContextVar(
    "gx_configurations", default=None
)
# GX's own functions, once the shortcuts are installed
_GX: dict[str, Callable[..., Any]] = {}


def _configuration(expectation: Any) -> Any:
    build = _GX["configuration"]
    cache = _CONFIGURATIONS.get()
    if cache is None:
        return build(expectation)
    hit = cache.get(id(expectation))
    if hit is None or hit[0] is not expectation:
        hit = (expectation, build(expectation))
        cache[id(expectation)] = hit
    return hit[1]


def _plain(value: object) -> bool:
    """Whether GX's convert_to_json_serializable returns `value` as it is (and json.dumps
    writes it as GX's converted value): plain JSON values, text-keyed dicts and lists of them."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())  # type: ignore[attr-defined]
    return False


def _to_id(self: Any, id_keys: Any = None, id_ignore_keys: Any = None) -> Any:
    gx_to_id = _GX["to_id"]
    if _CONFIGURATIONS.get() is None or id_keys is not None or id_ignore_keys is not None:
        return gx_to_id(self, id_keys, id_ignore_keys)
    keys = set(self.keys()) - set(self._id_ignore_keys)
    if len(keys) < 2:
        return gx_to_id(self)  # no hashing there
    named = {k: self[k] for k in keys}
    if not _plain(named):
        return gx_to_id(self)
    return hashlib.md5(
        json.dumps(named, sort_keys=True).encode("utf-8"), usedforsecurity=False
    ).hexdigest()


def _install() -> None:
    from great_expectations.core.id_dict import IDDict
    from great_expectations.expectations.expectation import Expectation

    current = Expectation.__dict__["configuration"]
    if current.fget is _configuration:
        return
    _GX["configuration"] = current.fget
    _GX["to_id"] = IDDict.__dict__["to_id"]
    Expectation.configuration = property(_configuration, doc=current.__doc__)  # type: ignore[method-assign,assignment]
    IDDict.to_id = _to_id  # type: ignore[method-assign]


@contextmanager
def planning_shortcuts() -> Iterator[None]:
    """GX's planning with the shortcuts above, in this thread or task, until the block ends."""
    _install()
    token = _CONFIGURATIONS.set({})
    try:
        yield
    finally:
        _CONFIGURATIONS.reset(token)
