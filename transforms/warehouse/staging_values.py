"""What a staging table stores of a file's cells: typed, then masked (transforms.privacy.keys),
each distinct value of a column converted once.

Resolve converts each slice it writes (`stored_slice`), in the processes it runs side by side;
the load, which runs on one core (SQLite has one writer), then inserts the values as they are.
The conversion was the load's: about a fifth of its time at county scale. A slice keeps the
cells the load still reads as they were read (the period, and the persons' IDs, names and
phones for person_identity), under `AS_READ` names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd

from transforms.config.contracts import Column, Contract
from transforms.privacy.keys import stored_converter
from transforms.warehouse.tables import IDENTITY_PHONE_COLUMNS, typed_converter

# a column marking a slice whose contract columns hold their stored values
STORED_MARK: Final = "_stored_values"
# the prefix of a column kept as read beside its stored values
AS_READ: Final = "_as_read__"


def once_per_distinct(values: pd.Series, convert: Callable[[Any], Any]) -> list[Any]:
    """convert(cell) for every cell, None for a blank one, each distinct value converted once
    (townships, enums, dates and amounts repeat down a column; the converters are pure)."""
    na = values.isna().to_numpy()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = uniques.tolist()
    if not all(type(v) is str for v in distinct):
        # factorize would merge values of different types that compare equal (1, 1.0, True):
        # anything but text converts cell by cell, as it always did
        return [
            None if blank else convert(value)
            for value, blank in zip(values.tolist(), na, strict=True)
        ]
    converted = np.empty(len(distinct) + 1, dtype=object)
    converted[:-1] = [convert(v) for v in distinct]
    converted[-1] = None  # code -1: a blank cell
    return list(converted[codes])


def stored_values(column: Column, values: pd.Series) -> list[Any]:
    """stored_value(column, typed_value(column.type, cell)) of each cell, each choice made once."""
    typed, store = typed_converter(column.type), stored_converter(column)
    return once_per_distinct(values, lambda v: store(typed(v)))


def read_columns(contract: Contract) -> list[str]:
    """The contract columns whose cells the load reads as read: the period, and what a person's
    identity is made of (ID, name, phones). A file about households or items has no identity."""
    wanted: list[str | None] = [contract.period_column]
    if contract.about_persons:
        wanted += [contract.person_id_column, contract.name_column, *IDENTITY_PHONE_COLUMNS]
    names = {c.name for c in contract.columns}
    return [c for c in dict.fromkeys(wanted) if c and c in names]


def stored_slice(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The slice with each contract column's cells replaced by their stored values (Python
    objects in object columns), the cells the load reads as read kept under AS_READ names, and
    STORED_MARK set."""
    out = frame.copy(deep=False)
    for name in read_columns(contract):
        if name in frame:
            out[AS_READ + name] = frame[name]
    for column in contract.columns:
        if column.name not in frame:
            continue  # (a frame of some columns only: tests)
        values = np.empty(len(frame), dtype=object)
        # every stored value is a scalar (text, number, date, flag), never a sequence numpy
        # would spread over the array
        values[:] = stored_values(column, frame[column.name])
        # object, never inferred: a column of texts and blanks stays texts and None
        out[column.name] = pd.Series(values, index=frame.index, dtype=object)
    out[STORED_MARK] = True
    return out


def is_stored(frame: pd.DataFrame) -> bool:
    return STORED_MARK in frame.columns


def as_read(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The read_columns of a slice as they were read, under their own names (a slice written
    before stored_slice existed holds them so already)."""
    names = [c for c in read_columns(contract) if c in frame]
    if not is_stored(frame):
        return frame[names]
    return frame[[AS_READ + c for c in names]].set_axis(names, axis=1)
