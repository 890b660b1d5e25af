"""What a staging table stores of a file's cells: typed, then masked (transforms.privacy.keys),
each distinct value of a column converted once.

The masking (IDs, phones, names, free text: regular expressions over every distinct value) is
done by resolve, in the processes it runs side by side, on each slice it writes
(`stored_slice`); the load, which runs on one core (SQLite has one writer), then inserts those
values as they are, and types the other columns (amounts, dates, counts, 是/否) itself, each
distinct value once. Those stay as read in the slices: a Decimal or a date costs about ten
times a text to pickle and unpickle between the two steps, more than typing it costs. A slice
keeps the cells of a masked column the load reads as read (the persons' IDs, names and phones
for person_identity, a period) under `AS_READ` names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pandas as pd

from transforms.config.contracts import Column, Contract
from transforms.privacy.keys import stored_converter, stores_masked
from transforms.warehouse.tables import IDENTITY_PHONE_COLUMNS, typed_converter

# a column marking a slice whose masked columns hold their stored values
STORED_MARK: Final = "_stored_values"
# the prefix of a masked column's cells kept as read beside its stored values
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


def _masked(contract: Contract) -> set[str]:
    return {c.name for c in contract.columns if stores_masked(c)}


def stored_slice(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The slice with each masked column's cells replaced by their stored values (texts in
    object columns), the cells of those the load reads as read kept under AS_READ names, and
    STORED_MARK set. The other columns stay as read."""
    masked = _masked(contract)
    out = frame.copy(deep=False)
    for name in read_columns(contract):
        if name in masked and name in frame:
            out[AS_READ + name] = frame[name]
    for column in contract.columns:
        if column.name not in masked or column.name not in frame:
            continue  # (a frame of some columns only: tests)
        values = np.empty(len(frame), dtype=object)
        # a stored masked value is a text or None, never a sequence numpy would spread
        values[:] = stored_values(column, frame[column.name])
        # object, never inferred: a column of texts and blanks stays texts and None
        out[column.name] = pd.Series(values, index=frame.index, dtype=object)
    out[STORED_MARK] = True
    return out


def is_stored(frame: pd.DataFrame) -> bool:
    return STORED_MARK in frame.columns


def column_values(column: Column, frame: pd.DataFrame) -> list[Any]:
    """The column's stored values for the slice's rows: as resolve stored them (a masked
    column of a stored slice), else converted here."""
    if is_stored(frame) and stores_masked(column):
        return frame[column.name].tolist()
    return stored_values(column, frame[column.name])


def as_read(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The read_columns of a slice as they were read, under their own names (a slice written
    before stored_slice existed holds them so already)."""
    names = [c for c in read_columns(contract) if c in frame]
    if not is_stored(frame):
        return frame[names]
    masked = _masked(contract)
    kept = [AS_READ + c if c in masked else c for c in names]
    return frame[kept].set_axis(names, axis=1)
