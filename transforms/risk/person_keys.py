"""A set of person keys held as one array of bytes: what the indicators ask of the lists' facts
(who is employed, enrolled, listed) is whether a roster person is among them.

At ten times a county the employment and enrollment lists name about a million people; as
Python sets of their keys (a 64-character text each, and a hash table per set) they held
about 270 MB for the whole of the warnings' stage. As sorted arrays of fixed-width bytes they
hold a quarter of that, and asking about every roster person at once is one `np.isin`.

Only texts are keys: a row without a person key (None, NaN) names nobody, and no roster person
(whose key is a text) can be found among such rows, so they are not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

_ASKED = 50_000  # keys looked up at a time
# appended to every key so that none ends in a NUL byte, which a numpy bytes array drops
_END = b"\x01"


def _encoded(keys: Iterable[Any]) -> np.ndarray:
    return np.array(
        [k.encode("utf-8", "surrogatepass") + _END for k in keys if type(k) is str],
        dtype=np.bytes_,
    )


class PersonKeys:
    """Person keys added a part at a time (a slice of the county, another process's facts),
    looked up all at once. Adding keeps each part as it came; the parts are sorted into one
    array, duplicates dropped, the first time the set is read."""

    def __init__(self, keys: Iterable[Any] = ()) -> None:
        self._parts: list[np.ndarray] = []
        self._keys: np.ndarray = np.array([], dtype=np.bytes_)
        self.update(keys)

    def update(self, keys: Iterable[Any] | PersonKeys) -> None:
        part = keys._array() if isinstance(keys, PersonKeys) else _encoded(keys)
        if len(part):
            self._parts.append(part)

    def _array(self) -> np.ndarray:
        if self._parts:
            # sorted in place and the repeats dropped by a mask, the parts let go first:
            # np.unique held about three copies of the county's keys at once (its sort, a
            # mask, the result; some 200 MB at ten times a county), this about two
            keys = np.concatenate([self._keys, *self._parts])
            self._parts, self._keys = [], keys[:0]
            keys.sort()
            if len(keys) > 1:
                first = np.empty(len(keys), dtype=bool)
                first[0] = True
                np.not_equal(keys[1:], keys[:-1], out=first[1:])
                keys = keys[first]
            self._keys = keys
        return self._keys

    def isin(self, keys: Sequence[Any]) -> np.ndarray:
        """For each of `keys`, whether it is in the set (False for anything not a text)."""
        found = np.zeros(len(keys), dtype=bool)
        known = self._array()
        if not len(known):
            return found
        # a part of the keys at a time: the county's million persons' keys encoded at once
        # were a few hundred MB of bytes objects and arrays held for a moment
        for start in range(0, len(keys), _ASKED):
            part = keys[start : start + _ASKED]
            texts = [n for n, k in enumerate(part) if type(k) is str]
            if not texts:
                continue
            asked = _encoded(part[n] for n in texts)
            at = np.searchsorted(known, asked).clip(max=len(known) - 1)
            found[start + np.asarray(texts)] = known[at] == asked
        return found

    def __contains__(self, key: object) -> bool:
        return bool(self.isin([key])[0])

    def __len__(self) -> int:
        return len(self._array())

    def __iter__(self) -> Iterator[str]:
        return (bytes(k)[: -len(_END)].decode("utf-8", "surrogatepass") for k in self._array())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PersonKeys):
            return bool(np.array_equal(self._array(), other._array()))
        if isinstance(other, set | frozenset):
            return set(self) == {k for k in other if type(k) is str}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PersonKeys({len(self)} keys)"

    def __getstate__(self) -> dict[str, Any]:
        return {"keys": self._array()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._parts = []
        self._keys = state["keys"]
